//! Watch history kept in Redis: newest first, capped, never expired.
//!
//! Recording a watch also adds the video to the user's served set, so a video watched
//! after the pool was built is never offered again.

use redis::AsyncCommands;

use crate::domain::{Interests, UserId, WatchEvent};
use crate::store::{RedisConn, StoreError, keys};

/// Where a warm reads the watch history from (`HISTORY_SOURCE`).
#[derive(Clone, Debug)]
pub enum HistorySource {
    /// Written by `POST /api/v1/video/history/{user_id}`.
    Redis(HistoryStore),
    /// The product's own user store.
    Supabase(super::supabase::SupabaseHistory),
}

/// What a warm knows about the user: what they watched and what they said they like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserContext {
    /// Newest first.
    pub events: Vec<WatchEvent>,
    pub interests: Interests,
}

impl HistorySource {
    /// The newest `limit` watch events and the declared interests. With Supabase, interests
    /// come from its interests table when one is configured, else from Redis (written by
    /// the history route), so a product can declare them either way.
    pub async fn context(
        &self,
        user: &UserId,
        limit: usize,
        redis: &HistoryStore,
    ) -> Result<UserContext, super::EngineError> {
        let events = self.recent(user, limit).await?;
        let interests = match self {
            HistorySource::Supabase(supabase) if supabase.config().interests_table.is_some() => {
                supabase
                    .interests(user)
                    .await
                    .map_err(|e| super::EngineError::History(e.to_string()))?
            }
            _ => redis.interests(user).await?,
        };
        Ok(UserContext { events, interests })
    }

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
        pipe.expire(&served, super::pool::SERVED_MARK_TTL_SECS)
            .ignore();
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        // A page cut before the watch may hold the video: it leaves the pool too.
        let watched: Vec<&str> = events.iter().map(|e| e.video_id.as_str()).collect();
        super::pool::drop_entries(&self.redis, user, &watched).await?;
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

    /// Replaces the user's declared interests (an empty set clears them).
    pub async fn record_interests(
        &self,
        user: &UserId,
        interests: &Interests,
    ) -> Result<(), StoreError> {
        let mut conn = self.redis.clone();
        if interests.is_empty() {
            conn.del::<_, ()>(keys::interests(user)).await?;
        } else {
            conn.set::<_, _, ()>(
                keys::interests(user),
                serde_json::to_string(interests).expect("interests serialise"),
            )
            .await?;
        }
        Ok(())
    }

    /// The declared interests; none (or an unreadable entry) is the empty set.
    pub async fn interests(&self, user: &UserId) -> Result<Interests, StoreError> {
        let mut conn = self.redis.clone();
        let raw: Option<String> = conn.get(keys::interests(user)).await?;
        Ok(raw
            .and_then(|r| serde_json::from_str(&r).ok())
            .unwrap_or_default())
    }
}
