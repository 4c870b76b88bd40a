//! What a verified notification changes, once: the hub retries, duplicates and reorders
//! its deliveries, and an attacker may replay a signed body, so every entry is ordered by
//! its own date against the last one seen for that video ([`keys::push_seen`]) in one
//! script, and anything not newer changes nothing.
//!
//! - A video we have not seen waits for hydration ([`keys::push_hydrate`]): the entry
//!   lacks its duration, statistics and thumbnails, and `videos.list` reads 50 of them for
//!   one unit (`push::hydrate`).
//! - A newer entry of a video in the catalog is a title or description change: the
//!   catalog item's title is replaced in place, at no unit.
//!
//! An entry is compared first, its changes made, and it is recorded as seen last: every
//! change is idempotent, so a failure in between leaves the hub's retry to finish it.
//! - A tombstone removes the video from the catalog, from the hydration queue and from
//!   its channel's cached uploads, so no warm offers it again; pages already cut skip it,
//!   as a page's videos come from the catalog.

use std::sync::LazyLock;

use redis::AsyncCommands;

use super::notification::Notification;
use super::{is_channel_id, uploads_playlist_of};
use crate::domain::Video;
use crate::store::{RedisConn, StoreError, keys};

/// How long a video's last seen notification is remembered: a catalog item's lifetime
/// (`engine::sources::VIDEO_TTL_SECS`, 7 days), so a replay within it is recognised.
pub const SEEN_TTL_SECS: u64 = 7 * 86_400;

/// Orders one notification of a video against the last seen. KEYS: seen. ARGV: kind ('e'
/// an entry, 'd' a tombstone), its date in ms, TTL in seconds, and `write` (`1`: record
/// it when newer; `0`: only compare). Returns 0 when nothing is newer (a duplicate, a
/// replay, an older entry, or an entry no newer than a deletion), 1 on a first sight, 2
/// when newer than what was seen. `apply` compares first, makes the changes, and records
/// last, so a failure in between leaves the hub's retry something to do.
static ORDER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local prev = redis.call('GET', KEYS[1])
local ms = tonumber(ARGV[2])
if prev then
  local kind, pms = string.match(prev, '^(%a):(%-?%d+)$')
  pms = tonumber(pms)
  if pms and (ms < pms or (ms == pms and (ARGV[1] == 'e' or kind == 'd'))) then
    return 0
  end
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[3])
end
if prev then return 2 end
return 1
"#,
    )
});

/// Compares (`write` false) or records (`write` true) one notification of a video.
async fn order(
    conn: &mut RedisConn,
    video_id: &str,
    kind: &str,
    at_ms: i64,
    write: bool,
) -> Result<i64, StoreError> {
    Ok(ORDER
        .key(keys::push_seen(video_id))
        .arg(kind)
        .arg(at_ms)
        .arg(SEEN_TTL_SECS)
        .arg(if write { "1" } else { "0" })
        .invoke_async(conn)
        .await?)
}

/// Whether a video's last notification was a tombstone: hydration does not bring back
/// a video deleted while its ids were being read.
pub async fn deleted_among(redis: &RedisConn, video_ids: &[&str]) -> Result<Vec<bool>, StoreError> {
    if video_ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = video_ids.iter().map(|id| keys::push_seen(id)).collect();
    let mut conn = redis.clone();
    let seen: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
    Ok(seen
        .into_iter()
        .map(|s| s.is_some_and(|s| s.starts_with("d:")))
        .collect())
}

/// Replaces the title of a catalog item in place, keeping its TTL; whether the item
/// existed. Done in Rust, not Lua: Redis's cjson turns an empty array (`"tags":[]`) into an
/// object, which would no longer parse as a video.
async fn retitle(conn: &mut RedisConn, video_id: &str, title: &str) -> Result<bool, StoreError> {
    let key = keys::video(video_id);
    let raw: Option<String> = conn.get(&key).await?;
    let Some(mut video) = raw.and_then(|r| serde_json::from_str::<Video>(&r).ok()) else {
        return Ok(false);
    };
    if video.title == title {
        return Ok(true);
    }
    video.title = title.to_owned();
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg(serde_json::to_string(&video).expect("a video serialises"))
        .arg("XX")
        .arg("KEEPTTL")
        .query_async(conn)
        .await?;
    Ok(true)
}

/// Removes one id from a cached id list (`{"at":…,"ids":[…]}`), keeping its TTL. KEYS:
/// list. ARGV: id.
pub(crate) static UNLIST: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r#"
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, list = pcall(cjson.decode, raw)
if not ok or type(list) ~= 'table' or type(list['ids']) ~= 'table' then return 0 end
local kept, removed = {}, 0
for _, id in ipairs(list['ids']) do
  if id == ARGV[1] then removed = 1 else table.insert(kept, id) end
end
if removed == 0 then return 0 end
redis.call('SET', KEYS[1], '{"at":' .. string.format('%d', list['at']) .. ',"ids":' ..
  (#kept == 0 and '[]' or cjson.encode(kept)) .. '}', 'KEEPTTL')
return 1
"#,
    )
});

/// What one notification changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Applied {
    /// Videos queued for hydration: new uploads.
    pub queued: usize,
    /// Catalog items whose title changed.
    pub retitled: usize,
    /// Videos removed.
    pub deleted: usize,
    /// Entries no newer than what was seen: duplicates, replays, reordered deliveries.
    pub unchanged: usize,
    /// Entries about another channel than the subscription's: ignored.
    pub foreign: usize,
    /// Entries of videos published too long ago to be worth a unit, not in the catalog.
    pub too_old: usize,
}

/// Applies a notification that arrived on `channel_id`'s subscription and passed its
/// signature check.
pub async fn apply(
    redis: &RedisConn,
    channel_id: &str,
    notification: &Notification,
    now_ms: i64,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    let mut conn = redis.clone();
    for video in &notification.videos {
        if video.channel_id != channel_id {
            applied.foreign += 1;
            continue;
        }
        if order(&mut conn, &video.video_id, "e", video.updated_ms, false).await? == 0 {
            applied.unchanged += 1;
            continue;
        }
        if retitle(&mut conn, &video.video_id, &video.title).await? {
            applied.retitled += 1;
        } else if now_ms - video.published_ms > SEEN_TTL_SECS as i64 * 1000 {
            applied.too_old += 1;
        } else {
            let _: () = redis::cmd("ZADD")
                .arg(keys::push_hydrate())
                .arg("NX")
                .arg(now_ms)
                .arg(&video.video_id)
                .query_async(&mut conn)
                .await?;
            applied.queued += 1;
        }
        order(&mut conn, &video.video_id, "e", video.updated_ms, true).await?;
    }
    for gone in &notification.deleted {
        if gone.channel_id.as_deref().is_some_and(|c| c != channel_id) {
            applied.foreign += 1;
            continue;
        }
        if order(&mut conn, &gone.video_id, "d", gone.deleted_ms, false).await? == 0 {
            applied.unchanged += 1;
            continue;
        }
        let _: () = conn.del(keys::video(&gone.video_id)).await?;
        let _: () = conn.zrem(keys::push_hydrate(), &gone.video_id).await?;
        if is_channel_id(channel_id)
            && let Some(playlist) = uploads_playlist_of(channel_id)
        {
            let _: i64 = UNLIST
                .key(keys::playlist_latest(&playlist))
                .arg(&gone.video_id)
                .invoke_async(&mut conn)
                .await?;
        }
        order(&mut conn, &gone.video_id, "d", gone.deleted_ms, true).await?;
        applied.deleted += 1;
    }
    Ok(applied)
}
