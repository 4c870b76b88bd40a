//! An in-process cache bounded by bytes whose entries expire: what the API instance keeps
//! between invocations (the catalog's items, each user's last good page).
//!
//! quick_cache weighs and evicts (CLOCK-Pro) with no background housekeeping, so a get
//! or insert costs about a hash-map lookup; it has no expiry, so each entry carries the
//! instant it was stored and a get past the TTL is a miss.

use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
struct Aged<V> {
    stored_at: Instant,
    value: V,
    /// The entry's weight, counted once by the caller (the cache asks for it more than
    /// once).
    bytes: u64,
}

#[derive(Clone)]
struct EntryBytes;

impl<V> quick_cache::Weighter<String, Aged<V>> for EntryBytes {
    fn weight(&self, key: &String, aged: &Aged<V>) -> u64 {
        key.len() as u64 + aged.bytes
    }
}

/// A cache of `V` by string key, at most `max_bytes` of them, each for `ttl`.
#[derive(Clone)]
pub struct AgedCache<V: Clone> {
    entries: Arc<quick_cache::sync::Cache<String, Aged<V>, EntryBytes>>,
    ttl: Duration,
}

impl<V: Clone> AgedCache<V> {
    /// `typical_bytes` (what one entry about weighs) sizes the table up front.
    pub fn new(max_bytes: u64, typical_bytes: u64, ttl: Duration) -> Self {
        Self {
            entries: Arc::new(quick_cache::sync::Cache::with_weighter(
                (max_bytes / typical_bytes.max(1)).max(1) as usize,
                max_bytes,
                EntryBytes,
            )),
            ttl,
        }
    }

    /// Stores `value`, which weighs `bytes` beyond its key, as of `now`.
    pub fn insert(&self, key: String, value: V, bytes: u64, now: Instant) {
        let aged = Aged {
            stored_at: now,
            value,
            bytes,
        };
        self.entries.insert(key, aged);
    }

    /// The value stored under `key` less than the TTL before `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<V> {
        self.entries
            .get(key)
            .filter(|aged| now.saturating_duration_since(aged.stored_at) < self.ttl)
            .map(|aged| aged.value)
    }

    pub fn clear(&self) {
        self.entries.clear();
    }

    /// The bytes held now.
    pub fn bytes(&self) -> u64 {
        self.entries.weight()
    }

    pub fn max_bytes(&self) -> u64 {
        self.entries.capacity()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_expires_after_its_ttl_and_the_bytes_stay_bounded() {
        let cache = AgedCache::new(10_000, 100, Duration::from_secs(60));
        let t0 = Instant::now();
        cache.insert("a".into(), 1u32, 99, t0);
        assert_eq!(cache.get("a", t0 + Duration::from_secs(59)), Some(1));
        assert_eq!(cache.get("a", t0 + Duration::from_secs(60)), None);
        for i in 0..1_000 {
            cache.insert(format!("k{i}"), i, 99, t0);
        }
        assert!(
            cache.bytes() <= cache.max_bytes(),
            "{} bytes",
            cache.bytes()
        );
        assert!(
            cache.len() < 1_000 && cache.len() > 50,
            "{} entries",
            cache.len()
        );
    }
}
