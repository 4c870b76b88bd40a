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
use std::time::{Duration, Instant};

use crate::domain::Video;
use crate::store::{RedisConn, StoreError, keys};

use super::aged_cache::AgedCache;
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
/// About what one item weighs, to size the cache's table up front.
const TYPICAL_ITEM_BYTES: u64 = 1200;

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

/// A catalog item as the instance keeps it: the video, and its JSON cut around the two
/// fields that are the user's (`reason`, `trending`), so a page's body is written by
/// copying bytes rather than by serialising 20 videos on every hit.
#[derive(Debug)]
pub struct Item {
    video: Video,
    /// The JSON up to `"reason":`, from `"tags":` up to `"trending":`, and from `"url":`.
    head: Box<str>,
    mid: Box<str>,
    tail: Box<str>,
}

impl Item {
    pub fn new(mut video: Video) -> Self {
        video.reason.clear();
        video.trending = false;
        let json = serde_json::to_string(&video).expect("video serialises");
        // `Video`'s fields are declared in key order, so `reason` and `trending` sit
        // between `published_at` and `tags`, `title` and `url`; a quote inside a value is
        // escaped, so these markers cannot occur anywhere else.
        const REASON: &str = ",\"reason\":\"\",";
        const TRENDING: &str = ",\"trending\":false,";
        let r = json.find(REASON).expect("a video's JSON has its reason");
        let t = json
            .find(TRENDING)
            .expect("a video's JSON has its trending flag");
        Self {
            head: json[..=r].into(),
            mid: json[r + REASON.len()..=t].into(),
            tail: json[t + TRENDING.len()..].into(),
            video,
        }
    }

    pub fn video(&self) -> &Video {
        &self.video
    }

    fn bytes(&self) -> usize {
        self.video.approximate_bytes() + self.head.len() + self.mid.len() + self.tail.len()
    }
}

/// One card of a page: the catalog's item as this user is shown it.
#[derive(Debug, Clone)]
pub struct Card {
    item: Arc<Item>,
    reason: String,
    trending: bool,
}

impl Card {
    pub fn new(item: Arc<Item>, entry: Entry) -> Self {
        Self {
            item,
            trending: entry.trending(),
            reason: entry.into_reason(),
        }
    }

    /// A card for a video from outside the catalog's cache (a chart on a miss, a
    /// first-layout pool's copy): its JSON cut once, here.
    pub fn from_video(video: Video) -> Self {
        let (reason, trending) = (video.reason.clone(), video.trending);
        Self {
            item: Arc::new(Item::new(video)),
            reason,
            trending,
        }
    }

    pub fn video_id(&self) -> &str {
        &self.item.video.video_id
    }

    /// The video as the user is shown it.
    pub fn to_video(&self) -> Video {
        let mut video = self.item.video.clone();
        video.reason.clone_from(&self.reason);
        video.trending = self.trending;
        video
    }

    /// Appends the card's JSON, byte for byte what serialising [`Card::to_video`] writes.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.item.head.as_bytes());
        out.extend_from_slice(b"\"reason\":");
        serde_json::to_writer(&mut *out, &self.reason).expect("a string serialises");
        out.push(b',');
        out.extend_from_slice(self.item.mid.as_bytes());
        out.extend_from_slice(if self.trending {
            b"\"trending\":true,"
        } else {
            b"\"trending\":false,"
        });
        out.extend_from_slice(self.item.tail.as_bytes());
    }

    /// About how long the card's JSON is (a buffer's capacity).
    pub fn json_len_hint(&self) -> usize {
        self.item.head.len() + self.item.mid.len() + self.item.tail.len() + self.reason.len() + 32
    }

    /// About how much memory the card holds beyond what it shares with the cache.
    pub fn approximate_bytes(&self) -> usize {
        std::mem::size_of::<Card>() + self.reason.len() + self.item.bytes()
    }
}

/// Appends `cards` to `out` as a JSON array (bytes: the body is checked as UTF-8 once,
/// when it is whole, not once per card).
pub fn write_cards_json(out: &mut Vec<u8>, cards: &[Card]) {
    out.push(b'[');
    for (i, card) in cards.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        card.write_json(out);
    }
    out.push(b']');
}

#[derive(Clone)]
pub struct Catalog {
    redis: RedisConn,
    items: AgedCache<Arc<Item>>,
    stats: Arc<CatalogStats>,
}

/// A page of entries made into cards.
#[derive(Debug, Default)]
pub struct Hydrated {
    pub cards: Vec<Card>,
    /// Entries whose video the catalog no longer holds (skipped).
    pub missing: usize,
}

impl Catalog {
    /// A catalog reader whose in-process cache holds at most `cache_bytes` of items
    /// (0 turns the cache off: every page reads the catalog).
    pub fn new(redis: RedisConn, cache_bytes: u64) -> Self {
        Self {
            redis,
            items: AgedCache::new(cache_bytes, TYPICAL_ITEM_BYTES, ITEM_CACHE_TTL),
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
        self.items.clear();
    }

    pub fn stats(&self) -> &CatalogStats {
        &self.stats
    }

    /// The entries' cards, in order, as this user is shown them (reason, trending):
    /// from the in-process cache, the rest with one `MGET` of the catalog. An entry whose
    /// item is gone is skipped and counted.
    pub async fn hydrate(&self, entries: Vec<Entry>) -> Result<Hydrated, StoreError> {
        let now = Instant::now();
        let mut found: Vec<Option<Arc<Item>>> = entries
            .iter()
            .map(|e| self.items.get(e.video_id(), now))
            .collect();
        let absent: Vec<usize> = (0..entries.len()).filter(|&i| found[i].is_none()).collect();
        let hits = entries.len() - absent.len();
        self.stats
            .cache_hits
            .fetch_add(hits as u64, Ordering::Relaxed);
        if !absent.is_empty() {
            let key_list: Vec<String> = absent
                .iter()
                .map(|&i| keys::video(entries[i].video_id()))
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
                let item = Arc::new(Item::new(video));
                let bytes = (ENTRY_OVERHEAD_BYTES + item.bytes()) as u64;
                self.items
                    .insert(entries[i].video_id().to_owned(), item.clone(), bytes, now);
                found[i] = Some(item);
            }
        }
        let mut out = Hydrated {
            cards: Vec::with_capacity(entries.len()),
            missing: 0,
        };
        for (entry, item) in entries.into_iter().zip(found) {
            match item {
                Some(item) => out.cards.push(Card::new(item, entry)),
                None => out.missing += 1,
            }
        }
        self.stats
            .missing
            .fetch_add(out.missing as u64, Ordering::Relaxed);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(title: &str, reason: &str, trending: bool) -> Video {
        Video {
            category_id: "20".into(),
            channel_id: "UC\"reason\":\"\",x".into(),
            channel_title: "Chan,\"trending\":false,nel".into(),
            duration_secs: 61,
            published_at: "2026-11-01T10:00:00Z".into(),
            reason: reason.into(),
            tags: vec!["a".into(), "b\tc".into()],
            thumbnail_url: "https://i.ytimg.com/vi/x/mqdefault.jpg".into(),
            title: title.into(),
            trending,
            url: "https://www.youtube.com/watch?v=x".into(),
            video_id: "vid00000001".into(),
            view_count: u64::MAX,
        }
    }

    /// A card's spliced JSON is byte for byte the serialised video as the user sees it,
    /// whatever the strings hold (the markers the cut looks for among them).
    #[test]
    fn a_cards_json_is_the_serialised_video() {
        for (title, reason, trending) in [
            ("plain", "", false),
            (
                "\",\"reason\":\"\",",
                "from a channel you watch: \"x\"\n",
                true,
            ),
            ("é😀\\ <b>&</b>", ",\"trending\":false,", false),
        ] {
            let shown = video(title, reason, trending);
            let card = Card::from_video(shown.clone());
            let mut json = Vec::new();
            card.write_json(&mut json);
            assert_eq!(
                String::from_utf8(json).unwrap(),
                serde_json::to_string(&shown).unwrap()
            );
            assert_eq!(card.to_video(), shown);
            // The same item, shown to another user with their own reason.
            let other = Card::new(
                card.item.clone(),
                Entry::new(
                    &shown.video_id,
                    &shown.category_id,
                    !trending,
                    "another user's reason",
                ),
            );
            let mut expected = shown.clone();
            expected.trending = !trending;
            expected.reason = "another user's reason".into();
            assert_eq!(
                {
                    let mut json = Vec::new();
                    write_cards_json(&mut json, &[other]);
                    String::from_utf8(json).unwrap()
                },
                format!("[{}]", serde_json::to_string(&expected).unwrap())
            );
        }
    }
}
