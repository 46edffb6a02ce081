-- claim_ids.lua: idempotent events (worker/dedupe.c). Claims the event ids of
-- one read batch (XREADGROUP or XAUTOCLAIM) for delivery, in one call: an id
-- is delivered at most once per dedupe window. Owns the claim generations.
--
-- Claims are fields of big hashes, one per time generation: <p>:dd:<start ms>,
-- field = event id, value = the stream entry id that claimed it. A generation
-- is G = window / K wide (K = GENS below, G at least MIN_G); the zset <p>:dd
-- (KEYS[1]) lists them: member = start ms, score = the moment its newest
-- possible claim is a window old (start + G + window). A field in an existing
-- hash costs Redis a fraction of a new key with its expiry (keyspace and
-- expires inserts, a robj): one HMGET per live generation and one HSET per
-- call, O(1) redis.calls per batch instead of one SET per id.
-- An id is deduplicated for at least the window after its claim and at most
-- window + G (Redis 7.0 has no per-field expiry; 7.4's HPEXPIRE would make it
-- exact). A generation past its score is never read again, and is removed by
-- UNLINK (freed in the background: it may hold millions of fields) by the
-- first call after that, at most UNLINK_MAX per call; its PEXPIREAT one G
-- later only catches a deployment with no worker left.
-- Readers: producers (dd_seen.lua) look an id up in the live generations.
-- GENS = 2 (measured: each live generation costs an HMGET probe per id, and
-- GENS + 1 are live) holds claims up to 1.5 windows: HQ_DEDUPE_HOLD_MAX in
-- common/limits.h, the worker's memory estimate, says the same.
--
-- KEYS[1] <p>:dd, the generation index (generations are KEYS[1] .. ':' .. start:
-- the same hash tag, so the same slot)
-- ARGV[1] the window in ms   then per id: ARGV[2i] event id, ARGV[2i + 1] the
-- stream entry id carrying it
-- Returns one integer per id: 1 deliver (the id was free: claimed now; or it
-- is claimed by this very entry: read again after a crash, so it is delivered
-- again, a duplicate at most and never a loss), 0 a duplicate (claimed by
-- another entry within the window, or by an earlier entry of this batch).
local call, argv, idx = redis.call, ARGV, KEYS[1]
local GENS, MIN_G, UNLINK_MAX, CHUNK = 2, 1000, 8, 256
local window = tonumber(argv[1])
local g = math.max(math.floor(window / GENS), MIN_G)
local t = call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local start = now - now % g
local cur = string.format('%d', start)
-- Live generations (score > now), newest first; dead ones to remove.
local live, dead, cur_score = {}, {}, -1
local all = call('ZRANGE', idx, 0, -1, 'WITHSCORES')
for k = #all - 1, 1, -2 do
  local score = tonumber(all[k + 1])
  if score > now then
    live[#live + 1] = all[k]
    if all[k] == cur then
      cur_score = score
    end
  elseif #dead < UNLINK_MAX then
    dead[#dead + 1] = all[k]
  end
end
local n = (#argv - 1) / 2
local ids, res, owner = {}, {}, {} -- owner: event id -> entry id that holds it
for i = 1, n do
  ids[i] = argv[2 * i]
end
-- Look every id up in every live generation, newest first, only those not found yet.
local todo = ids
for k = 1, #live do
  if #todo == 0 then
    break
  end
  local gen, left = idx .. ':' .. live[k], {}
  for c = 1, #todo, CHUNK do -- bounded argument lists: Lua's stack is ~8000 slots
    local last = math.min(c + CHUNK - 1, #todo)
    local got = call('HMGET', gen, unpack(todo, c, last))
    for j = c, last do
      local v = got[j - c + 1]
      if v then
        owner[todo[j]] = v
      else
        left[#left + 1] = todo[j]
      end
    end
  end
  todo = left
end
local hargs = {}
for i = 1, n do
  local id, mine = ids[i], argv[2 * i + 1]
  local o = owner[id]
  if not o then -- free: claimed now (an id twice in the batch: its first entry)
    owner[id] = mine
    hargs[#hargs + 1] = id
    hargs[#hargs + 1] = mine
    res[i] = 1
  else
    res[i] = o == mine and 1 or 0
  end
end
if #hargs > 0 then
  local gen = idx .. ':' .. cur
  for c = 1, #hargs, 2 * CHUNK do
    call('HSET', gen, unpack(hargs, c, math.min(c + 2 * CHUNK - 1, #hargs)))
  end
  local last = start + g + window
  -- GT: workers with different windows keep the longest for a generation.
  if cur_score < last then
    call('ZADD', idx, 'GT', string.format('%d', last), cur)
    local backstop = string.format('%d', last + g)
    call('PEXPIREAT', gen, backstop)
    call('PEXPIREAT', idx, backstop, 'GT')
    call('PEXPIREAT', idx, backstop, 'NX') -- GT skips a key without an expiry
  end
end
if #dead > 0 then
  for k = 1, #dead do
    dead[k] = idx .. ':' .. dead[k]
  end
  call('UNLINK', unpack(dead))
  for k = 1, #dead do
    dead[k] = string.sub(dead[k], #idx + 2)
  end
  call('ZREM', idx, unpack(dead))
end
return res
