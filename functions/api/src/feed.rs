//! The feed: a page from the user's pool (or, with none yet, from the region's chart),
//! a refill claimed when the pool is low, stale or missing, and the last good page while
//! Redis is away.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::{Body, Response};
use reco_core::UserId;
use reco_core::engine::aged_cache::AgedCache;
use reco_core::engine::catalog::write_cards_json;
use reco_core::engine::{CacheStatus, Card, Page, PageRequest};
use reco_core::messages::WarmRequest;
use reco_core::metrics::{self, Metric};
use reco_core::quota::{self, Priority, QuotaLevel};
use reco_core::youtube;

use crate::{Api, ApiError, FeedParams, REDIS_BUDGET, text_response};

/// How long a feed miss may wait for the region's chart when no one has fetched it yet.
pub const COLD_CHART_BUDGET: Duration = Duration::from_millis(1500);
/// How long a force_refresh may spend regenerating before serving what there is.
pub const FORCE_REFRESH_BUDGET: Duration = Duration::from_secs(2);
/// How long before [`FORCE_REFRESH_BUDGET`] ends a force_refresh stops starting YouTube
/// calls: a call's time on the wire, then ranking and writing the pool.
pub const FORCE_REFRESH_LAST_CALL: Duration = Duration::from_millis(600);
/// One force_refresh per user per this long.
pub const FORCE_REFRESH_COOLDOWN: Duration = Duration::from_secs(30);

/// A bounded in-process cache of the last page served per user. A warm Lambda instance
/// keeps it across invocations, so a Redis outage degrades feeds instead of failing them.
///
/// Bounded by bytes, not entries: a page is 1 to 50 videos of about a kilobyte each, so an
/// entry count says nothing about the memory a 128–256 MB function has left.
#[derive(Clone)]
pub struct LastGoodPages(AgedCache<Arc<Vec<Card>>>);

/// The share of the function's memory the last-good pages may use.
pub const LAST_GOOD_MEMORY_SHARE: u64 = 8;
/// The function's memory when Lambda does not say (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
pub const DEFAULT_FUNCTION_MEMORY_MB: u64 = 128;
/// How long a last good page may be served while Redis is away.
pub const LAST_GOOD_TTL: Duration = Duration::from_secs(3600);
/// About what one page weighs (20 cards), to size the cache's table up front.
const TYPICAL_PAGE_BYTES: u64 = 24 * 1024;

impl Default for LastGoodPages {
    fn default() -> Self {
        Self::for_function_memory_mb(DEFAULT_FUNCTION_MEMORY_MB)
    }
}

impl LastGoodPages {
    /// At most 1/[`LAST_GOOD_MEMORY_SHARE`] of a function of `memory_mb`.
    pub fn for_function_memory_mb(memory_mb: u64) -> Self {
        Self::with_max_bytes(memory_mb.max(1) * 1024 * 1024 / LAST_GOOD_MEMORY_SHARE)
    }

    /// Eviction within the byte bound is quick_cache's (CLOCK-Pro, not LRU): the page of
    /// a user served just now stays (`last_good_pages_are_bounded_by_bytes_not_entries`).
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        Self(AgedCache::new(max_bytes, TYPICAL_PAGE_BYTES, LAST_GOOD_TTL))
    }

    pub fn insert(&self, user: &str, page: Arc<Vec<Card>>) {
        let bytes = page.iter().map(Card::approximate_bytes).sum::<usize>() as u64;
        self.0.insert(user.to_owned(), page, bytes, Instant::now());
    }

    pub fn get(&self, user: &str) -> Option<Arc<Vec<Card>>> {
        self.0.get(user, Instant::now())
    }

    /// The bytes held now.
    pub fn bytes(&self) -> u64 {
        self.0.bytes()
    }

    pub fn max_bytes(&self) -> u64 {
        self.0.max_bytes()
    }
}

/// The feed's 200 body, serialised straight to text. It is the hot path of a cache hit:
/// going through `serde_json::Value` (the `json!` macro) built a map with a copy of every
/// key and string of the 20 videos only to write it out again. The bytes are the same
/// as that `Value`'s: its maps are sorted by key, so the fields here and in
/// [`reco_core::Video`] are declared in key order (`feed_body_matches_the_value_form`
/// checks it).
#[derive(serde::Serialize)]
struct FeedBody<'a> {
    count: usize,
    meta: FeedMeta<'a>,
    success: bool,
    user_id: &'a str,
    /// Written after the rest by [`FeedBody::to_json`], from the cards' JSON.
    #[serde(skip)]
    videos: &'a [Card],
}

impl<'a> FeedBody<'a> {
    /// The body as text: the fields above serialised, then the cards' JSON spliced in as
    /// `videos`, the last key in order, so the bytes are those of serialising the videos.
    fn to_json(&self) -> String {
        let videos_len: usize = self.videos.iter().map(Card::json_len_hint).sum();
        let mut bytes = Vec::with_capacity(512 + videos_len);
        serde_json::to_writer(&mut bytes, self).expect("the feed body serialises");
        bytes.pop();
        bytes.extend_from_slice(b",\"videos\":");
        write_cards_json(&mut bytes, self.videos);
        bytes.push(b'}');
        String::from_utf8(bytes).expect("serde_json and the cards write UTF-8")
    }

    /// The last good page, served while the store is unavailable: `stale`, marked
    /// `degraded`, nothing queued.
    fn last_good(
        user_id: &'a str,
        videos: &'a [Card],
        request_id: &'a str,
        served_at: String,
    ) -> Self {
        FeedBody {
            count: videos.len(),
            meta: FeedMeta {
                cache_status: CacheStatus::Stale,
                degraded: Some("store_unavailable"),
                generated_at: None,
                pool_remaining: 0,
                quota_state: QuotaLevel::Ok,
                refresh_queued: false,
                request_id,
                served_at,
            },
            success: true,
            user_id,
            videos,
        }
    }
}

#[derive(serde::Serialize)]
struct FeedMeta<'a> {
    cache_status: CacheStatus,
    /// Only on the last good page served while the store is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    degraded: Option<&'static str>,
    generated_at: Option<String>,
    pool_remaining: usize,
    quota_state: QuotaLevel,
    refresh_queued: bool,
    request_id: &'a str,
    served_at: String,
}

impl Api {
    pub(crate) async fn feed(
        &self,
        user: &UserId,
        params: &FeedParams,
        request_id: &str,
    ) -> Result<(Response<Body>, Option<CacheStatus>), ApiError> {
        let mut quota_state = QuotaLevel::Ok;
        let mut refreshed = false;
        let mut budget_spent = false;
        if params.force_refresh {
            let allowed = self.with_redis(self.claim_refresh_cooldown(user)).await?;
            if !allowed {
                return Err(ApiError::new(
                    429,
                    "too_many_requests",
                    "force_refresh is limited to one per 30 seconds per user",
                )
                .retry_after(FORCE_REFRESH_COOLDOWN.as_secs()));
            }
            // A user who has spent their daily budget of interactive quota gets their pool
            // as it is: one account must not spend everyone's day.
            budget_spent = matches!(
                tokio::time::timeout(REDIS_BUDGET, self.guard.user_budget_spent(user)).await,
                Ok(Ok(true))
            );
            let warm = async {
                if budget_spent {
                    return None;
                }
                let last_call_ms = self.guard.clock().now_ms()
                    + (FORCE_REFRESH_BUDGET - FORCE_REFRESH_LAST_CALL).as_millis() as i64;
                tokio::time::timeout(
                    FORCE_REFRESH_BUDGET,
                    quota::on_behalf_of(
                        user.clone(),
                        youtube::starting_calls_until(
                            last_call_ms,
                            self.engine.warm(user, Priority::Interactive),
                        ),
                    ),
                )
                .await
                .ok()
            };
            match warm.await {
                None if budget_spent => quota_state = QuotaLevel::Limited,
                Some(Ok(outcome)) => {
                    refreshed = true;
                    if outcome.sources_out_of_time > 0 {
                        tracing::info!(
                            sources = outcome.sources_out_of_time,
                            "force_refresh ranked its pool without the sources it had no time to fetch"
                        );
                    }
                    if outcome.sources_denied > 0 {
                        quota_state = QuotaLevel::Limited;
                    }
                }
                Some(Err(e)) if e.quota_retry_after_ms().is_some() => {
                    quota_state = QuotaLevel::Exhausted
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "force_refresh failed; serving the existing pool")
                }
                None => tracing::warn!(
                    "force_refresh ran out of its time budget; serving the existing pool"
                ),
            }
            if let Ok(Ok(state)) = tokio::time::timeout(REDIS_BUDGET, self.guard.state()).await {
                quota_state = quota_state.max_level(state.level());
            }
        }
        let request = PageRequest {
            max_results: params.max_results,
            category_id: params.category_id.map(str::to_owned),
            include_trending: params.include_trending,
        };
        let mut page = match self
            .with_redis(self.engine.take_cards(user, &request))
            .await
        {
            Ok(page) => page,
            Err(e) => return self.degraded(user, params, request_id, e),
        };
        let cache_status = CacheStatus::of(&page, refreshed);
        // No pool yet, or one this user has read to the end before its refill (queued
        // below) landed: the cached uploads of the user's channels, then the region's
        // chart from the shared cache, rather than an empty page.
        let unpooled = cache_status == CacheStatus::Miss || page.videos.is_empty();
        let videos = if unpooled {
            // The region's chart from the shared cache, at once (fetched within a
            // short budget if no one has yet).
            let chart = tokio::time::timeout(
                COLD_CHART_BUDGET,
                self.engine
                    .sources
                    .region_chart(&self.engine.region, Priority::Interactive),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
            // Chosen and marked served in one script: two first requests at once
            // never serve the same video, and a store failure is a 503, not a page
            // that repeats.
            let serve = async {
                let candidates = self.engine.unpooled_candidates(user, chart).await?;
                self.engine
                    .pool
                    .serve_unpooled(user, candidates, &request)
                    .await
            };
            match self.with_redis(serve).await {
                Ok(videos) => videos.into_iter().map(Card::from_video).collect(),
                Err(e) => return self.degraded(user, params, request_id, e),
            }
        } else {
            // The page's videos move out: nothing below reads them from `page`.
            std::mem::take(&mut page.videos)
        };
        if budget_spent && videos.is_empty() {
            let now = self.engine.clock.now();
            let to_midnight = reco_core::clock::next_pacific_midnight(now).as_millisecond()
                - now.as_millisecond();
            return Err(ApiError::new(
                429,
                "too_many_requests",
                "force_refresh: this user's YouTube budget for today is spent and there is nothing left to serve; retry without force_refresh, or after Pacific midnight",
            )
            .retry_after((to_midnight.max(1000) / 1000) as u64));
        }
        let refresh_queued = self.maybe_enqueue(user, &page, cache_status).await;
        // One allocation shared by the response and the last-good cache, not a copy each.
        let videos = Arc::new(videos);
        if !videos.is_empty() {
            self.last_good.insert(user.as_str(), videos.clone());
        }
        let now = self.engine.clock.now();
        let body = FeedBody {
            count: videos.len(),
            meta: FeedMeta {
                cache_status,
                degraded: None,
                generated_at: page
                    .generated_at_ms
                    .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                    .map(|t| t.to_string()),
                pool_remaining: page.pool_remaining,
                quota_state,
                refresh_queued,
                request_id,
                served_at: now.to_string(),
            },
            success: true,
            user_id: user.as_str(),
            videos: &videos,
        };
        Ok((text_response(200, body.to_json()), Some(cache_status)))
    }

    /// Redis is unreachable: the user's last good page if this instance has one, else the
    /// 503 that `error` carries.
    fn degraded(
        &self,
        user: &UserId,
        params: &FeedParams,
        request_id: &str,
        error: ApiError,
    ) -> Result<(Response<Body>, Option<CacheStatus>), ApiError> {
        let Some(videos) = self.last_good.get(user.as_str()) else {
            return Err(error);
        };
        let videos = &videos[..videos.len().min(params.max_results)];
        let body = FeedBody::last_good(
            user.as_str(),
            videos,
            request_id,
            self.engine.clock.now().to_string(),
        );
        Ok((text_response(200, body.to_json()), Some(CacheStatus::Stale)))
    }

    async fn maybe_enqueue(
        &self,
        user: &UserId,
        page: &Page<Card>,
        cache_status: CacheStatus,
    ) -> bool {
        if !page.should_enqueue_warm {
            return false;
        }
        let Some(queue) = &self.queue else {
            return false;
        };
        let reason = cache_status.refill_reason(page);
        match queue
            .send(
                &WarmRequest::new(user.clone(), reason, self.engine.clock.now()),
                Duration::ZERO,
            )
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::error!(error = %e, "could not enqueue a refill");
                metrics::emit(&[(Metric::WarmEnqueueFailed, 1.0)]);
                let _ =
                    tokio::time::timeout(REDIS_BUDGET, self.engine.pool.release_warm_claim(user))
                        .await;
                false
            }
        }
    }

    async fn claim_refresh_cooldown(&self, user: &UserId) -> Result<bool, redis::RedisError> {
        let mut conn = self.redis.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(reco_core::store::keys::refresh_cooldown(user))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(FORCE_REFRESH_COOLDOWN.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }
}

trait MaxLevel {
    fn max_level(self, other: QuotaLevel) -> QuotaLevel;
}

impl MaxLevel for QuotaLevel {
    fn max_level(self, other: QuotaLevel) -> QuotaLevel {
        let rank = |l: QuotaLevel| match l {
            QuotaLevel::Ok => 0,
            QuotaLevel::Limited => 1,
            QuotaLevel::Exhausted => 2,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn video(i: u32) -> reco_core::Video {
        reco_core::Video {
            video_id: format!("vid{i:08}"),
            title: format!("Title \"{i}\" <b>&</b> \u{e9}\u{1f600}\n"),
            channel_id: "UCabc".into(),
            channel_title: "Chan\\nel".into(),
            category_id: "20".into(),
            published_at: "2026-11-01T10:00:00Z".into(),
            thumbnail_url: "https://i.ytimg.com/vi/x/mqdefault.jpg".into(),
            duration_secs: 61 + i,
            view_count: u64::MAX - u64::from(i),
            tags: vec!["a".into(), "b\tc".into()],
            reason: "from a channel you watch".into(),
            trending: i.is_multiple_of(2),
            url: format!("https://www.youtube.com/watch?v=vid{i:08}"),
        }
    }

    /// The typed feed body, the cards' JSON spliced in, writes exactly the bytes the
    /// `json!` form did (titles and reasons with quotes, escapes and non-ASCII included).
    #[test]
    fn feed_body_matches_the_value_form() {
        let videos: Vec<_> = (0..3).map(video).collect();
        let cards: Vec<Card> = videos.iter().cloned().map(Card::from_video).collect();
        for generated_at in [None, Some("2026-11-26T10:00:00Z".to_owned())] {
            let body = FeedBody {
                count: videos.len(),
                meta: FeedMeta {
                    cache_status: CacheStatus::Hit,
                    degraded: None,
                    generated_at: generated_at.clone(),
                    pool_remaining: 80,
                    quota_state: QuotaLevel::Limited,
                    refresh_queued: true,
                    request_id: "req-1",
                    served_at: "2026-11-26T10:01:00Z".into(),
                },
                success: true,
                user_id: "user-1",
                videos: &cards,
            };
            let value = json!({
                "success": true,
                "user_id": "user-1",
                "count": videos.len(),
                "videos": videos,
                "meta": {
                    "cache_status": "hit",
                    "generated_at": generated_at,
                    "served_at": "2026-11-26T10:01:00Z",
                    "pool_remaining": 80,
                    "refresh_queued": true,
                    "quota_state": QuotaLevel::Limited,
                    "request_id": "req-1",
                }
            });
            assert_eq!(body.to_json(), value.to_string());
        }
    }

    /// The last good page, served while the store is away, is the same typed body with
    /// `degraded` set: the bytes the `json!` form it replaced wrote.
    #[test]
    fn the_degraded_body_matches_the_value_form() {
        let videos: Vec<_> = (0..2).map(video).collect();
        let cards: Vec<Card> = videos.iter().cloned().map(Card::from_video).collect();
        let body = FeedBody::last_good("user-2", &cards, "req-2", "2026-11-26T10:02:00Z".into());
        let value = json!({
            "success": true,
            "user_id": "user-2",
            "count": videos.len(),
            "videos": videos,
            "meta": {
                "cache_status": "stale",
                "degraded": "store_unavailable",
                "generated_at": null,
                "served_at": "2026-11-26T10:02:00Z",
                "pool_remaining": 0,
                "refresh_queued": false,
                "quota_state": QuotaLevel::Ok,
                "request_id": "req-2",
            }
        });
        assert_eq!(body.to_json(), value.to_string());
    }

    /// A video of about a kilobyte, as real ones are (long titles, tags, URLs).
    fn kilobyte_video(i: u32) -> reco_core::Video {
        let mut v = video(i);
        v.title = "t".repeat(300);
        v.tags = (0..20).map(|t| format!("tag-{t}-{i}")).collect();
        v.reason = "r".repeat(100);
        v
    }

    /// Reliability defect 6: the last-good pages stay within their byte budget however
    /// many users a warm instance serves (at 10,000 entries of 50 such videos the old
    /// entry-count bound allowed about 500 MB in a 256 MB function).
    #[test]
    fn last_good_pages_are_bounded_by_bytes_not_entries() {
        let pages = LastGoodPages::for_function_memory_mb(256);
        assert_eq!(pages.max_bytes(), 32 * 1024 * 1024);
        let page: Arc<Vec<_>> =
            Arc::new((0..50).map(kilobyte_video).map(Card::from_video).collect());
        let page_bytes: usize = page.iter().map(Card::approximate_bytes).sum();
        assert!(page_bytes > 50 * 1000, "a page weighs {page_bytes} bytes");
        for user in 0..10_000 {
            pages.insert(&format!("user-{user}"), page.clone());
        }
        let held = pages.bytes();
        let entries = pages.0.len();
        println!(
            "10,000 pages of 50 videos offered: {entries} kept, {held} bytes of {}",
            pages.max_bytes()
        );
        assert!(held <= pages.max_bytes(), "{held} bytes held");
        assert!(held > pages.max_bytes() / 2, "the budget is used: {held}");
        assert!(entries < 10_000 && entries > 100, "{entries} entries");
        // The last user's page is there: a recent page survives.
        assert!(pages.get("user-9999").is_some());
    }
}
