"""The Lua script behind `RedisStore`: every store step runs inside it, so each is atomic on the server.

Redis runs a script to the end before any other command, so a reserve on one host can never read a
total another host's reserve is about to change. One script (`BATCH`) carries a list of steps and
runs them one after the other, each whole (so several steps may share a call, never a check); the
store sends one step per call today. Its ARGV is the client's wall clock and one JSON array
of steps `[op, prefix, args]`, numbers as text so none loses a digit (Lua prints numbers with 14).
Scripts build their keys from the prefix, so Redis Cluster is not supported (the keys a reserve
touches depend on what it finds; a cluster needs them declared up front): use one primary, with
replicas or Sentinel.

Time is the server's: the script reads `TIME` and moves every time a client sends (`now`,
`expires_at`, window starts) by the whole seconds the client's clock is off from the server's, so
two hosts whose clocks disagree still agree on when a reservation expires and in which window a spend
falls. A client within half a second of the server is taken at its word (its times pass unchanged,
so tests may still name their own `now`).

Layout under the prefix `P` (money in integer nano-dollars, see `_spend_index`):
```
P k:<key>:total   hash  usd, tok               lifetime running total (O(1) lifetime checks)
P k:<key>:m|h     hash  <start> -> usd, <start>t -> tokens   minute / hour spend buckets
P k:<key>:mi|hi   zset  <start> scored by start             which buckets exist, for range reads
P k:<key>:rows    zset  "<id> <usd> <tok>" scored by time   each spend, for a window's first minute
P k:<key>:held    hash  usd, tok                what the key's live reservations hold
P r:<id>          hash  usd, tok, keys (a JSON list)        one reservation
P expiry          zset  reservation id scored by expires_at (server time)
P spent           set   keys with spend (for `keys()`, with the keys of live reservations)
P done            set   committed reservation ids (a second commit is ignored)
```
"""

from __future__ import annotations

__all__ = ["BATCH"]

BATCH = r"""
local P = ''
local function k(key, part) return P .. 'k:' .. key .. ':' .. part end
-- Numbers go to Redis as '%d' text: Lua's own formatting turns 1e14 into '1e+14' and 0 into '-0'.
local function int(x) return string.format('%d', x) end

-- The whole seconds to add to a client's times to make them the server's (0 within half a second).
local clock = redis.call('TIME')
local skew = math.floor(tonumber(clock[1]) + tonumber(clock[2]) / 1e6 - tonumber(ARGV[1]) + 0.5)
-- A client time (text) as server time (text); unchanged text when the clocks agree.
local function at(text)
  if skew == 0 then return text end
  return string.format('%.17g', tonumber(text) + skew)
end

-- Drop reservation `rid`: take what it holds off each of its keys.
local function drop(rid)
  local r = P .. 'r:' .. rid
  local fields = redis.call('HMGET', r, 'usd', 'tok', 'keys')
  if not fields[3] then return end
  for _, key in ipairs(cjson.decode(fields[3])) do
    local held = k(key, 'held')
    local usd = redis.call('HINCRBY', held, 'usd', int(-tonumber(fields[1])))
    if redis.call('HINCRBY', held, 'tok', int(-tonumber(fields[2]))) <= 0 and usd <= 0 then
      redis.call('DEL', held)  -- nothing held any more (a key holding zeros reads the same as none)
    end
  end
  redis.call('DEL', r)
  redis.call('ZREM', P .. 'expiry', rid)
end

-- Spend of `key` since `window`: {} for its lifetime (the running total), else {since}: the rows of
-- the first minute, then minute and hour buckets (exact, see `_spend_index.split_window`).
local function spent(key, window)
  if #window == 0 then
    local t = redis.call('HMGET', k(key, 'total'), 'usd', 'tok')
    return tonumber(t[1] or 0), tonumber(t[2] or 0)
  end
  local since = tonumber(at(window[1]))
  local rows_until, minutes_until = math.ceil(since / 60) * 60, math.ceil(since / 3600) * 3600
  local usd, tok = 0, 0
  for _, row in ipairs(redis.call('ZRANGEBYSCORE', k(key, 'rows'), at(window[1]), '(' .. int(rows_until))) do
    local _, u, t = string.match(row, '^(.*) (%d+) (%d+)$')
    usd = usd + tonumber(u)
    tok = tok + tonumber(t)
  end
  local levels = {{'m', int(rows_until), '(' .. int(minutes_until)}, {'h', int(minutes_until), '+inf'}}
  for _, level in ipairs(levels) do
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

local ops = {}

-- [rid, now, expires_at, usd, tok, [keys...], [check...]]; a check is
-- [key, window, max_usd or '', max_tok or '', enforce], window as in `spent`.
-- Returns {ok, refused check (1-based, 0 for none), then per check: spent usd, tok, held usd, tok}.
function ops.reserve(a)
  local rid, now, expires_at, usd_text, tok_text, keys = a[1], at(a[2]), at(a[3]), a[4], a[5], a[6]
  local usd, tok = tonumber(usd_text), tonumber(tok_text)
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', now)) do drop(old) end
  drop(rid)  -- reserving an id again replaces it, never adds to it
  local out = {1, 0}
  for c, check in ipairs(a[7]) do
    local s_usd, s_tok = spent(check[1], check[2])
    local h_usd, h_tok = held(check[1])
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = int(s_usd), int(s_tok), int(h_usd), int(h_tok)
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
  end
  return out
end

-- [rid, now, usd, tok, [keys...]]. Returns 1, or 0 when the id was committed before.
function ops.commit(a)
  local rid, now, usd, tok = a[1], at(a[2]), a[3], a[4]
  drop(rid)
  if redis.call('SADD', P .. 'done', rid) == 0 then return 0 end  -- committed before: count it once
  local t = tonumber(now)
  local minute, hour = int(math.floor(t / 60) * 60), int(math.floor(t / 3600) * 3600)
  local row = rid .. ' ' .. usd .. ' ' .. tok
  for _, key in ipairs(a[5]) do
    -- A key's first spend lists it in `spent` (later ones find it there already).
    if redis.call('HINCRBY', k(key, 'total'), 'usd', usd) == tonumber(usd) then
      redis.call('SADD', P .. 'spent', key)
    end
    redis.call('HINCRBY', k(key, 'total'), 'tok', tok)
    for _, level in ipairs({{'m', minute}, {'h', hour}}) do
      -- A bucket's first spend lists it in the index (the other spends find it there already).
      if redis.call('HINCRBY', k(key, level[1]), level[2], usd) == tonumber(usd) then
        redis.call('ZADD', k(key, level[1] .. 'i'), level[2], level[2])
      end
      redis.call('HINCRBY', k(key, level[1]), level[2] .. 't', tok)
    end
    redis.call('ZADD', k(key, 'rows'), now, row)
  end
  return 1
end

-- [rid, now, expires_at]: move a live reservation's expiry. Returns 1, or 0 when it is gone or
-- already expired at `now` (a renewal never revives what another host may have counted as free).
function ops.renew(a)
  local rid, now, expires_at = a[1], at(a[2]), at(a[3])
  local score = redis.call('ZSCORE', P .. 'expiry', rid)
  if not score or tonumber(score) <= tonumber(now) then return 0 end
  redis.call('ZADD', P .. 'expiry', expires_at, rid)
  return 1
end

-- [rid]
function ops.release(a)
  drop(a[1])
  return 1
end

-- [now, [[key, window]...]]. A read: reservations expired at `now` are left in place, only not
-- counted. Returns per query: spent usd, tok, held usd, tok.
function ops.usage(a)
  local now = at(a[1])
  local expired = {}
  for _, rid in ipairs(redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', now)) do
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
    out[n + 1], out[n + 2] = int(s_usd), int(s_tok)
    out[n + 3], out[n + 4] = int(h_usd - e[1]), int(h_tok - e[2])
  end
  return out
end

-- [key]: forget its spend; take it off every reservation (other keys keep theirs).
function ops.reset(a)
  local key = a[1]
  for _, rid in ipairs(redis.call('ZRANGE', P .. 'expiry', 0, -1)) do
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
  for _, part in ipairs({'total', 'm', 'mi', 'h', 'hi', 'rows', 'held'}) do
    redis.call('DEL', k(key, part))
  end
  redis.call('SREM', P .. 'spent', key)
  return 1
end

-- [] -> every key with spend or a reservation not yet forgotten (unsorted, maybe repeated).
function ops.keys(a)
  local out = redis.call('SMEMBERS', P .. 'spent')
  for _, rid in ipairs(redis.call('ZRANGE', P .. 'expiry', 0, -1)) do
    local raw = redis.call('HGET', P .. 'r:' .. rid, 'keys')
    if raw then
      for _, key in ipairs(cjson.decode(raw)) do out[#out + 1] = key end
    end
  end
  return out
end

-- Each step runs whole; one that fails answers {'!', message} and the others still run. The
-- answers go back as one JSON text: one reply for the client to parse, not one per number.
local answers = {}
for i, step in ipairs(cjson.decode(ARGV[2])) do
  P = step[2]
  local ok, answer = pcall(ops[step[1]], step[3])
  if ok then
    answers[i] = answer
  else
    answers[i] = {'!', tostring(type(answer) == 'table' and answer.err or answer)}
  end
end
return cjson.encode(answers)
"""
