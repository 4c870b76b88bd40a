//! Watch history kept in Redis: newest first, capped, never expired.
//!
//! Recording a watch also adds the video to the user's served set, so a video watched
//! after the pool was built is never offered again.

use redis::AsyncCommands;

use crate::domain::{UserId, WatchEvent};
use crate::store::{RedisConn, StoreError, keys};

/// Where a warm reads the watch history from (`HISTORY_SOURCE`).
#[derive(Clone, Debug)]
pub enum HistorySource {
    /// Written by `POST /api/v1/video/history/{user_id}`.
    Redis(HistoryStore),
    /// The product's own user store.
    Supabase(super::supabase::SupabaseHistory),
}

impl HistorySource {
    pub async fn recent(
        &self,
        user: &UserId,
        limit: usize,
    ) -> Result<Vec<WatchEvent>, super::EngineError> {
        match self {
            HistorySource::Redis(store) => Ok(store.recent(user, limit).await?),
            HistorySource::Supabase(supabase) => supabase
                .recent(user, limit)
                .await
                .map_err(|e| super::EngineError::History(e.to_string())),
        }
    }
}

/// The most watch events kept per user.
pub const HISTORY_CAP: isize = 500;
/// How many recent events the ranker looks at.
pub const HISTORY_USED_FOR_RANKING: usize = 50;

#[derive(Clone, Debug)]
pub struct HistoryStore {
    redis: RedisConn,
}

impl HistoryStore {
    pub fn new(redis: RedisConn) -> Self {
        Self { redis }
    }

    /// Records `events` (oldest first in the slice) in one atomic round trip.
    pub async fn record(
        &self,
        user: &UserId,
        events: &[WatchEvent],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let history = keys::history(user);
        for event in events {
            pipe.lpush(
                &history,
                serde_json::to_string(event).expect("watch event serialises"),
            )
            .ignore();
        }
        pipe.ltrim(&history, 0, HISTORY_CAP - 1).ignore();
        let served = keys::served(user);
        for event in events {
            pipe.zadd(&served, &event.video_id, now_ms).ignore();
        }
        pipe.expire(&served, super::pool::SERVED_TTL_SECS).ignore();
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// The newest `limit` events, newest first. Unreadable entries are skipped.
    pub async fn recent(&self, user: &UserId, limit: usize) -> Result<Vec<WatchEvent>, StoreError> {
        let mut conn = self.redis.clone();
        let raw: Vec<String> = conn
            .lrange(keys::history(user), 0, limit as isize - 1)
            .await?;
        Ok(raw
            .iter()
            .filter_map(|r| serde_json::from_str(r).ok())
            .collect())
    }
}
