//! The HTTP API (ARCHITECTURE.md § A feed request): routing, authorization, parameters
//! and the response shape. The feed itself comes from the core engine; this crate maps it
//! to HTTP.

pub mod cors;
pub mod error;
pub mod event;
pub mod params;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::domain::{Interests, WatchEvent, is_video_id};
use reco_core::engine::{Engine, PageRequest, PageResult};
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::metrics::{self, Metric};
use reco_core::queue::WarmQueue;
use reco_core::quota::{self, Priority, QuotaGuard, QuotaLevel};
use reco_core::store::RedisConn;
use serde_json::{Value, json};

pub use cors::Cors;
pub use error::ApiError;
pub use params::FeedParams;

/// Bodies larger than this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_HISTORY_EVENTS: usize = 100;
/// How long a feed miss may wait for the region's chart when no one has fetched it yet.
pub const COLD_CHART_BUDGET: Duration = Duration::from_millis(1500);
/// How long a force_refresh may spend regenerating before serving what there is.
pub const FORCE_REFRESH_BUDGET: Duration = Duration::from_secs(2);
/// One force_refresh per user per this long.
pub const FORCE_REFRESH_COOLDOWN: Duration = Duration::from_secs(30);
/// Redis trouble is answered within this bound (503), never by hanging.
pub const REDIS_BUDGET: Duration = Duration::from_millis(800);

pub struct Api {
    pub engine: Engine,
    pub guard: QuotaGuard,
    pub redis: RedisConn,
    pub queue: Option<WarmQueue>,
    pub auth: AuthMode,
    /// Each user's last good page, served (marked degraded) while Redis is unreachable.
    pub last_good: LastGoodPages,
    /// The origins whose pages may call the API from a browser (`CORS_ALLOWED_ORIGINS`).
    pub cors: Cors,
}

/// A bounded in-process cache of the last page served per user. A warm Lambda instance
/// keeps it across invocations, so a Redis outage degrades feeds instead of failing them.
///
/// Bounded by bytes, not entries: a page is 1 to 50 videos of about a kilobyte each, so an
/// entry count says nothing about the memory a 128–256 MB function has left.
#[derive(Clone)]
pub struct LastGoodPages(moka::sync::Cache<String, Arc<Vec<reco_core::Video>>>);

/// The share of the function's memory the last-good pages may use.
pub const LAST_GOOD_MEMORY_SHARE: u64 = 8;
/// The function's memory when Lambda does not say (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
pub const DEFAULT_FUNCTION_MEMORY_MB: u64 = 128;

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

    pub fn with_max_bytes(max_bytes: u64) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|user: &String, page: &Arc<Vec<reco_core::Video>>| {
                    let bytes = user.len() + page.iter().map(video_bytes).sum::<usize>();
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .time_to_live(Duration::from_secs(3600))
                // The page to keep is the one of a user served lately, not the most often.
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build(),
        )
    }

    pub fn insert(&self, user: &str, page: Arc<Vec<reco_core::Video>>) {
        self.0.insert(user.to_owned(), page);
    }

    pub fn get(&self, user: &str) -> Option<Arc<Vec<reco_core::Video>>> {
        self.0.get(user)
    }

    /// The bytes held now, after the cache's pending evictions have run.
    pub fn bytes(&self) -> u64 {
        self.0.run_pending_tasks();
        self.0.weighted_size()
    }

    pub fn max_bytes(&self) -> u64 {
        self.0.policy().max_capacity().unwrap_or(u64::MAX)
    }
}

/// What a video costs in memory: its strings' heap bytes and the struct itself.
fn video_bytes(v: &reco_core::Video) -> usize {
    std::mem::size_of::<reco_core::Video>()
        + v.category_id.len()
        + v.channel_id.len()
        + v.channel_title.len()
        + v.published_at.len()
        + v.reason.len()
        + v.tags.iter().map(|t| t.len() + 24).sum::<usize>()
        + v.thumbnail_url.len()
        + v.title.len()
        + v.url.len()
        + v.video_id.len()
}

enum Route {
    Health,
    Quota,
    Feed(String),
    History(String),
}

fn route(path: &str) -> Option<Route> {
    // API Gateway may prefix a stage; function URLs and `cargo lambda watch` add their own.
    let start = path.find("/api/v1/")?;
    let rest = &path[start + "/api/v1/".len()..];
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest == "health" {
        return Some(Route::Health);
    }
    if rest == "quota" {
        return Some(Route::Quota);
    }
    if let Some(user) = rest.strip_prefix("video/recommendations/") {
        return (!user.contains('/')).then(|| Route::Feed(percent_decode(user)));
    }
    if let Some(user) = rest.strip_prefix("video/history/") {
        return (!user.contains('/')).then(|| Route::History(percent_decode(user)));
    }
    None
}

fn percent_decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn json_response(status: u16, body: Value) -> Response<Body> {
    text_response(status, body.to_string())
}

fn text_response(status: u16, json_text: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(json_text))
        .expect("static response parts are valid")
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
    videos: &'a [reco_core::Video],
}

#[derive(serde::Serialize)]
struct FeedMeta<'a> {
    cache_status: &'a str,
    generated_at: Option<String>,
    pool_remaining: usize,
    quota_state: QuotaLevel,
    refresh_queued: bool,
    request_id: &'a str,
    served_at: String,
}

fn request_id(req: &Request) -> String {
    req.lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "local".to_owned())
}

fn jwt_subject(req: &Request) -> Option<String> {
    match req.request_context_ref()? {
        RequestContext::ApiGatewayV2(ctx) => ctx
            .authorizer
            .as_ref()?
            .jwt
            .as_ref()?
            .claims
            .get("sub")
            .cloned(),
        _ => None,
    }
}

fn body_bytes(req: &Request) -> &[u8] {
    match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    }
}

/// Reads a JSON body: 413 over the limit, 415 when it is not declared JSON, 400 broken.
fn json_body(req: &Request) -> Result<Value, ApiError> {
    let bytes = body_bytes(req);
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            "body_too_large",
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            "the body must be application/json",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("the body is not valid JSON: {e}")))
}

impl Api {
    /// The Lambda handler: always a response, never an error or a panic path for input.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let started = Instant::now();
        let request_id = request_id(&req);
        let (mut response, cache_status) = match self.dispatch(&req, &request_id).await {
            Ok((response, cache_status)) => (response, cache_status),
            Err(e) => (e.into_response(&request_id), None),
        };
        self.cors.decorate(&req, &mut response);
        tracing::info!(
            request_id,
            method = %req.method(),
            status = response.status().as_u16(),
            cache_status = cache_status.unwrap_or("-"),
            latency_us = started.elapsed().as_micros() as u64,
            "request"
        );
        let mut values = vec![(
            Metric::ApiLatencyMs,
            started.elapsed().as_secs_f64() * 1000.0,
        )];
        match cache_status {
            Some("hit" | "stale") => values.push((Metric::CacheHit, 1.0)),
            Some("miss" | "refreshed") => values.push((Metric::CacheMiss, 1.0)),
            _ => {}
        }
        metrics::emit(&values);
        response
    }

    async fn dispatch(
        &self,
        req: &Request,
        request_id: &str,
    ) -> Result<(Response<Body>, Option<&'static str>), ApiError> {
        if let Some(part) = event::UnreadablePart::from_marker(req.headers()) {
            return Err(ApiError::invalid(
                part.field(),
                format!("the request's {} could not be read", part.field()),
            ));
        }
        let path = req.uri().path().to_owned();
        let route = route(&path).ok_or_else(|| {
            ApiError::new(
                404,
                "not_found",
                format!("no route for {}", truncate(&path, 100)),
            )
        })?;
        if Cors::is_preflight(req) {
            let methods = match route {
                Route::Health | Route::Quota => "GET",
                Route::Feed(_) => "GET, POST",
                Route::History(_) => "POST",
            };
            return Ok((self.cors.preflight(req, methods)?, None));
        }
        let method = req.method().as_str();
        match (route, method) {
            (Route::Health, "GET") => Ok((self.health(request_id).await, None)),
            (Route::Quota, "GET") => {
                if self.auth == AuthMode::Jwt && jwt_subject(req).is_none() {
                    return Err(ApiError::new(
                        401,
                        "unauthorized",
                        "a signed-in user is required (no JWT claims on the request)",
                    ));
                }
                Ok((self.quota(request_id).await?, None))
            }
            (Route::Feed(user), "GET") => {
                let user = self.authorize(req, &user)?;
                let query = req.query_string_parameters();
                let params = FeedParams::from_query(query.iter())?;
                self.feed(&user, &params, request_id).await
            }
            (Route::Feed(user), "POST") => {
                let user = self.authorize(req, &user)?;
                let params = FeedParams::from_json(&json_body(req)?)?;
                self.feed(&user, &params, request_id).await
            }
            (Route::History(user), "POST") => {
                let user = self.authorize(req, &user)?;
                let body = json_body(req)?;
                let interests = parse_interests(&body)?;
                let events = if interests.is_some() && body.get("events").is_none() {
                    Vec::new()
                } else {
                    parse_history(&body)?
                };
                Ok((
                    self.record_history(&user, &events, interests.as_ref(), request_id)
                        .await?,
                    None,
                ))
            }
            (Route::Health | Route::Quota, _) => Err(method_not_allowed("GET")),
            (Route::Feed(_), _) => Err(method_not_allowed("GET, POST")),
            (Route::History(_), _) => Err(method_not_allowed("POST")),
        }
    }

    fn authorize(&self, req: &Request, path_user: &str) -> Result<UserId, ApiError> {
        let subject = match self.auth {
            AuthMode::None => None,
            AuthMode::Jwt => Some(jwt_subject(req).ok_or_else(|| {
                ApiError::new(
                    401,
                    "unauthorized",
                    "a signed-in user is required (no JWT claims on the request)",
                )
            })?),
        };
        let user =
            UserId::parse(path_user).map_err(|e| ApiError::invalid("user_id", e.to_string()))?;
        if let Some(sub) = subject
            && sub != user.as_str()
        {
            return Err(ApiError::new(
                403,
                "forbidden",
                "a user may read and write only their own feed",
            ));
        }
        Ok(user)
    }

    async fn health(&self, request_id: &str) -> Response<Body> {
        match tokio::time::timeout(REDIS_BUDGET, self.redis.ping()).await {
            Ok(Ok(())) => json_response(
                200,
                json!({"success": true, "status": "ok", "redis": "ok", "request_id": request_id}),
            ),
            _ => ApiError::new(503, "unavailable", "redis is not answering")
                .retry_after(2)
                .into_response(request_id),
        }
    }

    /// Today's YouTube quota as the guard counts it (the Pacific day, shared by every
    /// user): read-only, for a page's meter. Nothing here is per user or secret.
    async fn quota(&self, request_id: &str) -> Result<Response<Body>, ApiError> {
        let state = self.with_redis(self.guard.state()).await?;
        let bucket = |name: quota::Bucket| {
            state.bucket(name).map_or(
                Value::Null,
                |b| json!({"used": b.used, "limit": b.limit, "left": b.left}),
            )
        };
        let resets_at = reco_core::clock::next_pacific_midnight(self.engine.clock.now());
        Ok(json_response(
            200,
            json!({
                "success": true,
                "day": state.day,
                "resets_at": resets_at.to_string(),
                "quota_state": state.level(),
                "units": bucket(quota::Bucket::Units),
                "searches": bucket(quota::Bucket::Search),
                "request_id": request_id,
            }),
        ))
    }

    async fn with_redis<T, E: std::fmt::Display>(
        &self,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(REDIS_BUDGET, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "redis error");
                Err(ApiError::new(
                    503,
                    "unavailable",
                    "the recommendation store is unavailable; retry shortly",
                )
                .retry_after(2))
            }
            Err(_) => Err(ApiError::new(
                503,
                "unavailable",
                "the recommendation store did not answer in time",
            )
            .retry_after(2)),
        }
    }

    async fn feed(
        &self,
        user: &UserId,
        params: &FeedParams,
        request_id: &str,
    ) -> Result<(Response<Body>, Option<&'static str>), ApiError> {
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
                tokio::time::timeout(
                    FORCE_REFRESH_BUDGET,
                    quota::on_behalf_of(
                        user.clone(),
                        self.engine.warm(user, Priority::Interactive),
                    ),
                )
                .await
                .ok()
            };
            match warm.await {
                None if budget_spent => quota_state = QuotaLevel::Limited,
                Some(Ok(outcome)) => {
                    refreshed = true;
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
            .with_redis(self.engine.pool.take_page(user, &request))
            .await
        {
            Ok(page) => page,
            Err(e) => return self.degraded(user, params, request_id, e),
        };
        let (videos, cache_status) = match &page.generated_at_ms {
            None => {
                // No pool yet: the region's chart from the shared cache, at once (fetched
                // within a short budget if no one has yet).
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
                let videos = match self
                    .with_redis(self.engine.pool.serve_unpooled(user, chart, &request))
                    .await
                {
                    Ok(videos) => videos,
                    Err(e) => return self.degraded(user, params, request_id, e),
                };
                (videos, "miss")
            }
            // The page's videos move out: nothing below reads them from `page`.
            Some(_) if refreshed => (std::mem::take(&mut page.videos), "refreshed"),
            Some(_)
                if page.stale || page.pool_remaining < reco_core::engine::pool::LOW_WATERMARK =>
            {
                (std::mem::take(&mut page.videos), "stale")
            }
            Some(_) => (std::mem::take(&mut page.videos), "hit"),
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
        let text = serde_json::to_string(&body).expect("the feed body serialises");
        Ok((text_response(200, text), Some(cache_status)))
    }

    /// Redis is unreachable: the user's last good page if this instance has one, else the
    /// 503 that `error` carries.
    fn degraded(
        &self,
        user: &UserId,
        params: &FeedParams,
        request_id: &str,
        error: ApiError,
    ) -> Result<(Response<Body>, Option<&'static str>), ApiError> {
        let Some(videos) = self.last_good.get(user.as_str()) else {
            return Err(error);
        };
        let videos: Vec<_> = videos.iter().take(params.max_results).cloned().collect();
        let body = json!({
            "success": true,
            "user_id": user.as_str(),
            "count": videos.len(),
            "videos": videos,
            "meta": {
                "cache_status": "stale",
                "degraded": "store_unavailable",
                "generated_at": null,
                "served_at": self.engine.clock.now().to_string(),
                "pool_remaining": 0,
                "refresh_queued": false,
                "quota_state": QuotaLevel::Ok,
                "request_id": request_id,
            }
        });
        Ok((json_response(200, body), Some("stale")))
    }

    async fn maybe_enqueue(&self, user: &UserId, page: &PageResult, cache_status: &str) -> bool {
        if !page.should_enqueue_warm {
            return false;
        }
        let Some(queue) = &self.queue else {
            return false;
        };
        let reason = match (cache_status, page.stale) {
            ("miss", _) => WarmReason::PoolMissing,
            (_, true) => WarmReason::PoolStale,
            _ => WarmReason::PoolLow,
        };
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

    async fn record_history(
        &self,
        user: &UserId,
        events: &[WatchEvent],
        interests: Option<&Interests>,
        request_id: &str,
    ) -> Result<Response<Body>, ApiError> {
        let now_ms = self.engine.clock.now_ms();
        self.with_redis(self.engine.history.record(user, events, now_ms))
            .await?;
        if let Some(interests) = interests {
            self.with_redis(self.engine.history.record_interests(user, interests))
                .await?;
        }
        let mut body = json!({"success": true, "accepted": events.len(), "request_id": request_id});
        if let Some(interests) = interests {
            body["interests"] = json!(interests);
        }
        Ok(json_response(202, body))
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

fn method_not_allowed(allowed: &'static str) -> ApiError {
    ApiError::new(
        405,
        "method_not_allowed",
        format!("this route accepts {allowed}"),
    )
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The optional `"interests": {"topics": [..], "categories": [..]}` of a history body;
/// it replaces what the user declared before (empty lists clear it).
pub fn parse_interests(body: &Value) -> Result<Option<Interests>, ApiError> {
    let Some(value) = body.get("interests") else {
        return Ok(None);
    };
    let Some(object) = value.as_object() else {
        return Err(ApiError::invalid(
            "interests",
            "interests must be {\"topics\": [...], \"categories\": [...]}",
        ));
    };
    let list = |name: &str, field: &'static str| -> Result<Vec<String>, ApiError> {
        let invalid = || ApiError::invalid(field, format!("{name} must be a list of strings"));
        match object.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned).ok_or_else(invalid))
                .collect(),
            Some(_) => Err(invalid()),
        }
    };
    let topics = list("topics", "interests.topics")?;
    let categories = list("categories", "interests.categories")?;
    let interests = Interests::new(&topics, &categories)
        .map_err(|e| ApiError::invalid(e.field(), e.to_string()))?;
    Ok(Some(interests))
}

/// `{"events": [{"video_id", "watched_at"?, "watch_seconds"?}]}`, 1 to 100 events.
pub fn parse_history(body: &Value) -> Result<Vec<WatchEvent>, ApiError> {
    let events = body
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("events", "the body must be {\"events\": [...]}"))?;
    if events.is_empty() || events.len() > MAX_HISTORY_EVENTS {
        return Err(ApiError::invalid(
            "events",
            format!("events must hold 1 to {MAX_HISTORY_EVENTS} items"),
        ));
    }
    events
        .iter()
        .map(|e| {
            let video_id = e
                .get("video_id")
                .and_then(Value::as_str)
                .filter(|id| is_video_id(id))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "events.video_id",
                        "each event needs a video_id of 11 characters [A-Za-z0-9_-]",
                    )
                })?;
            let watched_at = match e.get("watched_at") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.parse::<jiff::Timestamp>().map_err(|_| {
                    ApiError::invalid("events.watched_at", "watched_at must be an RFC 3339 time")
                })?),
                Some(_) => {
                    return Err(ApiError::invalid(
                        "events.watched_at",
                        "watched_at must be an RFC 3339 time",
                    ));
                }
            };
            let watch_seconds = match e.get("watch_seconds") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().filter(|s| *s <= 7 * 86_400).ok_or_else(|| {
                    ApiError::invalid(
                        "events.watch_seconds",
                        "watch_seconds must be a whole number of seconds",
                    )
                })? as u32),
            };
            Ok(WatchEvent {
                video_id: video_id.to_owned(),
                watched_at,
                watch_seconds,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The typed feed body writes exactly the bytes the `json!` form did.
    #[test]
    fn feed_body_matches_the_value_form() {
        let videos: Vec<_> = (0..3).map(video).collect();
        for generated_at in [None, Some("2026-11-26T10:00:00Z".to_owned())] {
            let body = FeedBody {
                count: videos.len(),
                meta: FeedMeta {
                    cache_status: "hit",
                    generated_at: generated_at.clone(),
                    pool_remaining: 80,
                    quota_state: QuotaLevel::Limited,
                    refresh_queued: true,
                    request_id: "req-1",
                    served_at: "2026-11-26T10:01:00Z".into(),
                },
                success: true,
                user_id: "user-1",
                videos: &videos,
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
            assert_eq!(serde_json::to_string(&body).unwrap(), value.to_string());
        }
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
        let page: Arc<Vec<_>> = Arc::new((0..50).map(kilobyte_video).collect());
        let page_bytes: usize = page.iter().map(video_bytes).sum();
        assert!(page_bytes > 50 * 1000, "a page weighs {page_bytes} bytes");
        for user in 0..10_000 {
            pages.insert(&format!("user-{user}"), page.clone());
        }
        let held = pages.bytes();
        let entries = pages.0.entry_count();
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
