//! The recommendation engine (ARCHITECTURE.md § A warm): build a ranked pool per user
//! from the cheapest sources, and serve each refresh a page of never-served videos from it.

pub mod history;
pub mod pool;
pub mod rank;
pub mod sources;
pub mod supabase;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::clock::SharedClock;
use crate::domain::{UserId, Video};
use crate::quota::Priority;
use crate::store::{RedisConn, StoreError};
use crate::youtube::{YoutubeClient, YoutubeError};

pub use history::{HistorySource, HistoryStore};
pub use pool::{PageRequest, PageResult, PoolStore};
pub use sources::SourceCache;

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

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Youtube(#[from] YoutubeError),
    #[error("history source: {0}")]
    History(String),
}

impl From<redis::RedisError> for EngineError {
    fn from(e: redis::RedisError) -> Self {
        EngineError::Store(StoreError::Redis(e))
    }
}

impl EngineError {
    /// When quota, not a fault, stopped the warm: the caller should defer, not fail.
    pub fn quota_retry_after_ms(&self) -> Option<u64> {
        match self {
            EngineError::Youtube(e) => e.quota_retry_after_ms(),
            _ => None,
        }
    }
}

/// What a warm did, for logs, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarmOutcome {
    pub pool_size: usize,
    pub candidates: usize,
    pub history_len: usize,
    /// Sources skipped because the guard denied them (the warm still succeeds).
    pub sources_denied: usize,
    /// The shortest retry-after among denied sources, when the pool came out short.
    pub retry_after_ms: Option<u64>,
    /// Stale shared sources served from cache because the refresh allocator kept their
    /// units for sources more users need.
    pub stale_served: usize,
}

#[derive(Clone)]
pub struct Engine {
    pub redis: RedisConn,
    pub sources: SourceCache,
    /// Where POST /history writes.
    pub history: HistoryStore,
    /// Where a warm reads the history from (Redis unless configured otherwise).
    pub history_source: HistorySource,
    pub pool: PoolStore,
    pub clock: SharedClock,
    pub region: String,
}

impl Engine {
    pub fn new(
        redis: RedisConn,
        youtube: Option<YoutubeClient>,
        clock: SharedClock,
        region: impl Into<String>,
        pool_ttl: Duration,
    ) -> Self {
        Self {
            sources: SourceCache::new(redis.clone(), youtube, clock.clone()),
            history: HistoryStore::new(redis.clone()),
            history_source: HistorySource::Redis(HistoryStore::new(redis.clone())),
            pool: PoolStore::new(redis.clone(), clock.clone(), pool_ttl),
            redis,
            clock,
            region: region.into(),
        }
    }

    /// The latest uploads of `channels`, in their order: an uploads-playlist lookup
    /// (cached for a month) and one shared, cached playlist page per channel.
    async fn channel_uploads(
        &self,
        channels: &[String],
        priority: Priority,
        denied: &mut sources::Denials,
    ) -> Result<Vec<Video>, EngineError> {
        let playlists = self
            .sources
            .uploads_playlists(channels, priority, denied)
            .await?;
        let mut ids = Vec::new();
        for channel in channels {
            if let Some(playlist) = playlists.get(channel) {
                ids.extend(
                    self.sources
                        .playlist_latest(playlist, priority, denied)
                        .await?,
                );
            }
        }
        self.sources.videos(&ids, priority, denied).await
    }

    /// Builds and stores the user's pool. Sources the guard denies are skipped; the warm
    /// fails only when it could build nothing at all for a quota reason (then the caller
    /// defers) or on a real fault.
    pub async fn warm(
        &self,
        user: &UserId,
        priority: Priority,
    ) -> Result<WarmOutcome, EngineError> {
        self.warm_from(user, priority, self.clock.now_ms()).await
    }

    /// [`Engine::warm`], for a build that began at `started_ms` (before it reads the
    /// history): the pool records it, so a warm request made after it is not mistaken
    /// for one this pool already answers.
    pub async fn warm_from(
        &self,
        user: &UserId,
        priority: Priority,
        started_ms: i64,
    ) -> Result<WarmOutcome, EngineError> {
        let history::UserContext { events, interests } = self
            .history_source
            .context(user, history::HISTORY_USED_FOR_RANKING, &self.history)
            .await?;
        let watched_ids: Vec<String> = events.iter().map(|e| e.video_id.clone()).collect();
        let mut denied = sources::Denials::default();

        let watched = self
            .sources
            .videos(&watched_ids, priority, &mut denied)
            .await?;
        let mut profile = rank::Profile::from_history(&events, &watched);
        profile.add_interests(&interests);

        let mut candidates: HashMap<String, (Video, rank::Origin)> = HashMap::new();
        // 1. Uploads of the channels the user watches most: one unit per channel, shared.
        let channels = profile.top_channels(8);
        for video in self
            .channel_uploads(&channels, priority, &mut denied)
            .await?
        {
            candidates.insert(video.video_id.clone(), (video, rank::Origin::Channel));
        }
        // 2. Charts of the categories the user watches, and the region's chart.
        let mut categories: Vec<Option<String>> = Vec::new();
        let declared = interests.categories.iter().cloned();
        let cold = (events.is_empty() && interests.is_empty())
            .then(|| COLD_START_CATEGORIES.iter().map(|c| c.to_string()))
            .into_iter()
            .flatten();
        for category in profile
            .top_categories(3)
            .into_iter()
            .chain(declared)
            .chain(cold)
        {
            if !categories.contains(&Some(category.clone())) {
                categories.push(Some(category));
            }
        }
        categories.truncate(MAX_CATEGORY_CHARTS);
        categories.push(None);
        for category in categories {
            for video in self
                .sources
                .chart(&self.region, category.as_deref(), priority, &mut denied)
                .await?
            {
                let origin = if category.is_some() {
                    rank::Origin::CategoryChart
                } else {
                    rank::Origin::Chart
                };
                candidates
                    .entry(video.video_id.clone())
                    .or_insert((video, origin));
            }
        }
        // 4. Topic searches, the scarcest resource: only when the cheap sources fall short.
        let excluded: HashSet<String> = self
            .pool
            .served_ids(user)
            .await?
            .into_iter()
            .chain(watched_ids.iter().cloned())
            .collect();
        let fresh = |candidates: &HashMap<String, (Video, rank::Origin)>| {
            candidates
                .keys()
                .filter(|id| !excluded.contains(*id))
                .count()
        };
        // 3. Channels that users strong in the same topic terms watch: related, found
        //    without a search, and their uploads are shared sources like the user's own.
        let terms = profile.top_terms(PEER_TERMS);
        self.sources.note_term_channels(&terms, &channels).await?;
        if fresh(&candidates) < POOL_TARGET {
            let peers = self
                .sources
                .term_channels(&terms, PEER_CHANNELS, &channels)
                .await?;
            for video in self.channel_uploads(&peers, priority, &mut denied).await? {
                candidates
                    .entry(video.video_id.clone())
                    .or_insert((video, rank::Origin::Search));
            }
        }
        let mut queries: Vec<String> = interests.topics.iter().take(2).cloned().collect();
        if !events.is_empty() {
            for query in profile.topic_queries(3) {
                if !queries.contains(&query) {
                    queries.push(query);
                }
            }
        }
        queries.truncate(MAX_QUERIES);
        if fresh(&candidates) < POOL_TARGET && !queries.is_empty() {
            let mut found_channels: HashMap<String, usize> = HashMap::new();
            for query in queries {
                let ids = self.sources.search(&query, priority, &mut denied).await?;
                for video in self.sources.videos(&ids, priority, &mut denied).await? {
                    if !profile.channel_weight.contains_key(&video.channel_id) {
                        *found_channels.entry(video.channel_id.clone()).or_default() += 1;
                    }
                    candidates
                        .entry(video.video_id.clone())
                        .or_insert((video, rank::Origin::Search));
                }
            }
            // 5. Channels the searches surfaced: their uploads are related and cost one
            //    unit each, far cheaper than another search.
            let mut related: Vec<(String, usize)> = found_channels.into_iter().collect();
            related.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let related: Vec<String> = related
                .into_iter()
                .take(RELATED_CHANNELS)
                .map(|(c, _)| c)
                .collect();
            for video in self
                .channel_uploads(&related, priority, &mut denied)
                .await?
            {
                candidates
                    .entry(video.video_id.clone())
                    .or_insert((video, rank::Origin::Search));
            }
        }
        candidates.retain(|id, _| !excluded.contains(id));
        let candidate_count = candidates.len();
        let ranked = rank::rank(
            &profile,
            candidates.into_values().collect(),
            self.clock.now(),
            POOL_TARGET,
            TRENDING_SHARE,
        );

        if ranked.is_empty()
            && let Some(retry_after_ms) = denied.retry_after_ms
        {
            return Err(EngineError::Youtube(YoutubeError::Denied {
                retry_after_ms,
                limit: denied.limit.unwrap_or(crate::quota::Limit::DailyUnits),
            }));
        }
        self.pool
            .replace_built_from(user, &ranked, started_ms)
            .await?;
        Ok(WarmOutcome {
            pool_size: ranked.len(),
            candidates: candidate_count,
            history_len: events.len(),
            sources_denied: denied.count,
            retry_after_ms: denied.retry_after_ms,
            stale_served: denied.stale_served,
        })
    }
}
