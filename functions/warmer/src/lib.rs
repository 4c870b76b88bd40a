//! SQS warm requests → pools. Reports partial batch failures so one bad message never
//! re-runs the good ones; defers on quota instead of failing; lets poison reach the DLQ.
//!
//! Each message is done at most once per pool: duplicates in a batch are dropped, a
//! per-user lock keeps two instances from building the same pool at once, and under the
//! lock a request is skipped when the user's pool was generated after the request was
//! made (an at-least-once redelivery, or a second instance that got the lock just after
//! the first released it).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use reco_core::UserId;
use reco_core::clock::next_pacific_midnight;
use reco_core::engine::{Engine, EngineError, POOL_TARGET, WarmOutcome};
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::queue::WarmQueue;
use reco_core::quota::{Priority, QuotaGuard};
use reco_core::store::{RedisConn, StoreError, keys};
use reco_core::wiring::Services;
use redis::AsyncCommands;
use tokio::sync::Semaphore;

/// Messages of one batch warmed at once; bounded so a batch cannot outrun Redis or the
/// guard's per-second smoothing.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// A pool built while quota was denied counts as done from this size up (about five
/// refreshes' worth): smaller, it is kept and served, and the warm is deferred for the
/// rest. A nearly full pool is not worth a second build the next day.
pub const SHORT_POOL: usize = POOL_TARGET / 2;
/// SQS refuses a `DelaySeconds` above 15 minutes; a longer wait is a chain of deferrals.
pub const SQS_MAX_DELAY: Duration = Duration::from_secs(900);

pub struct Warmer {
    pub engine: Engine,
    pub redis: RedisConn,
    pub queue: WarmQueue,
    pub lock_ttl: Duration,
    pub concurrency: usize,
    /// The longest single deferral (one link of the chain). [`SQS_MAX_DELAY`] in
    /// production; tests whose clocks jump across Pacific midnight shorten it so a
    /// deferred message comes back within seconds of real time and notices the new day.
    pub max_defer: Duration,
    /// Read before re-running a deferred request, so a chain link that comes back while
    /// the day is still spent is re-deferred without rebuilding the pool. `None`: always
    /// run the warm (the guard inside the engine still refuses the calls).
    pub guard: Option<QuotaGuard>,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Warmed(WarmOutcome),
    /// Another instance holds the user's lock: that one does the work.
    Locked,
    /// A duplicate of an earlier message in the same batch.
    Duplicate,
    /// The user's pool was generated after this request was made: nothing to do.
    AlreadyFresh,
    /// Quota is short: re-sent with a delay, the original is done. `partial_pool` is the
    /// size of the pool built from what quota allowed (kept and served meanwhile), 0 when
    /// nothing was built.
    Deferred {
        delay_secs: u64,
        partial_pool: usize,
    },
    /// Cannot ever succeed: left to the redrive policy (DLQ).
    Poison(String),
    /// May succeed later: SQS retries it.
    Transient(String),
}

impl ItemOutcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, ItemOutcome::Poison(_) | ItemOutcome::Transient(_))
    }
}

const RELEASE_LOCK: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#;

impl Warmer {
    /// The warmer as the function's `main` builds it: the services' engine, Redis and
    /// guard, the config's lock TTL, the default concurrency and SQS's longest delay.
    pub fn new(services: &Services, queue: WarmQueue) -> Self {
        Self {
            engine: services.engine.clone(),
            redis: services.redis.clone(),
            queue,
            lock_ttl: services.config.prefetch_lock_ttl,
            concurrency: DEFAULT_CONCURRENCY,
            max_defer: SQS_MAX_DELAY,
            guard: Some(services.guard.clone()),
        }
    }

    /// Runs a batch; returns the outcome of every record, in order, with its message id.
    pub async fn run_batch(self: &Arc<Self>, event: SqsEvent) -> Vec<(String, ItemOutcome)> {
        let semaphore = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let mut first_for_user: HashMap<String, usize> = HashMap::new();
        let mut parsed: Vec<(String, Result<WarmRequest, String>)> = Vec::new();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let body = record.body.unwrap_or_default();
            parsed.push((id, WarmRequest::parse(&body).map_err(|e| e.to_string())));
        }
        let mut tasks = Vec::new();
        for (index, (message_id, request)) in parsed.iter().enumerate() {
            let request = match request {
                Err(why) => {
                    tracing::error!(message_id, %why, "poison warm message; leaving it to the DLQ redrive");
                    tasks.push(None);
                    continue;
                }
                Ok(r) => r.clone(),
            };
            if first_for_user.contains_key(request.user_id.as_str()) {
                tasks.push(None);
                continue;
            }
            first_for_user.insert(request.user_id.to_string(), index);
            let warmer = self.clone();
            let semaphore = semaphore.clone();
            tasks.push(Some(tokio::spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                warmer.warm_one(&request).await
            })));
        }
        let mut outcomes: Vec<Option<ItemOutcome>> = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(match task {
                None => None,
                Some(handle) => {
                    Some(handle.await.unwrap_or_else(|e| {
                        ItemOutcome::Transient(format!("warm task failed: {e}"))
                    }))
                }
            });
        }
        parsed
            .into_iter()
            .enumerate()
            .map(|(index, (message_id, request))| {
                let outcome = match (&outcomes[index], request) {
                    (Some(o), _) => o.clone(),
                    (None, Err(why)) => ItemOutcome::Poison(why),
                    (None, Ok(r)) => {
                        // A duplicate shares the first message's fate: if that failed, SQS
                        // must redeliver this one too.
                        let first = first_for_user[r.user_id.as_str()];
                        match &outcomes[first] {
                            Some(o) if o.is_failure() => o.clone(),
                            _ => ItemOutcome::Duplicate,
                        }
                    }
                };
                (message_id, outcome)
            })
            .collect()
    }

    /// The Lambda handler body.
    pub async fn handle(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for (message_id, outcome) in self.run_batch(event).await {
            match &outcome {
                ItemOutcome::Warmed(w) => tracing::info!(
                    message_id,
                    pool_size = w.pool_size,
                    candidates = w.candidates,
                    "warmed"
                ),
                ItemOutcome::Transient(why) => {
                    tracing::warn!(message_id, %why, "warm failed; SQS will retry")
                }
                // Already logged once, with the reason, when the batch was parsed.
                ItemOutcome::Poison(_) => {}
                other => tracing::info!(message_id, outcome = ?other, "warm message done"),
            }
            if outcome.is_failure() {
                response.add_failure(message_id);
            }
        }
        response
    }

    async fn warm_one(&self, request: &WarmRequest) -> ItemOutcome {
        let user = &request.user_id;
        if request.reason == WarmReason::Deferred
            && let Some(wait_ms) = self.day_still_spent().await
        {
            return self.defer(user, wait_ms, 0).await;
        }
        let token = format!("{}-{}", std::process::id(), rand_token());
        match self.try_lock(user, &token).await {
            Ok(true) => {}
            Ok(false) => return ItemOutcome::Locked,
            Err(e) => return ItemOutcome::Transient(format!("lock: {e}")),
        }
        let outcome = self.warm_locked(request).await;
        if let Err(e) = self.release_lock(user, &token).await {
            tracing::warn!(error = %e, "could not release the prefetch lock; it expires by itself");
        }
        outcome
    }

    /// The part of a warm that runs under the user's lock.
    async fn warm_locked(&self, request: &WarmRequest) -> ItemOutcome {
        let user = &request.user_id;
        match self.generated_at_ms(user).await {
            Ok(Some(generated)) if generated > request.requested_at.as_millisecond() => {
                return ItemOutcome::AlreadyFresh;
            }
            Ok(_) => {}
            Err(e) => return ItemOutcome::Transient(format!("pool metadata: {e}")),
        }
        match self.engine.warm(user, Priority::Background).await {
            Ok(outcome) => {
                tracing::info!(
                    user_id = %user,
                    pool_size = outcome.pool_size,
                    sources_denied = outcome.sources_denied,
                    "pool built"
                );
                // Quota cut the pool short: keep what was built (it serves meanwhile)
                // and come back for the rest when the guard says quota is there again.
                match outcome.retry_after_ms {
                    Some(retry_after_ms) if outcome.pool_size < SHORT_POOL => {
                        self.defer(user, retry_after_ms, outcome.pool_size).await
                    }
                    _ => ItemOutcome::Warmed(outcome),
                }
            }
            Err(e) => match e.quota_retry_after_ms() {
                Some(retry_after_ms) => self.defer(user, retry_after_ms, 0).await,
                None => ItemOutcome::Transient(transient_reason(&e)),
            },
        }
    }

    /// When a daily limit the warmer spends from is still closed (the breaker, or the
    /// background share of a daily bucket), the milliseconds to the next Pacific
    /// midnight. `None` when warming may proceed, or the guard could not be read (the
    /// warm then runs and the engine's guard decides, failing closed).
    async fn day_still_spent(&self) -> Option<u64> {
        let state = self.guard.as_ref()?.state().await.ok()?;
        // The search bucket is left out: a warm without searches still builds a pool.
        let spent = state.breaker_until_ms.is_some()
            || state
                .buckets
                .iter()
                .filter(|b| b.name != "search")
                .any(|b| b.background_limit > 0 && b.used >= b.background_limit);
        if !spent {
            return None;
        }
        let now = self.engine.clock.now();
        let to_midnight = next_pacific_midnight(now).as_millisecond() - now.as_millisecond();
        Some(to_midnight.max(1) as u64)
    }

    /// Re-sends the request with a delay of `retry_after_ms`, capped at one link of the
    /// chain ([`Warmer::max_defer`]); the original message is then done. The new message
    /// says `deferred` and carries a new `requested_at`, so the partial pool built now
    /// does not count as having served it.
    async fn defer(&self, user: &UserId, retry_after_ms: u64, partial_pool: usize) -> ItemOutcome {
        let max_secs = self.max_defer.as_secs().clamp(1, SQS_MAX_DELAY.as_secs());
        let delay_secs = retry_after_ms.div_ceil(1000).clamp(1, max_secs);
        let request = WarmRequest::new(user.clone(), WarmReason::Deferred, self.engine.clock.now());
        match self
            .queue
            .send(&request, Duration::from_secs(delay_secs))
            .await
        {
            Ok(_) => {
                tracing::info!(user_id = %user, delay_secs, retry_after_ms, partial_pool, "quota short; warm deferred");
                ItemOutcome::Deferred {
                    delay_secs,
                    partial_pool,
                }
            }
            Err(e) => ItemOutcome::Transient(format!(
                "quota short and the deferral could not be sent: {e}"
            )),
        }
    }

    async fn generated_at_ms(&self, user: &UserId) -> Result<Option<i64>, StoreError> {
        let mut conn = self.redis.clone();
        let raw: Option<String> = conn.hget(keys::pool_meta(user), "generated_at").await?;
        Ok(raw.and_then(|v| v.parse().ok()))
    }

    async fn try_lock(&self, user: &UserId, token: &str) -> Result<bool, StoreError> {
        let mut conn = self.redis.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(keys::warm_lock(user))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(self.lock_ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    async fn release_lock(&self, user: &UserId, token: &str) -> Result<(), StoreError> {
        let mut conn = self.redis.clone();
        let _: i64 = redis::Script::new(RELEASE_LOCK)
            .key(keys::warm_lock(user))
            .arg(token)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Whether the user's lock is held (tests and diagnostics).
    pub async fn is_locked(&self, user: &UserId) -> Result<bool, StoreError> {
        let mut conn = self.redis.clone();
        Ok(conn.exists(keys::warm_lock(user)).await?)
    }
}

fn transient_reason(e: &EngineError) -> String {
    e.to_string()
}

fn rand_token() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}
