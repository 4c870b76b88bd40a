//! The shared catalog of video details, and an instance's in-process copy of it.
//!
//! A user's pool holds ids (`super::pool`); what a card shows — title, channel,
//! thumbnail, duration, views — is stored once for every user, under `keys::video`, by
//! whichever source fetched it (uploads, searches, charts), for [`VIDEO_TTL_SECS`]. The
//! catalog's retention is that TTL: an item nobody fetched again for a week expires, and
//! under memory pressure Redis's `volatile-lru` (ElastiCache's default policy) evicts
//! the least recently used items first, since every catalog key has a TTL. A pool can
//! outlive an item; such an entry is skipped and counted, and the page take asks for a
//! refill — never an error or an empty card.
//!
//! Popular videos repeat across users, so the API keeps the items it hydrated in a
//! cache bounded by bytes (not entries: items vary tenfold in size) for
//! [`ITEM_CACHE_TTL`], after which a changed title or a deleted video shows through. A
//! warm instance answers most pages without reading the catalog: the common hit is then
//! the pool's one round trip. Items it lacks are read with one `MGET` (split by slot and
//! sent concurrently on a cluster).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::domain::Video;
use crate::store::{RedisConn, StoreError, keys};

use super::pool::Entry;
pub use super::sources::VIDEO_TTL_SECS;

/// How long an instance trusts an item it read from the catalog.
pub const ITEM_CACHE_TTL: Duration = Duration::from_secs(10 * 60);
/// The item cache of an instance that was not told its memory: 1/4 of 128 MB.
pub const DEFAULT_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// The share of the function's memory the item cache may use.
pub const CACHE_MEMORY_SHARE: u64 = 4;

/// An entry's cost beyond the video: the key, the `Arc`, the cache's own bookkeeping.
const ENTRY_OVERHEAD_BYTES: usize = 96;

/// Counters of where hydrated items came from, since the instance started.
#[derive(Debug, Default)]
pub struct CatalogStats {
    /// Items found in the in-process cache.
    pub cache_hits: AtomicU64,
    /// Items read from the catalog in Redis.
    pub catalog_reads: AtomicU64,
    /// Items the catalog no longer held.
    pub missing: AtomicU64,
    /// Round trips to the catalog (one per page that lacked an item).
    pub round_trips: AtomicU64,
}

impl CatalogStats {
    /// Share of hydrated items served from the in-process cache.
    pub fn hit_rate(&self) -> f64 {
        let hits = self.cache_hits.load(Ordering::Relaxed) as f64;
        let total = hits + self.catalog_reads.load(Ordering::Relaxed) as f64;
        if total == 0.0 { 0.0 } else { hits / total }
    }
}

#[derive(Clone)]
pub struct Catalog {
    redis: RedisConn,
    items: moka::sync::Cache<String, Arc<Video>>,
    stats: Arc<CatalogStats>,
}

/// A page of entries made into cards.
#[derive(Debug, Default)]
pub struct Hydrated {
    pub videos: Vec<Video>,
    /// Entries whose video the catalog no longer holds (skipped).
    pub missing: usize,
}

impl Catalog {
    /// A catalog reader whose in-process cache holds at most `cache_bytes` of items
    /// (0 turns the cache off: every page reads the catalog).
    pub fn new(redis: RedisConn, cache_bytes: u64) -> Self {
        let items = moka::sync::Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|key: &String, video: &Arc<Video>| {
                let bytes = ENTRY_OVERHEAD_BYTES + key.len() + video.approximate_bytes();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .time_to_live(ITEM_CACHE_TTL)
            .build();
        Self {
            redis,
            items,
            stats: Arc::default(),
        }
    }

    /// A catalog reader whose item cache may use 1/[`CACHE_MEMORY_SHARE`] of a function
    /// of `memory_mb`.
    pub fn for_function_memory_mb(redis: RedisConn, memory_mb: u64) -> Self {
        Self::new(redis, memory_mb.max(1) * 1024 * 1024 / CACHE_MEMORY_SHARE)
    }

    /// Empties the in-process cache (benchmarks measure the cold case with it).
    pub fn forget_cached_items(&self) {
        self.items.invalidate_all();
    }

    pub fn stats(&self) -> &CatalogStats {
        &self.stats
    }

    /// The entries' videos, in order, as this user is shown them (reason, trending):
    /// from the in-process cache, the rest with one `MGET` of the catalog. An entry whose
    /// item is gone is skipped and counted.
    pub async fn hydrate(&self, entries: &[Entry]) -> Result<Hydrated, StoreError> {
        let mut found: Vec<Option<Arc<Video>>> = entries
            .iter()
            .map(|e| self.items.get(&e.video_id))
            .collect();
        let absent: Vec<usize> = (0..entries.len()).filter(|&i| found[i].is_none()).collect();
        let hits = entries.len() - absent.len();
        self.stats
            .cache_hits
            .fetch_add(hits as u64, Ordering::Relaxed);
        if !absent.is_empty() {
            let key_list: Vec<String> = absent
                .iter()
                .map(|&i| keys::video(&entries[i].video_id))
                .collect();
            let mut conn = self.redis.clone();
            let raw: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&key_list)
                .query_async(&mut conn)
                .await?;
            self.stats.round_trips.fetch_add(1, Ordering::Relaxed);
            self.stats
                .catalog_reads
                .fetch_add(absent.len() as u64, Ordering::Relaxed);
            for (&i, raw) in absent.iter().zip(raw) {
                // An item that does not parse is as good as gone: skipped, not an error.
                let Some(video) = raw.and_then(|r| serde_json::from_str::<Video>(&r).ok()) else {
                    continue;
                };
                let video = Arc::new(video);
                self.items
                    .insert(entries[i].video_id.clone(), video.clone());
                found[i] = Some(video);
            }
        }
        let mut out = Hydrated::default();
        for (entry, video) in entries.iter().zip(found) {
            match video {
                Some(video) => {
                    let mut video = Video::clone(&video);
                    entry.apply_to(&mut video);
                    out.videos.push(video);
                }
                None => out.missing += 1,
            }
        }
        self.stats
            .missing
            .fetch_add(out.missing as u64, Ordering::Relaxed);
        Ok(out)
    }
}
