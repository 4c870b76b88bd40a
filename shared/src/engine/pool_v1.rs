//! The first layout of a user's pool, still served while such pools live.
//!
//! Before the feed list (`super::pool`), a pool was a ZSET of `id|category|kind` members
//! ranked by score with a HASH holding a full JSON copy of each video, and every refresh
//! ran the page-take script below: it walked the pool, checked and wrote the served marks
//! and removed what it served — some 330–440 µs of Redis's own time per hit. A deployed
//! system has live pools in that layout when this version rolls out: a refresh finds no
//! feed list, sees meta without `layout`, and is answered by this script instead, so the
//! user notices nothing; the next warm (claimed when that pool runs low or stale, as
//! before) writes the new layout and deletes these keys. Pools live at most seven days, so
//! after a week nothing reaches this module.

use crate::domain::{UserId, Video};
use crate::store::{RedisConn, StoreError, keys};

use super::pool::{LOW_WATERMARK, PageRequest, SERVED_CAP, SERVED_TTL_SECS, WARM_PENDING_TTL_MS};

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

static TAKE_PAGE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(TAKE_PAGE));

/// A page taken from a pool in the first layout.
pub(crate) struct LegacyPage {
    pub videos: Vec<Video>,
    pub generated_at_ms: Option<i64>,
    pub remaining: usize,
    pub claimed: bool,
    pub needs_refill: bool,
}

/// Takes the next page from `user`'s first-layout pool: one EVALSHA, as before.
pub(crate) async fn take_page(
    redis: &RedisConn,
    user: &UserId,
    request: &PageRequest,
    now: i64,
    fresh_ms: i64,
) -> Result<LegacyPage, StoreError> {
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
    let mut conn = redis.clone();
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
    Ok(LegacyPage {
        videos,
        generated_at_ms: (generated >= 0).then_some(generated),
        remaining,
        claimed: claimed == 1,
        needs_refill: needs == 1,
    })
}
