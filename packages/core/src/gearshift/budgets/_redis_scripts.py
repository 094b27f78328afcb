"""The Lua scripts behind `RedisStore`: each store step is one script, so it is atomic on the server.

Redis runs a script to the end before any other command, so a reserve on one host can never read a
total another host's reserve is about to change. Every script takes the key prefix as ARGV[1] and
its arguments as one JSON array in ARGV[2]: one argument for the client to encode instead of dozens,
with numbers as text so none loses a digit (Lua prints numbers with 14). Scripts build their keys
from the prefix, so Redis Cluster is not supported (the keys a reserve touches depend on what it
finds; a cluster needs them declared up front): use one primary, with replicas or Sentinel.

Layout under the prefix `P` (money in integer nano-dollars, see `_spend_index`):
```
P k:<key>:total   hash  usd, tok               lifetime running total (O(1) lifetime checks)
P k:<key>:m|h     hash  <start> -> usd, <start>t -> tokens   minute / hour spend buckets
P k:<key>:mi|hi   zset  <start> scored by start             which buckets exist, for range reads
P k:<key>:rows    zset  "<id> <usd> <tok>" scored by time   each spend, for a window's first minute
P k:<key>:held    hash  usd, tok, n             what the key's live reservations hold, and how many
P k:<key>:rids    set   reservation ids holding the key
P r:<id>          hash  usd, tok, keys (a JSON list)        one reservation
P expiry          zset  reservation id scored by expires_at
P spent, P held   set   keys with spend / with reservations (for `keys()`)
P done            set   committed reservation ids (a second commit is ignored)
```
"""

from __future__ import annotations

__all__ = ["COMMIT", "RELEASE", "RESERVE", "RESET", "USAGE"]

_COMMON = r"""
local P = ARGV[1]
local function k(key, part) return P .. 'k:' .. key .. ':' .. part end
-- Numbers go to Redis as '%d' text: Lua's own formatting turns 1e14 into '1e+14' and 0 into '-0'.
local function int(x) return string.format('%d', x) end

-- Drop reservation `rid`: take what it holds off each of its keys.
local function drop(rid)
  local r = P .. 'r:' .. rid
  local fields = redis.call('HMGET', r, 'usd', 'tok', 'keys')
  if not fields[3] then return end
  for _, key in ipairs(cjson.decode(fields[3])) do
    local held = k(key, 'held')
    redis.call('HINCRBY', held, 'usd', int(-tonumber(fields[1])))
    redis.call('HINCRBY', held, 'tok', int(-tonumber(fields[2])))
    if redis.call('HINCRBY', held, 'n', -1) <= 0 then
      redis.call('DEL', held)
      redis.call('SREM', P .. 'held', key)
    end
    redis.call('SREM', k(key, 'rids'), rid)
  end
  redis.call('DEL', r)
  redis.call('ZREM', P .. 'expiry', rid)
end

-- Spend of `key` in `window`: {} for its lifetime (the running total), else {since, rows_until,
-- minutes_until}: the rows of the first minute, then minute and hour buckets (exact).
local function spent(key, window)
  if #window == 0 then
    local t = redis.call('HMGET', k(key, 'total'), 'usd', 'tok')
    return tonumber(t[1] or 0), tonumber(t[2] or 0)
  end
  local since, rows_until, minutes_until = window[1], window[2], window[3]
  local usd, tok = 0, 0
  for _, row in ipairs(redis.call('ZRANGEBYSCORE', k(key, 'rows'), since, '(' .. rows_until)) do
    local _, u, t = string.match(row, '^(.*) (%d+) (%d+)$')
    usd = usd + tonumber(u)
    tok = tok + tonumber(t)
  end
  for _, level in ipairs({{'m', rows_until, '(' .. minutes_until}, {'h', minutes_until, '+inf'}}) do
    local starts = redis.call('ZRANGEBYSCORE', k(key, level[1] .. 'i'), level[2], level[3])
    if #starts > 0 then
      local fields = {}
      for _, s in ipairs(starts) do
        fields[#fields + 1] = s
        fields[#fields + 1] = s .. 't'
      end
      local values = redis.call('HMGET', k(key, level[1]), unpack(fields))
      for i = 1, #values, 2 do
        usd = usd + tonumber(values[i] or 0)
        tok = tok + tonumber(values[i + 1] or 0)
      end
    end
  end
  return usd, tok
end

local function held(key)
  local h = redis.call('HMGET', k(key, 'held'), 'usd', 'tok')
  return tonumber(h[1] or 0), tonumber(h[2] or 0)
end
"""

RESERVE = (
    _COMMON
    + r"""
-- ARGV[2], JSON: [rid, now, expires_at, usd, tok, [keys...], [check...]], numbers as text;
-- a check is [key, window, max_usd or '', max_tok or '', enforce], window as in `spent`.
local a = cjson.decode(ARGV[2])
local rid, now, expires_at, usd_text, tok_text, keys = a[1], a[2], a[3], a[4], a[5], a[6]
local usd, tok = tonumber(usd_text), tonumber(tok_text)
for _, old in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', now)) do drop(old) end
drop(rid)  -- reserving an id again replaces it, never adds to it
local out = {1, 0}
for c, check in ipairs(a[7]) do
  local s_usd, s_tok = spent(check[1], check[2])
  local h_usd, h_tok = held(check[1])
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = s_usd, s_tok, h_usd, h_tok
  if out[2] == 0 and check[5] then
    if (check[3] ~= '' and s_usd + h_usd + usd > tonumber(check[3]))
      or (check[4] ~= '' and s_tok + h_tok + tok > tonumber(check[4])) then
      out[1], out[2] = 0, c
    end
  end
end
if out[1] == 0 then return out end
redis.call('HSET', P .. 'r:' .. rid, 'usd', usd_text, 'tok', tok_text, 'keys', cjson.encode(keys))
redis.call('ZADD', P .. 'expiry', expires_at, rid)
for _, key in ipairs(keys) do
  local h = k(key, 'held')
  redis.call('HINCRBY', h, 'usd', usd_text)
  redis.call('HINCRBY', h, 'tok', tok_text)
  redis.call('HINCRBY', h, 'n', 1)
  redis.call('SADD', k(key, 'rids'), rid)
  redis.call('SADD', P .. 'held', key)
end
return out
"""
)

COMMIT = (
    _COMMON
    + r"""
-- ARGV[2], JSON: [rid, now, usd, tok, minute_start, hour_start, [keys...]], numbers as text.
local a = cjson.decode(ARGV[2])
local rid, now, usd, tok, minute, hour = a[1], a[2], a[3], a[4], a[5], a[6]
drop(rid)
if redis.call('SADD', P .. 'done', rid) == 0 then return 0 end  -- committed before: count it once
local row = rid .. ' ' .. usd .. ' ' .. tok
for _, key in ipairs(a[7]) do
  redis.call('HINCRBY', k(key, 'total'), 'usd', usd)
  redis.call('HINCRBY', k(key, 'total'), 'tok', tok)
  for _, level in ipairs({{'m', minute}, {'h', hour}}) do
    redis.call('HINCRBY', k(key, level[1]), level[2], usd)
    redis.call('HINCRBY', k(key, level[1]), level[2] .. 't', tok)
    redis.call('ZADD', k(key, level[1] .. 'i'), level[2], level[2])
  end
  redis.call('ZADD', k(key, 'rows'), now, row)
  redis.call('SADD', P .. 'spent', key)
end
return 1
"""
)

RELEASE = (
    _COMMON
    + r"""
-- ARGV[2]: the reservation id.
drop(ARGV[2])
return 1
"""
)

USAGE = (
    _COMMON
    + r"""
-- ARGV[2], JSON: [now, [[key, window]...]], numbers as text. A read: reservations expired at
-- `now` are left in place, only not counted.
local a = cjson.decode(ARGV[2])
local expired = {}
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', a[1])) do
  local fields = redis.call('HMGET', P .. 'r:' .. rid, 'usd', 'tok', 'keys')
  if fields[3] then
    for _, key in ipairs(cjson.decode(fields[3])) do
      local e = expired[key] or {0, 0}
      expired[key] = {e[1] + tonumber(fields[1]), e[2] + tonumber(fields[2])}
    end
  end
end
local out = {}
for _, query in ipairs(a[2]) do
  local s_usd, s_tok = spent(query[1], query[2])
  local h_usd, h_tok = held(query[1])
  local e = expired[query[1]] or {0, 0}
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = s_usd, s_tok, h_usd - e[1], h_tok - e[2]
end
return out
"""
)

RESET = (
    _COMMON
    + r"""
-- ARGV[2]: the key. Forget its spend; take it off every reservation (other keys keep theirs).
local key = ARGV[2]
for _, rid in ipairs(redis.call('SMEMBERS', k(key, 'rids'))) do
  local r = P .. 'r:' .. rid
  local raw = redis.call('HGET', r, 'keys')
  if raw then
    local rest = {}
    for _, other in ipairs(cjson.decode(raw)) do
      if other ~= key then rest[#rest + 1] = other end
    end
    if #rest == 0 then
      redis.call('DEL', r)
      redis.call('ZREM', P .. 'expiry', rid)
    else
      redis.call('HSET', r, 'keys', cjson.encode(rest))
    end
  end
end
for _, part in ipairs({'total', 'm', 'mi', 'h', 'hi', 'rows', 'held', 'rids'}) do
  redis.call('DEL', k(key, part))
end
redis.call('SREM', P .. 'spent', key)
redis.call('SREM', P .. 'held', key)
return 1
"""
)
