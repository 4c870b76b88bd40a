//! The quota guard: every YouTube call asks here first (ARCHITECTURE.md § Quota guard).
//!
//! The state lives in Redis, not in the Lambda instance, because any number of instances
//! spend the same Google project's quota. Each check is one EVALSHA of `guard.lua`: one
//! round trip, and atomic, so concurrent instances cannot both take the last unit.
//!
//! * Daily buckets are fixed windows keyed by the Pacific date, because that is how Google
//!   meters them (reset at America/Los_Angeles midnight).
//! * Short windows (calls per second, units per minute) are *sliding logs*, not GCRA or a
//!   token bucket. Google's own short windows are unpublished and their alignment is
//!   unknown; "at most N in any interval of length W" is the only rule that stays under a
//!   limit N/W whatever the provider's window alignment. A token bucket or GCRA with a
//!   burst allowance admits up to ~2N within one window (a full burst, then the refill),
//!   which a fixed-window provider rejects; GCRA without burst forbids the bursts a user's
//!   refresh needs. The log costs at most N small list elements per window.
//! * Each short window is lengthened by an allowance (default 100 ms) for the time between
//!   the check and the request reaching Google: calls admitted W apart can arrive closer
//!   together than W when the first one is slower on the wire.
//! * A margin (default 5%) of each daily bucket is never spent, for anything else on the
//!   same Google project; background warming may spend only `background_share` of what is
//!   left, counted against the day's *total* spend, so interactive requests always find
//!   headroom however busy the warmer was.
//! * YouTube's own word wins: `quotaExceeded` trips the refused bucket's breaker until the
//!   end of the Pacific day the call was charged to (see [`QuotaGuard::trip_daily_breaker`])
//!   and `rateLimitExceeded` a short shared backoff; all are checked inside the same
//!   script. Units and searches have a breaker each, so running out of searches never
//!   closes the units every other call needs.
//! * A user who forces refreshes spends interactive quota on everyone's behalf, so each
//!   user has a daily budget of it ([`UserBudget`]), counted in the same script when the
//!   spend is made [`on_behalf_of`] that user.
//! * It fails closed: Redis unreachable or slower than the bound means no YouTube call.

pub mod pacing;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::ScriptInvocation;

use jiff::Timestamp;

use crate::clock::{SharedClock, next_pacific_midnight, pacific_date, pacific_day_start};
use crate::domain::UserId;
use crate::store::RedisConn;

tokio::task_local! {
    /// The user on whose behalf the current task spends interactive quota. Set by the
    /// API around a `force_refresh` with [`on_behalf_of`]; the guard reads it in
    /// [`QuotaGuard::admit`]. A task-local rather than a parameter because the spend is
    /// made deep in the engine's sources, which serve every user and every priority alike.
    static SPENDER: UserId;
}

/// Runs `fut` with its interactive YouTube spend counted against `user`'s daily
/// [`UserBudget`].
pub async fn on_behalf_of<F: std::future::Future>(user: UserId, fut: F) -> F::Output {
    SPENDER.scope(user, fut).await
}

/// How much interactive quota one user may spend per Pacific day (0 = no cap). Without
/// it one account forcing refreshes with ever-new topics could spend everyone's searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserBudget {
    pub units: u64,
    pub searches: u64,
}

impl Default for UserBudget {
    /// About ten forced refreshes' worth of units, and 5 of the day's 100 searches.
    fn default() -> Self {
        Self {
            units: 200,
            searches: 5,
        }
    }
}

/// What an admitted call was charged, and when: a `quotaExceeded` answer to it belongs to
/// the Pacific day of `at`, whenever the answer arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charge {
    pub at: Timestamp,
    pub cost: Cost,
}

/// Limits the guard enforces; defaults are Google's published quotas and safe smoothing.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaLimits {
    pub daily_units: u64,
    pub daily_searches: u64,
    /// Fraction of each daily bucket held back for anything else on the Google project.
    pub margin: f64,
    /// 0 = not enforced.
    pub max_calls_per_second: u64,
    /// Cost-weighted (a search weighs 1). 0 = not enforced.
    pub max_units_per_minute: u64,
    /// Fraction of each daily bucket (after the margin) background warming may spend.
    pub background_share: f64,
    /// Hold background spend to the Pacific day's pace and release the unused
    /// interactive reserve in the evening ([`pacing`]). Off: `background_share` of the day
    /// may be spent at any hour.
    pub day_pacing: bool,
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
            day_pacing: true,
        }
    }
}

impl QuotaLimits {
    /// How much of a daily bucket of `daily` a call of `priority` may bring the day's total
    /// spend to. Rounded down: the guard never plans to spend a unit it does not have.
    pub fn daily_cap(&self, daily: u64, priority: Priority) -> u64 {
        let keep = 1.0 - self.margin.clamp(0.0, 1.0);
        let share = match priority {
            Priority::Interactive => 1.0,
            Priority::Background => self.background_share.clamp(0.0, 1.0),
        };
        // The epsilon absorbs binary fractions: 10_000 × 0.95 must give 9_500, not 9_499.
        let cap = (daily as f64 * keep * share + 1e-6).floor();
        (cap.max(0.0) as u64).min(daily)
    }

    pub fn units_cap(&self, priority: Priority) -> u64 {
        self.daily_cap(self.daily_units, priority)
    }

    pub fn searches_cap(&self, priority: Priority) -> u64 {
        self.daily_cap(self.daily_searches, priority)
    }
}

/// What a YouTube call costs, per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub units: u64,
    pub searches: u64,
}

impl Cost {
    pub const ONE_UNIT: Cost = Cost {
        units: 1,
        searches: 0,
    };
    pub const SEARCH: Cost = Cost {
        units: 0,
        searches: 1,
    };

    /// Weight in the per-minute window: Google counts a search call there like a unit.
    pub fn minute_weight(&self) -> u64 {
        self.units + self.searches
    }
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
    /// YouTube said `quotaExceeded` to a unit call: closed until Pacific midnight.
    DailyBreaker,
    /// YouTube said `rateLimitExceeded`: a short shared backoff.
    Backoff,
    /// YouTube said `quotaExceeded` to a search: searches closed until Pacific midnight.
    SearchBreaker,
    /// Background spend of units is ahead of the Pacific day's pace ([`pacing`]): more
    /// are allowed within seconds or minutes.
    DayPace,
    /// Background searches are ahead of the day's pace: the next is allowed within the
    /// half hour.
    SearchPace,
    /// The user on whose behalf the call is made has spent their [`UserBudget`] today.
    UserBudget,
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
            Limit::SearchBreaker => "daily search breaker",
            Limit::UserBudget => "user's daily budget",
            Limit::DayPace => "background day pace",
            Limit::SearchPace => "background search pace",
        })
    }
}

impl Limit {
    /// Daily limits only reopen at Pacific midnight; callers stop trying until then.
    pub fn is_daily(&self) -> bool {
        matches!(
            self,
            Limit::DailyUnits
                | Limit::DailySearches
                | Limit::DailyBreaker
                | Limit::SearchBreaker
                | Limit::UserBudget
        )
    }

    fn from_code(code: i64) -> Option<Limit> {
        Some(match code {
            1 => Limit::DailyUnits,
            2 => Limit::DailySearches,
            3 => Limit::PerSecond,
            4 => Limit::PerMinute,
            5 => Limit::DailyBreaker,
            6 => Limit::Backoff,
            7 => Limit::SearchBreaker,
            8 => Limit::UserBudget,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    Denied { retry_after_ms: u64, limit: Limit },
}

impl Admission {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Admission::Allowed)
    }
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

/// A limit the guard counts spend against: the two daily buckets and the two short windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// The day's units (every method but search).
    Units,
    /// The day's `search.list` calls.
    Search,
    /// Calls in any second.
    PerSecond,
    /// Cost-weighted units in any minute.
    PerMinute,
}

impl Bucket {
    pub fn name(self) -> &'static str {
        match self {
            Bucket::Units => "units",
            Bucket::Search => "search",
            Bucket::PerSecond => "per_second",
            Bucket::PerMinute => "per_minute",
        }
    }
}

impl std::fmt::Display for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`, so `{:<8}` aligns it.
        f.pad(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BucketState {
    pub name: Bucket,
    pub used: u64,
    /// What interactive calls may bring `used` to (after the margin).
    pub limit: u64,
    pub left: u64,
    /// What background calls may bring `used` to by the end of the day.
    pub background_limit: u64,
    /// What background calls may bring `used` to now, held to the day's pace.
    pub background_now: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuotaState {
    pub day: String,
    /// The daily buckets: `units`, `search`.
    pub buckets: Vec<BucketState>,
    /// The units bucket's breaker (YouTube refused a unit call today).
    pub breaker_until_ms: Option<i64>,
    /// The search bucket's breaker (YouTube refused a search today).
    pub search_breaker_until_ms: Option<i64>,
    pub backoff_until_ms: Option<i64>,
    /// The short windows as of now: `per_second` (calls), `per_minute` (units); a limit of
    /// 0 means not enforced.
    pub windows: Vec<BucketState>,
}

impl QuotaState {
    /// Exhausted: no interactive call can pass before midnight (breaker, or a daily bucket at
    /// its cap). Limited: interactive calls still pass but background ones or all for a
    /// moment do not (background share spent, or a backoff).
    pub fn level(&self) -> QuotaLevel {
        if self.breaker_until_ms.is_some()
            || self.search_breaker_until_ms.is_some()
            || self.buckets.iter().any(|b| b.left == 0)
        {
            QuotaLevel::Exhausted
        } else if self.backoff_until_ms.is_some()
            || self.buckets.iter().any(|b| b.used >= b.background_limit)
        {
            QuotaLevel::Limited
        } else {
            QuotaLevel::Ok
        }
    }

    pub fn bucket(&self, bucket: Bucket) -> Option<&BucketState> {
        self.buckets
            .iter()
            .chain(&self.windows)
            .find(|b| b.name == bucket)
    }

    /// Whether background warming can spend nothing more today: the units breaker is set,
    /// or the units bucket is within [`DAY_SPENT_WITHIN`] of the day's background cap.
    /// The search bucket is left out: a warm without searches still builds a pool.
    pub fn background_closed_for_the_day(&self) -> bool {
        self.breaker_until_ms.is_some()
            || self.bucket(Bucket::Units).is_some_and(|b| {
                b.background_limit > 0 && b.used + DAY_SPENT_WITHIN >= b.background_limit
            })
    }
}

/// Background units left in a day below which the day counts as spent: fewer than a
/// warm of stale sources needs. The day's pace leaves the last units of a day to its
/// last minutes, when a deferred warm would only find them gone.
pub const DAY_SPENT_WITHIN: u64 = 10;

/// Quota key names. They all carry [`HASH_TAG`], so every key one script touches hashes
/// to the same cluster slot (Redis Cluster and ElastiCache Serverless refuse scripts that
/// span slots).
pub mod keys {
    pub const HASH_TAG: &str = "{quota}";

    /// Spend of the `units` bucket on a Pacific date (`YYYY-MM-DD`).
    pub fn units(day: &str) -> String {
        format!("reco:{HASH_TAG}:units:{day}")
    }
    /// Spend of the `search` bucket on a Pacific date.
    pub fn searches(day: &str) -> String {
        format!("reco:{HASH_TAG}:search:{day}")
    }
    pub fn per_second() -> String {
        format!("reco:{HASH_TAG}:win:second")
    }
    pub fn per_minute() -> String {
        format!("reco:{HASH_TAG}:win:minute")
    }
    /// The units bucket's breaker. (The key kept its name from when there was one.)
    pub fn breaker() -> String {
        format!("reco:{HASH_TAG}:breaker")
    }
    pub fn backoff() -> String {
        format!("reco:{HASH_TAG}:backoff")
    }
    /// The search bucket's breaker.
    pub fn search_breaker() -> String {
        format!("reco:{HASH_TAG}:breaker:search")
    }
    /// Each user's interactive spend on a Pacific date: a hash, `<user>:u` and `<user>:s`.
    pub fn user_spend(day: &str) -> String {
        format!("reco:{HASH_TAG}:user-spend:{day}")
    }
    /// Every key of a day's check, in the script's KEYS order.
    pub fn all(day: &str) -> [String; 8] {
        [
            units(day),
            searches(day),
            per_second(),
            per_minute(),
            breaker(),
            backoff(),
            search_breaker(),
            user_spend(day),
        ]
    }
}

/// The guard's script, as Redis runs it (benchmarks time it bare).
pub const GUARD_LUA: &str = include_str!("guard.lua");

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GUARD_LUA));

/// How long a day's counters outlive the day: long enough for any clock skew between
/// instances around midnight, short enough that Redis does not collect days.
const DAY_KEY_GRACE_MS: i64 = 2 * 3_600_000;

/// How far our clock and Google's may disagree about Pacific midnight. A `quotaExceeded`
/// for a call we charged within this long after midnight may be Google still counting the
/// day before: it closes the bucket only until this long after midnight, and a second one
/// after that closes the rest of the day.
pub const MIDNIGHT_SKEW_MS: i64 = 10 * 60_000;

/// How many times a trip's Redis write is tried. A trip is rare (a few a day) and the
/// only thing that stops the other instances' calls, so it may wait longer than an admit.
const TRIP_ATTEMPTS: u32 = 3;

/// The breakers and backoff this process itself tripped, until when (Unix ms; 0 = none).
/// YouTube's refusal is remembered here before the shared write is tried: a write that
/// fails (Redis slow under load, or down) must not let this instance meet the same
/// refusal again, call after call, until some write gets through.
#[derive(Debug, Default)]
struct LocalTrips {
    breaker: AtomicI64,
    search_breaker: AtomicI64,
    backoff: AtomicI64,
}

impl LocalTrips {
    fn slot(&self, op: &str) -> Option<&AtomicI64> {
        match op {
            "breaker" => Some(&self.breaker),
            "search_breaker" => Some(&self.search_breaker),
            "backoff" => Some(&self.backoff),
            _ => None,
        }
    }

    /// The refusal a call costing `cost` meets at `now_ms` from what this process
    /// remembers, before Redis is asked.
    fn denial(&self, now_ms: i64, cost: Cost) -> Option<Admission> {
        let open = |slot: &AtomicI64| {
            let until = slot.load(Ordering::Relaxed);
            (until > now_ms).then(|| (until - now_ms) as u64)
        };
        let (limit, wait) = if cost.units > 0
            && let Some(wait) = open(&self.breaker)
        {
            (Limit::DailyBreaker, wait)
        } else if cost.searches > 0
            && let Some(wait) = open(&self.search_breaker)
        {
            (Limit::SearchBreaker, wait)
        } else {
            (Limit::Backoff, open(&self.backoff)?)
        };
        Some(Admission::Denied {
            retry_after_ms: wait,
            limit,
        })
    }

    /// `shared` (from Redis), or this process's own trip when it ends later.
    fn merged(&self, slot: &AtomicI64, shared: Option<i64>, now_ms: i64) -> Option<i64> {
        let local = slot.load(Ordering::Relaxed);
        match shared {
            Some(s) if s >= local => Some(s),
            _ if local > now_ms => Some(local),
            other => other,
        }
    }
}

#[derive(Clone)]
pub struct QuotaGuard {
    redis: RedisConn,
    limits: QuotaLimits,
    clock: SharedClock,
    timeout: Duration,
    window_allowance: Duration,
    user_budget: UserBudget,
    local: Arc<LocalTrips>,
}

impl std::fmt::Debug for QuotaGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaGuard")
            .field("limits", &self.limits)
            .field("timeout", &self.timeout)
            .field("window_allowance", &self.window_allowance)
            .field("user_budget", &self.user_budget)
            .finish_non_exhaustive()
    }
}

impl QuotaGuard {
    /// A Lambda request waits this long for the guard at most, then serves what it has.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
    /// Added to each short window; see the module docs.
    pub const DEFAULT_WINDOW_ALLOWANCE: Duration = Duration::from_millis(100);

    pub fn new(redis: RedisConn, limits: QuotaLimits, clock: SharedClock) -> Self {
        Self {
            redis,
            limits,
            clock,
            timeout: Self::DEFAULT_TIMEOUT,
            window_allowance: Self::DEFAULT_WINDOW_ALLOWANCE,
            user_budget: UserBudget::default(),
            local: Arc::default(),
        }
    }

    /// Each user's daily cap on interactive spend made [`on_behalf_of`] them.
    pub fn with_user_budget(mut self, budget: UserBudget) -> Self {
        self.user_budget = budget;
        self
    }

    pub fn user_budget(&self) -> UserBudget {
        self.user_budget
    }

    /// The time the guard's windows and days are measured in (and the client paces by).
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The bounded wait for Redis; past it the check fails closed with [`QuotaError::Timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How much longer than nominal the short windows are (latency between check and call).
    pub fn with_window_allowance(mut self, allowance: Duration) -> Self {
        self.window_allowance = allowance;
        self
    }

    pub fn limits(&self) -> &QuotaLimits {
        &self.limits
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn second_window_ms(&self) -> i64 {
        1_000 + self.window_allowance.as_millis() as i64
    }

    fn minute_window_ms(&self) -> i64 {
        60_000 + self.window_allowance.as_millis() as i64
    }

    /// Asks to spend `cost` now. `Allowed` has already debited every bucket the call
    /// touches (charge before calling, never refund: Google charges failed calls too); a
    /// denial debits nothing. An error means Redis did not decide: make no call.
    ///
    /// An interactive call made [`on_behalf_of`] a user is also counted against that
    /// user's [`UserBudget`].
    pub async fn admit(&self, cost: Cost, priority: Priority) -> Result<Admission, QuotaError> {
        self.admit_at(self.clock.now(), cost, priority).await
    }

    /// [`QuotaGuard::admit`] at the instant `now`, which the caller keeps: a
    /// `quotaExceeded` answer is then tripped with the [`Charge`] of that instant.
    pub async fn admit_at(
        &self,
        now: Timestamp,
        cost: Cost,
        priority: Priority,
    ) -> Result<Admission, QuotaError> {
        let now_ms = now.as_millisecond();
        if let Some(denied) = self.local.denial(now_ms, cost) {
            return Ok(denied);
        }
        let day = pacific_date(now);
        let to_midnight = (next_pacific_midnight(now).as_millisecond() - now_ms).max(1);
        let l = &self.limits;
        let (units_cap, searches_cap) = match priority {
            Priority::Interactive => (l.units_cap(priority), l.searches_cap(priority)),
            Priority::Background => (
                pacing::background_cap_at(l, l.daily_units, now),
                pacing::background_cap_at(l, l.daily_searches, now),
            ),
        };
        let mut inv = SCRIPT.prepare_invoke();
        for key in keys::all(&day) {
            inv.key(key);
        }
        inv.arg("admit")
            .arg(now_ms)
            .arg(cost.units)
            .arg(cost.searches)
            .arg(units_cap)
            .arg(searches_cap)
            .arg(to_midnight)
            .arg(to_midnight + DAY_KEY_GRACE_MS)
            .arg(self.limits.max_calls_per_second)
            .arg(self.second_window_ms())
            .arg(self.limits.max_units_per_minute)
            .arg(self.minute_window_ms());
        let spender = match priority {
            Priority::Interactive => SPENDER.try_with(|u| u.to_string()).unwrap_or_default(),
            Priority::Background => String::new(),
        };
        inv.arg(spender)
            .arg(self.user_budget.units)
            .arg(self.user_budget.searches);
        let (allowed, code, retry_after_ms): (i64, i64, i64) = self.run(&inv).await?;
        if allowed == 1 {
            return Ok(Admission::Allowed);
        }
        let limit = Limit::from_code(code).ok_or_else(|| {
            redis::RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "quota guard: unknown limit code",
                code.to_string(),
            ))
        })?;
        let mut retry_after_ms = retry_after_ms.max(1) as u64;
        let mut limit = limit;
        // Background refused below the day's cap: the pace held it, not the day.
        let paced = |daily: u64, cap: u64| cap < pacing::background_day_cap(l, daily);
        if priority == Priority::Background {
            let held = match limit {
                Limit::DailyUnits if paced(l.daily_units, units_cap) => Some((
                    Limit::DayPace,
                    pacing::ms_until_paced(l, l.daily_units, cost.units),
                )),
                Limit::DailySearches if paced(l.daily_searches, searches_cap) => Some((
                    Limit::SearchPace,
                    pacing::ms_until_paced(l, l.daily_searches, cost.searches),
                )),
                _ => None,
            };
            if let Some((pace, wait)) = held {
                limit = pace;
                retry_after_ms = wait.min(retry_after_ms);
            }
        }
        if limit == Limit::Backoff {
            // Spread the herd: every instance sees the same shared instant.
            retry_after_ms += jitter_ms((retry_after_ms / 10).min(250));
        }
        Ok(Admission::Denied {
            retry_after_ms,
            limit,
        })
    }

    /// YouTube said `quotaExceeded`/`dailyLimitExceeded` to the call charged `charge`:
    /// whatever the counters say (they may have been lost, or someone else spends on the
    /// project), every instance is refused calls from the refused bucket (units:
    /// [`Limit::DailyBreaker`], searches: [`Limit::SearchBreaker`]) until the end of the
    /// Pacific day the call was charged to. The day is the charge's, not the answer's: an
    /// answer that arrives after midnight closes nothing of the new day. A call charged in
    /// the first [`MIDNIGHT_SKEW_MS`] of a day may have met Google's count of the day
    /// before (its clock and ours disagree a little): that closes the bucket only until
    /// the skew has passed.
    pub async fn trip_daily_breaker(&self, charge: Charge) -> Result<(), QuotaError> {
        let now_ms = self.clock.now_ms();
        let until = breaker_until(charge.at);
        if until <= now_ms {
            tracing::info!(
                charged_day = %pacific_date(charge.at),
                "quotaExceeded for a day that has ended; no breaker"
            );
            return Ok(());
        }
        let ttl = until - now_ms + DAY_KEY_GRACE_MS;
        if charge.cost.units > 0 {
            self.trip("breaker", until, ttl).await?;
        }
        if charge.cost.searches > 0 {
            self.trip("search_breaker", until, ttl).await?;
        }
        Ok(())
    }

    /// YouTube said `rateLimitExceeded`: every instance is refused with [`Limit::Backoff`]
    /// for `base` plus up to half of it again, at random, so instances that tripped it
    /// together do not all come back in the same millisecond. A longer backoff already in
    /// place is kept; escalation is the caller's (it picks `base`).
    pub async fn trip_backoff(&self, base: Duration) -> Result<(), QuotaError> {
        let now = self.clock.now().as_millisecond();
        let base_ms = base.as_millis().min(i64::MAX as u128 / 4) as u64;
        let until = now + (base_ms + jitter_ms(base_ms / 2)) as i64;
        self.trip("backoff", until, until - now + 60_000).await
    }

    /// Remembers the trip in this process, then writes it for every instance, trying
    /// [`TRIP_ATTEMPTS`] times.
    async fn trip(&self, op: &str, until_ms: i64, ttl_ms: i64) -> Result<(), QuotaError> {
        if let Some(slot) = self.local.slot(op) {
            slot.fetch_max(until_ms, Ordering::Relaxed);
        }
        let day = pacific_date(self.clock.now());
        let mut inv = SCRIPT.prepare_invoke();
        for key in keys::all(&day) {
            inv.key(key);
        }
        inv.arg(op)
            .arg(self.clock.now_ms())
            .arg(until_ms)
            .arg(ttl_ms.max(1));
        let mut attempt = 1;
        loop {
            match self.run::<i64>(&inv).await {
                Ok(_stored) => return Ok(()),
                Err(e) if attempt >= TRIP_ATTEMPTS => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, op, "could not write a trip; trying again");
                    attempt += 1;
                }
            }
        }
    }

    /// The day's spend and the breaker/backoff, for `meta.quota_state` and metrics. One
    /// round trip, and it writes nothing.
    pub async fn state(&self) -> Result<QuotaState, QuotaError> {
        let now = self.clock.now();
        let now_ms = now.as_millisecond();
        let day = pacific_date(now);
        let mut inv = SCRIPT.prepare_invoke();
        for key in keys::all(&day) {
            inv.key(key);
        }
        inv.arg("state")
            .arg(now.as_millisecond())
            .arg(self.second_window_ms())
            .arg(self.minute_window_ms());
        let (units, searches, breaker, backoff, second, minute, search_breaker): (
            u64,
            u64,
            i64,
            i64,
            u64,
            u64,
            i64,
        ) = self.run(&inv).await?;
        let l = &self.limits;
        let daily = |name, used: u64, daily: u64| {
            let limit = l.daily_cap(daily, Priority::Interactive);
            BucketState {
                name,
                used,
                limit,
                left: limit.saturating_sub(used),
                background_limit: pacing::background_day_cap(l, daily),
                background_now: pacing::background_cap_at(l, daily, now),
            }
        };
        let window = |name, used: u64, limit: u64| BucketState {
            name,
            used,
            limit,
            left: if limit == 0 {
                u64::MAX
            } else {
                limit.saturating_sub(used)
            },
            background_limit: limit,
            background_now: limit,
        };
        Ok(QuotaState {
            day,
            buckets: vec![
                daily(Bucket::Units, units, l.daily_units),
                daily(Bucket::Search, searches, l.daily_searches),
            ],
            breaker_until_ms: self.local.merged(
                &self.local.breaker,
                (breaker > 0).then_some(breaker),
                now_ms,
            ),
            search_breaker_until_ms: self.local.merged(
                &self.local.search_breaker,
                (search_breaker > 0).then_some(search_breaker),
                now_ms,
            ),
            backoff_until_ms: self.local.merged(
                &self.local.backoff,
                (backoff > 0).then_some(backoff),
                now_ms,
            ),
            windows: vec![
                window(Bucket::PerSecond, second, l.max_calls_per_second),
                window(Bucket::PerMinute, minute, l.max_units_per_minute),
            ],
        })
    }

    /// What `user` has spent of their [`UserBudget`] today: (units, searches). One
    /// round trip, read-only.
    pub async fn user_spend(&self, user: &UserId) -> Result<(u64, u64), QuotaError> {
        let key = keys::user_spend(&pacific_date(self.clock.now()));
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(key)
            .arg(format!("{user}:u"))
            .arg(format!("{user}:s"));
        let mut conn = self.redis.clone();
        let (units, searches): (Option<u64>, Option<u64>) =
            match tokio::time::timeout(self.timeout, cmd.query_async(&mut conn)).await {
                Ok(result) => result?,
                Err(_) => return Err(QuotaError::Timeout(self.timeout)),
            };
        Ok((units.unwrap_or(0), searches.unwrap_or(0)))
    }

    /// Whether `user` can make no more interactive unit calls today.
    pub async fn user_budget_spent(&self, user: &UserId) -> Result<bool, QuotaError> {
        if self.user_budget.units == 0 {
            return Ok(false);
        }
        let (units, _) = self.user_spend(user).await?;
        Ok(units >= self.user_budget.units)
    }

    /// Runs the script within the bound. The bound wraps everything, connecting included:
    /// the connection is lazy, and an unreachable Redis must cost a request at most this.
    /// A check that times out may still have been debited in Redis; that spend is lost,
    /// which is the safe side.
    async fn run<T: redis::FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, QuotaError> {
        let mut conn = self.redis.clone();
        match tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn)).await {
            Ok(result) => result.map_err(QuotaError::Unavailable),
            Err(_) => Err(QuotaError::Timeout(self.timeout)),
        }
    }
}

/// When a breaker tripped for a call charged at `at` reopens: the end of `at`'s Pacific
/// day, or the end of the midnight skew allowance when `at` is within it.
pub fn breaker_until(at: Timestamp) -> i64 {
    let day_end = next_pacific_midnight(at).as_millisecond();
    let day_start = pacific_day_start(at).as_millisecond();
    if at.as_millisecond() - day_start < MIDNIGHT_SKEW_MS {
        (day_start + MIDNIGHT_SKEW_MS).min(day_end)
    } else {
        day_end
    }
}

/// A random number in `0..=max`, from std's randomly keyed hasher: jitter needs no
/// cryptographic randomness and the core crate no extra dependency.
fn jitter_ms(max: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    if max == 0 {
        return 0;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(SEQ.fetch_add(1, Ordering::Relaxed));
    h.finish() % (max + 1)
}

#[cfg(test)]
mod tests;
