//! A warm: the steps that build one user's pool ([`Engine::warm`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::SharedClock;
use crate::domain::UserId;
use crate::push;
use crate::quota::Priority;
use crate::store::{RedisConn, StoreError};
use crate::youtube::{YoutubeClient, YoutubeError};

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
    /// The user has a history but the catalog holds none of its videos (the unit that
    /// fetches them was refused): the pool is the cold start's charts, and the warm is
    /// worth repeating as soon as a unit is there, however full that pool is.
    pub history_unread: bool,
    /// Sources left unfetched because the request's time budget was spent: the pool was
    /// ranked from the rest.
    pub sources_out_of_time: usize,
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
    /// Where a page's ids become cards (the API's in-process item cache in front of the
    /// shared catalog).
    pub catalog: super::Catalog,
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
            catalog: super::Catalog::new(redis.clone(), super::catalog::DEFAULT_CACHE_BYTES),
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
    ) -> Result<(Vec<Arc<rank::Candidate>>, Vec<bool>), EngineError> {
        let playlists = self
            .sources
            .uploads_playlists(channels, priority, denied)
            .await?;
        let pushed =
            push::subscriptions::live_among(&self.redis, channels, self.clock.now_ms()).await?;
        let mut ids = Vec::new();
        for (channel, &pushed) in channels.iter().zip(&pushed) {
            if let Some(playlist) = playlists.get(channel) {
                ids.extend(
                    self.sources
                        .playlist_latest(playlist, pushed, priority, denied)
                        .await?,
                );
            }
        }
        Ok((self.sources.videos(&ids, priority, denied).await?, pushed))
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
    ///
    /// The steps go from the cheapest source to the scarcest, and each later one runs
    /// only while the candidates fall short of [`POOL_TARGET`]: see [`WarmPlan`].
    pub async fn warm_from(
        &self,
        user: &UserId,
        priority: Priority,
        started_ms: i64,
    ) -> Result<WarmOutcome, EngineError> {
        let mut denied = sources::Denials::default();
        let plan = self.read_context(user, priority, &mut denied).await?;
        let mut candidates = Candidates::default();
        self.add_own_channels(user, &plan, &mut candidates, priority, &mut denied)
            .await?;
        self.add_charts(&plan, &mut candidates, priority, &mut denied)
            .await?;
        let mut excluded = Excluded {
            ids: self.pool.shown_from_cut(user).await?,
            checked: HashSet::new(),
        };
        excluded.ids.extend(plan.watched_ids.iter().cloned());
        excluded.check(&self.pool, user, &candidates).await?;
        self.add_known_neighbours(user, &plan, &mut candidates, &mut excluded)
            .await?;
        self.add_peer_channels(&plan, &mut candidates, &excluded, priority, &mut denied)
            .await?;
        excluded.check(&self.pool, user, &candidates).await?;
        self.add_searches(&plan, &mut candidates, &excluded, priority, &mut denied)
            .await?;
        excluded.check(&self.pool, user, &candidates).await?;
        self.rank_and_store(user, plan, candidates, &excluded, denied, started_ms)
            .await
    }

    /// Step 1: the history and declared interests, and the details of the watched
    /// videos, into the ranking profile.
    async fn read_context(
        &self,
        user: &UserId,
        priority: Priority,
        denied: &mut sources::Denials,
    ) -> Result<WarmPlan, EngineError> {
        let history::UserContext { events, interests } = self
            .history_source
            .context(user, history::HISTORY_USED_FOR_RANKING, &self.history)
            .await?;
        let watched_ids: Vec<String> = events.iter().map(|e| e.video_id.clone()).collect();
        let watched = self.sources.videos(&watched_ids, priority, denied).await?;
        let mut profile = rank::Profile::from_history(&events, &watched);
        profile.add_interests(&interests);
        let terms: Vec<String> = profile.term_weight.keys().cloned().collect();
        profile.weigh_terms(&self.sources.term_idf(&terms).await?);
        let own_channels = profile.top_channels(OWN_CHANNELS);
        Ok(WarmPlan {
            events,
            interests,
            watched_ids,
            profile,
            own_channels,
        })
    }

    /// Step 2: uploads of the channels the user watches most: one unit per channel,
    /// shared by every user who watches it. The user is recorded as a watcher of those
    /// with a live push subscription, so their next upload warms this pool.
    async fn add_own_channels(
        &self,
        user: &UserId,
        plan: &WarmPlan,
        candidates: &mut Candidates,
        priority: Priority,
        denied: &mut sources::Denials,
    ) -> Result<(), EngineError> {
        let (videos, pushed) = self
            .channel_uploads(&plan.own_channels, priority, denied)
            .await?;
        for video in videos {
            candidates.offer(video, rank::Origin::Channel);
        }
        let watched: Vec<&str> = plan
            .own_channels
            .iter()
            .zip(&pushed)
            .filter(|(_, pushed)| **pushed)
            .map(|(c, _)| c.as_str())
            .collect();
        push::subscriptions::note_watchers(&self.redis, user, &watched, self.clock.now_ms())
            .await?;
        Ok(())
    }

    /// Step 3: charts of the categories the user watches and declared, the cold-start
    /// categories for a user whose tastes are unknown (no history whose videos the catalog
    /// holds, no interests), and the region's chart.
    async fn add_charts(
        &self,
        plan: &WarmPlan,
        candidates: &mut Candidates,
        priority: Priority,
        denied: &mut sources::Denials,
    ) -> Result<(), EngineError> {
        let mut categories: Vec<Option<String>> = Vec::new();
        let declared = plan.interests.categories.iter().cloned();
        // Nothing known of the user's tastes: no history, or one whose videos the catalog
        // does not hold yet (the unit that fetches them was refused).
        let cold = (plan.profile.is_empty() && plan.interests.is_empty())
            .then(|| COLD_START_CATEGORIES.iter().map(|c| c.to_string()))
            .into_iter()
            .flatten();
        for category in plan
            .profile
            .top_categories(TOP_CATEGORIES)
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
            let origin = if category.is_some() {
                rank::Origin::CategoryChart
            } else {
                rank::Origin::Chart
            };
            for video in self
                .sources
                .chart(&self.region, category.as_deref(), priority, denied)
                .await?
            {
                candidates.offer(video, origin);
            }
        }
        Ok(())
    }

    /// Step 4, free: before a unit goes to channels the user has not watched, what other
    /// users' warms already fetched of more of the user's own channels (past the top
    /// [`OWN_CHANNELS`], up to [`KNOWN_OWN_CHANNELS`]) and of the channels users strong in
    /// the same terms watch ([`KNOWN_PEER_CHANNELS`]): cached uploads lists and catalog
    /// videos, whatever their age, which no one pays for again.
    async fn add_known_neighbours(
        &self,
        user: &UserId,
        plan: &WarmPlan,
        candidates: &mut Candidates,
        excluded: &mut Excluded,
    ) -> Result<(), EngineError> {
        if candidates.fresh_alike(excluded, plan.chart_cap(), &plan.profile) >= POOL_TARGET {
            return Ok(());
        }
        let more_own: Vec<String> = plan
            .profile
            .top_channels(KNOWN_OWN_CHANNELS)
            .into_iter()
            .filter(|c| !plan.own_channels.contains(c))
            .collect();
        if self
            .offer_known(
                user,
                plan,
                &more_own,
                rank::Origin::Channel,
                candidates,
                excluded,
            )
            .await?
        {
            return Ok(());
        }
        let terms = plan.profile.top_terms(PEER_TERMS);
        let peers = self
            .sources
            .term_channels(&terms, KNOWN_PEER_CHANNELS, &plan.own_channels)
            .await?;
        self.offer_known(
            user,
            plan,
            &peers,
            rank::Origin::PeerChannel,
            candidates,
            excluded,
        )
        .await?;
        Ok(())
    }

    /// Offers the cached uploads of `channels`, a few channels at a time, until the warm
    /// has enough; returns whether it has.
    async fn offer_known(
        &self,
        user: &UserId,
        plan: &WarmPlan,
        channels: &[String],
        origin: rank::Origin,
        candidates: &mut Candidates,
        excluded: &mut Excluded,
    ) -> Result<bool, EngineError> {
        for chunk in channels.chunks(KNOWN_CHANNELS_PER_READ) {
            for video in self
                .sources
                .cached_uploads(chunk, KNOWN_PER_CHANNEL)
                .await?
            {
                candidates.offer(video, origin);
            }
            excluded.check(&self.pool, user, candidates).await?;
            if candidates.fresh_alike(excluded, plan.chart_cap(), &plan.profile) >= POOL_TARGET {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Step 5: channels that users strong in the same topic terms watch: related, found
    /// without a search, and their uploads are shared sources like the user's own. The
    /// user's channels are recorded under their terms whether or not this step runs.
    async fn add_peer_channels(
        &self,
        plan: &WarmPlan,
        candidates: &mut Candidates,
        excluded: &Excluded,
        priority: Priority,
        denied: &mut sources::Denials,
    ) -> Result<(), EngineError> {
        let terms = plan.profile.top_terms(PEER_TERMS);
        self.sources
            .note_term_channels(&terms, &plan.own_channels)
            .await?;
        if candidates.fresh(excluded, plan.chart_cap()) >= POOL_TARGET {
            return Ok(());
        }
        let peers = self
            .sources
            .term_channels(&terms, PEER_CHANNELS, &plan.own_channels)
            .await?;
        for video in self.channel_uploads(&peers, priority, denied).await?.0 {
            candidates.offer(video, rank::Origin::PeerChannel);
        }
        Ok(())
    }

    /// Step 6, the scarcest resource, only when the cheap sources fall short: topic
    /// searches (declared topics first, then the history's), and the uploads of the
    /// channels they surfaced, far cheaper than another search.
    async fn add_searches(
        &self,
        plan: &WarmPlan,
        candidates: &mut Candidates,
        excluded: &Excluded,
        priority: Priority,
        denied: &mut sources::Denials,
    ) -> Result<(), EngineError> {
        let mut queries: Vec<String> = plan
            .interests
            .topics
            .iter()
            .take(DECLARED_TOPIC_QUERIES)
            .cloned()
            .collect();
        if !plan.events.is_empty() {
            for query in plan.profile.topic_queries(HISTORY_TOPIC_QUERIES) {
                if !queries.contains(&query) {
                    queries.push(query);
                }
            }
        }
        queries.truncate(MAX_QUERIES);
        if candidates.fresh(excluded, plan.chart_cap()) >= POOL_TARGET || queries.is_empty() {
            return Ok(());
        }
        let mut found_channels: HashMap<String, usize> = HashMap::new();
        for query in queries {
            let ids = self.sources.search(&query, priority, denied).await?;
            for video in self.sources.videos(&ids, priority, denied).await? {
                if !plan.profile.channel_weight.contains_key(&video.channel_id) {
                    *found_channels.entry(video.channel_id.clone()).or_default() += 1;
                }
                candidates.offer(video, rank::Origin::Search);
            }
        }
        let mut related: Vec<(String, usize)> = found_channels.into_iter().collect();
        related.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let related: Vec<String> = related
            .into_iter()
            .take(RELATED_CHANNELS)
            .map(|(c, _)| c)
            .collect();
        for video in self.channel_uploads(&related, priority, denied).await?.0 {
            candidates.offer(video, rank::Origin::Search);
        }
        Ok(())
    }

    /// Step 7: drop served and watched videos, rank, and replace the pool. A warm that
    /// could rank nothing because quota was denied is a quota error (the caller defers).
    async fn rank_and_store(
        &self,
        user: &UserId,
        plan: WarmPlan,
        mut candidates: Candidates,
        excluded: &Excluded,
        denied: sources::Denials,
        started_ms: i64,
    ) -> Result<WarmOutcome, EngineError> {
        candidates.by_id.retain(|id, _| !excluded.ids.contains(id));
        let candidate_count = candidates.by_id.len();
        let ranked = rank::rank(
            &plan.profile,
            candidates.by_id.into_values().collect(),
            self.clock.now(),
            POOL_TARGET,
            TRENDING_SHARE,
        );
        // Out of time with nothing ranked: the pool the user has is better than none.
        if ranked.is_empty() && denied.out_of_time > 0 {
            return Err(EngineError::Youtube(YoutubeError::OutOfTime));
        }
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
            history_len: plan.events.len(),
            sources_denied: denied.count,
            retry_after_ms: denied.retry_after_ms,
            stale_served: denied.stale_served,
            history_unread: !plan.events.is_empty() && plan.profile.is_empty(),
            sources_out_of_time: denied.out_of_time,
        })
    }
}

/// What one warm works from: the user's history and interests and the profile built
/// from them.
struct WarmPlan {
    events: Vec<crate::domain::WatchEvent>,
    interests: crate::domain::Interests,
    watched_ids: Vec<String>,
    profile: rank::Profile,
    /// The channels the user watches most ([`OWN_CHANNELS`]).
    own_channels: Vec<String>,
}

impl WarmPlan {
    /// How many chart videos the ranking lets into the pool: [`TRENDING_SHARE`] of it,
    /// or all of it for a user it knows nothing about.
    fn chart_cap(&self) -> usize {
        if self.profile.is_empty() {
            POOL_TARGET
        } else {
            (POOL_TARGET as f64 * TRENDING_SHARE).ceil() as usize
        }
    }
}

/// A warm's candidates: each video once, with the source that offered it first (the
/// cheaper, more related source, as the steps run in that order).
#[derive(Default)]
struct Candidates {
    by_id: HashMap<String, (Arc<rank::Candidate>, rank::Origin)>,
}

impl Candidates {
    fn offer(&mut self, video: Arc<rank::Candidate>, origin: rank::Origin) {
        self.by_id
            .entry(video.video_id.clone())
            .or_insert((video, origin));
    }

    /// Candidates the user could still be served, counting chart videos only up to the
    /// share of the pool the ranking gives them (`chart_cap`): a warm rich in charts is
    /// still short of the related videos the pool is made of, and its cheap steps must
    /// run.
    fn fresh(&self, excluded: &Excluded, chart_cap: usize) -> usize {
        self.fresh_counting(excluded, chart_cap, |_| true)
    }

    /// [`Candidates::fresh`], counting a video of a channel the user does not watch only
    /// when it carries [`ALIKE_OVERLAP`] of the user's words: the free step reads on
    /// past strangers' videos that only fill a pool, since they rank last and are rarely
    /// related.
    fn fresh_alike(&self, excluded: &Excluded, chart_cap: usize, profile: &rank::Profile) -> usize {
        self.fresh_counting(excluded, chart_cap, |video| {
            profile.channel_weight.contains_key(&video.channel_id)
                || profile.term_overlap(video) >= ALIKE_OVERLAP
        })
    }

    /// Unexcluded candidates: charts up to `chart_cap`, the user's own channels' uploads,
    /// and the others that `counts` accepts.
    fn fresh_counting(
        &self,
        excluded: &Excluded,
        chart_cap: usize,
        counts: impl Fn(&rank::Candidate) -> bool,
    ) -> usize {
        let (mut charts, mut others) = (0, 0);
        for (id, (video, origin)) in &self.by_id {
            if excluded.ids.contains(id) {
                continue;
            }
            match origin {
                rank::Origin::Chart | rank::Origin::CategoryChart => charts += 1,
                rank::Origin::Channel => others += 1,
                _ if counts(video) => others += 1,
                _ => {}
            }
        }
        others + charts.min(chart_cap)
    }
}

/// What a warm must not offer again, learnt for its candidates only: the served set
/// holds up to [`SERVED_CAP`](super::pool::SERVED_CAP) marks, and reading them whole made
/// every warm cost more as the user's days went by.
struct Excluded {
    /// Candidates served or watched, and the last cut's ids shown since.
    ids: HashSet<String>,
    /// Candidates already asked about.
    checked: HashSet<String>,
}

impl Excluded {
    /// Asks the served set about the candidates not asked about yet (one round trip).
    async fn check(
        &mut self,
        pool: &PoolStore,
        user: &UserId,
        candidates: &Candidates,
    ) -> Result<(), StoreError> {
        let new: Vec<&str> = candidates
            .by_id
            .keys()
            .filter(|id| !self.checked.contains(*id) && !self.ids.contains(*id))
            .map(String::as_str)
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let served = pool.served_among(user, &new).await?;
        self.checked.extend(new.iter().map(|id| (*id).to_owned()));
        self.ids.extend(served);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: &str) -> Arc<rank::Candidate> {
        titled(id, "c", &format!("title {id}"))
    }

    fn titled(id: &str, channel: &str, title: &str) -> Arc<rank::Candidate> {
        Arc::new(rank::Candidate::new(crate::domain::Video {
            video_id: id.into(),
            title: title.into(),
            channel_id: channel.into(),
            channel_title: "c".into(),
            category_id: "10".into(),
            published_at: "2026-11-20T00:00:00Z".into(),
            thumbnail_url: String::new(),
            duration_secs: 60,
            view_count: 1,
            reason: String::new(),
            tags: Vec::new(),
            trending: false,
            url: String::new(),
        }))
    }

    /// Chart videos count towards a warm's fresh candidates only as far as the ranking
    /// lets them into the pool, so a warm rich in charts still runs its related steps.
    #[test]
    fn chart_videos_count_only_up_to_the_pools_chart_share() {
        let mut candidates = Candidates::default();
        for i in 0..200 {
            candidates.offer(candidate(&format!("chart{i}")), rank::Origin::CategoryChart);
        }
        for i in 0..30 {
            candidates.offer(candidate(&format!("own{i}")), rank::Origin::Channel);
        }
        let excluded = Excluded {
            ids: ["own0".to_owned()].into(),
            checked: HashSet::new(),
        };
        assert_eq!(candidates.fresh(&excluded, 24), 29 + 24);
        assert_eq!(candidates.fresh(&excluded, POOL_TARGET), 29 + 200);
    }

    /// A stranger's video counts toward the free step's enough only when it carries the
    /// user's words; the user's own channels count whatever their titles, wherever they
    /// were found.
    #[test]
    fn strangers_videos_count_toward_enough_only_when_alike() {
        let watched = [
            titled("w1", "mine", "sourdough bread starter"),
            titled("w2", "mine", "sourdough bread crumb"),
        ];
        let events: Vec<crate::domain::WatchEvent> = ["w1", "w2"]
            .iter()
            .map(|id| crate::domain::WatchEvent {
                video_id: (*id).into(),
                watched_at: None,
                watch_seconds: None,
            })
            .collect();
        let profile = rank::Profile::from_history(&events, &watched);
        let mut candidates = Candidates::default();
        // Strong words (sourdough, bread: 1.0 each): alike.
        candidates.offer(
            titled("a1", "stranger", "sourdough bread at home"),
            rank::Origin::PeerChannel,
        );
        // One weaker word only (starter, crumb: 0.5): not enough.
        candidates.offer(
            titled("n1", "stranger", "a car starter motor"),
            rank::Origin::PeerChannel,
        );
        candidates.offer(
            titled("n2", "stranger", "guitar tuning"),
            rank::Origin::Search,
        );
        // The user's channel, found by a peer read: counts without the words.
        candidates.offer(titled("o1", "mine", "vlog day"), rank::Origin::PeerChannel);
        candidates.offer(titled("o2", "other", "vlog day two"), rank::Origin::Channel);
        let excluded = Excluded {
            ids: HashSet::new(),
            checked: HashSet::new(),
        };
        assert_eq!(candidates.fresh(&excluded, 24), 5);
        assert_eq!(candidates.fresh_alike(&excluded, 24, &profile), 3);
    }
}
