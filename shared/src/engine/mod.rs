//! The recommendation engine (ARCHITECTURE.md § A warm): build a ranked pool per user
//! from the cheapest sources, and serve each refresh a page of never-served videos from it.
//!
//! The pool, its page take and warm claim ([`pool`]) and the build lock ([`build_lock`])
//! are Redis only, and always built: the login function claims warms with them. A page
//! is a list of ids; their videos come from the shared [`catalog`]. Building
//! a pool (the YouTube sources, the ranking, the history sources: [`Engine`]) is behind
//! the crate's `recommend` feature, which the login function leaves off.

#[cfg(feature = "recommend")]
pub mod aged_cache;
pub mod build_lock;
#[cfg(feature = "recommend")]
pub mod catalog;
#[cfg(feature = "recommend")]
pub mod history;
#[cfg(feature = "recommend")]
mod page;
pub mod pool;
mod pool_v1;
#[cfg(feature = "recommend")]
pub mod rank;
#[cfg(feature = "recommend")]
pub mod sources;
#[cfg(feature = "recommend")]
pub mod supabase;
#[cfg(feature = "recommend")]
mod warm;

pub use build_lock::{BuildLock, HeldLock, LockAttempt};
#[cfg(feature = "recommend")]
pub use catalog::{Card, Catalog};
#[cfg(feature = "recommend")]
pub use history::{HistorySource, HistoryStore};
pub use pool::{CacheStatus, Entry, Page, PageRequest, PageResult, PoolStore};
#[cfg(feature = "recommend")]
pub use sources::SourceCache;
#[cfg(feature = "recommend")]
pub use warm::{Engine, EngineError, WarmOutcome};

/// How long a polled uploads list is fresh (a channel without a live push lease). Here,
/// not in `sources`, because the push callback's subscriptions use it without the
/// `recommend` feature.
pub const PLAYLIST_FRESH_MS: i64 = 30 * 60_000;
/// Enough for at least ten refreshes of the default page of 20.
pub const POOL_TARGET: usize = 240;
/// How many of the pool may come from charts rather than the user's interests.
pub const TRENDING_SHARE: f64 = 0.1;
/// Channels found through searches whose uploads join the candidates.
pub const RELATED_CHANNELS: usize = 24;
/// Charts a user with neither history nor interests starts from, besides the region's:
/// Music, Gaming, Entertainment, Sports, Comedy. One unit each, shared by every user.
pub const COLD_START_CATEGORIES: &[&str] = &["10", "20", "24", "17", "23"];
/// The most category charts one warm reads, besides the region's.
pub const MAX_CATEGORY_CHARTS: usize = 6;
/// The most topic searches one warm may ask for (each shared by normalised query).
pub const MAX_QUERIES: usize = 4;
/// Topic terms a user's related channels are looked up by (and recorded under).
pub const PEER_TERMS: usize = 3;
/// Related channels taken from other users of the same terms, per warm.
pub const PEER_CHANNELS: usize = 16;
/// The channels a user watches most whose uploads are fetched for them.
pub const OWN_CHANNELS: usize = 8;
/// The user's channels whose already-cached uploads a short warm reads for free.
pub const KNOWN_OWN_CHANNELS: usize = 40;
/// Channels of users strong in the same terms whose already-cached uploads a short warm
/// reads for free, before it spends on any.
pub const KNOWN_PEER_CHANNELS: usize = 64;
/// Channels whose cached uploads one free read takes (the warm stops reading once it has
/// enough), and the newest uploads it takes of each.
pub const KNOWN_CHANNELS_PER_READ: usize = 16;
pub const KNOWN_PER_CHANNEL: usize = 30;
/// How much of a user's words (`Profile::term_overlap`; the strongest word weighs 1) a
/// stranger's video must carry to count toward a free step's enough. On the same
/// 20,000-user day: 0 (every video counts) 80.4% related, 0.5 81.6%, 1.0 81.9%.
pub const ALIKE_OVERLAP: f64 = 1.0;
/// The categories a user watches most whose charts are read.
pub const TOP_CATEGORIES: usize = 3;
/// Declared topics searched per warm, and topic queries drawn from the history.
pub const DECLARED_TOPIC_QUERIES: usize = 2;
pub const HISTORY_TOPIC_QUERIES: usize = 3;
