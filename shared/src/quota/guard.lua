-- reco quota guard: the one script behind every quota check (see shared/src/quota/mod.rs).
--
-- Every quota operation is this one script, so a check is a single EVALSHA and the
-- daily buckets, the short windows, the breaker and the backoff are read and written
-- atomically: two Lambda instances can never both take the last unit.
--
-- Time is ARGV[2] (ms since the epoch, from the caller's injectable clock), never TIME:
-- ElastiCache Serverless may refuse TIME in scripts, and tests must move time.
-- TTLs are garbage collection only; every decision compares stored instants with ARGV
-- time, so a clock far ahead of Redis's (tests, the day simulator) still decides right.
--
-- KEYS (all in the {quota} hash slot, so Redis Cluster / ElastiCache Serverless accept it)
--   1 units counter of the Pacific day     2 search counter of the Pacific day
--   3 per-second log                        4 per-minute log
--   5 units breaker: closed-until (ms)      6 backoff: closed-until instant (ms)
--   7 search breaker: closed-until (ms)     8 per-user interactive spend of the day (hash)
--
-- ARGV[1] op: admit | state | breaker | backoff;  ARGV[2] now (ms)
--   admit:   3 units cost, 4 searches cost, 5 units cap, 6 searches cap (margin and
--            priority already applied), 7 ms to Pacific midnight, 8 day-key TTL ms,
--            9 calls/s limit, 10 second window ms, 11 units/min limit, 12 minute window ms,
--            13 spender ('' = none: background, or no user), 14 spender's units cap,
--            15 spender's searches cap (0 = no cap)
--            -> {1, 0, 0} allowed, or {0, limit code, retry after ms}
--            limit codes: 1 daily units, 2 daily searches, 3 per second, 4 per minute,
--                         5 units breaker, 6 backoff, 7 search breaker, 8 user budget
--   state:   3 second window ms, 4 minute window ms
--            -> {units used, searches used, units breaker until|0, backoff until|0,
--                calls in the second window, units in the minute window,
--                search breaker until|0}
--   breaker / backoff / search_breaker: 3 until ms, 4 TTL ms -> the until now stored (the
--            later one wins)
--
-- Each daily bucket has its own breaker, checked only for calls that spend from it: a
-- search refused by YouTube closes searches, not the units every other call needs.
--
-- Short windows are sliding logs: one list element per unit of weight, holding the
-- instant it was admitted, appended in time order. "At most N in any window of length
-- W" then reads as "the N-th newest element is at least W old", which holds for every
-- alignment of the provider's own windows (fixed or sliding), and the exact wait for a
-- refused call is when the element that must leave does. Lists hold at most N elements.

local op = ARGV[1]
local now = tonumber(ARGV[2])

local function num(v)
  return tonumber(v) or 0
end

-- Drops the elements that have left the window and counts the rest. The log is in time
-- order, so only the head can be stale; if the newest element is stale, all are.
local function live(key, window)
  local last = redis.call('LINDEX', key, -1)
  if not last then return 0 end
  if tonumber(last) + window <= now then
    redis.call('DEL', key)
    return 0
  end
  while true do
    local head = redis.call('LINDEX', key, 0)
    if tonumber(head) + window > now then break end
    redis.call('LPOP', key)
  end
  return redis.call('LLEN', key)
end

-- Read-only count for `state` (no trimming, so it writes nothing).
local function count_live(key, window)
  local items = redis.call('LRANGE', key, 0, -1)
  local n = 0
  for i = #items, 1, -1 do
    if tonumber(items[i]) + window > now then n = n + 1 else break end
  end
  return n
end

-- 0 when `weight` fits in the window now, else the ms until it will.
-- A limit of 0 means "not enforced" (the provider publishes no such limit).
local function window_wait(key, window, limit, weight)
  if limit <= 0 or weight <= 0 then return 0 end
  if weight > limit then return window end -- can never fit: a misconfiguration
  local n = live(key, window)
  if n + weight <= limit then return 0 end
  -- The oldest n + weight - limit elements must leave; the last of them decides.
  local t = tonumber(redis.call('LINDEX', key, n + weight - limit - 1))
  return math.max(1, t + window - now)
end

local function record(key, window, limit, weight)
  if limit <= 0 or weight <= 0 then return end
  -- Never append before the newest element (another instance's clock may run ahead):
  -- keeps the log ordered, and only ever makes the window stricter.
  local t = now
  local last = redis.call('LINDEX', key, -1)
  if last and tonumber(last) > t then t = tonumber(last) end
  local left = weight
  while left > 0 do
    local chunk = {}
    for i = 1, math.min(left, 500) do chunk[i] = t end
    redis.call('RPUSH', key, unpack(chunk))
    left = left - #chunk
  end
  redis.call('PEXPIRE', key, math.floor(t - now + window) + 1000)
end

local function daily_fits(key, cost, cap)
  if cost <= 0 then return true end
  return num(redis.call('GET', key)) + cost <= cap
end

local function debit(key, cost, ttl)
  if cost <= 0 then return end
  redis.call('INCRBY', key, cost)
  redis.call('PEXPIRE', key, ttl)
end

if op == 'admit' then
  local units, searches = num(ARGV[3]), num(ARGV[4])
  local units_cap, searches_cap = num(ARGV[5]), num(ARGV[6])
  local to_midnight, day_ttl = num(ARGV[7]), num(ARGV[8])
  local sec_limit, sec_window = num(ARGV[9]), num(ARGV[10])
  local min_limit, min_window = num(ARGV[11]), num(ARGV[12])
  local spender = ARGV[13] or ''
  local user_units_cap, user_searches_cap = num(ARGV[14]), num(ARGV[15])

  -- What YouTube itself said comes first: it knows spend these counters may have lost.
  if units > 0 then
    local breaker = num(redis.call('GET', KEYS[5]))
    if breaker > now then return {0, 5, breaker - now} end
  end
  if searches > 0 then
    local breaker = num(redis.call('GET', KEYS[7]))
    if breaker > now then return {0, 7, breaker - now} end
  end
  local backoff = num(redis.call('GET', KEYS[6]))
  if backoff > now then return {0, 6, backoff - now} end

  if not daily_fits(KEYS[1], units, units_cap) then return {0, 1, to_midnight} end
  if not daily_fits(KEYS[2], searches, searches_cap) then return {0, 2, to_midnight} end

  -- One user's interactive spend of the day, so no account can spend everyone's day.
  if spender ~= '' then
    if user_units_cap > 0 and units > 0
        and num(redis.call('HGET', KEYS[8], spender .. ':u')) + units > user_units_cap then
      return {0, 8, to_midnight}
    end
    if user_searches_cap > 0 and searches > 0
        and num(redis.call('HGET', KEYS[8], spender .. ':s')) + searches > user_searches_cap then
      return {0, 8, to_midnight}
    end
  end

  -- Per second counts calls; per minute is cost-weighted (a search weighs 1).
  local wait_sec = window_wait(KEYS[3], sec_window, sec_limit, 1)
  local wait_min = window_wait(KEYS[4], min_window, min_limit, units + searches)
  if wait_sec > 0 or wait_min > 0 then
    if wait_min >= wait_sec then return {0, 4, wait_min} end
    return {0, 3, wait_sec}
  end

  -- Every check passed: debit every bucket the call touches (nothing was written above
  -- except dropping expired window elements, so a refusal debits nothing).
  debit(KEYS[1], units, day_ttl)
  debit(KEYS[2], searches, day_ttl)
  record(KEYS[3], sec_window, sec_limit, 1)
  record(KEYS[4], min_window, min_limit, units + searches)
  if spender ~= '' then
    if units > 0 then redis.call('HINCRBY', KEYS[8], spender .. ':u', units) end
    if searches > 0 then redis.call('HINCRBY', KEYS[8], spender .. ':s', searches) end
    redis.call('PEXPIRE', KEYS[8], day_ttl)
  end
  return {1, 0, 0}
elseif op == 'state' then
  local breaker = num(redis.call('GET', KEYS[5]))
  if breaker <= now then breaker = 0 end
  local backoff = num(redis.call('GET', KEYS[6]))
  if backoff <= now then backoff = 0 end
  local search_breaker = num(redis.call('GET', KEYS[7]))
  if search_breaker <= now then search_breaker = 0 end
  return {
    num(redis.call('GET', KEYS[1])),
    num(redis.call('GET', KEYS[2])),
    breaker,
    backoff,
    count_live(KEYS[3], num(ARGV[3])),
    count_live(KEYS[4], num(ARGV[4])),
    search_breaker,
  }
elseif op == 'breaker' or op == 'backoff' or op == 'search_breaker' then
  local key = KEYS[5]
  if op == 'backoff' then key = KEYS[6] end
  if op == 'search_breaker' then key = KEYS[7] end
  local until_ms = num(ARGV[3])
  local current = num(redis.call('GET', key))
  if current >= until_ms then return current end
  redis.call('SET', key, until_ms, 'PX', math.max(1, math.floor(num(ARGV[4]))))
  return until_ms
end
return redis.error_reply('quota guard: unknown op ' .. tostring(op))
