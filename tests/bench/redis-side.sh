#!/usr/bin/env bash
# Redis's own time (INFO commandstats usec_per_call) per cache hit, both layouts in one run,
# on a standalone redis-server with 600 users × a 240-video pool of ~500-byte items
# (BENCHMARKS.md §1):
#   * the feed list (shared/src/engine/pool.rs): the common hit's one command (LPOP of the
#     next pre-cut page of 20 entries), and the MGET of 20 catalog items an instance sends
#     when its item cache lacks the page;
#   * the first layout (shared/src/engine/pool_v1.rs): its page-take script, read from the
#     source, so this measures the one that still serves old pools.
#
#   tests/bench/redis-side.sh          # needs redis-server, redis-cli, redis-benchmark
#   SERVED=1000 tests/bench/redis-side.sh   # users who have already been served 1,000 videos
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in redis-server redis-cli redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "redis-side: $tool is missing (scripts/setup.sh)" >&2; exit 1; }
done
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
  --logfile "$work/redis.log" --dir "$work"
trap 'redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
cli() { redis-cli -p "$port" "$@"; }
USERS=600 CALLS=3000 NOW=1764150001000 SERVED=${SERVED:-0}

python3 - "$work" <<'EOF'
import re, sys
work = sys.argv[1]
src = open('shared/src/engine/pool_v1.rs').read()
take = re.search(r'const TAKE_PAGE: &str = r#"(.*?)"#;', src, re.S).group(1)
# redis-benchmark randomises each __rand_int__ separately: one key in, the user's others
# derived from it, so every call works on one user's keys.
prefix = ("local base = string.sub(KEYS[1], 1, -6)\n"
          "local K = {KEYS[1], base..':items', base..':served', base..':meta', base..':warm-pending'}\n")
open(f'{work}/take.lua', 'w').write(prefix + take.replace('KEYS[', 'K['))
# The feed list's script for any other page (pool.rs: the with_page_lua! helpers, then
# TAKE_ENTRIES), here a page of 20 of category 20 without trending videos.
pool = open('shared/src/engine/pool.rs').read()
helpers = re.search(r'macro_rules! with_page_lua \{.*?r#"(.*?)"#', pool, re.S).group(1)
entries = re.search(r'const TAKE_ENTRIES: &str = with_page_lua!\(\s*r#"(.*?)"#', pool, re.S).group(1)
open(f'{work}/take_entries.lua', 'w').write(
    "local base = string.sub(KEYS[1], 1, -6)\n"
    "local K = {base..':feed', base..':meta'}\n"
    "local ARGV = {'20', '20', '0', '20'}\n" + helpers + entries.replace('KEYS[', 'K['))
open(f'{work}/item.json', 'w').write(
    '{"category_id":"20","channel_id":"UCxxxxxxxxxxxxxxxxxxxxxx","channel_title":"Some Channel Name",'
    '"duration_secs":615,"published_at":"2026-11-20T10:00:00Z","reason":"from a channel you watch",'
    '"tags":["gaming","speedrun","retro","walkthrough"],"thumbnail_url":"https://i.ytimg.com/vi/VIDEOID/mqdefault.jpg",'
    '"title":"A fairly long video title about something interesting in the gaming world","trending":false,'
    '"url":"https://www.youtube.com/watch?v=VIDEOID","video_id":"VIDEOID","view_count":123456}')
EOF
# Each user, in both layouts: the first layout's pool (member id|category|kind, ranked),
# its items and meta; the feed list of the same 240 entries (id|category|kind|reason) cut
# into 12 pages of 20 under their header line, as REPLACE_FEED writes them; a catalog item
# per video (shared: the same ids for every user); and the same videos cut into 12 pages of
# 20 whole items as one list (a pre-cut page of JSON).
populate='
for u = 0, tonumber(ARGV[1]) - 1 do
  local base = "reco:{u:" .. string.format("%012d", u) .. "}"
  local page, entries = {}, {}
  for i = 1, 240 do
    local id = string.format("v%010d", i)
    local item = (string.gsub(ARGV[2], "VIDEOID", id))
    redis.call("ZADD", base .. ":pool", i, id .. "|20|h")
    redis.call("HSET", base .. ":items", id, item)
    entries[#entries + 1] = id .. "|20|h|from a channel you watch: Some Channel Name"
    if #entries == 20 then
      redis.call("RPUSH", base .. ":feed", ARGV[3] .. " " .. (240 - i) .. "\n" .. table.concat(entries, "\n"))
      entries = {}
    end
    if u == 0 then redis.call("SET", "reco:src:video:" .. id, item, "EX", 86400) end
    page[#page + 1] = item
    if #page == 20 then
      redis.call("RPUSH", base .. ":pages", "[" .. table.concat(page, ",") .. "]")
      page = {}
    end
  end
  redis.call("HSET", base .. ":meta", "generated_at", ARGV[3], "size", 240, "layout", 2)
  for i = 1, tonumber(ARGV[4]) do
    redis.call("ZADD", base .. ":served", ARGV[3] - 86400000, string.format("old%08d", i))
  end
end'
fresh_data() {
  cli flushall >/dev/null
  cli eval "$populate" 0 "$USERS" "$(cat "$work/item.json")" "$((NOW - 1000))" "$SERVED" >/dev/null
  cli set floor "$(head -c 10481 /dev/zero | tr '\0' x)" >/dev/null
  cli config resetstat >/dev/null
}
# Prints a figure and records it for benchmarks/redis-side.json.
row() { printf '%-58s %8s µs\n' "$2" "$3"; printf '%s %s\n' "$1" "$3" >>"$work/rows"; }
per_call() { cli info commandstats | grep "^cmdstat_$1:" | sed 's/.*usec_per_call=\([0-9.]*\).*/\1/'; }
bench() { redis-benchmark -p "$port" -c 1 -n "$CALLS" -r "$USERS" -q "$@" >"$work/bench.log" 2>&1 || { tail -c 600 "$work/bench.log" >&2; return 1; }; }
script() { # name, lua, key → usec per EVALSHA over one user key
  fresh_data
  local sha; sha=$(cli script load "$2")
  cli config resetstat >/dev/null
  bench evalsha "$sha" 1 'reco:{u:__rand_int__}:pool' 20 '' 1 "$NOW" "$((NOW - 2592000000))" 5000 60 3600000 120000
  local failed; failed=$(cli info commandstats | grep '^cmdstat_evalsha:' | sed 's/.*failed_calls=\([0-9]*\).*/\1/')
  [ "$failed" = 0 ] || { echo "redis-side: $failed failed calls of: $1" >&2; exit 1; }
  row "$3" "$1" "$(per_call evalsha)"
}

echo "Redis's own time per call ($CALLS calls over $USERS users, each already served $SERVED videos; load: $(cut -d' ' -f1-3 /proc/loadavg))"
fresh_data
bench get floor
row get_10kb "GET of a 10,481-byte value (the floor's command)" "$(per_call get)"
bench lpop 'reco:{u:__rand_int__}:pages'
row lpop_page_of_items "LPOP of a pre-cut page of 20 whole items (~10 KB)" "$(per_call lpop)"

# The feed list's common hit: its one command, over 3,000 users' keys.
fresh_data
bench lpop 'reco:{u:__rand_int__}:feed'
hit=$(per_call lpop)
row hit_item_cache_warm "LPOP of a pre-cut page of 20 entries = the common hit" "$hit"
ids=$(python3 -c "print(' '.join('reco:src:video:v%010d' % i for i in range(1, 21)))")
# shellcheck disable=SC2086
bench mget $ids
mget=$(per_call mget)
row catalog_mget_20 "MGET of the page's 20 catalog items (item cache cold)" "$mget"
row hit_item_cache_cold "= the common hit, item cache cold (two round trips)" "$(python3 -c "print(round($hit + $mget, 2))")"

script "EVALSHA of an empty script" 'return 1' evalsha_empty
script "EVALSHA reading a 10 KB value into Lua, returning 1" \
  'local v = redis.call("GET", "floor") return 1' evalsha_read_10kb
script "EVALSHA: LPOP of a pre-cut page, returned" \
  'return redis.call("LPOP", string.sub(KEYS[1], 1, -6) .. ":pages")' evalsha_lpop_page
script "EVALSHA TAKE_PAGE (first layout, pool_v1.rs), a page of 20" "$(cat "$work/take.lua")" hit_first_layout
script "EVALSHA TAKE_ENTRIES (feed list), a filtered page of 20" "$(cat "$work/take_entries.lua")" filtered_page
python3 - "$work/rows" "$SERVED" "$(git describe --always --dirty 2>/dev/null || echo unknown)" <<'EOF2'
import json, sys
rows = dict(line.split() for line in open(sys.argv[1]))
us = {k: float(v) for k, v in rows.items()}
out = {
    "commit": sys.argv[3],
    "served_per_user": int(sys.argv[2]),
    "usec_per_call": us,
    "hit_speedup_item_cache_warm": round(us["hit_first_layout"] / us["hit_item_cache_warm"], 1),
    "hit_speedup_item_cache_cold": round(us["hit_first_layout"] / us["hit_item_cache_cold"], 1),
    "hits_per_second_redis_side": {
        "first_layout": round(1e6 / us["hit_first_layout"]),
        "item_cache_warm": round(1e6 / us["hit_item_cache_warm"]),
        "item_cache_cold": round(1e6 / us["hit_item_cache_cold"]),
    },
}
name = "redis-side" if out["served_per_user"] == 0 else f"redis-side-served-{out['served_per_user']}"
json.dump(out, open(f"benchmarks/{name}.json", "w"), indent=2)
print(f"wrote benchmarks/{name}.json")
EOF2
