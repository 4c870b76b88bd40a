//! reco-core: everything the three Lambda functions share, testable without Lambda.
//!
//! One module per concern, so "where does the quota get checked" is answered by a file
//! name. The whole system (flows, costs, the Redis key layout, the invariants and the
//! tests that guard them) is described in `ARCHITECTURE.md` at the repository root.
//!
//! # Layout
//!
//! - Where settings are read from the environment, and what their defaults are:
//!   [`config`].
//! - Where a function's clients are built from one config (the same way in tests):
//!   [`wiring`].
//! - Where the Redis connection (one server or a cluster, TLS) and every per-user and
//!   shared-source key name live: [`store`] (`store::keys`).
//! - Where the quota is checked, debited and broken by YouTube's answers, in one Redis
//!   round trip: [`quota`] (the script is `quota/guard.lua`; its keys are `quota::keys`).
//! - Where YouTube is called, with the key in a header and every call through the guard:
//!   [`youtube`].
//! - Where a user's pool is built (which sources, in what order): [`engine`]
//!   (`Engine::warm`).
//! - Where a user's pool is cut and marked served, a page taken (the one round trip of
//!   plain commands of a cache hit) and a refill claimed, and what the answer's cache
//!   status is: [`engine::pool`]; where the page's ids become cards (the shared catalog
//!   and the instance's item cache): [`engine::catalog`]; where the two meet, a short page
//!   is topped up and a refill claimed (`Engine::take_page`): `engine::page`.
//! - Where one user's pool is built by one instance at a time: [`engine::build_lock`].
//! - Where shared sources are cached, judged fresh, and refreshed or served stale:
//!   [`engine::sources`]; which stale sources get the units, paced over the Pacific day:
//!   [`quota::pacing`].
//! - Where candidates are scored and spread across channels: [`engine::rank`].
//! - Where watch history and declared interests are kept and read: [`engine::history`],
//!   or from Supabase: [`engine::supabase`].
//! - What a warm request on the queue looks like, and what is poison: [`messages`].
//! - Where warm requests are sent to SQS: [`queue`].
//! - Where YouTube's push notifications are verified, applied, hydrated and subscribed:
//!   [`push`].
//! - Where CloudWatch metrics are written (EMF lines): [`metrics`].
//! - Where time comes from, and where the Pacific quota day begins and ends: [`clock`].
//! - Where user ids are validated, and the video, watch event, interests and category
//!   types: [`domain`].
//!
//! The functions (`functions/api`, `functions/warmer`, `functions/login`) only map Lambda
//! events to these modules.

pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod messages;
pub mod metrics;
pub mod push;
pub mod queue;
pub mod quota;
pub mod store;
#[cfg(feature = "recommend")]
pub mod wiring;
#[cfg(feature = "recommend")]
pub mod youtube;

pub use domain::{UserId, Video, WatchEvent};
