//! Candidate sources, cached in Redis and shared across users: a second user with the
//! same interests costs no quota. Freshness is judged against the injected clock (the
//! stored `at`), not Redis TTLs, so simulated time works; TTLs only bound memory.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::rank::Candidate;
use crate::clock::SharedClock;
use crate::domain::Video;
use crate::quota::{Limit, Priority, pacing};
use crate::store::{RedisConn, StoreError, keys};
use crate::youtube::{VideoItem, YoutubeClient, YoutubeError, parse_iso8601_duration};

use super::EngineError;
use super::aged_cache::AgedCache;

pub const VIDEO_TTL_SECS: u64 = 7 * 86_400;
pub const CHANNEL_TTL_SECS: u64 = 30 * 86_400;
pub use super::PLAYLIST_FRESH_MS;
/// How long a channel's cached uploads are trusted while its push subscription is live,
/// from its last poll or its last push (a push moves the list's time on): its uploads
/// arrive by push, so only a channel silent for a week is polled, once, which catches a
/// subscription whose pushes stopped (a poll a day would cost a unit per subscribed
/// channel per day, as much as polling saves).
pub const PUSHED_PLAYLIST_FRESH_MS: i64 = 7 * 86_400_000;
pub const CHART_FRESH_MS: i64 = 60 * 60_000;
pub const SEARCH_FRESH_MS: i64 = 12 * 3_600_000;
/// Cached lists outlive their freshness so a stale copy can stand in when quota is short.
const LIST_TTL_SECS: u64 = 2 * 86_400;
/// A pushed channel's cached uploads outlive their week of trust by a day.
pub const PUSHED_LIST_TTL_SECS: u64 = 8 * 86_400;
/// Channels remembered per topic term.
const TERM_CHANNELS_KEPT: usize = 200;
/// Words longer than this are not counted for [`SourceCache::term_idf`] (ids, URLs).
const MAX_TERM_LEN: usize = 24;
/// The term counts live as long as the catalog's longest entry would, renewed by each
/// write.
const TERM_DF_TTL_SECS: i64 = 30 * 86_400;
/// Videos the catalog must have taken in before term weights mean anything.
pub const MIN_TERM_DOCS: u64 = 1_000;

/// Sources the guard turned down during one warm.
#[derive(Debug, Default, Clone)]
pub struct Denials {
    pub count: usize,
    pub retry_after_ms: Option<u64>,
    pub limit: Option<Limit>,
    /// Share of today's background units still unspent, read once per warm.
    pub budget_left: Option<f64>,
    /// Stale sources served from cache because the allocator gave their units to
    /// sources more users need.
    pub stale_served: usize,
    /// A search was turned down because today's searches are spent (not counted in
    /// `retry_after_ms`: see [`Denials::note`]).
    pub searches_closed: bool,
    /// Sources not fetched because the request's time budget for starting calls was
    /// spent (see [`crate::youtube::starting_calls_until`]): not quota, so not counted in
    /// `count`.
    pub out_of_time: usize,
}

impl Denials {
    fn note(&mut self, retry_after_ms: u64, limit: Limit) {
        self.count += 1;
        // Searches closed for the day are not worth waiting for: the channels and charts
        // still fill the pool, and the user's next warm asks again. Deferring the warm to
        // midnight would only chain a message every 15 minutes for the rest of the day.
        if matches!(
            limit,
            Limit::DailySearches | Limit::SearchBreaker | Limit::SearchPace
        ) {
            self.searches_closed = true;
            return;
        }
        self.retry_after_ms = Some(
            self.retry_after_ms
                .map_or(retry_after_ms, |r| r.min(retry_after_ms)),
        );
        self.limit.get_or_insert(limit);
    }
}

#[derive(Serialize, Deserialize)]
struct CachedList {
    at: i64,
    ids: Vec<String>,
}

/// The parsed videos one instance keeps between warms: 32 MB, about 25,000 videos.
pub const VIDEO_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// How long an instance trusts a video it parsed. A catalog item is written once and
/// kept for [`VIDEO_TTL_SECS`], so a copy goes stale only when the video expires or is
/// evicted, and is then used for minutes more at most.
pub const VIDEO_CACHE_TTL: Duration = Duration::from_secs(10 * 60);

#[derive(Clone)]
pub struct SourceCache {
    redis: RedisConn,
    youtube: Option<YoutubeClient>,
    clock: SharedClock,
    /// Warms of different users offer the same videos (a channel's uploads, a chart):
    /// a warm finds most of its candidates here instead of reading and parsing them
    /// from the catalog again.
    parsed: AgedCache<Arc<Candidate>>,
}

/// Turns a guard denial into "skip this source"; everything else stays an error.
fn skip_denied<T>(
    result: Result<T, YoutubeError>,
    denied: &mut Denials,
) -> Result<Option<T>, EngineError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(YoutubeError::Denied {
            retry_after_ms,
            limit,
        }) => {
            denied.note(retry_after_ms, limit);
            Ok(None)
        }
        // YouTube itself said quota or rate: the breaker/backoff is tripped; skip too.
        Err(YoutubeError::QuotaExceeded { limit, .. }) => {
            denied.note(60_000, limit);
            Ok(None)
        }
        Err(YoutubeError::RateLimited { .. }) => {
            denied.note(2_000, Limit::Backoff);
            Ok(None)
        }
        Err(YoutubeError::NotFound { .. }) => Ok(None),
        Err(YoutubeError::OutOfTime) => {
            denied.out_of_time += 1;
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn video_from_item(item: &VideoItem) -> Option<Video> {
    let snippet = item.snippet.as_ref()?;
    if snippet.live_broadcast_content == "upcoming" {
        return None;
    }
    Some(Video {
        video_id: item.id.clone(),
        title: snippet.title.clone(),
        channel_id: snippet.channel_id.clone(),
        channel_title: snippet.channel_title.clone(),
        category_id: snippet.category_id.clone(),
        published_at: snippet.published_at.clone(),
        thumbnail_url: snippet.thumbnail_url(),
        duration_secs: item
            .content_details
            .as_ref()
            .and_then(|c| c.duration.as_deref())
            .and_then(parse_iso8601_duration)
            .unwrap_or(0),
        view_count: item.statistics.as_ref().map_or(0, |s| s.view_count),
        tags: snippet.tags.iter().take(20).cloned().collect(),
        reason: String::new(),
        trending: false,
        url: format!("https://www.youtube.com/watch?v={}", item.id),
    })
}

impl SourceCache {
    pub fn new(redis: RedisConn, youtube: Option<YoutubeClient>, clock: SharedClock) -> Self {
        Self {
            redis,
            youtube,
            clock,
            parsed: AgedCache::new(VIDEO_CACHE_BYTES, 1_200, VIDEO_CACHE_TTL),
        }
    }

    /// Makes `video` a ranking candidate and keeps it for the warms that follow.
    fn remember(&self, video: Video, now: Instant) -> Arc<Candidate> {
        let video = Arc::new(Candidate::new(video));
        let bytes = video.approximate_bytes() as u64;
        self.parsed
            .insert(video.video_id.clone(), video.clone(), bytes, now);
        video
    }

    fn youtube(&self) -> Result<&YoutubeClient, EngineError> {
        self.youtube.as_ref().ok_or_else(|| {
            EngineError::Youtube(YoutubeError::Config {
                status: 0,
                reason: "noApiKey".into(),
                message: "YOUTUBE_API_KEY is not set".into(),
            })
        })
    }

    async fn cache_videos(&self, videos: &[Video]) -> Result<(), StoreError> {
        if videos.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        let df = keys::term_df();
        for v in videos {
            pipe.set_ex(
                keys::video(&v.video_id),
                serde_json::to_string(v).expect("video serialises"),
                VIDEO_TTL_SECS,
            )
            .ignore();
            // The words a candidate is ranked by: its title's and its tags'.
            let mut terms: Vec<String> = super::rank::tokens(&v.title)
                .chain(v.tags.iter().flat_map(|t| super::rank::tokens(t)))
                .filter(|t| t.len() <= MAX_TERM_LEN)
                .collect();
            terms.sort_unstable();
            terms.dedup();
            for term in terms {
                pipe.hincr(&df, term, 1).ignore();
            }
        }
        pipe.incr(keys::term_docs(), videos.len())
            .ignore()
            .expire(&df, TERM_DF_TTL_SECS)
            .ignore()
            .expire(keys::term_docs(), TERM_DF_TTL_SECS)
            .ignore();
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// Inverse document frequency of `terms` over the videos the catalog has taken in
    /// (their titles and tags; one round trip): `ln((docs + 1) / (df + 1)) + 1`, so a word
    /// in every video weighs 1 and a word in one video in a thousand about 8. Empty until
    /// the catalog has [`MIN_TERM_DOCS`] videos, when every weight would be noise.
    pub async fn term_idf(&self, terms: &[String]) -> Result<HashMap<String, f64>, StoreError> {
        if terms.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        pipe.get(keys::term_docs());
        pipe.cmd("HMGET").arg(keys::term_df()).arg(terms);
        let mut conn = self.redis.clone();
        let (docs, dfs): (Option<u64>, Vec<Option<u64>>) = pipe.query_async(&mut conn).await?;
        let docs = docs.unwrap_or(0);
        if docs < MIN_TERM_DOCS {
            return Ok(HashMap::new());
        }
        Ok(terms
            .iter()
            .zip(dfs)
            .map(|(t, df)| {
                let df = df.unwrap_or(0).min(docs) as f64;
                (t.clone(), ((docs as f64 + 1.0) / (df + 1.0)).ln() + 1.0)
            })
            .collect())
    }

    /// Details of `ids` (order kept, unknown ids dropped): this instance's parsed copies
    /// first, then the catalog, then `videos.list` 50 ids per unit for the rest.
    pub async fn videos(
        &self,
        ids: &[String],
        priority: Priority,
        denied: &mut Denials,
    ) -> Result<Vec<Arc<Candidate>>, EngineError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = Instant::now();
        let mut found = self.known_videos(ids).await?;
        let mut missing: Vec<String> = Vec::new();
        for (id, slot) in ids.iter().zip(&found) {
            if slot.is_none() && !missing.contains(id) {
                missing.push(id.clone());
            }
        }
        if !missing.is_empty()
            && let Some(items) =
                skip_denied(self.youtube()?.videos(&missing, priority).await, denied)?
        {
            let fetched: Vec<Video> = items.iter().filter_map(video_from_item).collect();
            self.cache_videos(&fetched).await?;
            let fetched: HashMap<String, Arc<Candidate>> = fetched
                .into_iter()
                .map(|v| {
                    let v = self.remember(v, now);
                    (v.video_id.clone(), v)
                })
                .collect();
            for (id, slot) in ids.iter().zip(found.iter_mut()) {
                if slot.is_none() {
                    *slot = fetched.get(id).cloned();
                }
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Details of `ids` this instance or the catalog already holds (`None` for the rest):
    /// no YouTube call.
    async fn known_videos(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<Arc<Candidate>>>, StoreError> {
        let now = Instant::now();
        let mut found: Vec<Option<Arc<Candidate>>> =
            ids.iter().map(|id| self.parsed.get(id, now)).collect();
        let unread: Vec<usize> = (0..ids.len()).filter(|&i| found[i].is_none()).collect();
        if !unread.is_empty() {
            let mut conn = self.redis.clone();
            let key_list: Vec<String> = unread.iter().map(|&i| keys::video(&ids[i])).collect();
            let cached: Vec<Option<String>> = redis::cmd("MGET")
                .arg(&key_list)
                .query_async(&mut conn)
                .await?;
            for (&i, raw) in unread.iter().zip(cached) {
                if let Some(video) = raw.and_then(|r| serde_json::from_str::<Video>(&r).ok()) {
                    found[i] = Some(self.remember(video, now));
                }
            }
        }
        Ok(found)
    }

    /// The details of those of `ids` this instance or the catalog holds, in their order:
    /// no YouTube call.
    pub async fn cached_videos(&self, ids: &[String]) -> Result<Vec<Arc<Candidate>>, StoreError> {
        Ok(self
            .known_videos(ids)
            .await?
            .into_iter()
            .flatten()
            .collect())
    }

    /// The uploads of `channels` that other users' warms already fetched, whatever their
    /// age: cached uploads lists and catalog videos only, in three round trips, with no
    /// YouTube call and no demand counted. What a warm short of candidates serves before
    /// it spends a unit. At most `per_channel` of each list, newest first.
    pub async fn cached_uploads(
        &self,
        channels: &[String],
        per_channel: usize,
    ) -> Result<Vec<Arc<Candidate>>, StoreError> {
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.redis.clone();
        let playlists = self.cached_playlists(channels).await?;
        let list_keys: Vec<String> = playlists
            .iter()
            .flatten()
            .map(|p| keys::playlist_latest(p))
            .collect();
        if list_keys.is_empty() {
            return Ok(Vec::new());
        }
        let lists: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&list_keys)
            .query_async(&mut conn)
            .await?;
        let mut ids: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        for list in lists.into_iter().flatten() {
            if let Ok(list) = serde_json::from_str::<CachedList>(&list) {
                ids.extend(
                    list.ids
                        .into_iter()
                        .take(per_channel)
                        .filter(|id| seen.insert(id.clone())),
                );
            }
        }
        self.cached_videos(&ids).await
    }

    /// The cached uploads playlist id of each of `channels` (one `MGET`).
    async fn cached_playlists(
        &self,
        channels: &[String],
    ) -> Result<Vec<Option<String>>, StoreError> {
        let keys: Vec<String> = channels
            .iter()
            .map(|c| keys::channel_uploads_playlist(c))
            .collect();
        let mut conn = self.redis.clone();
        Ok(redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?)
    }

    /// channel id → uploads playlist id, from cache or one `channels.list` unit per 50.
    pub async fn uploads_playlists(
        &self,
        channel_ids: &[String],
        priority: Priority,
        denied: &mut Denials,
    ) -> Result<HashMap<String, String>, EngineError> {
        let mut out = HashMap::new();
        if channel_ids.is_empty() {
            return Ok(out);
        }
        let mut conn = self.redis.clone();
        let cached = self.cached_playlists(channel_ids).await?;
        let mut missing = Vec::new();
        for (channel, playlist) in channel_ids.iter().zip(cached) {
            match playlist {
                Some(p) => {
                    out.insert(channel.clone(), p);
                }
                None => missing.push(channel.clone()),
            }
        }
        if !missing.is_empty()
            && let Some(found) = skip_denied(
                self.youtube()?.uploads_playlists(&missing, priority).await,
                denied,
            )?
        {
            let mut pipe = redis::pipe();
            for (channel, playlist) in &found {
                pipe.set_ex(
                    keys::channel_uploads_playlist(channel),
                    playlist,
                    CHANNEL_TTL_SECS,
                )
                .ignore();
            }
            pipe.query_async::<()>(&mut conn).await?;
            out.extend(found);
        }
        Ok(out)
    }

    async fn cached_list(&self, key: &str) -> Result<Option<CachedList>, StoreError> {
        let mut conn = self.redis.clone();
        let raw: Option<String> = conn.get(key).await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok()))
    }

    async fn store_list(
        &self,
        key: &str,
        ids: Vec<String>,
        ttl_secs: u64,
    ) -> Result<Vec<String>, StoreError> {
        let list = CachedList {
            at: self.clock.now_ms(),
            ids,
        };
        let mut conn = self.redis.clone();
        let _: () = conn
            .set_ex(
                key,
                serde_json::to_string(&list).expect("list serialises"),
                ttl_secs,
            )
            .await?;
        Ok(list.ids)
    }

    /// A cached id list, refreshed through `fetch` when older than `fresh_ms`; a stale copy
    /// stands in when the guard denies the refresh.
    async fn list_source<F, Fut>(
        &self,
        key: String,
        fresh_ms: i64,
        denied: &mut Denials,
        fetch: F,
    ) -> Result<Vec<String>, EngineError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<String>, YoutubeError>>,
    {
        let cached = self.cached_list(&key).await?;
        let demand_rank = self.note_demand(&key).await?;
        if let Some(c) = &cached {
            if self.clock.now_ms() - c.at < fresh_ms {
                return Ok(c.ids.clone());
            }
            if !self.refresh_allowed(demand_rank, denied).await {
                denied.stale_served += 1;
                return Ok(c.ids.clone());
            }
        }
        match skip_denied(fetch().await, denied)? {
            Some(ids) => {
                // A list trusted for a week (a pushed channel's) must live that long.
                let ttl = if fresh_ms >= PUSHED_PLAYLIST_FRESH_MS {
                    PUSHED_LIST_TTL_SECS
                } else {
                    LIST_TTL_SECS
                };
                Ok(self.store_list(&key, ids, ttl).await?)
            }
            None => Ok(cached.map(|c| c.ids).unwrap_or_default()),
        }
    }

    /// Records that a user strong in `terms` watches `channels`, so later users with those
    /// terms can be offered these channels' uploads: discovery that costs no search.
    pub async fn note_term_channels(
        &self,
        terms: &[String],
        channels: &[String],
    ) -> Result<(), StoreError> {
        if terms.is_empty() || channels.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for term in terms {
            let key = keys::term_channels(term);
            for channel in channels {
                pipe.zincr(&key, channel, 1).ignore();
            }
            // Bounded: the most-watched channels of a term are the ones worth offering.
            pipe.cmd("ZREMRANGEBYRANK")
                .arg(&key)
                .arg(0)
                .arg(-(TERM_CHANNELS_KEPT as i64) - 1)
                .ignore()
                .expire(&key, LIST_TTL_SECS as i64)
                .ignore();
        }
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// Up to `n` channels watched by users strong in `terms`, most watched first, leaving
    /// out `exclude` (the user's own).
    pub async fn term_channels(
        &self,
        terms: &[String],
        n: usize,
        exclude: &[String],
    ) -> Result<Vec<String>, StoreError> {
        if terms.is_empty() || n == 0 {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for term in terms {
            pipe.zrevrange_withscores(keys::term_channels(term), 0, (n + exclude.len()) as isize);
        }
        let mut conn = self.redis.clone();
        let lists: Vec<Vec<(String, f64)>> = pipe.query_async(&mut conn).await?;
        let mut score: HashMap<String, f64> = HashMap::new();
        for (weight, list) in lists.into_iter().enumerate() {
            // The first term is the user's strongest.
            let term_weight = 1.0 / (1.0 + weight as f64);
            for (channel, count) in list {
                if !exclude.contains(&channel) {
                    *score.entry(channel).or_default() += term_weight * count;
                }
            }
        }
        let mut ranked: Vec<(String, f64)> = score.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(ranked.into_iter().take(n).map(|(c, _)| c).collect())
    }

    /// Counts one more user needing `key` today; returns (rank by demand, sources ranked).
    async fn note_demand(&self, key: &str) -> Result<(u64, u64), StoreError> {
        let demand = keys::source_demand(&crate::clock::pacific_date(self.clock.now()));
        let mut pipe = redis::pipe();
        pipe.zincr(&demand, key, 1)
            .ignore()
            .expire(&demand, 2 * 86_400)
            .ignore()
            .zrevrank(&demand, key)
            .zcard(&demand);
        let mut conn = self.redis.clone();
        let (rank, total): (Option<u64>, u64) = pipe.query_async(&mut conn).await?;
        Ok((rank.unwrap_or(0), total.max(1)))
    }

    /// Whether a stale source ranked `rank` by today's demand may refresh: the policy is
    /// [`pacing::allocate`]; the day's budget is read from the guard once per warm.
    async fn refresh_allowed(&self, (rank, total): (u64, u64), denied: &mut Denials) -> bool {
        let left = match denied.budget_left {
            Some(left) => left,
            None => {
                let left = match &self.youtube {
                    Some(youtube) => match youtube.guard().state().await {
                        Ok(state) => pacing::background_budget_left(&state),
                        Err(_) => 1.0,
                    },
                    None => 1.0,
                };
                denied.budget_left = Some(left);
                left
            }
        };
        pacing::allocate(rank, total, left)
    }

    /// A playlist's latest ids. `pushed`: its channel has a live push subscription, so
    /// its cached copy is trusted for [`PUSHED_PLAYLIST_FRESH_MS`], not 30 minutes.
    pub async fn playlist_latest(
        &self,
        playlist_id: &str,
        pushed: bool,
        priority: Priority,
        denied: &mut Denials,
    ) -> Result<Vec<String>, EngineError> {
        let youtube = self.youtube()?;
        self.list_source(
            keys::playlist_latest(playlist_id),
            if pushed {
                PUSHED_PLAYLIST_FRESH_MS
            } else {
                PLAYLIST_FRESH_MS
            },
            denied,
            || youtube.playlist_video_ids(playlist_id, priority),
        )
        .await
    }

    /// A chart's videos. The chart response carries full details, so it costs one unit
    /// and fills the video cache too.
    pub async fn chart(
        &self,
        region: &str,
        category_id: Option<&str>,
        priority: Priority,
        denied: &mut Denials,
    ) -> Result<Vec<Arc<Candidate>>, EngineError> {
        let youtube = self.youtube()?;
        let key = keys::chart(region, category_id.unwrap_or("0"));
        let mut fetched: Vec<Video> = Vec::new();
        let ids = self
            .list_source(key, CHART_FRESH_MS, denied, || async {
                let items = youtube.chart(region, category_id, priority).await?;
                fetched = items.iter().filter_map(video_from_item).collect();
                Ok(fetched.iter().map(|v| v.video_id.clone()).collect())
            })
            .await?;
        if fetched.is_empty() {
            return self.videos(&ids, priority, denied).await;
        }
        self.cache_videos(&fetched).await?;
        let now = Instant::now();
        Ok(fetched.into_iter().map(|v| self.remember(v, now)).collect())
    }

    /// The cached chart only, without calling YouTube: what the API serves on a miss.
    pub async fn cached_chart(&self, region: &str) -> Result<Vec<Video>, EngineError> {
        let Some(list) = self.cached_list(&keys::chart(region, "0")).await? else {
            return Ok(Vec::new());
        };
        let mut conn = self.redis.clone();
        let key_list: Vec<String> = list.ids.iter().map(|id| keys::video(id)).collect();
        if key_list.is_empty() {
            return Ok(Vec::new());
        }
        let cached: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&key_list)
            .query_async(&mut conn)
            .await?;
        Ok(cached
            .into_iter()
            .flatten()
            .filter_map(|r| serde_json::from_str::<Video>(&r).ok())
            .map(|mut v| {
                v.trending = true;
                v.reason = "trending in your region".into();
                v
            })
            .collect())
    }

    /// The cached charts of `categories` in `region`, in that order, without calling
    /// YouTube (two round trips): other users' warms fetched them, and a page outside the
    /// pool for a user who has read everything nearer reads them before the region's.
    pub async fn cached_category_charts(
        &self,
        region: &str,
        categories: &[String],
    ) -> Result<Vec<Video>, StoreError> {
        if categories.is_empty() {
            return Ok(Vec::new());
        }
        let list_keys: Vec<String> = categories.iter().map(|c| keys::chart(region, c)).collect();
        let mut conn = self.redis.clone();
        let lists: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&list_keys)
            .query_async(&mut conn)
            .await?;
        let mut seen: HashSet<String> = HashSet::new();
        let ids: Vec<String> = lists
            .into_iter()
            .flatten()
            .filter_map(|raw| serde_json::from_str::<CachedList>(&raw).ok())
            .flat_map(|list| list.ids)
            .filter(|id| seen.insert(id.clone()))
            .collect();
        Ok(self
            .cached_videos(&ids)
            .await?
            .iter()
            .map(|c| {
                let mut video = c.video.clone();
                let category = crate::domain::category_name(&video.category_id);
                video.trending = true;
                video.reason = format!("trending in {}", category.unwrap_or("your region"));
                video
            })
            .collect())
    }

    /// The region's chart for a user with no pool yet: from the shared cache, or, when no
    /// one has fetched it yet (a new deployment, or its TTL passed), fetched now under
    /// `priority`: one unit, shared by every user of the region until it is stale.
    pub async fn region_chart(
        &self,
        region: &str,
        priority: Priority,
    ) -> Result<Vec<Video>, EngineError> {
        let cached = self.cached_chart(region).await?;
        if !cached.is_empty() || self.youtube.is_none() {
            return Ok(cached);
        }
        let mut denied = Denials::default();
        Ok(self
            .chart(region, None, priority, &mut denied)
            .await?
            .iter()
            .map(|v| {
                let mut v = v.video.clone();
                v.trending = true;
                v.reason = "trending in your region".into();
                v
            })
            .collect())
    }

    /// Video ids for a topic query, shared by normalised query across all users.
    pub async fn search(
        &self,
        query: &str,
        priority: Priority,
        denied: &mut Denials,
    ) -> Result<Vec<String>, EngineError> {
        let normalised = normalise_query(query);
        if normalised.is_empty() {
            return Ok(Vec::new());
        }
        let youtube = self.youtube()?;
        self.list_source(keys::search(&normalised), SEARCH_FRESH_MS, denied, || {
            youtube.search_video_ids(&normalised, priority)
        })
        .await
    }
}

/// Lowercase words, deduplicated and sorted: "Jazz Piano" and "piano jazz" share a cache
/// entry and a search.
pub fn normalise_query(query: &str) -> String {
    let mut words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    words.sort();
    words.dedup();
    words.truncate(6);
    words.join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn queries_normalise_to_one_cache_entry() {
        assert_eq!(
            super::normalise_query("Jazz  Piano!"),
            super::normalise_query("piano jazz")
        );
        assert_eq!(super::normalise_query("{}*:"), "");
    }
}
