//! The quota guard: every YouTube call asks here first (DESIGN §4).
//!
//! INTERFACE DRAFT — the full guard (smoothing, margin, priorities, breaker, backoff,
//! bounded wait) is being built against this interface.

use std::time::Duration;

use crate::clock::{SharedClock, next_pacific_midnight, pacific_date};
use crate::store::RedisConn;

/// Limits the guard enforces; defaults are Google's published quotas and safe smoothing.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaLimits {
    pub daily_units: u64,
    pub daily_searches: u64,
    /// Fraction of each daily bucket held back for anything else on the Google project.
    pub margin: f64,
    pub max_calls_per_second: u64,
    pub max_units_per_minute: u64,
    /// Fraction of each daily bucket background warming may spend.
    pub background_share: f64,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        Self {
            daily_units: 10_000,
            daily_searches: 100,
            margin: 0.05,
            max_calls_per_second: 10,
            max_units_per_minute: 300,
            background_share: 0.8,
        }
    }
}

/// What a YouTube call costs, per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub units: u64,
    pub searches: u64,
}

impl Cost {
    pub const ONE_UNIT: Cost = Cost { units: 1, searches: 0 };
    pub const SEARCH: Cost = Cost { units: 0, searches: 1 };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// A user is waiting (force_refresh): may use the whole day past the margin.
    Interactive,
    /// Warming: may use only `background_share` of each day.
    Background,
}

/// The limit that refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    DailyUnits,
    DailySearches,
    PerSecond,
    PerMinute,
    /// YouTube said `quotaExceeded`: closed until Pacific midnight.
    DailyBreaker,
    /// YouTube said `rateLimitExceeded`: a short shared backoff.
    Backoff,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Limit::DailyUnits => "daily units",
            Limit::DailySearches => "daily searches",
            Limit::PerSecond => "calls per second",
            Limit::PerMinute => "units per minute",
            Limit::DailyBreaker => "daily quota breaker",
            Limit::Backoff => "rate-limit backoff",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Denied { retry_after_ms: u64, limit: Limit },
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("quota guard: redis did not answer within {0:?}; no YouTube call made")]
    Timeout(Duration),
    #[error("quota guard: redis unavailable; no YouTube call made: {0}")]
    Unavailable(#[from] redis::RedisError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaLevel {
    Ok,
    Limited,
    Exhausted,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BucketState {
    pub name: &'static str,
    pub used: u64,
    pub limit: u64,
    pub left: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuotaState {
    pub day: String,
    pub buckets: Vec<BucketState>,
    pub breaker_until_ms: Option<i64>,
    pub backoff_until_ms: Option<i64>,
}

#[derive(Clone)]
pub struct QuotaGuard {
    redis: RedisConn,
    limits: QuotaLimits,
    clock: SharedClock,
    timeout: Duration,
}

const DAILY_SCRIPT: &str = r#"
local units_used = tonumber(redis.call('GET', KEYS[1]) or '0')
local searches_used = tonumber(redis.call('GET', KEYS[2]) or '0')
local units, searches = tonumber(ARGV[1]), tonumber(ARGV[2])
if units_used + units > tonumber(ARGV[3]) then return {0, 1} end
if searches_used + searches > tonumber(ARGV[4]) then return {0, 2} end
if units > 0 then redis.call('INCRBY', KEYS[1], units) redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
if searches > 0 then redis.call('INCRBY', KEYS[2], searches) redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
return {1, 0}
"#;

impl QuotaGuard {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);

    pub fn new(redis: RedisConn, limits: QuotaLimits, clock: SharedClock) -> Self {
        Self { redis, limits, clock, timeout: Self::DEFAULT_TIMEOUT }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn limits(&self) -> &QuotaLimits {
        &self.limits
    }

    pub async fn admit(&self, cost: Cost, _priority: Priority) -> Result<Admission, QuotaError> {
        let now = self.clock.now();
        let day = pacific_date(now);
        let ttl = next_pacific_midnight(now).as_millisecond() - now.as_millisecond() + 3_600_000;
        let cap = |n: u64| ((n as f64) * (1.0 - self.limits.margin)).floor() as u64;
        let script = redis::Script::new(DAILY_SCRIPT);
        let mut conn = self.redis.clone();
        let mut inv = script.prepare_invoke();
        inv.key(format!("quota:{{yt}}:{day}:units"))
            .key(format!("quota:{{yt}}:{day}:search"))
            .arg(cost.units)
            .arg(cost.searches)
            .arg(cap(self.limits.daily_units))
            .arg(cap(self.limits.daily_searches))
            .arg(ttl);
        let (ok, which): (i64, i64) = tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn))
            .await
            .map_err(|_| QuotaError::Timeout(self.timeout))??;
        if ok == 1 {
            return Ok(Admission::Allowed);
        }
        let retry_after_ms = (next_pacific_midnight(now).as_millisecond() - now.as_millisecond()) as u64;
        let limit = if which == 1 { Limit::DailyUnits } else { Limit::DailySearches };
        Ok(Admission::Denied { retry_after_ms, limit })
    }

    pub async fn trip_daily_breaker(&self) -> Result<(), QuotaError> {
        Ok(())
    }

    pub async fn trip_backoff(&self, _base: Duration) -> Result<(), QuotaError> {
        Ok(())
    }
}
