//! Configuration from the environment (ARCHITECTURE.md § Configuration).
//!
//! A missing or malformed setting stops the function at start with one line naming the
//! variable: a silent default for a required value would surface much later as a
//! confusing runtime failure.

use std::time::Duration;

use crate::quota::{QuotaLimits, UserBudget};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {name} is required but not set")]
    Missing { name: &'static str },
    #[error("configuration: {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// The path's user id must equal the JWT `sub` from API Gateway's authorizer.
    Jwt,
    /// No authorization: local development only, and only when set explicitly.
    None,
}

/// Everything the functions read from the environment. Fields a function does not need
/// are still parsed (so a typo fails fast) but only the required ones it names are
/// enforced, through [`Config::require_queue_url`] and [`Config::require_youtube_api_key`].
#[derive(Clone)]
pub struct Config {
    pub redis_url: String,
    pub redis_cluster: bool,
    /// `REDIS_TLS_CA_FILE`: a PEM CA bundle to trust for `rediss://` instead of the
    /// system roots (a private CA; ElastiCache's certificates chain to the system roots).
    pub redis_tls_ca_file: Option<String>,
    pub warm_queue_url: Option<String>,
    /// `AWS_ENDPOINT_URL_SQS`: the AWS SDK's standard override, for a local SQS.
    pub sqs_endpoint: Option<String>,
    pub youtube_api_key: Option<String>,
    /// `YOUTUBE_API_KEY_SECRET_ID`: read the key from Secrets Manager through the Lambda
    /// extension instead (used when `YOUTUBE_API_KEY` is not set).
    pub youtube_api_key_secret_id: Option<String>,
    /// `EMF_METRICS`: `on` (default) prints CloudWatch EMF metric lines on stdout.
    pub emf_metrics: bool,
    pub youtube_api_base_url: String,
    pub quota: QuotaLimits,
    /// `YOUTUBE_USER_DAILY_UNITS` / `YOUTUBE_USER_DAILY_SEARCHES`: each user's daily cap
    /// on interactive (force_refresh) spend; 0 = no cap.
    pub user_budget: UserBudget,
    pub recommendation_cache_ttl: Duration,
    pub prefetch_lock_ttl: Duration,
    pub auth_mode: AuthMode,
    pub region_code: String,
    /// `YOUTUBE_QUOTA_TIMEOUT_MS`: how long the guard waits on Redis before failing closed.
    pub quota_timeout: Duration,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` (MB), set by Lambda: sizes in-process caches.
    pub function_memory_mb: Option<u64>,
    /// `HISTORY_SOURCE`: `redis` (default) or `supabase` with its `SUPABASE_*` settings.
    pub supabase: Option<SupabaseConfig>,
    /// `CORS_ALLOWED_ORIGINS`: the origins (`scheme://host[:port]`, separated by commas or
    /// spaces) whose pages may call the API from a browser; none when unset.
    pub cors_allowed_origins: Vec<String>,
}

impl std::fmt::Debug for Config {
    // Hand-written so the API key can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("redis_cluster", &self.redis_cluster)
            .field("redis_tls_ca_file", &self.redis_tls_ca_file)
            .field("warm_queue_url", &self.warm_queue_url)
            .field(
                "youtube_api_key",
                &self.youtube_api_key.as_ref().map(|_| "<redacted>"),
            )
            .field("youtube_api_key_secret_id", &self.youtube_api_key_secret_id)
            .field("youtube_api_base_url", &self.youtube_api_base_url)
            .field("quota", &self.quota)
            .field("user_budget", &self.user_budget)
            .field("recommendation_cache_ttl", &self.recommendation_cache_ttl)
            .field("prefetch_lock_ttl", &self.prefetch_lock_ttl)
            .field("auth_mode", &self.auth_mode)
            .field("region_code", &self.region_code)
            .field("supabase", &self.supabase)
            .finish_non_exhaustive()
    }
}

/// Where the history lives in Supabase; table and column names are the product's own.
#[derive(Clone, PartialEq)]
pub struct SupabaseConfig {
    /// `https://<project>.supabase.co` (the REST API is under `/rest/v1`).
    pub url: String,
    /// The service-role key: sent as `apikey` and `Authorization: Bearer`; never logged.
    pub service_key: String,
    pub table: String,
    pub user_column: String,
    pub video_column: String,
    pub watched_at_column: String,
    pub watch_seconds_column: Option<String>,
    /// Declared interests, one row per user with `topics` and `categories` columns (text
    /// arrays or comma-separated text), keyed by `user_column`; `None`: none declared.
    pub interests_table: Option<String>,
}

impl std::fmt::Debug for SupabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SupabaseConfig")
            .field("url", &self.url)
            .field("service_key", &"<redacted>")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_YOUTUBE_API_BASE_URL: &str = "https://www.googleapis.com/youtube/v3";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Parses settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let redis_url = get("REDIS_URL").ok_or(ConfigError::Missing { name: "REDIS_URL" })?;
        let redis_url = with_scheme("REDIS_URL", redis_url, &["redis://", "rediss://"])?;
        let defaults = QuotaLimits::default();
        let quota = QuotaLimits {
            daily_units: parse_or(&get, "YOUTUBE_DAILY_UNITS", defaults.daily_units)?,
            daily_searches: parse_or(&get, "YOUTUBE_DAILY_SEARCHES", defaults.daily_searches)?,
            margin: fraction(&get, "YOUTUBE_QUOTA_MARGIN", defaults.margin)?,
            max_calls_per_second: parse_or(
                &get,
                "YOUTUBE_MAX_CALLS_PER_SECOND",
                defaults.max_calls_per_second,
            )?,
            max_units_per_minute: parse_or(
                &get,
                "YOUTUBE_MAX_UNITS_PER_MINUTE",
                defaults.max_units_per_minute,
            )?,
            background_share: fraction(
                &get,
                "YOUTUBE_BACKGROUND_SHARE",
                defaults.background_share,
            )?,
            day_pacing: choice(&get, "YOUTUBE_DAY_PACING", &[("on", true), ("off", false)])?,
        };
        let budget_defaults = UserBudget::default();
        let user_budget = UserBudget {
            units: parse_or(&get, "YOUTUBE_USER_DAILY_UNITS", budget_defaults.units)?,
            searches: parse_or(
                &get,
                "YOUTUBE_USER_DAILY_SEARCHES",
                budget_defaults.searches,
            )?,
        };
        let auth_mode = choice(
            &get,
            "AUTH_MODE",
            &[("jwt", AuthMode::Jwt), ("none", AuthMode::None)],
        )?;
        let base_url = get("YOUTUBE_API_BASE_URL")
            .unwrap_or_else(|| DEFAULT_YOUTUBE_API_BASE_URL.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let base_url = with_scheme("YOUTUBE_API_BASE_URL", base_url, HTTP)?;
        let supabase = match choice(
            &get,
            "HISTORY_SOURCE",
            &[
                ("redis", HistorySourceKind::Redis),
                ("supabase", HistorySourceKind::Supabase),
            ],
        )? {
            HistorySourceKind::Redis => None,
            HistorySourceKind::Supabase => {
                let required = |name: &'static str| get(name).ok_or(ConfigError::Missing { name });
                let url = required("SUPABASE_URL")?.trim_end_matches('/').to_owned();
                let url = with_scheme("SUPABASE_URL", url, HTTP)?;
                let column = |name: &'static str, default: &str| {
                    get(name).unwrap_or_else(|| default.to_owned())
                };
                Some(SupabaseConfig {
                    url,
                    service_key: required("SUPABASE_SERVICE_KEY")?,
                    table: column("SUPABASE_HISTORY_TABLE", "watch_history"),
                    user_column: column("SUPABASE_USER_COLUMN", "user_id"),
                    video_column: column("SUPABASE_VIDEO_COLUMN", "video_id"),
                    watched_at_column: column("SUPABASE_WATCHED_AT_COLUMN", "watched_at"),
                    watch_seconds_column: get("SUPABASE_WATCH_SECONDS_COLUMN"),
                    interests_table: get("SUPABASE_INTERESTS_TABLE"),
                })
            }
        };
        Ok(Self {
            supabase,
            redis_url,
            redis_cluster: parse_or(&get, "REDIS_CLUSTER", false)?,
            redis_tls_ca_file: get("REDIS_TLS_CA_FILE"),
            sqs_endpoint: Self::sqs_endpoint_from(get),
            warm_queue_url: get("WARM_QUEUE_URL"),
            youtube_api_key: get("YOUTUBE_API_KEY"),
            youtube_api_key_secret_id: get("YOUTUBE_API_KEY_SECRET_ID"),
            emf_metrics: choice(&get, "EMF_METRICS", &[("on", true), ("off", false)])?,
            youtube_api_base_url: base_url,
            quota,
            user_budget,
            function_memory_mb: get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
                .map(|raw| {
                    raw.parse().map_err(|_| ConfigError::Invalid {
                        name: "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                        reason: format!("expected megabytes, got {raw:?}"),
                    })
                })
                .transpose()?,
            recommendation_cache_ttl: Duration::from_secs(parse_or(
                &get,
                "RECOMMENDATION_CACHE_TTL_SECS",
                900,
            )?),
            prefetch_lock_ttl: Duration::from_secs(parse_or(&get, "PREFETCH_LOCK_TTL_SECS", 120)?),
            auth_mode,
            region_code: get("YOUTUBE_REGION_CODE").unwrap_or_else(|| "US".to_owned()),
            quota_timeout: Duration::from_millis(parse_or(&get, "YOUTUBE_QUOTA_TIMEOUT_MS", 200)?),
            cors_allowed_origins: origins(&get, "CORS_ALLOWED_ORIGINS")?,
        })
    }

    /// `AWS_ENDPOINT_URL_SQS`, when set and not empty.
    pub fn sqs_endpoint_from(lookup: impl Fn(&str) -> Option<String>) -> Option<String> {
        lookup("AWS_ENDPOINT_URL_SQS").filter(|s| !s.is_empty())
    }

    /// The configuration from only the variables in `names`; every other one takes its
    /// default. A function that must start whatever the state of settings it does not
    /// use (the login function: a sign-in must never fail) reads its config this way.
    pub fn from_lookup_only(
        names: &[&str],
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| {
            if names.contains(&name) {
                lookup(name)
            } else {
                None
            }
        })
    }

    /// How the store reaches Redis beyond its URL: cluster mode and the TLS trust roots.
    pub fn redis_options(&self) -> crate::store::RedisOptions {
        crate::store::RedisOptions {
            cluster: self.redis_cluster,
            tls_ca_file: self.redis_tls_ca_file.clone(),
            ..crate::store::RedisOptions::default()
        }
    }

    pub fn require_queue_url(&self) -> Result<&str, ConfigError> {
        self.warm_queue_url.as_deref().ok_or(ConfigError::Missing {
            name: "WARM_QUEUE_URL",
        })
    }

    pub fn require_youtube_api_key(&self) -> Result<&str, ConfigError> {
        self.youtube_api_key.as_deref().ok_or(ConfigError::Missing {
            name: "YOUTUBE_API_KEY",
        })
    }

    /// The key itself, else the secret to read it from; neither is a startup error that
    /// names both variables.
    #[cfg(feature = "recommend")]
    pub fn youtube_key_source(&self) -> Result<crate::youtube::KeySource, ConfigError> {
        use crate::youtube::{ApiKey, KeySource, secrets_extension_endpoint};
        match (&self.youtube_api_key, &self.youtube_api_key_secret_id) {
            (Some(key), _) => Ok(KeySource::Plain(ApiKey::new(key.clone()))),
            (None, Some(secret_id)) => Ok(KeySource::SecretsExtension {
                endpoint: secrets_extension_endpoint(),
                secret_id: secret_id.clone(),
            }),
            (None, None) => Err(ConfigError::Missing {
                name: "YOUTUBE_API_KEY (or YOUTUBE_API_KEY_SECRET_ID)",
            }),
        }
    }
}

/// The push functions' settings (the callback and the subscription manager): read only
/// by them, so no other function can be stopped by a push setting.
#[derive(Clone, PartialEq)]
pub struct PushConfig {
    /// `PUSH_SECRET`: the master secret every subscription's `hub.secret` is derived
    /// from (local runs and tests).
    pub secret: Option<String>,
    /// `PUSH_SECRET_ID`: read the master secret from Secrets Manager through the Lambda
    /// extension instead (used when `PUSH_SECRET` is not set).
    pub secret_id: Option<String>,
    /// `PUSH_HUB_URL`: where subscriptions are asked for (Google's hub by default).
    pub hub_url: String,
    /// `PUSH_CALLBACK_URL`: the callback route's public base URL, to which the hub
    /// posts; `{base}/{channel_id}` per subscription. Required by the manager.
    pub callback_url: Option<String>,
    /// `PUSH_MAX_SUBSCRIPTIONS`: the most channels subscribed (by demand); 0 turns push
    /// off, and the manager then lets every subscription go.
    pub max_subscriptions: usize,
    /// `PUSH_LEASE_SECONDS`: the lease asked for.
    pub lease_secs: u64,
    /// `PUSH_HUB_REQUESTS_PER_RUN`: the manager's pace towards the hub.
    pub hub_requests_per_run: usize,
    /// `PUSH_HYDRATE_MAX_WAIT_SECS`: how long a pushed upload may wait for a fuller
    /// `videos.list` batch (50 ids a unit) before it is read alone.
    pub hydrate_max_wait_secs: u64,
}

impl std::fmt::Debug for PushConfig {
    // Hand-written so the master secret can never reach a log through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_id", &self.secret_id)
            .field("hub_url", &self.hub_url)
            .field("callback_url", &self.callback_url)
            .field("max_subscriptions", &self.max_subscriptions)
            .field("lease_secs", &self.lease_secs)
            .field("hub_requests_per_run", &self.hub_requests_per_run)
            .field("hydrate_max_wait_secs", &self.hydrate_max_wait_secs)
            .finish()
    }
}

/// Google's hub.
pub const DEFAULT_PUSH_HUB_URL: &str = "https://pubsubhubbub.appspot.com/subscribe";

impl PushConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let secret = get("PUSH_SECRET");
        let secret_id = get("PUSH_SECRET_ID");
        if secret.is_none() && secret_id.is_none() {
            return Err(ConfigError::Missing {
                name: "PUSH_SECRET (or PUSH_SECRET_ID)",
            });
        }
        let hub_url = with_scheme(
            "PUSH_HUB_URL",
            get("PUSH_HUB_URL").unwrap_or_else(|| DEFAULT_PUSH_HUB_URL.to_owned()),
            HTTP,
        )?;
        let callback_url = get("PUSH_CALLBACK_URL")
            .map(|u| {
                with_scheme(
                    "PUSH_CALLBACK_URL",
                    u.trim_end_matches('/').to_owned(),
                    HTTP,
                )
            })
            .transpose()?;
        Ok(Self {
            secret,
            secret_id,
            hub_url,
            callback_url,
            max_subscriptions: parse_or(&get, "PUSH_MAX_SUBSCRIPTIONS", 20_000)?,
            lease_secs: parse_or(&get, "PUSH_LEASE_SECONDS", 432_000)?,
            hub_requests_per_run: parse_or(&get, "PUSH_HUB_REQUESTS_PER_RUN", 100)?,
            hydrate_max_wait_secs: parse_or(&get, "PUSH_HYDRATE_MAX_WAIT_SECS", 300)?,
        })
    }

    pub fn require_callback_url(&self) -> Result<&str, ConfigError> {
        self.callback_url.as_deref().ok_or(ConfigError::Missing {
            name: "PUSH_CALLBACK_URL",
        })
    }
}

/// Where the watch history is read from (`HISTORY_SOURCE`).
#[derive(Clone, Copy)]
enum HistorySourceKind {
    Redis,
    Supabase,
}

const HTTP: &[&str] = &["http://", "https://"];

/// One of `options` by name, in any case; the first is the default when `name` is unset.
fn choice<T: Copy>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    options: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(raw) = get(name) else {
        return Ok(options[0].1);
    };
    let wanted = raw.to_ascii_lowercase();
    options
        .iter()
        .find(|(option, _)| *option == wanted)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|(option, _)| *option).collect();
            ConfigError::Invalid {
                name,
                reason: format!("expected {}, got {raw:?}", names.join(" or ")),
            }
        })
}

/// `url` when it starts with one of `schemes`.
fn with_scheme(name: &'static str, url: String, schemes: &[&str]) -> Result<String, ConfigError> {
    if schemes.iter().any(|scheme| url.starts_with(scheme)) {
        return Ok(url);
    }
    Err(ConfigError::Invalid {
        name,
        reason: format!("must start with {}", schemes.join(" or ")),
    })
}

fn parse_or<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(name) {
        None => Ok(default),
        Some(raw) => raw.parse().map_err(|e: T::Err| ConfigError::Invalid {
            name,
            reason: format!("{raw:?}: {e}"),
        }),
    }
}

/// A list of exact web origins separated by commas or spaces (`cargo lambda watch
/// --env-var` takes a comma for its own separator), lower-cased: `http(s)://host[:port]`,
/// no path, no wildcard (a page's origin is named, never guessed).
fn origins(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = get(name) else {
        return Ok(Vec::new());
    };
    raw.split([',', ' '])
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let host = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            match host {
                Some(host)
                    if !host.is_empty()
                        && host.bytes().all(|b| {
                            b.is_ascii_alphanumeric() || b".-:[]".contains(&b)
                        }) =>
                {
                    Ok(origin.to_ascii_lowercase())
                }
                _ => Err(ConfigError::Invalid {
                    name,
                    reason: format!(
                        "{origin:?} is not an origin like https://app.example.com or http://127.0.0.1:8080"
                    ),
                }),
            }
        })
        .collect()
}

fn fraction(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: f64,
) -> Result<f64, ConfigError> {
    let value: f64 = parse_or(get, name, default)?;
    if !(0.0..=1.0).contains(&value) {
        return Err(ConfigError::Invalid {
            name,
            reason: format!("{value} is not a fraction between 0 and 1"),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn missing_redis_url_is_named() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err, ConfigError::Missing { name: "REDIS_URL" });
        assert_eq!(
            err.to_string(),
            "configuration: REDIS_URL is required but not set"
        );
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let err =
            config(&[("REDIS_URL", "redis://x"), ("YOUTUBE_DAILY_UNITS", "lots")]).unwrap_err();
        assert!(err.to_string().contains("YOUTUBE_DAILY_UNITS"), "{err}");
        let err =
            config(&[("REDIS_URL", "redis://x"), ("YOUTUBE_QUOTA_MARGIN", "1.5")]).unwrap_err();
        assert!(err.to_string().contains("YOUTUBE_QUOTA_MARGIN"), "{err}");
        let err = config(&[("REDIS_URL", "redis://x"), ("AUTH_MODE", "off")]).unwrap_err();
        assert!(err.to_string().contains("AUTH_MODE"), "{err}");
        let err = config(&[("REDIS_URL", "localhost:6379")]).unwrap_err();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = config(&[("REDIS_URL", "redis://127.0.0.1:6379")]).unwrap();
        assert_eq!(c.auth_mode, AuthMode::Jwt);
        assert_eq!(c.quota.daily_units, 10_000);
        assert_eq!(c.quota.daily_searches, 100);
        assert_eq!(c.recommendation_cache_ttl, Duration::from_secs(900));
        assert_eq!(c.youtube_api_base_url, DEFAULT_YOUTUBE_API_BASE_URL);
        assert_eq!(
            c.require_queue_url(),
            Err(ConfigError::Missing {
                name: "WARM_QUEUE_URL"
            })
        );
    }

    #[test]
    fn redis_cluster_and_tls_settings() {
        let c = config(&[("REDIS_URL", "redis://x")]).unwrap();
        assert!(!c.redis_options().cluster);
        assert_eq!(c.redis_options().tls_ca_file, None);
        let c = config(&[
            ("REDIS_URL", "rediss://cache.example:6379"),
            ("REDIS_CLUSTER", "true"),
            ("REDIS_TLS_CA_FILE", "/opt/ca.pem"),
        ])
        .unwrap();
        assert!(c.redis_options().cluster);
        assert_eq!(
            c.redis_options().tls_ca_file.as_deref(),
            Some("/opt/ca.pem")
        );
        let err = config(&[("REDIS_URL", "redis://x"), ("REDIS_CLUSTER", "yes")]).unwrap_err();
        assert!(err.to_string().contains("REDIS_CLUSTER"), "{err}");
    }

    #[test]
    fn cors_origins_are_exact_origins_and_none_by_default() {
        let c = config(&[("REDIS_URL", "redis://x")]).unwrap();
        assert!(c.cors_allowed_origins.is_empty());
        let c = config(&[
            ("REDIS_URL", "redis://x"),
            (
                "CORS_ALLOWED_ORIGINS",
                " https://App.example.com, http://127.0.0.1:8080 , http://localhost:8080",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.cors_allowed_origins,
            [
                "https://app.example.com",
                "http://127.0.0.1:8080",
                "http://localhost:8080"
            ]
        );
        for bad in [
            "*",
            "app.example.com",
            "https://app.example.com/",
            "https://*.example.com",
            "ftp://x",
            "https://",
            "https://a\tb",
        ] {
            let err =
                config(&[("REDIS_URL", "redis://x"), ("CORS_ALLOWED_ORIGINS", bad)]).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("configuration: CORS_ALLOWED_ORIGINS is invalid"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn debug_output_hides_the_api_key() {
        let c = config(&[
            ("REDIS_URL", "redis://x"),
            ("YOUTUBE_API_KEY", "AIzaSECRET"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("AIzaSECRET"));
    }

    #[test]
    fn push_settings_name_what_is_missing_and_hide_the_secret() {
        let missing = PushConfig::from_lookup(|_| None).unwrap_err();
        assert!(missing.to_string().contains("PUSH_SECRET"), "{missing}");
        let vars = |name: &str| match name {
            "PUSH_SECRET" => Some("master-secret-value-0123".to_owned()),
            "PUSH_MAX_SUBSCRIPTIONS" => Some("500".to_owned()),
            _ => None,
        };
        let c = PushConfig::from_lookup(vars).unwrap();
        assert_eq!(c.max_subscriptions, 500);
        assert_eq!(c.hub_url, DEFAULT_PUSH_HUB_URL);
        assert_eq!(c.lease_secs, 432_000);
        assert!(!format!("{c:?}").contains("master-secret-value"));
        assert_eq!(
            c.require_callback_url().unwrap_err().to_string(),
            "configuration: PUSH_CALLBACK_URL is required but not set"
        );
        let bad = PushConfig::from_lookup(|name| match name {
            "PUSH_SECRET_ID" => Some("reco/push".to_owned()),
            "PUSH_LEASE_SECONDS" => Some("five days".to_owned()),
            _ => None,
        })
        .unwrap_err();
        assert!(bad.to_string().contains("PUSH_LEASE_SECONDS"), "{bad}");
    }
}
