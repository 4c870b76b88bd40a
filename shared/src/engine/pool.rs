//! The per-user pool: pages of ids with their per-user marks, cut once by the warm.
//!
//! A warm ranks the user's candidates and writes them as the `feed` LIST of pre-cut pages
//! of [`PAGE_SIZE`] entries, best first. A page is a header line — when the pool was built
//! and how many entries follow the page — then one entry per line:
//! `video_id|category_id|kind|reason` (kind `h` from the user's own interests, `t` from a
//! chart). The cut is the served mark: the warm records the ids it cut (the `cut` key, a
//! few kilobytes), and an id of the cut no longer waiting in the pages has been shown —
//! the next warm writes it into the served set. So nothing on the hit has to write: the
//! common refresh (a page of 20, no category filter, trending allowed) is one plain
//! command on the user's keys, the `LPOP` of the next page, and Redis spends about what a
//! `GET` of the same bytes costs on it; and the served set holds only what was shown. The video details are not here: they
//! live once in the shared catalog (`keys::video`) and the API hydrates the page's ids
//! from its in-process item cache or the catalog (`super::catalog`).
//!
//! The header tells the caller whether the pool is low (under [`LOW_WATERMARK`] entries
//! left) or stale; an empty list is told apart (no pool, used up, first layout) by one
//! `HMGET` of the meta. Only then is the warm-pending flag claimed (`SET NX PX`, a second
//! round trip on those requests alone), so exactly one caller enqueues a refill. Rarer
//! requests take one script: another page size, a category filter or
//! `include_trending=false` picks the first matching entries out of the pages and cuts the
//! rest again ([`PoolStore::take_page_entries`]); a watch removes the watched video
//! ([`PoolStore::drop_entries`]). Pools written in the first layout are served by
//! `super::pool_v1` until their next warm. All keys share the user's hash tag, so every
//! script here runs on one Redis Cluster slot.

use std::collections::HashSet;
use std::time::Duration;

use redis::AsyncCommands;

use crate::clock::SharedClock;
use crate::domain::{UserId, Video};
use crate::store::{RedisConn, StoreError, keys};

/// The served-mark horizon: a video shown to a user is not shown again for this long.
pub const SERVED_TTL_SECS: i64 = 30 * 86_400;
/// How long a served mark and a cut's record are kept: the horizon, and a pool's life
/// more, since an entry shown from a pool is marked by the next warm, which may come as
/// late as the pool's end.
pub const SERVED_MARK_TTL_SECS: i64 = SERVED_TTL_SECS + POOL_KEY_TTL_SECS;
/// The most marks kept per user (the oldest go first).
pub const SERVED_CAP: usize = 5_000;
/// The ids per `ZMSCORE` when a warm asks which of its candidates were served.
const SERVED_CHECK_CHUNK: usize = 500;
/// Pool keys outlive the freshness TTL so a stale pool can still serve while refilling.
pub const POOL_KEY_TTL_SECS: i64 = 7 * 86_400;
/// Below this many unserved entries, a refresh asks for a refill.
pub const LOW_WATERMARK: usize = 60;
/// How long a claimed warm stays pending before another may be enqueued.
pub const WARM_PENDING_TTL_MS: u64 = 120_000;
/// The entries per pre-cut page: the API's default `max_results`, so the common request
/// takes exactly one page.
pub const PAGE_SIZE: usize = 20;
/// The `layout` the meta hash records for a feed list.
const LAYOUT: &str = "2";

/// Removes `video_ids` from the user's pool (videos just watched): the history write
/// marks them served, and they must not be offered from a page cut before. One script,
/// which rewrites the list only when one of them is there.
pub async fn drop_entries(
    redis: &RedisConn,
    user: &UserId,
    video_ids: &[&str],
) -> Result<usize, StoreError> {
    if video_ids.is_empty() {
        return Ok(0);
    }
    let mut invocation = DROP_ENTRIES_SCRIPT.prepare_invoke();
    invocation
        .key(keys::feed(user))
        .key(keys::pool_meta(user))
        .arg(PAGE_SIZE);
    for id in video_ids {
        invocation.arg(*id);
    }
    let mut conn = redis.clone();
    Ok(invocation.invoke_async(&mut conn).await?)
}

/// One pooled video as the user's state holds it: the id, and what is genuinely this
/// user's — the reason it was picked, whether it came from a chart — plus the category a
/// filtered request needs. Its rank is its place in the list.
///
/// Kept as its encoded line `video_id|category_id|kind|reason` with the fields as slices
/// of it: a page's 20 entries are parsed on every hit, and one allocation per entry (the
/// line, whose tail then becomes the card's reason) costs a third of three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    line: String,
    id_end: usize,
    category_end: usize,
    trending: bool,
}

impl Entry {
    /// A line break in `reason` (entries are one per line in a page) becomes a space.
    pub fn new(video_id: &str, category_id: &str, trending: bool, reason: &str) -> Self {
        let kind = if trending { 't' } else { 'h' };
        let line = format!(
            "{video_id}|{category_id}|{kind}|{}",
            reason.replace(['\n', '\r'], " ")
        );
        Self {
            id_end: video_id.len(),
            category_end: video_id.len() + 1 + category_id.len(),
            trending,
            line,
        }
    }

    pub fn of(video: &Video) -> Self {
        Self::new(
            &video.video_id,
            &video.category_id,
            video.trending,
            &video.reason,
        )
    }

    pub fn video_id(&self) -> &str {
        &self.line[..self.id_end]
    }

    pub fn category_id(&self) -> &str {
        &self.line[self.id_end + 1..self.category_end]
    }

    pub fn trending(&self) -> bool {
        self.trending
    }

    fn reason_start(&self) -> usize {
        self.category_end + 3
    }

    /// The reason, in the line's own allocation.
    pub fn into_reason(self) -> String {
        let start = self.reason_start();
        let mut line = self.line;
        line.drain(..start);
        line
    }

    /// `video_id|category_id|kind|reason`: the reason is last, so it may hold `|`.
    pub fn encode(&self) -> &str {
        &self.line
    }

    pub fn parse(raw: &str) -> Option<Self> {
        // The fields before the reason are short: a plain scan for the ASCII separator
        // (a cut at it is a char boundary) costs less than a general string search.
        let bar = |from: usize| {
            raw[from..]
                .bytes()
                .position(|b| b == b'|')
                .map(|at| from + at)
        };
        let id_end = bar(0).filter(|&at| at > 0)?;
        let category_end = bar(id_end + 1)?;
        let trending = match raw.get(category_end + 1..category_end + 3)? {
            "t|" => true,
            "h|" => false,
            _ => return None,
        };
        Some(Self {
            line: raw.to_owned(),
            id_end,
            category_end,
            trending,
        })
    }
}

/// Lua shared by the scripts that read or write the page list: a page is a header line
/// `<generated_at_ms> <entries after this page>` and its entries, one per line.
macro_rules! with_page_lua {
    ($body:literal) => {
        concat!(
            r#"
local function page_entries(page, out)
  local first = true
  for line in string.gmatch(page, '[^\n]+') do
    if first then first = false else out[#out + 1] = line end
  end
end
local function all_entries(key)
  local out = {}
  for _, page in ipairs(redis.call('LRANGE', key, 0, -1)) do page_entries(page, out) end
  return out
end
-- Cuts `entries` into pages of `size` behind `key` (replacing what it held), each
-- headed by `generated` and how many entries follow it.
local function write_pages(key, entries, generated, size)
  redis.call('DEL', key)
  local n = #entries
  local pages = {}
  for i = 1, n, size do
    local last = math.min(i + size - 1, n)
    pages[#pages + 1] = generated .. ' ' .. (n - last) .. '\n' .. table.concat(entries, '\n', i, last)
  end
  for i = 1, #pages, 1000 do
    redis.call('RPUSH', key, unpack(pages, i, math.min(i + 999, #pages)))
  end
end
"#,
            $body
        )
    };
}

/// Writes a warm's ranked entries over the user's pool, atomically. The entries the last
/// cut made that are no longer waiting in the pages were shown (or watched, or lost with
/// an expired pool): their served marks are made now. Then every new entry not marked (a
/// page taken since the warm read the marks is among them) is kept, in order, once, and
/// cut into pages; the cut's ids are kept beside, for the next warm.
const REPLACE_FEED: &str = with_page_lua!(
    r#"
-- KEYS: feed, served, meta, warm-pending, first-layout pool, first-layout items, cut
-- ARGV: now_ms, served_min_ms, served_cap, built_from_ms, key_ttl_ms, served_ttl_ms,
--       page_size, entries... (best first)
local now = ARGV[1]
local function zadd(args, option)
  for i = 1, #args, 1000 do
    redis.call('ZADD', KEYS[2], option, unpack(args, i, math.min(i + 999, #args)))
  end
end
local waiting = {}
for _, e in ipairs(all_entries(KEYS[1])) do
  local id = string.match(e, '^([^|]+)|')
  if id then waiting[id] = true end
end
local shown = {}
for id in string.gmatch(redis.call('GET', KEYS[7]) or '', '%S+') do
  if not waiting[id] then
    shown[#shown + 1] = now
    shown[#shown + 1] = id
  end
end
-- NX: a mark already made (a watch, a miss page) keeps its time.
if #shown > 0 then zadd(shown, 'NX') end
redis.call('DEL', KEYS[5], KEYS[6])
local ids, entries, seen = {}, {}, {}
for i = 8, #ARGV do
  local id = string.match(ARGV[i], '^([^|]+)|')
  if id and not seen[id] then
    seen[id] = true
    ids[#ids + 1] = id
    entries[#entries + 1] = ARGV[i]
  end
end
local kept, kept_ids = {}, {}
for i = 1, #ids, 1000 do
  local chunk = {unpack(ids, i, math.min(i + 999, #ids))}
  local scores = redis.call('ZMSCORE', KEYS[2], unpack(chunk))
  for j, id in ipairs(chunk) do
    if not scores[j] then
      kept[#kept + 1] = entries[i + j - 1]
      kept_ids[#kept_ids + 1] = id
    end
  end
end
write_pages(KEYS[1], kept, now, tonumber(ARGV[7]))
if #kept > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('SET', KEYS[7], table.concat(kept_ids, ' '), 'PX', ARGV[6])
else
  redis.call('DEL', KEYS[7])
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2])
local cap = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[2]) > cap then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(cap + 1))
end
if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
redis.call('HSET', KEYS[3], 'generated_at', now, 'built_from', ARGV[4], 'size', #kept, 'layout', '2')
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('DEL', KEYS[4])
return #kept
"#
);

static REPLACE_FEED_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(REPLACE_FEED));

/// Any page that is not the next pre-cut one: the first `max` entries matching the
/// filters leave the pool, in order; the rest stay in order, cut again into pages.
const TAKE_ENTRIES: &str = with_page_lua!(
    r#"
-- KEYS: feed, meta
-- ARGV: max, category ('' = any), include_trending ('1'/'0'), page_size
-- Returns {generated_at or -1, entries left, entries taken, layout (2, or 1 for a pool
-- in the first layout, which this leaves alone)}
local meta = redis.call('HMGET', KEYS[2], 'generated_at', 'layout')
local generated = tonumber(meta[1] or '-1')
if generated >= 0 and meta[2] ~= '2' then return {generated, 0, {}, 1} end
local max = tonumber(ARGV[1])
local category = ARGV[2]
local trending_ok = ARGV[3] == '1'
local page, rest = {}, {}
for _, e in ipairs(all_entries(KEYS[1])) do
  local id, cat, kind = string.match(e, '^([^|]+)|([^|]*)|(%a)|')
  if #page < max and id and (category == '' or cat == category)
      and (trending_ok or kind == 'h') then
    page[#page + 1] = e
  else
    rest[#rest + 1] = e
  end
end
if #page > 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  write_pages(KEYS[1], rest, meta[1], tonumber(ARGV[4]))
  if #rest > 0 and ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return {generated, #rest, page, 2}
"#
);

static TAKE_ENTRIES_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(TAKE_ENTRIES));

/// Removes the entries of the given video ids from the pool (a watch): the pages are
/// cut again only when one is there.
const DROP_ENTRIES: &str = with_page_lua!(
    r#"
-- KEYS: feed, meta;  ARGV: page_size, video ids...
local drop = {}
for i = 2, #ARGV do drop[ARGV[i]] = true end
local rest, dropped = {}, 0
for _, e in ipairs(all_entries(KEYS[1])) do
  local id = string.match(e, '^([^|]+)|')
  if id and drop[id] then dropped = dropped + 1 else rest[#rest + 1] = e end
end
if dropped > 0 then
  local ttl = redis.call('PTTL', KEYS[1])
  local generated = redis.call('HGET', KEYS[2], 'generated_at') or '0'
  write_pages(KEYS[1], rest, generated, tonumber(ARGV[1]))
  if #rest > 0 and ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return dropped
"#
);

static DROP_ENTRIES_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(DROP_ENTRIES));

/// Serves videos from outside the pool (the region's chart when a user has none yet): in
/// one script, the first `max` candidates not yet served are chosen and marked served, so
/// two requests at once can never both serve the same video. A user without a pool may
/// still have the ids of their last cut, whose marks a warm had not made yet: they count
/// as served.
const SERVE_UNPOOLED: &str = r#"
-- KEYS: served, cut
-- ARGV: max, now_ms, served_min_ms, served_cap, served_ttl_ms,
--       candidate ids... (in order, filtered)
local max = tonumber(ARGV[1])
local chosen = {}
if max > 0 and #ARGV > 5 then
  local cut = {}
  for id in string.gmatch(redis.call('GET', KEYS[2]) or '', '%S+') do cut[id] = true end
  local ids = {}
  for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
  local scores = redis.call('ZMSCORE', KEYS[1], unpack(ids))
  for j, id in ipairs(ids) do
    if #chosen >= max then break end
    if not scores[j] and not cut[id] then chosen[#chosen + 1] = id end
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
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return chosen
"#;

static SERVE_UNPOOLED_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(SERVE_UNPOOLED));

/// Claims the warm claim unless a fresh, full pool exists (sign-in). A pool in either
/// layout counts: the entries of the first page and those it says follow, or the first
/// layout's ZSET's members.
const CLAIM_WARM: &str = r#"
-- KEYS: meta, feed, warm claim, first-layout pool;  ARGV: now_ms, fresh_ms, low_watermark, claim_ttl_ms
local generated = tonumber(redis.call('HGET', KEYS[1], 'generated_at') or '-1')
local remaining = redis.call('ZCARD', KEYS[4])
local first = redis.call('LINDEX', KEYS[2], 0)
if first then
  local after, entries = string.match(first, '^%S+ (%d+)\n(.*)$')
  remaining = remaining + tonumber(after or '0')
  if entries then
    for _ in string.gmatch(entries, '[^\n]+') do remaining = remaining + 1 end
  end
end
if generated >= 0 and (tonumber(ARGV[1]) - generated) <= tonumber(ARGV[2]) and remaining >= tonumber(ARGV[3]) then
  return 0
end
if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[4]) then return 1 end
return 0
"#;

static CLAIM_WARM_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(CLAIM_WARM));

/// The most candidates one unpooled page looks at (a chart is 50).
const UNPOOLED_CANDIDATES_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub max_results: usize,
    pub category_id: Option<String>,
    pub include_trending: bool,
}

impl PageRequest {
    /// No filter: the common request when a page of [`PAGE_SIZE`] is asked (one `LPOP`);
    /// an unfiltered page is topped up when its videos were gone from the catalog.
    pub fn is_unfiltered(&self) -> bool {
        self.category_id.is_none() && self.include_trending
    }
}

/// A page and what the take learnt about the pool: of [`Video`]s ([`PageResult`]), or
/// of the API's cards (`Page<catalog::Card>`).
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub videos: Vec<T>,
    /// When the pool was built; `None` when the user has no pool yet.
    pub generated_at_ms: Option<i64>,
    pub pool_remaining: usize,
    /// This caller won the warm-pending flag and should enqueue a refill.
    pub should_enqueue_warm: bool,
    pub stale: bool,
    /// The pool is missing, low (under [`LOW_WATERMARK`]), stale, or named videos the
    /// catalog no longer holds: the one rule for asking a refill, whoever won the claim.
    pub needs_refill: bool,
    /// Entries skipped because the catalog no longer holds their video.
    pub missing_items: usize,
}

pub type PageResult = Page<Video>;

/// What a page take read from the user's keys, before hydration.
#[derive(Debug, Clone, PartialEq)]
pub struct TakenEntries {
    pub entries: Vec<Entry>,
    /// A pool in the first layout answered with whole videos (`super::pool_v1`).
    pub legacy_videos: Option<Vec<Video>>,
    pub generated_at_ms: Option<i64>,
    pub remaining: usize,
    pub stale: bool,
    pub needs_refill: bool,
    /// A first-layout pool's script already claimed (when its rule said so); other takes
    /// leave the claim to [`PoolStore::claim_refill`].
    pub claimed: bool,
}

/// One pre-cut page as stored: `<generated_at_ms> <entries after it>` on the first
/// line, then one entry per line.
struct CutPage {
    generated_at_ms: i64,
    after: usize,
    entries: Vec<Entry>,
}

fn parse_page(raw: &str) -> Option<CutPage> {
    let mut lines = raw.split('\n');
    let (generated, after) = lines.next()?.split_once(' ')?;
    Some(CutPage {
        generated_at_ms: generated.parse().ok()?,
        after: after.parse().ok()?,
        entries: lines.filter_map(Entry::parse).collect(),
    })
}

/// The entries of every page of a pool, in order.
fn all_entries(pages: &[String]) -> Vec<Entry> {
    pages
        .iter()
        .filter_map(|p| parse_page(p))
        .flat_map(|p| p.entries)
        .collect()
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
    pub fn of<T>(page: &Page<T>, refreshed: bool) -> Self {
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
    pub fn refill_reason<T>(self, page: &Page<T>) -> crate::messages::WarmReason {
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

    /// Replaces the pool with `ranked` (best first) in one atomic script, as built from a
    /// history read now.
    pub async fn replace(&self, user: &UserId, ranked: &[Video]) -> Result<usize, StoreError> {
        self.replace_built_from(user, ranked, self.clock.now_ms())
            .await
    }

    /// Replaces the pool with `ranked`, built by a warm that began at `built_from_ms`
    /// (before it read the history); see [`PoolStore::built_from_ms`]. Returns how many
    /// entries the pool holds: those of `ranked` not served meanwhile.
    pub async fn replace_built_from(
        &self,
        user: &UserId,
        ranked: &[Video],
        built_from_ms: i64,
    ) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        let mut invocation = REPLACE_FEED_SCRIPT.prepare_invoke();
        invocation
            .key(keys::feed(user))
            .key(keys::served(user))
            .key(keys::pool_meta(user))
            .key(keys::warm_claim(user))
            .key(keys::pool(user))
            .key(keys::pool_items(user))
            .key(keys::cut(user))
            .arg(now)
            .arg(now - SERVED_MARK_TTL_SECS * 1000)
            .arg(SERVED_CAP)
            .arg(built_from_ms)
            .arg(POOL_KEY_TTL_SECS * 1000)
            .arg(SERVED_MARK_TTL_SECS * 1000)
            .arg(PAGE_SIZE);
        for video in ranked {
            invocation.arg(Entry::of(video).encode());
        }
        let mut conn = self.redis.clone();
        Ok(invocation.invoke_async(&mut conn).await?)
    }

    /// Takes the next `request.max_results` entries. The common request (a page of
    /// [`PAGE_SIZE`], unfiltered) is one `LPOP` of the next pre-cut page, whose header
    /// says when the pool was built and how many entries follow; an empty list is told
    /// apart (no pool, used up, first layout) by one `HMGET` of the meta. Any other page
    /// is one script; a pool in the first layout is answered by its own script. The refill
    /// rule is applied to what came back; claiming is [`PoolStore::claim_refill`]'s, but
    /// for a first-layout pool, whose script claims itself.
    pub async fn take_page_entries(
        &self,
        user: &UserId,
        request: &PageRequest,
    ) -> Result<TakenEntries, StoreError> {
        let now = self.clock.now_ms();
        let fresh_ms = self.fresh.as_millis() as i64;
        let mut conn = self.redis.clone();
        let taken = if request.is_unfiltered() && request.max_results == PAGE_SIZE {
            let page: Option<String> = conn.lpop(keys::feed(user), None).await?;
            match page.as_deref().map(parse_page) {
                Some(Some(page)) => Some(page),
                // An unreadable page is skipped like a lost item: the pool is rebuilt.
                Some(None) => Some(CutPage {
                    generated_at_ms: 0,
                    after: 0,
                    entries: Vec::new(),
                }),
                None => None,
            }
        } else {
            let (generated, remaining, raw, layout): (i64, usize, Vec<String>, i64) =
                TAKE_ENTRIES_SCRIPT
                    .key(keys::feed(user))
                    .key(keys::pool_meta(user))
                    .arg(request.max_results)
                    .arg(request.category_id.as_deref().unwrap_or(""))
                    .arg(if request.include_trending { "1" } else { "0" })
                    .arg(PAGE_SIZE)
                    .invoke_async(&mut conn)
                    .await?;
            match (generated >= 0, layout == 2) {
                (true, true) => Some(CutPage {
                    generated_at_ms: generated,
                    after: remaining,
                    entries: raw.iter().filter_map(|e| Entry::parse(e)).collect(),
                }),
                (true, false) => return self.take_legacy(user, request, now, fresh_ms).await,
                (false, _) => None,
            }
        };
        let page = match taken {
            Some(page) => page,
            None => {
                let (generated, layout): (Option<i64>, Option<String>) = redis::cmd("HMGET")
                    .arg(keys::pool_meta(user))
                    .arg("generated_at")
                    .arg("layout")
                    .query_async(&mut conn)
                    .await?;
                match generated {
                    Some(_) if layout.as_deref() != Some(LAYOUT) => {
                        return self.take_legacy(user, request, now, fresh_ms).await;
                    }
                    Some(generated_at_ms) => CutPage {
                        generated_at_ms,
                        after: 0,
                        entries: Vec::new(),
                    },
                    None => {
                        return Ok(TakenEntries {
                            entries: Vec::new(),
                            legacy_videos: None,
                            generated_at_ms: None,
                            remaining: 0,
                            stale: false,
                            needs_refill: true,
                            claimed: false,
                        });
                    }
                }
            }
        };
        let stale = now - page.generated_at_ms > fresh_ms;
        Ok(TakenEntries {
            entries: page.entries,
            legacy_videos: None,
            generated_at_ms: Some(page.generated_at_ms),
            remaining: page.after,
            stale,
            needs_refill: page.after < LOW_WATERMARK || stale,
            claimed: false,
        })
    }

    /// A page from a pool in the first layout (`super::pool_v1`), claimed in its script.
    async fn take_legacy(
        &self,
        user: &UserId,
        request: &PageRequest,
        now: i64,
        fresh_ms: i64,
    ) -> Result<TakenEntries, StoreError> {
        let legacy = super::pool_v1::take_page(&self.redis, user, request, now, fresh_ms).await?;
        Ok(TakenEntries {
            entries: Vec::new(),
            stale: legacy.generated_at_ms.is_some_and(|g| now - g > fresh_ms),
            generated_at_ms: legacy.generated_at_ms,
            remaining: legacy.remaining,
            needs_refill: legacy.needs_refill,
            claimed: legacy.claimed,
            legacy_videos: Some(legacy.videos),
        })
    }

    /// The next `count` entries, after a page came out short (its videos were gone from
    /// the catalog): one script, as for any page that is not the next pre-cut one.
    pub async fn take_more(
        &self,
        user: &UserId,
        count: usize,
    ) -> Result<(Vec<Entry>, usize), StoreError> {
        let mut conn = self.redis.clone();
        let (_, remaining, raw, _): (i64, usize, Vec<String>, i64) = TAKE_ENTRIES_SCRIPT
            .key(keys::feed(user))
            .key(keys::pool_meta(user))
            .arg(count)
            .arg("")
            .arg("1")
            .arg(PAGE_SIZE)
            .invoke_async(&mut conn)
            .await?;
        Ok((
            raw.iter().filter_map(|e| Entry::parse(e)).collect(),
            remaining,
        ))
    }

    /// Claims the warm-pending flag for a refill the page take found needed: one
    /// `SET NX PX`, won by exactly one caller per pending period.
    pub async fn claim_refill(&self, user: &UserId) -> Result<bool, StoreError> {
        let mut conn = self.redis.clone();
        let won: Option<String> = redis::cmd("SET")
            .arg(keys::warm_claim(user))
            .arg(self.clock.now_ms())
            .arg("NX")
            .arg("PX")
            .arg(WARM_PENDING_TTL_MS)
            .query_async(&mut conn)
            .await?;
        Ok(won.is_some())
    }

    /// Removes `video_ids` from the user's pool; see [`drop_entries`].
    pub async fn drop_entries(
        &self,
        user: &UserId,
        video_ids: &[&str],
    ) -> Result<usize, StoreError> {
        drop_entries(&self.redis, user, video_ids).await
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
            .key(keys::cut(user))
            .arg(request.max_results)
            .arg(now)
            .arg(now - SERVED_MARK_TTL_SECS * 1000)
            .arg(SERVED_CAP)
            .arg(SERVED_MARK_TTL_SECS * 1000);
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
            .expire(&served, SERVED_MARK_TTL_SECS)
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

    /// The videos shown to the user (or watched) within the horizon: the served set, and
    /// the ids of the last cut shown since ([`PoolStore::shown_from_cut`]). Reads the
    /// whole set, for checks; a warm asks only about its candidates
    /// ([`PoolStore::served_among`]).
    pub async fn served_ids(&self, user: &UserId) -> Result<Vec<String>, StoreError> {
        let mut conn = self.redis.clone();
        let mut served: Vec<String> = conn.zrange(keys::served(user), 0, -1).await?;
        served.extend(self.shown_from_cut(user).await?);
        Ok(served)
    }

    /// The ids of the last cut no longer waiting in the pages: shown since, and not
    /// yet in the served set (the next warm makes their marks). Bounded by a pool's
    /// size, whatever the user has been shown before.
    pub async fn shown_from_cut(&self, user: &UserId) -> Result<HashSet<String>, StoreError> {
        let mut conn = self.redis.clone();
        let (pages, cut): (Vec<String>, Option<String>) = redis::pipe()
            .lrange(keys::feed(user), 0, -1)
            .get(keys::cut(user))
            .query_async(&mut conn)
            .await?;
        let waiting: HashSet<String> = all_entries(&pages)
            .into_iter()
            .map(|e| e.video_id().to_owned())
            .collect();
        Ok(cut
            .unwrap_or_default()
            .split_whitespace()
            .filter(|id| !waiting.contains(*id))
            .map(str::to_owned)
            .collect())
    }

    /// Which of `ids` are in the user's served set: one `ZMSCORE` per
    /// [`SERVED_CHECK_CHUNK`] ids, so a warm asks about its few hundred candidates
    /// rather than reading thousands of marks.
    pub async fn served_among(
        &self,
        user: &UserId,
        ids: &[&str],
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for chunk in ids.chunks(SERVED_CHECK_CHUNK) {
            pipe.cmd("ZMSCORE").arg(keys::served(user)).arg(chunk);
        }
        let mut conn = self.redis.clone();
        let scores: Vec<Vec<Option<f64>>> = pipe.query_async(&mut conn).await?;
        Ok(ids
            .iter()
            .zip(scores.into_iter().flatten())
            .filter(|(_, score)| score.is_some())
            .map(|(id, _)| (*id).to_owned())
            .collect())
    }

    /// The pool's entries, best first, without taking them.
    pub async fn entries(&self, user: &UserId) -> Result<Vec<Entry>, StoreError> {
        let mut conn = self.redis.clone();
        let pages: Vec<String> = conn.lrange(keys::feed(user), 0, -1).await?;
        Ok(all_entries(&pages))
    }

    /// Claims the warm-pending flag unless a fresh, full pool exists: used by sign-in so
    /// a burst of sign-ins enqueues one warm and a fresh pool enqueues none.
    pub async fn claim_warm(&self, user: &UserId) -> Result<bool, StoreError> {
        let mut conn = self.redis.clone();
        let claimed: i64 = CLAIM_WARM_SCRIPT
            .key(keys::pool_meta(user))
            .key(keys::feed(user))
            .key(keys::warm_claim(user))
            .key(keys::pool(user))
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
            missing_items: 0,
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
