//! The Redis connection and every key name the project writes.
//!
//! Per-user keys share the hash tag `{u:<id>}` so one script may touch them all on a
//! cluster; shared source caches are keyed by source. The quota guard's keys, which
//! share `{quota}`, are named in `quota::keys`, next to the script that uses them.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::domain::UserId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("corrupt value in redis at {key}: {reason}")]
    Corrupt { key: String, reason: String },
}

/// A cheap-to-clone handle on Redis that reconnects by itself.
///
/// Built lazily: a Lambda cold start does not wait for a TCP and TLS handshake it may not
/// need, and a Redis outage at start-up does not stop the function from answering 503s.
#[derive(Clone)]
pub struct RedisConn {
    inner: ConnectionManager,
}

impl std::fmt::Debug for RedisConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisConn")
    }
}

/// How long one command may take before the caller treats Redis as unavailable.
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

impl RedisConn {
    pub fn connect_lazy(url: &str, response_timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(response_timeout))
            .set_response_timeout(Some(response_timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let inner = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { inner })
    }

    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let conn = Self::connect_lazy(url, DEFAULT_RESPONSE_TIMEOUT)?;
        let mut probe = conn.clone();
        redis::cmd("PING").query_async::<()>(&mut probe).await?;
        Ok(conn)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// Key names. Every key the project writes is built here.
pub mod keys {
    use super::UserId;

    /// Ranked candidate pool: ZSET of `video_id|category_id|t` members scored by rank.
    pub fn pool(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:pool")
    }
    /// Video details for the pool's members: HASH video_id → JSON.
    pub fn pool_items(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:items")
    }
    /// Pool metadata: HASH with generated_at, size.
    pub fn pool_meta(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:meta")
    }
    /// Everything already shown to the user: ZSET video_id → served-at ms.
    pub fn served(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:served")
    }
    /// Watch history: LIST of JSON watch events, newest first, capped, no TTL.
    pub fn history(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:history")
    }
    /// Set while a warm request is queued or running, so bursts enqueue once.
    pub fn warm_pending(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:warm-pending")
    }
    /// Per-user prefetch lock held by the warmer that is building the pool.
    pub fn warm_lock(user: &UserId) -> String {
        format!("reco:{{u:{user}}}:warm-lock")
    }
    /// Shared cache of one video's details.
    pub fn video(video_id: &str) -> String {
        format!("reco:src:video:{video_id}")
    }
    /// Shared cache of a channel's uploads playlist id.
    pub fn channel_uploads_playlist(channel_id: &str) -> String {
        format!("reco:src:channel:{channel_id}")
    }
    /// Shared cache of a playlist's latest video ids.
    pub fn playlist_latest(playlist_id: &str) -> String {
        format!("reco:src:playlist:{playlist_id}")
    }
    /// Shared cache of a region's chart for a category ("0" = all).
    pub fn chart(region: &str, category_id: &str) -> String {
        format!("reco:src:chart:{region}:{category_id}")
    }
    /// How many warms wanted each shared source on a Pacific day: ZSET source key → count,
    /// read by the refresh allocator.
    pub fn source_demand(day: &str) -> String {
        format!("reco:alloc:demand:{day}")
    }
    /// Shared cache of a normalised topic search.
    pub fn search(query: &str) -> String {
        format!("reco:src:search:{query}")
    }
}
