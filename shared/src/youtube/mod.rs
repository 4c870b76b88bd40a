//! The YouTube Data API v3 client: every call asks the quota guard first.
//!
//! The key travels in the `X-Goog-Api-Key` header, never in a URL, because URLs end up
//! in logs and in error messages; the header value is marked sensitive as well.

mod duration;
pub mod model;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderValue;
use serde::de::DeserializeOwned;

pub use duration::parse_iso8601_duration;
pub use model::*;

use crate::metrics::{self, Metric};
use crate::quota::{Admission, Charge, Cost, Limit, Priority, QuotaError, QuotaGuard};

/// The API key, wrapped so `{:?}` and `{}` can never print it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Where the key comes from. In Lambda it is best read from Secrets Manager through the
/// AWS Parameters and Secrets Lambda Extension on localhost, so it is in no environment
/// variable; it is fetched on the first YouTube call (the extension is not serving during
/// the function's init) and kept for the life of the instance.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// `YOUTUBE_API_KEY`.
    Plain(ApiKey),
    /// `YOUTUBE_API_KEY_SECRET_ID`: a secret whose `SecretString` is the key, or a JSON
    /// object holding it under `YOUTUBE_API_KEY` or `api_key`.
    SecretsExtension {
        /// `http://localhost:{PARAMETERS_SECRETS_EXTENSION_HTTP_PORT or 2773}`.
        endpoint: String,
        secret_id: String,
    },
}

/// The Parameters and Secrets extension's local endpoint.
pub fn secrets_extension_endpoint() -> String {
    let port = std::env::var("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
        .ok()
        .filter(|p| p.parse::<u16>().is_ok())
        .unwrap_or_else(|| "2773".to_owned());
    format!("http://localhost:{port}")
}

/// A secret's JSON (`SecretString` and the rest) from the Parameters and Secrets
/// extension at `endpoint`: how every secret of the functions is read, so none is in an
/// environment variable. The error says what failed, never the secret.
pub async fn read_secret(
    http: &reqwest::Client,
    endpoint: &str,
    secret_id: &str,
) -> Result<serde_json::Value, String> {
    let token = std::env::var("AWS_SESSION_TOKEN").unwrap_or_default();
    let response = http
        .get(format!("{endpoint}/secretsmanager/get"))
        .query(&[("secretId", secret_id)])
        .header("X-Aws-Parameters-Secrets-Token", token)
        .send()
        .await
        .map_err(|e| format!("extension unreachable: {}", e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "extension answered HTTP {} for secret {secret_id}",
            status.as_u16()
        ));
    }
    response
        .json()
        .await
        .map_err(|_| "extension answered with no JSON".to_owned())
}

/// The key as a header value, marked sensitive so no debug output shows it.
fn key_header(key: &str, origin: &str) -> Result<HeaderValue, YoutubeError> {
    let mut value = HeaderValue::from_str(key.trim()).map_err(|_| YoutubeError::Config {
        status: 0,
        reason: "invalidKey".into(),
        message: format!("{origin} contains characters not allowed in a header"),
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The key out of a `SecretString`: the whole string, or a JSON object's
/// `YOUTUBE_API_KEY` / `api_key` member.
fn key_from_secret_string(secret: &str) -> Option<String> {
    let trimmed = secret.trim();
    if trimmed.starts_with('{') {
        let object: serde_json::Value = serde_json::from_str(trimmed).ok()?;
        ["YOUTUBE_API_KEY", "api_key", "apiKey"]
            .iter()
            .find_map(|k| object.get(*k).and_then(|v| v.as_str()))
            .map(str::to_owned)
    } else if trimmed.is_empty() {
        None
    } else {
        Some(trimmed.to_owned())
    }
}

tokio::task_local! {
    /// When (ms on the guard's clock) the current task stops starting YouTube calls. Set
    /// by the API around a `force_refresh` with [`starting_calls_until`]: at ten calls a
    /// second, a warm that needs twenty would be cut off by the request's time budget
    /// with nothing to show for the units it was charged. Past this instant it ranks what
    /// it already has instead.
    static CALLS_UNTIL_MS: i64;
}

/// Runs `fut` with no YouTube call (a retry included) started, or paced to start, at or
/// after `deadline_ms`: such calls fail with [`YoutubeError::OutOfTime`], uncharged.
pub async fn starting_calls_until<F: std::future::Future>(deadline_ms: i64, fut: F) -> F::Output {
    CALLS_UNTIL_MS.scope(deadline_ms, fut).await
}

/// What went wrong with a YouTube call. None of these texts carries the key or a URL
/// with query parameters.
#[derive(Debug, thiserror::Error)]
pub enum YoutubeError {
    #[error("quota guard denied the call ({limit}); retry after {retry_after_ms} ms")]
    Denied { retry_after_ms: u64, limit: Limit },
    #[error(transparent)]
    Guard(#[from] QuotaError),
    #[error("youtube: daily quota exceeded ({reason}); the {limit} is tripped")]
    QuotaExceeded {
        reason: String,
        /// The breaker tripped: the refused call's bucket.
        limit: Limit,
    },
    #[error("youtube: rate limited ({reason}); shared backoff tripped")]
    RateLimited { reason: String },
    #[error(
        "youtube: request rejected as a configuration error: HTTP {status} {reason}: {message}"
    )]
    Config {
        status: u16,
        reason: String,
        message: String,
    },
    #[error("youtube: not found: {reason}")]
    NotFound { reason: String },
    #[error("youtube: server error HTTP {status} after {attempts} attempts")]
    Server { status: u16, attempts: u32 },
    #[error("youtube: transport error after {attempts} attempts: {message}")]
    Transport { message: String, attempts: u32 },
    #[error("youtube: the API key could not be read from Secrets Manager: {0}")]
    KeyUnavailable(String),
    #[error("youtube: call not started, the request's time budget is spent")]
    OutOfTime,
    #[error("youtube: unparseable response from {method}: {message}")]
    Malformed {
        method: &'static str,
        message: String,
    },
}

impl YoutubeError {
    /// Milliseconds until the quota makes a retry worthwhile, when quota is the reason.
    pub fn quota_retry_after_ms(&self) -> Option<u64> {
        match self {
            YoutubeError::Denied { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        }
    }
}

/// One API method: its path and what it costs.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    pub name: &'static str,
    pub path: &'static str,
    pub cost: Cost,
}

pub const SEARCH: Method = Method {
    name: "search.list",
    path: "search",
    cost: Cost::SEARCH,
};
pub const VIDEOS: Method = Method {
    name: "videos.list",
    path: "videos",
    cost: Cost::ONE_UNIT,
};
pub const CHANNELS: Method = Method {
    name: "channels.list",
    path: "channels",
    cost: Cost::ONE_UNIT,
};
pub const PLAYLIST_ITEMS: Method = Method {
    name: "playlistItems.list",
    path: "playlistItems",
    cost: Cost::ONE_UNIT,
};
pub const VIDEO_CATEGORIES: Method = Method {
    name: "videoCategories.list",
    path: "videoCategories",
    cost: Cost::ONE_UNIT,
};

#[derive(Clone)]
pub struct YoutubeClient {
    /// Built on the first call, not at construction: building it loads and parses the
    /// platform's root certificates (rustls-platform-verifier), which was half of the
    /// api's and the warmer's cold start, and the api calls YouTube only on
    /// `force_refresh`. Shared by the clones of this client.
    http: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    key_source: KeySource,
    /// The key's header, once known (at once for a plain key, after the first fetch from
    /// the secrets extension).
    key: std::sync::Arc<tokio::sync::OnceCell<HeaderValue>>,
    base_url: String,
    guard: QuotaGuard,
    max_attempts: u32,
    backoff_on_rate_limit: Duration,
    /// A short-window denial shorter than this is waited out rather than returned:
    /// smoothing should pace calls, not drop them.
    max_pacing_wait: Duration,
}

impl std::fmt::Debug for YoutubeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YoutubeClient")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

pub const VIDEO_PARTS: &str = "snippet,contentDetails,statistics";

impl YoutubeClient {
    pub fn new(base_url: &str, key: ApiKey, guard: QuotaGuard) -> Result<Self, YoutubeError> {
        Self::with_key_source(base_url, KeySource::Plain(key), guard)
    }

    pub fn with_key_source(
        base_url: &str,
        key_source: KeySource,
        guard: QuotaGuard,
    ) -> Result<Self, YoutubeError> {
        let key = tokio::sync::OnceCell::new();
        if let KeySource::Plain(plain) = &key_source {
            key.set(key_header(&plain.0, "YOUTUBE_API_KEY")?)
                .expect("a new cell is empty");
        }
        Ok(Self {
            http: Default::default(),
            key_source,
            key: std::sync::Arc::new(key),
            base_url: base_url.trim_end_matches('/').to_owned(),
            guard,
            max_attempts: 3,
            backoff_on_rate_limit: Duration::from_secs(2),
            max_pacing_wait: Duration::from_secs(3),
        })
    }

    pub fn guard(&self) -> &QuotaGuard {
        &self.guard
    }

    /// The HTTP client, built on first use (see the field). A failure to build it (no
    /// usable TLS roots) is a transport error of the call that needed it, and the next
    /// call tries again.
    fn http(&self) -> Result<&reqwest::Client, YoutubeError> {
        if let Some(client) = self.http.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| YoutubeError::Transport {
                message: format!("the HTTP client could not be built: {}", e.without_url()),
                attempts: 0,
            })?;
        // Two first calls racing may both build one; the first stored is kept.
        Ok(self.http.get_or_init(|| client))
    }

    /// Calls `method` with `query` under the guard. 5xx and transport failures are retried
    /// a bounded number of times, each attempt admitted and charged like any call.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        query: &[(&str, &str)],
        priority: Priority,
    ) -> Result<T, YoutubeError> {
        let url = format!("{}/{}", self.base_url, method.path);
        let key = self.key().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let charge = self.admit_paced(method, priority).await?;
            let response = self
                .http()?
                .get(&url)
                .header("x-goog-api-key", key.clone())
                .query(query)
                .send()
                .await;
            let response = match response {
                Ok(r) => r,
                Err(e) => {
                    let message = e.without_url().to_string();
                    if attempt >= self.max_attempts {
                        return Err(YoutubeError::Transport {
                            message,
                            attempts: attempt,
                        });
                    }
                    tracing::warn!(method = method.name, attempt, %message, "youtube transport error, retrying");
                    self.guard.clock().sleep(retry_delay(attempt)).await;
                    continue;
                }
            };
            let status = response.status();
            let body = match response.bytes().await {
                Ok(b) => b,
                Err(e) => {
                    let message = e.without_url().to_string();
                    if attempt >= self.max_attempts {
                        return Err(YoutubeError::Transport {
                            message,
                            attempts: attempt,
                        });
                    }
                    self.guard.clock().sleep(retry_delay(attempt)).await;
                    continue;
                }
            };
            if status.is_success() {
                return serde_json::from_slice(&body).map_err(|e| YoutubeError::Malformed {
                    method: method.name,
                    message: e.to_string(),
                });
            }
            if status.is_server_error() {
                if attempt >= self.max_attempts {
                    return Err(YoutubeError::Server {
                        status: status.as_u16(),
                        attempts: attempt,
                    });
                }
                tracing::warn!(
                    method = method.name,
                    attempt,
                    status = status.as_u16(),
                    "youtube server error, retrying"
                );
                self.guard.clock().sleep(retry_delay(attempt)).await;
                continue;
            }
            return Err(self.classify_error(method, charge, status, &body).await);
        }
    }

    /// The key's header: known at start for a plain key; read once from the secrets
    /// extension otherwise (a failed read is retried by the next call).
    async fn key(&self) -> Result<HeaderValue, YoutubeError> {
        self.key
            .get_or_try_init(|| async {
                let KeySource::SecretsExtension {
                    endpoint,
                    secret_id,
                } = &self.key_source
                else {
                    unreachable!("a plain key is set at construction");
                };
                let body = read_secret(self.http()?, endpoint, secret_id)
                    .await
                    .map_err(YoutubeError::KeyUnavailable)?;
                let key = body
                    .get("SecretString")
                    .and_then(|v| v.as_str())
                    .and_then(key_from_secret_string)
                    .ok_or_else(|| {
                        YoutubeError::KeyUnavailable(format!(
                            "secret {secret_id} holds no key (a plain string, or JSON with YOUTUBE_API_KEY)"
                        ))
                    })?;
                tracing::info!(%secret_id, "YouTube API key read from Secrets Manager");
                key_header(&key, "the secret's key")
            })
            .await
            .cloned()
    }

    /// Asks the guard, sleeping through short-window denials up to `max_pacing_wait`.
    /// Returns what the admitted call was charged, and when.
    async fn admit_paced(
        &self,
        method: Method,
        priority: Priority,
    ) -> Result<Charge, YoutubeError> {
        let clock = self.guard.clock();
        let started_ms = clock.now_ms();
        let deadline_ms = CALLS_UNTIL_MS.try_with(|d| *d).ok();
        loop {
            if deadline_ms.is_some_and(|d| clock.now_ms() >= d) {
                return Err(YoutubeError::OutOfTime);
            }
            let at = clock.now();
            match self.guard.admit_at(at, method.cost, priority).await? {
                Admission::Allowed => {
                    let mut spent = Vec::with_capacity(2);
                    if method.cost.units > 0 {
                        spent.push((Metric::QuotaUnitsUsed, method.cost.units as f64));
                    }
                    if method.cost.searches > 0 {
                        spent.push((Metric::QuotaSearchesUsed, method.cost.searches as f64));
                    }
                    metrics::emit(&spent);
                    return Ok(Charge {
                        at,
                        cost: method.cost,
                    });
                }
                Admission::Denied {
                    retry_after_ms,
                    limit,
                } => {
                    let wait = Duration::from_millis(retry_after_ms.max(1));
                    let short =
                        matches!(limit, Limit::PerSecond | Limit::PerMinute | Limit::Backoff);
                    let waited = Duration::from_millis((clock.now_ms() - started_ms).max(0) as u64);
                    if !short || waited + wait > self.max_pacing_wait {
                        return Err(YoutubeError::Denied {
                            retry_after_ms,
                            limit,
                        });
                    }
                    if deadline_ms.is_some_and(|d| clock.now_ms() + wait.as_millis() as i64 >= d) {
                        return Err(YoutubeError::OutOfTime);
                    }
                    clock.sleep(wait).await;
                }
            }
        }
    }

    async fn classify_error(
        &self,
        method: Method,
        charge: Charge,
        status: StatusCode,
        body: &[u8],
    ) -> YoutubeError {
        let parsed: Option<ErrorEnvelope> = serde_json::from_slice(body).ok();
        let (reason, message) = parsed
            .as_ref()
            .map(|e| (e.error.first_reason().to_owned(), e.error.message.clone()))
            .unwrap_or_else(|| (String::new(), String::new()));
        match (status.as_u16(), reason.as_str()) {
            (403, "quotaExceeded" | "dailyLimitExceeded") => {
                tracing::error!(method = method.name, %reason, "youtube daily quota exceeded; tripping the breaker");
                metrics::emit(&[(Metric::BreakerTrips, 1.0)]);
                if let Err(e) = self.guard.trip_daily_breaker(charge).await {
                    tracing::error!(error = %e, "could not trip the daily breaker");
                }
                YoutubeError::QuotaExceeded {
                    reason,
                    limit: if charge.cost.searches > 0 {
                        Limit::SearchBreaker
                    } else {
                        Limit::DailyBreaker
                    },
                }
            }
            (429, _) | (403, "rateLimitExceeded" | "userRateLimitExceeded") => {
                tracing::warn!(method = method.name, %reason, "youtube rate limit; tripping the shared backoff");
                metrics::emit(&[(Metric::BreakerTrips, 1.0)]);
                if let Err(e) = self.guard.trip_backoff(self.backoff_on_rate_limit).await {
                    tracing::error!(error = %e, "could not trip the backoff");
                }
                YoutubeError::RateLimited {
                    reason: if reason.is_empty() {
                        "HTTP 429".into()
                    } else {
                        reason
                    },
                }
            }
            (404, _) => YoutubeError::NotFound { reason },
            (code, _) => {
                tracing::error!(method = method.name, status = code, %reason, "youtube rejected the request; not retrying");
                YoutubeError::Config {
                    status: code,
                    reason,
                    message,
                }
            }
        }
    }

    /// Details of up to any number of videos, 50 ids (one unit) per call.
    pub async fn videos(
        &self,
        ids: &[String],
        priority: Priority,
    ) -> Result<Vec<VideoItem>, YoutubeError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(50) {
            let joined = chunk.join(",");
            let page: ListResponse<VideoItem> = self
                .call(
                    VIDEOS,
                    &[("part", VIDEO_PARTS), ("id", &joined), ("maxResults", "50")],
                    priority,
                )
                .await?;
            out.extend(page.items);
        }
        Ok(out)
    }

    /// The most popular videos of a region, optionally of one category: one unit.
    pub async fn chart(
        &self,
        region: &str,
        category_id: Option<&str>,
        priority: Priority,
    ) -> Result<Vec<VideoItem>, YoutubeError> {
        let mut query = vec![
            ("part", VIDEO_PARTS),
            ("chart", "mostPopular"),
            ("regionCode", region),
            ("maxResults", "50"),
        ];
        if let Some(category) = category_id {
            query.push(("videoCategoryId", category));
        }
        let page: ListResponse<VideoItem> = self.call(VIDEOS, &query, priority).await?;
        Ok(page.items)
    }

    /// Uploads playlist ids of up to 50 channels in one unit.
    pub async fn uploads_playlists(
        &self,
        channel_ids: &[String],
        priority: Priority,
    ) -> Result<Vec<(String, String)>, YoutubeError> {
        let mut out = Vec::new();
        for chunk in channel_ids.chunks(50) {
            let joined = chunk.join(",");
            let page: ListResponse<ChannelItem> = self
                .call(
                    CHANNELS,
                    &[
                        ("part", "contentDetails"),
                        ("id", &joined),
                        ("maxResults", "50"),
                    ],
                    priority,
                )
                .await?;
            out.extend(page.items.into_iter().filter_map(|c| {
                let uploads = c.content_details?.related_playlists?.uploads?;
                (!uploads.is_empty()).then_some((c.id, uploads))
            }));
        }
        Ok(out)
    }

    /// The latest video ids of a playlist (one page of up to 50): one unit.
    pub async fn playlist_video_ids(
        &self,
        playlist_id: &str,
        priority: Priority,
    ) -> Result<Vec<String>, YoutubeError> {
        let page: ListResponse<PlaylistItem> = self
            .call(
                PLAYLIST_ITEMS,
                &[
                    ("part", "contentDetails"),
                    ("playlistId", playlist_id),
                    ("maxResults", "50"),
                ],
                priority,
            )
            .await?;
        Ok(page
            .items
            .into_iter()
            .filter_map(|i| i.video_id())
            .collect())
    }

    /// Video ids matching a topic query: one call of the scarce search bucket.
    pub async fn search_video_ids(
        &self,
        query: &str,
        priority: Priority,
    ) -> Result<Vec<String>, YoutubeError> {
        let page: ListResponse<SearchResult> = self
            .call(
                SEARCH,
                &[
                    ("part", "snippet"),
                    ("q", query),
                    ("type", "video"),
                    ("maxResults", "50"),
                ],
                priority,
            )
            .await?;
        Ok(page
            .items
            .into_iter()
            .filter_map(|r| r.id.video_id)
            .collect())
    }

    pub async fn video_categories(
        &self,
        region: &str,
        priority: Priority,
    ) -> Result<Vec<CategoryItem>, YoutubeError> {
        let page: ListResponse<CategoryItem> = self
            .call(
                VIDEO_CATEGORIES,
                &[("part", "snippet"), ("regionCode", region)],
                priority,
            )
            .await?;
        Ok(page.items)
    }
}

fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis(100 * u64::from(attempt))
}
