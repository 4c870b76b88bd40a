//! The per-user build lock: one instance builds a user's pool at a time.
//!
//! Two related marks guard a user's warms, both under the user's hash tag:
//! * the **warm claim** (`keys::warm_claim`, in [`super::pool`]): a refill has been
//!   enqueued, so a burst of refreshes or sign-ins enqueues one warm;
//! * the **build lock** (`keys::build_lock`, here): an instance is building the pool now.
//!
//! The lock's value says when its build began (before it read the history) and carries a
//! token only its holder knows: a request that arrives while the lock is held is covered
//! by that build only if the build began after the request was made, and a holder
//! releases only its own lock.

use std::sync::LazyLock;
use std::time::Duration;

use redis::AsyncCommands;

use crate::domain::UserId;
use crate::store::{RedisConn, StoreError, keys};

/// Takes the lock, or reports who holds it: `{1, '', 0}` taken, or `{0, holder's value,
/// ms left on it}`. One round trip either way.
static TAKE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, '', 0} end
return {0, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}
"#,
    )
});

/// Deletes the lock only if it still holds the caller's value (it may have expired and
/// been taken by another instance meanwhile).
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

/// A taken lock: what releases it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldLock {
    value: String,
    /// When the build under it began (ms).
    pub started_ms: i64,
}

/// What [`BuildLock::take`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockAttempt {
    Taken(HeldLock),
    /// Held by a build that began at `started_ms` (`None`: a lock in an older format),
    /// for `ttl_ms` more at most.
    Held {
        started_ms: Option<i64>,
        ttl_ms: i64,
    },
}

#[derive(Clone)]
pub struct BuildLock {
    redis: RedisConn,
    ttl: Duration,
}

impl BuildLock {
    /// `ttl` bounds how long a crashed holder blocks the user's warms
    /// (`PREFETCH_LOCK_TTL_SECS`).
    pub fn new(redis: RedisConn, ttl: Duration) -> Self {
        Self { redis, ttl }
    }

    /// Takes the user's lock for a build that begins at `started_ms`.
    pub async fn take(&self, user: &UserId, started_ms: i64) -> Result<LockAttempt, StoreError> {
        let value = format!("{started_ms}:{}-{}", std::process::id(), token());
        let mut conn = self.redis.clone();
        let reply: (i64, Option<String>, Option<i64>) = TAKE
            .key(keys::build_lock(user))
            .arg(&value)
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?;
        Ok(match reply {
            (1, _, _) => LockAttempt::Taken(HeldLock { value, started_ms }),
            (_, holder, ttl) => LockAttempt::Held {
                started_ms: holder
                    .as_deref()
                    .and_then(|v| v.split_once(':')?.0.parse().ok()),
                ttl_ms: ttl.unwrap_or(0),
            },
        })
    }

    pub async fn release(&self, user: &UserId, lock: &HeldLock) -> Result<(), StoreError> {
        let mut conn = self.redis.clone();
        let _: i64 = RELEASE
            .key(keys::build_lock(user))
            .arg(&lock.value)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Whether the user's lock is held (tests and diagnostics).
    pub async fn is_held(&self, user: &UserId) -> Result<bool, StoreError> {
        let mut conn = self.redis.clone();
        Ok(conn.exists(keys::build_lock(user)).await?)
    }
}

/// A token no other holder guesses: std's randomly keyed hasher over the time, so the
/// core crate needs no random-number dependency for it.
fn token() -> u64 {
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
