//! SQS warm requests → pools. Reports partial batch failures so one bad message never
//! re-runs the good ones; defers on quota instead of failing; lets poison reach the DLQ.
//!
//! Each message is done at most once per pool: duplicates in a batch are dropped, a
//! per-user lock keeps two instances from building the same pool at once, and under the
//! lock a request is skipped when the user's pool was built from a history read after the
//! request was made (an at-least-once redelivery, or a second instance that got the lock
//! just after the first released it). A request that arrives while the lock is held is
//! covered by the running build only if that build started after the request was made;
//! a newer one is sent back to the queue to run after it, never dropped.
//!
//! A batch never runs past the invocation: messages not started when the deadline nears
//! are reported as failures (SQS redelivers them), and a warm still running then is cut
//! short the same way, so the batch response always reaches Lambda.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use reco_core::UserId;
use reco_core::clock::next_pacific_midnight;
use reco_core::engine::{BuildLock, Engine, EngineError, LockAttempt, POOL_TARGET, WarmOutcome};
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::queue::WarmQueue;
use reco_core::quota::{Priority, QuotaGuard};
use reco_core::store::{RedisConn, StoreError};
use reco_core::wiring::Services;
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
/// The longest a request sent back behind a running build waits: builds take seconds.
pub const REQUEUE_MAX_DELAY_SECS: u64 = 30;

pub struct Warmer {
    pub engine: Engine,
    pub redis: RedisConn,
    pub queue: WarmQueue,
    /// One build per user at a time.
    pub lock: BuildLock,
    pub concurrency: usize,
    /// The longest single deferral (one link of the chain). [`SQS_MAX_DELAY`] in
    /// production; tests whose clocks jump across Pacific midnight shorten it so a
    /// deferred message comes back within seconds of real time and notices the new day.
    pub max_defer: Duration,
    /// Read before re-running a deferred request, so a chain link that comes back while
    /// the day is still spent is re-deferred without rebuilding the pool. `None`: always
    /// run the warm (the guard inside the engine still refuses the calls).
    pub guard: Option<QuotaGuard>,
    /// A message is not started with less than this left before the invocation's
    /// deadline: it is reported as a failure, for SQS to redeliver.
    pub start_margin: Duration,
    /// A warm still running this long before the deadline is cut short (a failure, for
    /// SQS to redeliver), leaving time to release locks and return the batch response.
    pub finish_reserve: Duration,
}

/// Defaults for [`Warmer::start_margin`] and [`Warmer::finish_reserve`]: a cold warm
/// against a healthy YouTube takes a few seconds; the function's timeout is a minute.
pub const DEFAULT_START_MARGIN: Duration = Duration::from_secs(10);
pub const DEFAULT_FINISH_RESERVE: Duration = Duration::from_secs(2);

/// What happened to one message.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Warmed(WarmOutcome),
    /// Another instance holds the user's lock and its build started after this request
    /// was made: that build covers it.
    Locked,
    /// Another instance holds the user's lock, building from a history read before this
    /// request: the request was sent back to the queue to run after that build.
    Requeued {
        delay_secs: u64,
    },
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
    /// A short name for logs and tallies.
    pub fn kind(&self) -> &'static str {
        match self {
            ItemOutcome::Warmed(_) => "warmed",
            ItemOutcome::Locked => "locked",
            ItemOutcome::Requeued { .. } => "requeued",
            ItemOutcome::Duplicate => "duplicate",
            ItemOutcome::AlreadyFresh => "already_fresh",
            ItemOutcome::Deferred { .. } => "deferred",
            ItemOutcome::Poison(_) => "poison",
            ItemOutcome::Transient(_) => "transient",
        }
    }

    pub fn is_failure(&self) -> bool {
        matches!(self, ItemOutcome::Poison(_) | ItemOutcome::Transient(_))
    }
}

impl Warmer {
    /// The warmer as the function's `main` builds it: the services' engine, Redis and
    /// guard, the config's lock TTL, the default concurrency and SQS's longest delay.
    pub fn new(services: &Services, queue: WarmQueue) -> Self {
        Self {
            engine: services.engine.clone(),
            redis: services.redis.clone(),
            queue,
            lock: BuildLock::new(services.redis.clone(), services.config.prefetch_lock_ttl),
            concurrency: DEFAULT_CONCURRENCY,
            max_defer: SQS_MAX_DELAY,
            guard: Some(services.guard.clone()),
            start_margin: DEFAULT_START_MARGIN,
            finish_reserve: DEFAULT_FINISH_RESERVE,
        }
    }

    /// Runs a batch with no deadline; returns the outcome of every record, in order, with
    /// its message id.
    pub async fn run_batch(self: &Arc<Self>, event: SqsEvent) -> Vec<(String, ItemOutcome)> {
        self.run_batch_until(event, None).await
    }

    /// Runs a batch that must finish by `deadline` (the invocation's): see the module docs.
    pub async fn run_batch_until(
        self: &Arc<Self>,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> Vec<(String, ItemOutcome)> {
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
                if let Some(deadline) = deadline
                    && deadline.saturating_duration_since(Instant::now()) < warmer.start_margin
                {
                    return ItemOutcome::Transient(
                        "not started: the invocation's deadline is near".into(),
                    );
                }
                let cut_off = deadline.map(|d| d.checked_sub(warmer.finish_reserve).unwrap_or(d));
                warmer.warm_one(&request, cut_off).await
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
        settle(parsed, &outcomes)
    }

    /// The Lambda handler body, with no deadline.
    pub async fn handle(self: &Arc<Self>, event: SqsEvent) -> SqsBatchResponse {
        self.handle_until(event, None).await
    }

    /// The Lambda handler body for an invocation that ends at `deadline`.
    pub async fn handle_until(
        self: &Arc<Self>,
        event: SqsEvent,
        deadline: Option<Instant>,
    ) -> SqsBatchResponse {
        let outcomes = self.run_batch_until(event, deadline).await;
        for (message_id, outcome) in &outcomes {
            match outcome {
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
        }
        batch_response(&outcomes)
    }

    async fn warm_one(&self, request: &WarmRequest, cut_off: Option<Instant>) -> ItemOutcome {
        let user = &request.user_id;
        if request.reason == WarmReason::Deferred
            && let Some(wait_ms) = self.day_still_spent().await
        {
            return self.defer(user, wait_ms, 0).await;
        }
        let started_ms = self.engine.clock.now_ms();
        let held = match self.lock.take(user, started_ms).await {
            Ok(LockAttempt::Taken(held)) => held,
            Ok(LockAttempt::Held { started_ms, ttl_ms }) => {
                return match started_ms {
                    Some(s) if s >= request.requested_at.as_millisecond() => ItemOutcome::Locked,
                    _ => self.requeue(request, ttl_ms).await,
                };
            }
            Err(e) => return ItemOutcome::Transient(format!("lock: {e}")),
        };
        let outcome = self.warm_locked(request, started_ms, cut_off).await;
        if let Err(e) = self.lock.release(user, &held).await {
            tracing::warn!(error = %e, "could not release the prefetch lock; it expires by itself");
        }
        outcome
    }

    /// The part of a warm that runs under the user's lock, taken at `started_ms`. The
    /// build is cut short at `cut_off`; a deferral, once decided, is always sent (cutting
    /// it short could leave it sent and the message failed: a duplicate).
    async fn warm_locked(
        &self,
        request: &WarmRequest,
        started_ms: i64,
        cut_off: Option<Instant>,
    ) -> ItemOutcome {
        let user = &request.user_id;
        match self.engine.pool.built_from_ms(user).await {
            Ok(Some(built_from)) if built_from >= request.requested_at.as_millisecond() => {
                return ItemOutcome::AlreadyFresh;
            }
            Ok(_) => {}
            Err(e) => return ItemOutcome::Transient(format!("pool metadata: {e}")),
        }
        let build = self
            .engine
            .warm_from(user, Priority::Background, started_ms);
        let built = match cut_off {
            None => build.await,
            Some(at) => match tokio::time::timeout_at(at, build).await {
                Ok(built) => built,
                Err(_) => {
                    return ItemOutcome::Transient(
                        "cut short: the invocation's deadline is near; SQS will redeliver".into(),
                    );
                }
            },
        };
        match built {
            Ok(outcome) => {
                tracing::info!(
                    user_id = %user,
                    pool_size = outcome.pool_size,
                    sources_denied = outcome.sources_denied,
                    "pool built"
                );
                match retry_after(&outcome) {
                    Some(retry_after_ms) => {
                        self.defer(user, retry_after_ms, outcome.pool_size).await
                    }
                    None => ItemOutcome::Warmed(outcome),
                }
            }
            Err(e) => match e.quota_retry_after_ms() {
                Some(retry_after_ms) => self.defer(user, retry_after_ms, 0).await,
                None => ItemOutcome::Transient(transient_reason(&e)),
            },
        }
    }

    /// When a daily limit the warmer spends from is closed (the breaker, or the day's
    /// background cap of units, with the evening release), the milliseconds to the next
    /// Pacific midnight. `None` when warming may proceed, or the guard could not be read
    /// (the warm then runs and the engine's guard decides, failing closed). A deferred warm
    /// held only by the day's pace does run: it rebuilds from what other warms fetched
    /// meanwhile, at no quota cost.
    async fn day_still_spent(&self) -> Option<u64> {
        let state = self.guard.as_ref()?.state().await.ok()?;
        if !state.background_closed_for_the_day() {
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

    /// Sends `request` back to the queue, unchanged, to arrive when the lock now held
    /// (`ttl_ms` more at most) has been released; the original message is then done.
    async fn requeue(&self, request: &WarmRequest, ttl_ms: i64) -> ItemOutcome {
        let max_secs = self.max_defer.as_secs().clamp(1, SQS_MAX_DELAY.as_secs());
        // A build takes seconds; the lock's TTL is only its upper bound.
        let delay_secs = (ttl_ms.max(0) as u64)
            .div_ceil(1000)
            .clamp(1, REQUEUE_MAX_DELAY_SECS.min(max_secs));
        match self
            .queue
            .send(request, Duration::from_secs(delay_secs))
            .await
        {
            Ok(_) => {
                tracing::info!(user_id = %request.user_id, delay_secs, "user's lock held by an older build; request requeued");
                ItemOutcome::Requeued { delay_secs }
            }
            Err(e) => ItemOutcome::Transient(format!(
                "lock held by an older build and the request could not be requeued: {e}"
            )),
        }
    }

    /// Whether the user's build lock is held (tests and diagnostics).
    pub async fn is_locked(&self, user: &UserId) -> Result<bool, StoreError> {
        self.lock.is_held(user).await
    }
}

fn transient_reason(e: &EngineError) -> String {
    e.to_string()
}

/// Every record's outcome, in order: a record that ran has its own; one that did not parse
/// is poison; a second message for a user shares the first one's fate (if that failed, SQS
/// must redeliver this one too), else it is a duplicate. `ran[i]` is record `i`'s outcome
/// when it ran.
fn settle(
    parsed: Vec<(String, Result<WarmRequest, String>)>,
    ran: &[Option<ItemOutcome>],
) -> Vec<(String, ItemOutcome)> {
    let mut first_for_user: HashMap<String, usize> = HashMap::new();
    for (index, (_, request)) in parsed.iter().enumerate() {
        if let Ok(r) = request {
            first_for_user.entry(r.user_id.to_string()).or_insert(index);
        }
    }
    parsed
        .into_iter()
        .enumerate()
        .map(|(index, (message_id, request))| {
            let outcome = match (&ran[index], request) {
                (Some(o), _) => o.clone(),
                (None, Err(why)) => ItemOutcome::Poison(why),
                (None, Ok(r)) => match &ran[first_for_user[r.user_id.as_str()]] {
                    Some(o) if o.is_failure() => o.clone(),
                    _ => ItemOutcome::Duplicate,
                },
            };
            (message_id, outcome)
        })
        .collect()
}

/// The batch response: the failed records, for SQS to redeliver; every other one is done.
pub fn batch_response(outcomes: &[(String, ItemOutcome)]) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for (message_id, outcome) in outcomes {
        if outcome.is_failure() {
            response.add_failure(message_id.clone());
        }
    }
    response
}

/// When a built pool is worth building again as soon as quota is back: quota cut it
/// short, or left the history unread. What was built serves meanwhile.
fn retry_after(outcome: &WarmOutcome) -> Option<u64> {
    outcome
        .retry_after_ms
        .filter(|_| outcome.pool_size < SHORT_POOL || outcome.history_unread)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full pool is kept as it is, unless it was built without the history (the unit
    /// that reads it refused): then the warm comes back when quota does.
    #[test]
    fn a_pool_built_without_the_history_is_built_again() {
        let outcome = |pool_size: usize, retry_after_ms: Option<u64>, history_unread| WarmOutcome {
            pool_size,
            candidates: pool_size,
            history_len: 10,
            sources_denied: usize::from(retry_after_ms.is_some()),
            retry_after_ms,
            stale_served: 0,
            history_unread,
            sources_out_of_time: 0,
        };
        assert_eq!(
            retry_after(&outcome(SHORT_POOL - 1, Some(500), false)),
            Some(500)
        );
        assert_eq!(retry_after(&outcome(SHORT_POOL, Some(500), false)), None);
        assert_eq!(
            retry_after(&outcome(POOL_TARGET, Some(500), true)),
            Some(500)
        );
        assert_eq!(retry_after(&outcome(POOL_TARGET, None, true)), None);
    }

    fn request(user: &str) -> Result<WarmRequest, String> {
        Ok(WarmRequest::new(
            UserId::parse(user).unwrap(),
            WarmReason::SignIn,
            reco_core::clock::Clock::now(&reco_core::clock::SystemClock),
        ))
    }

    /// Which messages fail, decided without any service: poison and transient failures
    /// come back, a duplicate shares its first message's fate, everything else is done.
    #[test]
    fn which_messages_fail() {
        let parsed = vec![
            ("a1".to_owned(), request("alice")),
            (
                "p".to_owned(),
                Err("user_id may contain only ...".to_owned()),
            ),
            ("b1".to_owned(), request("bob")),
            ("a2".to_owned(), request("alice")),
            ("b2".to_owned(), request("bob")),
            ("c1".to_owned(), request("carol")),
        ];
        let ran = vec![
            Some(ItemOutcome::AlreadyFresh),
            None,
            Some(ItemOutcome::Transient("redis away".into())),
            None,
            None,
            Some(ItemOutcome::Requeued { delay_secs: 3 }),
        ];
        let outcomes = settle(parsed, &ran);
        let kinds: Vec<(&str, &str)> = outcomes
            .iter()
            .map(|(id, o)| (id.as_str(), o.kind()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("a1", "already_fresh"),
                ("p", "poison"),
                ("b1", "transient"),
                ("a2", "duplicate"),
                ("b2", "transient"),
                ("c1", "requeued"),
            ]
        );
        let failed: Vec<String> = batch_response(&outcomes)
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect();
        assert_eq!(failed, vec!["p", "b1", "b2"]);
    }
}
