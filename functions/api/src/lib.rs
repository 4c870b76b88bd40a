//! The HTTP API (ARCHITECTURE.md § A feed request): routing, authorization, parameters
//! and the response shape. The feed itself comes from the core engine; this crate maps it
//! to HTTP.

pub mod bodies;
pub mod cors;
pub mod error;
pub mod event;
pub mod feed;
pub mod params;
mod routes;

use bodies::json_body;
use routes::{Route, route};

use std::time::{Duration, Instant};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use reco_core::UserId;
use reco_core::config::AuthMode;
use reco_core::domain::{Interests, WatchEvent};
use reco_core::engine::{CacheStatus, Engine};
use reco_core::metrics::{self, Field, Metric};
use reco_core::queue::WarmQueue;
use reco_core::quota::{self, QuotaGuard};
use reco_core::store::RedisConn;
use serde_json::{Value, json};

pub use bodies::{MAX_BODY_BYTES, MAX_HISTORY_EVENTS, parse_history, parse_interests};
pub use cors::Cors;
pub use error::ApiError;
pub use feed::{
    COLD_CHART_BUDGET, DEFAULT_FUNCTION_MEMORY_MB, FORCE_REFRESH_BUDGET, FORCE_REFRESH_COOLDOWN,
    LAST_GOOD_MEMORY_SHARE, LastGoodPages,
};
pub use params::FeedParams;

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
        let elapsed = started.elapsed();
        let mut values = vec![(Metric::ApiLatencyMs, elapsed.as_secs_f64() * 1000.0)];
        match cache_status {
            Some(status) if status.is_hit() => values.push((Metric::CacheHit, 1.0)),
            Some(_) => values.push((Metric::CacheMiss, 1.0)),
            None => {}
        }
        let (status, cache_status) = (
            response.status().as_u16(),
            cache_status.map_or("-", CacheStatus::as_str),
        );
        let latency_us = elapsed.as_micros() as u64;
        // The request's log is its EMF line: one stdout write per invocation, not a log
        // line and a metrics line (two writes cost a hit ~18% at p50 and p99).
        let logged = metrics::emit_with(
            &values,
            &[
                ("level", Field::Str("INFO")),
                ("message", Field::Str("request")),
                ("request_id", Field::Str(&request_id)),
                ("method", Field::Str(req.method().as_str())),
                ("status", Field::U64(u64::from(status))),
                ("cache_status", Field::Str(cache_status)),
                ("latency_us", Field::U64(latency_us)),
            ],
        );
        if !logged {
            tracing::info!(request_id, method = %req.method(), status, cache_status, latency_us, "request");
        }
        response
    }

    async fn dispatch(
        &self,
        req: &Request,
        request_id: &str,
    ) -> Result<(Response<Body>, Option<CacheStatus>), ApiError> {
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
