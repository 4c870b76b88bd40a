//! The per-user pool and served set, and the page-take script.
//!
//! A refresh is one EVALSHA: it walks the ranked pool, skips anything already served,
//! applies the request's filters, marks the page served, trims the served set, and —
//! when the pool is missing, low or stale — claims the user's warm-pending flag so
//! exactly one caller enqueues a refill. All keys share the user's hash tag.
//!
//! The script is the whole cost of a cache hit on the Redis side, so it reads only as
//! much of the pool as the page needs and batches its reads and writes (`ZMSCORE`,
//! `HMGET`, variadic `ZREM`/`HDEL`/`ZADD`, Redis ≥ 6.2): about a dozen commands inside
//! Redis per hit instead of one per pool member and per video.

use std::time::Duration;

use redis::AsyncCommands;

use crate::clock::SharedClock;
use crate::domain::{UserId, Video};
use crate::store::{RedisConn, StoreError, keys};

/// Served videos are remembered this long (and at most [`SERVED_CAP`] of them).
pub const SERVED_TTL_SECS: i64 = 30 * 86_400;
pub const SERVED_CAP: usize = 5_000;
/// Pool keys outlive the freshness TTL so a stale pool can still serve while refilling.
const POOL_KEY_TTL_SECS: i64 = 7 * 86_400;
/// Below this many unserved items, a refresh asks for a refill.
pub const LOW_WATERMARK: usize = 60;
/// How long a claimed warm stays pending before another may be enqueued.
pub const WARM_PENDING_TTL_MS: u64 = 120_000;

const TAKE_PAGE: &str = r#"
-- KEYS: pool, items, served, meta, warm-pending
-- ARGV: max, category ('' = any), include_trending ('1'/'0'), now_ms, served_min_ms,
--       served_cap, low_watermark, fresh_ms, pending_ttl_ms
--
-- Cost: a constant handful of commands per hit. The pool is read in slices from the
-- top (the first exactly a page long, each next one twice the last, up to 1,000) only as far as the
-- page needs; each slice costs one ZMSCORE (served check) and one HMGET (items), and
-- the writes are one variadic ZREM, HDEL and ZADD. Rank order, the filters and what is
-- dropped are as walking the whole pool member by member: a member is looked at only
-- until the page is full; every looked-at member that matches the filters (served or
-- not, item present or not) or does not parse leaves the pool.
local max = tonumber(ARGV[1])
local category = ARGV[2]
local trending_ok = ARGV[3] == '1'
local now = tonumber(ARGV[4])
local generated = tonumber(redis.call('HGET', KEYS[4], 'generated_at') or '-1')
local page, drop, served_ids = {}, {}, {}

-- Runs `command key ...` over `args` in chunks, so no call unpacks more values than
-- Lua's C stack allows (`step` a multiple of the arguments per element).
local function variadic(command, key, args, step)
  for i = 1, #args, step do
    redis.call(command, key, unpack(args, i, math.min(i + step - 1, #args)))
  end
end

if generated >= 0 and max > 0 then
  local start, size = 0, max
  while true do
    local members = redis.call('ZRANGE', KEYS[1], start, start + size - 1)
    -- Parse the slice: ids of members passing the filters, in rank order.
    -- Parse the slice: the ids of members passing the filters (by position), the
    -- members that do not parse.
    local ids, broken, wanted = {}, {}, {}
    for i, m in ipairs(members) do
      local id, cat, kind = string.match(m, '^([^|]+)|([^|]*)|(%a)$')
      if id == nil then
        broken[i] = true
      elseif (category == '' or cat == category) and (trending_ok or kind == 'h') then
        ids[i] = id
        wanted[#wanted + 1] = id
      end
    end
    -- Served check and items for the matching ones, one command each.
    local unserved = {}
    if #wanted > 0 then
      local scores = redis.call('ZMSCORE', KEYS[3], unpack(wanted))
      local fetch = {}
      for j, id in ipairs(wanted) do
        if not scores[j] then fetch[#fetch + 1] = id end
      end
      if #fetch > 0 then
        local items = redis.call('HMGET', KEYS[2], unpack(fetch))
        for j, id in ipairs(fetch) do unserved[id] = items[j] end
      end
    end
    -- Walk the slice in rank order as the member-by-member scan did.
    for i, m in ipairs(members) do
      if #page >= max then break end
      local id = ids[i]
      if id ~= nil then
        drop[#drop + 1] = m
        local item = unserved[id]
        if item then
          page[#page + 1] = item
          served_ids[#served_ids + 1] = id
        end
      elseif broken[i] then
        drop[#drop + 1] = m
      end
    end
    if #page >= max or #members < size then break end
    start = start + size
    size = math.min(size * 2, 1000)
  end
  if #drop > 0 then variadic('ZREM', KEYS[1], drop, 1000) end
  if #served_ids > 0 then
    variadic('HDEL', KEYS[2], served_ids, 1000)
    local scored = {}
    for _, id in ipairs(served_ids) do
      scored[#scored + 1] = ARGV[4]
      scored[#scored + 1] = id
    end
    variadic('ZADD', KEYS[3], scored, 1000)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[5])
    local cap = tonumber(ARGV[6])
    if redis.call('ZCARD', KEYS[3]) > cap then
      redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(cap + 1))
    end
    redis.call('PEXPIRE', KEYS[3], 2592000000)
  end
end
local remaining = redis.call('ZCARD', KEYS[1])
local needs = generated < 0 or remaining < tonumber(ARGV[7]) or (now - generated) > tonumber(ARGV[8])
local claimed = 0
if needs then
  if redis.call('SET', KEYS[5], ARGV[4], 'NX', 'PX', ARGV[9]) then claimed = 1 end
end
return {generated, remaining, claimed, page, needs and 1 or 0}
"#;

/// Serves videos from outside the pool (the region's chart when a user has none yet): in
/// one script, the first `max` candidates not yet served are chosen and marked served, so
/// two requests at once can never both serve the same video.
const SERVE_UNPOOLED: &str = r#"
-- KEYS: served
-- ARGV: max, now_ms, served_min_ms, served_cap, candidate ids... (in order, filtered)
local max = tonumber(ARGV[1])
local chosen = {}
if max > 0 and #ARGV > 4 then
  local ids = {}
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ids))
  for j, id in ipairs(ids) do
    if #chosen >= max then break end
    if not scores[j] then chosen[#chosen + 1] = id end
  end
end
if #chosen > 0 then
  local scored = {}
  for _, id in ipairs(chosen) do
    scored[#scored + 1] = ARGV[2]
    scored[#scored + 1] = id
  end
  redis.call('ZADD', KEYS[1], unpack(scored))
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
  local cap = tonumber(ARGV[4])
  if redis.call('ZCARD', KEYS[1]) > cap then
    redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(cap + 1))
  end
  redis.call('PEXPIRE', KEYS[1], 2592000000)
end
return chosen
"#;

static SERVE_UNPOOLED_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(SERVE_UNPOOLED));

/// Claims the warm claim unless a fresh, full pool exists (sign-in).
const CLAIM_WARM: &str = r#"
-- KEYS: meta, pool, warm claim;  ARGV: now_ms, fresh_ms, low_watermark, claim_ttl_ms
local generated = tonumber(redis.call('HGET', KEYS[1], 'generated_at') or '-1')
local remaining = redis.call('ZCARD', KEYS[2])
if generated >= 0 and (tonumber(ARGV[1]) - generated) <= tonumber(ARGV[2]) and remaining >= tonumber(ARGV[3]) then
  return 0
end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[4]) then return 1 end
return 0
"#;

static CLAIM_WARM_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(CLAIM_WARM));

static TAKE_PAGE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(TAKE_PAGE));

/// The most candidates one unpooled page looks at (a chart is 50).
const UNPOOLED_CANDIDATES_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub max_results: usize,
    pub category_id: Option<String>,
    pub include_trending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PageResult {
    pub videos: Vec<Video>,
    /// When the pool was built; `None` when the user has no pool yet.
    pub generated_at_ms: Option<i64>,
    pub pool_remaining: usize,
    /// This caller won the warm-pending flag and should enqueue a refill.
    pub should_enqueue_warm: bool,
    pub stale: bool,
    /// The pool is missing, low (under [`LOW_WATERMARK`]) or stale: the script's one rule
    /// for asking a refill, whoever won the claim.
    pub needs_refill: bool,
}

/// How a feed request was answered, decided once, here, from the page take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// From the user's pool, which is fresh and full enough.
    Hit,
    /// From the user's pool, which is low or stale (a refill was asked for); also the
    /// last good page served while Redis is away.
    Stale,
    /// The user had no pool: the region's chart.
    Miss,
    /// A `force_refresh` rebuilt the pool before the page was taken.
    Refreshed,
}

impl CacheStatus {
    /// The status of `page`, taken after a `force_refresh` rebuilt the pool when
    /// `refreshed`.
    pub fn of(page: &PageResult, refreshed: bool) -> Self {
        match page.generated_at_ms {
            None => CacheStatus::Miss,
            Some(_) if refreshed => CacheStatus::Refreshed,
            Some(_) if page.needs_refill => CacheStatus::Stale,
            Some(_) => CacheStatus::Hit,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Stale => "stale",
            CacheStatus::Miss => "miss",
            CacheStatus::Refreshed => "refreshed",
        }
    }

    /// Served from a pool the user already had (the `CacheHit` metric); otherwise a
    /// `CacheMiss`.
    pub fn is_hit(self) -> bool {
        matches!(self, CacheStatus::Hit | CacheStatus::Stale)
    }

    /// Why a refill claimed on `page` is enqueued.
    pub fn refill_reason(self, page: &PageResult) -> crate::messages::WarmReason {
        use crate::messages::WarmReason;
        match (self, page.stale) {
            (CacheStatus::Miss, _) => WarmReason::PoolMissing,
            (_, true) => WarmReason::PoolStale,
            _ => WarmReason::PoolLow,
        }
    }
}

#[derive(Clone)]
pub struct PoolStore {
    redis: RedisConn,
    clock: SharedClock,
    fresh: Duration,
}

impl PoolStore {
    pub fn new(redis: RedisConn, clock: SharedClock, fresh: Duration) -> Self {
        Self {
            redis,
            clock,
            fresh,
        }
    }

    fn member(video: &Video) -> String {
        format!(
            "{}|{}|{}",
            video.video_id,
            video.category_id,
            if video.trending { 't' } else { 'h' }
        )
    }

    /// Replaces the pool with `ranked` (best first) in one atomic transaction, as built
    /// from a history read now.
    pub async fn replace(&self, user: &UserId, ranked: &[Video]) -> Result<(), StoreError> {
        self.replace_built_from(user, ranked, self.clock.now_ms())
            .await
    }

    /// Replaces the pool with `ranked`, built by a warm that began at `built_from_ms`
    /// (before it read the history); see [`PoolStore::built_from_ms`].
    pub async fn replace_built_from(
        &self,
        user: &UserId,
        ranked: &[Video],
        built_from_ms: i64,
    ) -> Result<(), StoreError> {
        let (pool, items, meta) = (
            keys::pool(user),
            keys::pool_items(user),
            keys::pool_meta(user),
        );
        let mut pipe = redis::pipe();
        pipe.atomic().del(&pool).ignore().del(&items).ignore();
        if !ranked.is_empty() {
            let members: Vec<(usize, String)> = ranked
                .iter()
                .enumerate()
                .map(|(i, v)| (i, Self::member(v)))
                .collect();
            pipe.zadd_multiple(&pool, &members).ignore();
            let fields: Vec<(String, String)> = ranked
                .iter()
                .map(|v| {
                    (
                        v.video_id.clone(),
                        serde_json::to_string(v).expect("video serialises"),
                    )
                })
                .collect();
            pipe.hset_multiple(&items, &fields).ignore();
        }
        pipe.hset_multiple(
            &meta,
            &[
                ("generated_at", self.clock.now_ms()),
                ("built_from", built_from_ms),
                ("size", ranked.len() as i64),
            ],
        )
        .ignore()
        .expire(&pool, POOL_KEY_TTL_SECS)
        .ignore()
        .expire(&items, POOL_KEY_TTL_SECS)
        .ignore()
        .expire(&meta, POOL_KEY_TTL_SECS)
        .ignore()
        .del(keys::warm_claim(user))
        .ignore();
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// Takes the next page of never-served videos: one Redis command.
    pub async fn take_page(
        &self,
        user: &UserId,
        request: &PageRequest,
    ) -> Result<PageResult, StoreError> {
        let now = self.clock.now_ms();
        let fresh_ms = self.fresh.as_millis() as i64;
        let mut invocation = TAKE_PAGE_SCRIPT.prepare_invoke();
        invocation
            .key(keys::pool(user))
            .key(keys::pool_items(user))
            .key(keys::served(user))
            .key(keys::pool_meta(user))
            .key(keys::warm_claim(user))
            .arg(request.max_results)
            .arg(request.category_id.as_deref().unwrap_or(""))
            .arg(if request.include_trending { "1" } else { "0" })
            .arg(now)
            .arg(now - SERVED_TTL_SECS * 1000)
            .arg(SERVED_CAP)
            .arg(LOW_WATERMARK)
            .arg(fresh_ms)
            .arg(WARM_PENDING_TTL_MS);
        let mut conn = self.redis.clone();
        let (generated, remaining, claimed, page, needs): (i64, usize, i64, Vec<String>, i64) =
            invocation.invoke_async(&mut conn).await?;
        let videos = page
            .iter()
            .map(|raw| {
                serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
                    key: keys::pool_items(user),
                    reason: e.to_string(),
                })
            })
            .collect::<Result<Vec<Video>, _>>()?;
        let generated_at_ms = (generated >= 0).then_some(generated);
        Ok(PageResult {
            videos,
            generated_at_ms,
            pool_remaining: remaining,
            should_enqueue_warm: claimed == 1,
            stale: generated_at_ms.is_some_and(|g| now - g > fresh_ms),
            needs_refill: needs == 1,
        })
    }

    /// A page from `candidates` (videos outside the pool, best first) for a user with no
    /// pool: the request's filters applied, then, atomically, the first
    /// `request.max_results` not yet served are marked served and returned. A chart is
    /// all trending, so `include_trending=false` leaves nothing to serve from it.
    pub async fn serve_unpooled(
        &self,
        user: &UserId,
        candidates: Vec<Video>,
        request: &PageRequest,
    ) -> Result<Vec<Video>, StoreError> {
        let mut seen = std::collections::HashSet::new();
        let mut candidates: Vec<Video> = candidates
            .into_iter()
            .filter(|v| seen.insert(v.video_id.clone()))
            .filter(|v| request.include_trending || !v.trending)
            .filter(|v| {
                request
                    .category_id
                    .as_deref()
                    .is_none_or(|c| v.category_id == c)
            })
            .take(UNPOOLED_CANDIDATES_MAX)
            .collect();
        if candidates.is_empty() || request.max_results == 0 {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let mut invocation = SERVE_UNPOOLED_SCRIPT.prepare_invoke();
        invocation
            .key(keys::served(user))
            .arg(request.max_results)
            .arg(now)
            .arg(now - SERVED_TTL_SECS * 1000)
            .arg(SERVED_CAP);
        for video in &candidates {
            invocation.arg(&video.video_id);
        }
        let mut conn = self.redis.clone();
        let chosen: Vec<String> = invocation.invoke_async(&mut conn).await?;
        let chosen: std::collections::HashSet<String> = chosen.into_iter().collect();
        candidates.retain(|v| chosen.contains(&v.video_id));
        Ok(candidates)
    }

    /// Marks videos served that were shown outside the pool (the chart on a miss).
    pub async fn mark_served(&self, user: &UserId, ids: &[String]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let served = keys::served(user);
        let members: Vec<(i64, &String)> = ids.iter().map(|id| (now, id)).collect();
        let mut pipe = redis::pipe();
        pipe.zadd_multiple(&served, &members)
            .ignore()
            .expire(&served, SERVED_TTL_SECS)
            .ignore();
        let mut conn = self.redis.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    /// When the warm that built the user's pool began: a warm request made before that
    /// is answered by this pool, one made after is not (the history may have changed).
    /// Pools written before this was recorded answer with when they were generated.
    pub async fn built_from_ms(&self, user: &UserId) -> Result<Option<i64>, StoreError> {
        let mut conn = self.redis.clone();
        let (built_from, generated): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(keys::pool_meta(user))
            .arg("built_from")
            .arg("generated_at")
            .query_async(&mut conn)
            .await?;
        Ok(built_from.or(generated))
    }

    pub async fn served_ids(&self, user: &UserId) -> Result<Vec<String>, StoreError> {
        let mut conn = self.redis.clone();
        Ok(conn.zrange(keys::served(user), 0, -1).await?)
    }

    /// Claims the warm-pending flag unless a fresh, full pool exists: used by sign-in so
    /// a burst of sign-ins enqueues one warm and a fresh pool enqueues none.
    pub async fn claim_warm(&self, user: &UserId) -> Result<bool, StoreError> {
        let mut conn = self.redis.clone();
        let claimed: i64 = CLAIM_WARM_SCRIPT
            .key(keys::pool_meta(user))
            .key(keys::pool(user))
            .key(keys::warm_claim(user))
            .arg(self.clock.now_ms())
            .arg(self.fresh.as_millis() as i64)
            .arg(LOW_WATERMARK)
            .arg(WARM_PENDING_TTL_MS)
            .invoke_async(&mut conn)
            .await?;
        Ok(claimed == 1)
    }

    /// Releases the warm-pending flag (a send failed, so a later caller may try again).
    pub async fn release_warm_claim(&self, user: &UserId) -> Result<(), StoreError> {
        let mut conn = self.redis.clone();
        let _: () = conn.del(keys::warm_claim(user)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::WarmReason;

    fn page(generated: Option<i64>, stale: bool, needs_refill: bool) -> PageResult {
        PageResult {
            videos: Vec::new(),
            generated_at_ms: generated,
            pool_remaining: 100,
            should_enqueue_warm: true,
            stale,
            needs_refill,
        }
    }

    #[test]
    fn the_cache_status_and_the_refill_reason_are_decided_from_the_page_take() {
        let cases = [
            (
                page(None, false, true),
                false,
                CacheStatus::Miss,
                WarmReason::PoolMissing,
            ),
            (
                page(None, false, true),
                true,
                CacheStatus::Miss,
                WarmReason::PoolMissing,
            ),
            (
                page(Some(1), false, false),
                true,
                CacheStatus::Refreshed,
                WarmReason::PoolLow,
            ),
            (
                page(Some(1), true, true),
                false,
                CacheStatus::Stale,
                WarmReason::PoolStale,
            ),
            (
                page(Some(1), false, true),
                false,
                CacheStatus::Stale,
                WarmReason::PoolLow,
            ),
            (
                page(Some(1), false, false),
                false,
                CacheStatus::Hit,
                WarmReason::PoolLow,
            ),
        ];
        for (page, refreshed, status, reason) in cases {
            let got = CacheStatus::of(&page, refreshed);
            assert_eq!(got, status, "{page:?} refreshed={refreshed}");
            assert_eq!(got.refill_reason(&page), reason);
            assert_eq!(
                serde_json::to_value(got).unwrap(),
                serde_json::json!(got.as_str())
            );
        }
        assert!(CacheStatus::Hit.is_hit() && CacheStatus::Stale.is_hit());
        assert!(!CacheStatus::Miss.is_hit() && !CacheStatus::Refreshed.is_hit());
    }
}
