//! SQS warm requests → pools. Reports partial batch failures so one bad message never
//! re-runs the good ones; defers on quota instead of failing; lets poison reach the DLQ.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use reco_core::UserId;
use reco_core::engine::{Engine, EngineError, WarmOutcome};
use reco_core::messages::{WarmReason, WarmRequest};
use reco_core::queue::WarmQueue;
use reco_core::quota::Priority;
use reco_core::store::{RedisConn, StoreError, keys};
use redis::AsyncCommands;
use tokio::sync::Semaphore;

/// Messages of one batch warmed at once; bounded so a batch cannot outrun Redis or the
/// guard's per-second smoothing.
pub const DEFAULT_CONCURRENCY: usize = 4;

pub struct Warmer {
    pub engine: Engine,
    pub redis: RedisConn,
    pub queue: WarmQueue,
    pub lock_ttl: Duration,
    pub concurrency: usize,
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutcome {
    Warmed(WarmOutcome),
    /// Another instance holds the user's lock: that one does the work.
    Locked,
    /// A duplicate of an earlier message in the same batch.
    Duplicate,
    /// Quota is short: re-sent with a delay, the original is done.
    Deferred {
        delay_secs: u64,
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
        let token = format!("{}-{}", std::process::id(), rand_token());
        match self.try_lock(user, &token).await {
            Ok(true) => {}
            Ok(false) => return ItemOutcome::Locked,
            Err(e) => return ItemOutcome::Transient(format!("lock: {e}")),
        }
        let result = self.engine.warm(user, Priority::Background).await;
        if let Err(e) = self.release_lock(user, &token).await {
            tracing::warn!(error = %e, "could not release the prefetch lock; it expires by itself");
        }
        match result {
            Ok(outcome) => ItemOutcome::Warmed(outcome),
            Err(e) => match e.quota_retry_after_ms() {
                Some(retry_after_ms) => self.defer(user, retry_after_ms).await,
                None => ItemOutcome::Transient(transient_reason(&e)),
            },
        }
    }

    async fn defer(&self, user: &UserId, retry_after_ms: u64) -> ItemOutcome {
        // SQS delays are capped at 15 minutes; a longer wait is a chain of deferrals.
        let delay_secs = retry_after_ms.div_ceil(1000).clamp(1, 900);
        let request = WarmRequest::new(user.clone(), WarmReason::Deferred, self.engine.clock.now());
        match self
            .queue
            .send(&request, Duration::from_secs(delay_secs))
            .await
        {
            Ok(_) => ItemOutcome::Deferred { delay_secs },
            Err(e) => ItemOutcome::Transient(format!(
                "quota short and the deferral could not be sent: {e}"
            )),
        }
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
