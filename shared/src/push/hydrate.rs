//! From a pushed id to the pools of the channel's watchers.
//!
//! A notification names a video but not its duration, statistics or thumbnails, so the
//! ids wait in [`keys::push_hydrate`] and are read 50 per `videos.list` unit through the
//! quota guard, never one call per notification. A batch goes once it is full or its
//! oldest id has waited `PUSH_HYDRATE_MAX_WAIT_SECS` (5 minutes): at most one part-filled
//! call every few minutes, whatever the rate of uploads.
//!
//! A hydrated upload joins the catalog and the head of its channel's cached uploads
//! (the list a warm reads, trusted while the subscription is live), and the channel's
//! active watchers ([`keys::push_watchers`], warmed in the last two hours: in a session)
//! get one warm each; the others' next sign-in reads the upload. Coalesced by the warm claim, so
//! a user whose channels upload ten times in a minute is warmed once, and costing no
//! unit, as every source such a warm reads is fresh.

use std::collections::{BTreeSet, HashSet};
use std::sync::LazyLock;

use jiff::Timestamp;
use redis::AsyncCommands;

use super::subscriptions::WATCHER_TTL_MS;
use super::uploads_playlist_of;
use crate::UserId;
use crate::engine::pool::WARM_PENDING_TTL_MS;
use crate::engine::sources::{Denials, SourceCache};
use crate::engine::{EngineError, PoolStore};
use crate::messages::{WarmReason, WarmRequest};
use crate::queue::WarmQueue;
use crate::quota::Priority;
use crate::store::{RedisConn, StoreError, keys};

/// Ids per `videos.list` call (YouTube's most).
pub const HYDRATE_BATCH: usize = 50;
/// Batches one run hydrates at most (a burst is worked off over a few runs).
pub const MAX_BATCHES_PER_RUN: usize = 20;
/// How many ids a channel's cached uploads keep (what one poll of the playlist gives).
pub const LATEST_KEPT: usize = 50;
/// A pushed channel's cached uploads live this long (`sources::PUSHED_LIST_TTL_SECS`).
const LIST_TTL_SECS: u64 = crate::engine::sources::PUSHED_LIST_TTL_SECS;
/// A watcher is warmed for a new upload only if one of their warms ran this recently
/// (they are in a session, or were lately).
pub const ACTIVE_WATCHER_MS: i64 = 2 * 3_600_000;
/// `SendMessageBatch` calls in flight at once.
const SENDS_IN_FLIGHT: usize = 8;
/// Users warmed per run at most, so one run stays well inside its timeout.
pub const MAX_FAN_OUT_PER_RUN: usize = 20_000;

/// Puts an id at the head of a cached id list (`{"at":…,"ids":[…]}`) unless it is in it,
/// keeping at most ARGV[2] ids, and gives the list a pushed channel's TTL. A polled list
/// is now known up to this push: its `at` moves to ARGV[4] (now), so a channel that keeps
/// pushing is trusted without a poll, and only a week of silence costs one
/// (`sources::PUSHED_PLAYLIST_FRESH_MS`). A channel nobody has polled yet gets a list whose
/// `at` is 0, so the first warm that reads it still polls it once (its back catalogue).
/// KEYS: list. ARGV: id, kept, TTL in seconds, now ms. Returns 1 when the id was added.
static PREPEND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local raw = redis.call('GET', KEYS[1])
local at, ids = 0, {}
if raw then
  local ok, list = pcall(cjson.decode, raw)
  if ok and type(list) == 'table' and type(list['ids']) == 'table' then
    at = tonumber(list['at']) or 0
    ids = list['ids']
  end
end
for _, id in ipairs(ids) do
  if id == ARGV[1] then return 0 end
end
table.insert(ids, 1, ARGV[1])
while #ids > tonumber(ARGV[2]) do table.remove(ids) end
local now = tonumber(ARGV[4])
if at > 0 and now > at then at = now end
local text = '{"at":' .. string.format('%d', at) .. ',"ids":' .. cjson.encode(ids) .. '}'
redis.call('SET', KEYS[1], text, 'EX', ARGV[3])
return 1
"#,
    )
});

/// What one hydration run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hydration {
    /// Videos now in the catalog and at the head of their channel's uploads.
    pub hydrated: usize,
    /// Ids YouTube no longer returns (deleted, private, an upcoming premiere): dropped.
    pub dropped: usize,
    /// `videos.list` calls made (a unit each; ids already in the catalog cost none).
    pub calls: usize,
    /// Ids still waiting after the run.
    pub backlog: u64,
    /// The guard refused the units: the ids wait for the next run.
    pub denied: bool,
    /// Channels with a new upload in the catalog, for [`fan_out`].
    pub channels: BTreeSet<String>,
}

/// Hydrates the waiting ids in batches of [`HYDRATE_BATCH`]; a part-filled batch only
/// once its oldest id has waited `max_wait_ms`.
pub async fn hydrate_pending(
    redis: &RedisConn,
    sources: &SourceCache,
    now_ms: i64,
    max_wait_ms: i64,
) -> Result<Hydration, EngineError> {
    let mut out = Hydration::default();
    let mut conn = redis.clone();
    for _ in 0..MAX_BATCHES_PER_RUN {
        let waiting: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(keys::push_hydrate())
            .arg(0)
            .arg(HYDRATE_BATCH - 1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        let Some(&(_, oldest)) = waiting.first() else {
            break;
        };
        if waiting.len() < HYDRATE_BATCH && now_ms - oldest < max_wait_ms {
            break;
        }
        let ids: Vec<String> = waiting.into_iter().map(|(id, _)| id).collect();
        // Hydration is what a watcher waits for, and costs a unit per 50 uploads, so it
        // draws on the interactive share: warming may have spent the background share.
        let mut denied = Denials::default();
        let videos = sources
            .videos(&ids, Priority::Interactive, &mut denied)
            .await?;
        if denied.count > 0 {
            out.denied = true;
            break;
        }
        out.calls += 1;
        // A tombstone that came while the ids were read wins: the video stays out.
        let gone = super::apply::deleted_among(
            redis,
            &videos
                .iter()
                .map(|v| v.video_id.as_str())
                .collect::<Vec<_>>(),
        )
        .await?;
        let mut hydrated = 0;
        for (video, gone) in videos.iter().zip(gone) {
            if gone {
                let _: () = conn.del(keys::video(&video.video_id)).await?;
                continue;
            }
            hydrated += 1;
            if let Some(playlist) = uploads_playlist_of(&video.channel_id) {
                let _: i64 = PREPEND
                    .key(keys::playlist_latest(&playlist))
                    .arg(&video.video_id)
                    .arg(LATEST_KEPT)
                    .arg(LIST_TTL_SECS)
                    .arg(now_ms)
                    .invoke_async(&mut conn)
                    .await?;
                out.channels.insert(video.channel_id.clone());
            }
        }
        out.hydrated += hydrated;
        out.dropped += ids.len() - hydrated;
        let _: () = conn.zrem(keys::push_hydrate(), &ids).await?;
    }
    out.backlog = conn.zcard(keys::push_hydrate()).await?;
    Ok(out)
}

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Distinct watchers of the channels.
    pub watchers: usize,
    /// Warm requests sent.
    pub warms_sent: usize,
    /// Watchers whose warm was already claimed (queued or running): nothing sent.
    pub coalesced: usize,
    /// Requests SQS did not take (their claims released, for a later try).
    pub failed: usize,
}

/// Sends one warm to each active watcher of `channels` (warmed within
/// [`ACTIVE_WATCHER_MS`]) whose warm is not already claimed.
pub async fn fan_out(
    redis: &RedisConn,
    pool: &PoolStore,
    queue: &WarmQueue,
    channels: &BTreeSet<String>,
    now: Timestamp,
) -> Result<FanOut, EngineError> {
    let now_ms = now.as_millisecond();
    let mut out = FanOut::default();
    let mut users: Vec<UserId> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut conn = redis.clone();
    for channel in channels {
        let key = keys::push_watchers(channel);
        let _: () = conn
            .zrembyscore(&key, "-inf", now_ms - WATCHER_TTL_MS)
            .await?;
        // Only users warmed lately are in a session: the others' next sign-in warms
        // them anyway, and reads the pushed upload from the channel's cached list.
        let left = MAX_FAN_OUT_PER_RUN.saturating_sub(users.len());
        if left == 0 {
            break;
        }
        let watchers: Vec<String> = conn
            .zrangebyscore_limit(&key, now_ms - ACTIVE_WATCHER_MS, "+inf", 0, left as isize)
            .await?;
        for raw in watchers {
            if users.len() >= MAX_FAN_OUT_PER_RUN {
                break;
            }
            if seen.insert(raw.clone())
                && let Ok(user) = UserId::parse(&raw)
            {
                users.push(user);
            }
        }
    }
    out.watchers = users.len();
    // The refill's claim (`PoolStore::claim_refill`), pipelined: one round trip per 500
    // watchers, not one each.
    let mut claimed: Vec<UserId> = Vec::new();
    for chunk in users.chunks(500) {
        let mut pipe = redis::pipe();
        for user in chunk {
            pipe.cmd("SET")
                .arg(keys::warm_claim(user))
                .arg(now_ms)
                .arg("NX")
                .arg("PX")
                .arg(WARM_PENDING_TTL_MS);
        }
        let won: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
        for (user, won) in chunk.iter().zip(won) {
            if won.is_some() {
                claimed.push(user.clone());
            } else {
                out.coalesced += 1;
            }
        }
    }
    // Ten a batch, eight batches in flight: 20,000 watchers in a few seconds.
    let mut sends = tokio::task::JoinSet::new();
    let mut batches = claimed.chunks(10).map(<[UserId]>::to_vec);
    let mut unsent: Vec<UserId> = Vec::new();
    loop {
        while sends.len() < SENDS_IN_FLIGHT
            && let Some(chunk) = batches.next()
        {
            let queue = queue.clone();
            sends.spawn(async move {
                let requests: Vec<WarmRequest> = chunk
                    .iter()
                    .map(|u| WarmRequest::new(u.clone(), WarmReason::NewUploads, now))
                    .collect();
                let failed = match queue.send_batch(&requests).await {
                    Ok(failed) => failed,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not send pushed uploads' warms");
                        (0..chunk.len()).collect()
                    }
                };
                (chunk, failed)
            });
        }
        let Some(done) = sends.join_next().await else {
            break;
        };
        let (chunk, failed) = done.map_err(|e| {
            EngineError::Store(StoreError::Redis(redis::RedisError::from((
                redis::ErrorKind::Io,
                "a warm send task failed",
                e.to_string(),
            ))))
        })?;
        out.warms_sent += chunk.len() - failed.len();
        out.failed += failed.len();
        unsent.extend(failed.into_iter().map(|i| chunk[i].clone()));
    }
    for user in &unsent {
        pool.release_warm_claim(user).await?;
    }
    Ok(out)
}
