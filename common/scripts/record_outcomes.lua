-- record_outcomes.lua: makes every outcome of a batch of stream entries durable,
-- then acknowledges (XACK) and deletes (XDEL) exactly the entries this consumer
-- still owns. One call per batch, sent by the worker once per loop turn.
--
-- Fencing: an entry whose pending-list owner is no longer this consumer (a
-- paused worker whose entry was reclaimed by another) records nothing. The same
-- check makes a retried call harmless: an entry acked by a first call whose
-- reply was lost is no longer pending, so the retry skips it.
--
-- The fence costs one XPENDING per call when the worker sends a range (ARGV[7..9]):
-- this consumer's pending entries between the batch's lowest and highest id,
-- at most ARGV[9] of them. A reply that fills the count may be cut short, so
-- then (and without a range) each entry is checked alone, as before.
--
-- Attempt records go to shared hashes, one per time bucket: <p>:attempts:<start
-- ms>, field = event id, value = that event's records written in the bucket,
-- JSON objects joined by "\n" (JSON escapes newlines), oldest first, at most
-- ARGV[4]. One HMGET and one HSET per call instead of a key with an expiry
-- per event: a new key costs Redis ~2-4 us (keyspace and expires inserts), a
-- field in an existing hash a fraction of that (docs/performance.md). The
-- zset <p>:attempts (ARGV[5]) lists the buckets (member = score = start ms),
-- for readers (attempts_read.lua) and for the clean-up below.
-- A bucket is W = ttl / 72 wide, clamped to 1 min .. 1 h, and removed once
-- its newest possible record is ttl old: records live ttl to ttl + W. It is
-- removed by UNLINK (freed in the background, so a bucket of millions of
-- fields costs no pause), by whichever call comes first after that; its
-- PEXPIREAT one W later only catches a deployment with no worker left.
--
-- KEYS[1] events stream   KEYS[2] retry zset   KEYS[3] retry data hash   KEYS[4] dead stream
-- KEYS[5] <p>:retained stream   KEYS[6] <p>:retained:bytes (HOOKQ_RETAIN: the "r" op)
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] attempt record ttl (ms, by Redis' TIME)  ARGV[4] attempt records kept per event
-- ARGV[5] attempt bucket index ("<p>:attempts")  ARGV[6] dead stream MAXLEN (0 = unbounded)
-- ARGV[7] fence range start id or ""  ARGV[8] range end id  ARGV[9] range count
-- then per entry: entry id, n, and n arguments holding its ops (encoded by
-- worker/outcome_ops.c, the one writer of this format), each either
--   "a", event id, attempt record JSON                    (a delivery), or
--   "r", event id, attempt record JSON, endpoint id, type, "p" payload or "=" ""
--   (the payload of this entry's previous "r" op), tenant or "", status,
--   first attempt ms, retain ms, retain bytes (a delivery kept for resend), or
--   "f", event id for the attempt record or "", attempt record JSON or "",
--   retry member or "", due ms, retry data (a msgpack map, stored as is) or "",
--   d = the number of dead-letter field/value strings (0: none), those d strings, or
--   "o", event id or "", attempt record JSON or "", action, lines key (<p>:lines),
--   line ("<endpoint>/<key>"), item, due ms, data or "", d, those d strings
--   (an ordered endpoint's line, docs/ordering.md; action p parks the pair as
--   the line's item, k keeps its failed head with new data due later, d ends it,
--   c ends a head read from the retry lane and chains: see chain() below,
--   b ends a batch of the line: its items up to item), or
--   "d", "", counter key: a duplicate (worker/dedupe.c): INCR the partition's
--   <p>:duplicates, nothing else (the entry is acked like every other)
-- (plain arguments, not msgpack: no unpacking or table per op here).
-- Returns one integer per entry: 1 recorded and acked, 2 the same and its "c"
-- op chained a line's next head, 0 fenced.
-- ARGV and redis.call are globals: locals make each use a register access.
local argv, call = ARGV, redis.call
local events, retry, rdata, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer = argv[1], argv[2]
local ttl, keep, attidx = tonumber(argv[3]), tonumber(argv[4]), argv[5]
local deadmax = tonumber(argv[6])
local recs, evs = {}, {} -- event id -> its new records ("\n"-joined); ids in first-seen order
local nrecs = {}         -- event id -> how many new records
local mine = nil -- id -> true for this consumer's pending entries in the range
if argv[7] ~= '' then
  local count = tonumber(argv[9])
  local p = call('XPENDING', events, group, argv[7], argv[8], count, consumer)
  if #p < count then
    mine = {}
    for k = 1, #p do
      mine[p[k][1]] = true
    end
  end
end
local function dead_letter(from, nd)
  if deadmax > 0 then
    call('XADD', dead, 'MAXLEN', '~', deadmax, '*', unpack(argv, from, from + nd - 1))
  else
    call('XADD', dead, '*', unpack(argv, from, from + nd - 1))
  end
end
-- Action b: a batch of an ordered line (lines_claim.lua) ended: its members
-- are the line's items up to item (later ones were parked after it was sent),
-- their data and the batch's own (<line>/#b, kept while it is retried) go.
local function line_batch_end(idx, line, name, item)
  local its = call('ZRANGEBYLEX', line, '-', '[' .. item)
  local f = {name .. '/#b'}
  for k = 1, #its do
    f[k + 1] = name .. '/' .. its[k]
  end
  call('HDEL', idx .. ':data', unpack(f))
  if #its > 0 then
    call('ZREM', line, unpack(its))
  end
end
-- Chaining (action "c", docs/ordering.md "How it works"): a head read from
-- the retry lane ended (delivered or dead), so its endpoint has a free slot.
-- The slot goes at once, in this call, to the line's own next item, else to
-- the head of the first due line of that endpoint (the ended line, empty or
-- held, queued behind them), XADDed to this call's stream (KEYS[1], the retry
-- lane) as lines_claim.lua sends one, under the same watermark (the smallest
-- entry pending in <p>:events: every earlier entry is parked). A line with a
-- backlog keeps its slot for at most CHAIN_RUN heads in a row (counted in
-- <lines>:busy as "<line>#run"), then goes back among the due lines with the
-- time it yielded as its score, behind those that waited longer: with more
-- keys than the endpoint's concurrency, busy keys cannot hold every slot
-- while others wait. The endpoint's
-- heads in flight stay as they were, so its concurrency holds without the
-- script knowing it. Nothing chains when no due line of the endpoint is
-- among the first CHAIN_SCAN due lines, is below the watermark, or has
-- readable data: the worker then runs lines_claim.lua, which also
-- dead-letters unreadable data.
local CHAIN_SCAN = 32
local CHAIN_RUN = 16
local wm, chained = nil, 0 -- watermark (false: nothing pending), 1 when this entry's op chained
local function pad(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return string.rep('0', 15 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end
local function num(v)
  return string.format('%.0f', v)
end
-- Sends head (nil: none) of line cand (of endpoint ep, key key): 1, or 0 when not sendable.
local function send_head(idx, cand, ep, key, head)
  if not head or (wm and head >= wm) then
    return 0
  end
  local raw = call('HGET', idx .. ':data', cand .. '/' .. head)
  local ok, d = false, nil
  if raw then
    ok, d = pcall(cmsgpack.unpack, raw)
  end
  if not (ok and type(d) == 'table' and type(d.type) == 'string' and type(d.id) == 'string'
          and type(d.payload) == 'string' and type(d.attempt) == 'number') then
    return 0
  end
  if d.bmax then -- an ordered and batched endpoint's: lines_claim.lua builds its batch
    return 0
  end
  local f = {'type', d.type, 'payload', d.payload, 'id', d.id, 'endpoint', ep,
             'attempt', num(d.attempt), 'line', head}
  if type(d.first_ms) == 'number' and d.first_ms > 0 then
    f[#f + 1], f[#f + 2] = 'first_ms', num(d.first_ms)
  end
  if key ~= '' then
    f[#f + 1], f[#f + 2] = 'key', key
  end
  if type(d.tenant) == 'string' and d.tenant ~= '' then
    f[#f + 1], f[#f + 2] = 'tenant', d.tenant
  end
  call('XADD', KEYS[1], '*', unpack(f))
  return 1
end
-- Line name of endpoint ep ended its head: 1 when a head was chained.
local function chain(idx, name, ep)
  if wm == nil then -- <p>:lines -> <p>:events (common/keys.c: both "<base>:<name>")
    local p = call('XPENDING', string.sub(idx, 1, -6) .. 'events', group)
    wm = p[1] > 0 and pad(p[2]) or false
  end
  local pre = ep .. '/'
  local nxt = call('ZRANGE', idx .. ':' .. name, 0, 0)[1]
  local run = name .. '#run'
  if call('HINCRBY', idx .. ':busy', run, 1) <= CHAIN_RUN then
    if send_head(idx, name, ep, string.sub(name, #pre + 1), nxt) == 1 then
      return 1 -- the line stays in flight (+inf)
    end
  end
  call('HDEL', idx .. ':busy', run)
  local t = call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if nxt then
    call('ZADD', idx, now, name)
  else
    call('ZREM', idx, name)
  end
  for _, cand in ipairs(call('ZRANGEBYSCORE', idx, '-inf', now, 'LIMIT', 0, CHAIN_SCAN)) do
    if string.sub(cand, 1, #pre) == pre then -- its own line too, behind the older ones
      local head = call('ZRANGE', idx .. ':' .. cand, 0, 0)[1]
      if send_head(idx, cand, ep, string.sub(cand, #pre + 1), head) == 1 then
        call('ZADD', idx, '+inf', cand)
        return 1
      end
    end
  end
  return 0
end
local parked = {} -- line key -> true once this call parked an item in it
-- An "o" op at j; returns the index after it. <lines>:busy counts each
-- endpoint's heads in flight (lines_claim.lua sends them, marked due +inf).
local function line_op(j)
  local act, idx, name, item = argv[j + 3], argv[j + 4], argv[j + 5], argv[j + 6]
  local line, field, nd = idx .. ':' .. name, name .. '/' .. item, tonumber(argv[j + 9])
  if act == 'p' then
    call('ZADD', line, 0, item)
    call('HSET', idx .. ':data', field, argv[j + 8])
    if not parked[line] then -- once per line and call: the later ZADD NX would change nothing
      parked[line] = true
      call('ZADD', idx, 'NX', argv[j + 7], name)
    end
  elseif act == 'c' then
    call('ZREM', line, item)
    call('HDEL', idx .. ':data', field)
    local ep = string.match(name, '^[^/]*')
    chained = chain(idx, name, ep)
    if chained == 0 and call('HINCRBY', idx .. ':busy', ep, -1) <= 0 then
      call('HDEL', idx .. ':busy', ep)
    end
  else
    local ep = string.match(name, '^[^/]*')
    if call('HINCRBY', idx .. ':busy', ep, -1) <= 0 then
      call('HDEL', idx .. ':busy', ep)
    end
    if act == 'k' then
      call('HSET', idx .. ':data', field, argv[j + 8])
      call('ZADD', idx, argv[j + 7], name)
    else
      if act == 'b' then
        line_batch_end(idx, line, name, item)
      else
        call('ZREM', line, item)
        call('HDEL', idx .. ':data', field)
      end
      call('HDEL', idx .. ':busy', name .. '#run') -- a run chain() counted ends here too
      if call('ZCARD', line) > 0 then
        call('ZADD', idx, argv[j + 7], name)
      else
        call('ZREM', idx, name)
      end
    end
  end
  if nd > 0 then
    dead_letter(j + 10, nd)
  end
  return j + 10 + nd
end
local function owned(id)
  if mine then
    return mine[id] == true
  end
  local p = call('XPENDING', events, group, id, id, 1)
  return #p == 1 and p[1][2] == consumer
end
-- "r": the delivery kept in <p>:retained (entry id = when recorded; the fields
-- of a dead letter that dlq_replay.lua reads), its bytes counted; trimmed
-- below by age and by bytes, oldest first (docs/resend.md).
local rpay, rbytes, rn, rttl, rmax = '', 0, 0, 0, 0
local function retain(j)
  if argv[j + 5] == 'p' then
    rpay = argv[j + 6]
  end
  local ev, ep, ty, st, fm, te = argv[j + 1], argv[j + 3], argv[j + 4], argv[j + 8], argv[j + 9],
                                 argv[j + 7]
  -- No table and unpack per delivery: the two shapes spelled out.
  if te == '' then
    call('XADD', KEYS[5], '*', 'event_id', ev, 'type', ty, 'endpoint_id', ep, 'status', st,
         'first_attempt_ms', fm, 'payload', rpay)
  else
    call('XADD', KEYS[5], '*', 'event_id', ev, 'type', ty, 'endpoint_id', ep, 'status', st,
         'first_attempt_ms', fm, 'payload', rpay, 'tenant', te)
  end
  -- The field names' bytes (52, + 6 for tenant) and the values'.
  rbytes = rbytes + 52 + #ev + #ty + #ep + #st + #fm + #rpay + (te == '' and 0 or 6 + #te)
  rn, rttl, rmax = rn + 1, tonumber(argv[j + 10]), tonumber(argv[j + 11])
end
local res, acked = {}, {}
local i, nargs = 10, #argv
while i <= nargs do
  local id, n = argv[i], tonumber(argv[i + 1])
  i = i + 2
  if owned(id) then
    local j = i
    chained = 0
    while j < i + n do
      local evid, att = argv[j + 1], argv[j + 2]
      if evid ~= '' then
        local r = recs[evid]
        if r then
          recs[evid], nrecs[evid] = r .. '\n' .. att, nrecs[evid] + 1
        else
          recs[evid], nrecs[evid] = att, 1
          evs[#evs + 1] = evid
        end
      end
      if argv[j] == 'a' then
        j = j + 3
      elseif argv[j] == 'o' then
        j = line_op(j)
      elseif argv[j] == 'r' then
        retain(j)
        j = j + 12
      elseif argv[j] == 'd' then
        call('INCR', argv[j + 2])
        j = j + 3
      else
        local member, nd = argv[j + 3], tonumber(argv[j + 6])
        if member ~= '' then
          call('ZADD', retry, argv[j + 4], member)
          call('HSET', rdata, member, argv[j + 5])
        end
        if nd > 0 then
          dead_letter(j + 7, nd)
        end
        j = j + 7 + nd
      end
    end
    acked[#acked + 1] = id
    res[#res + 1] = 1 + chained
  else
    res[#res + 1] = 0
  end
  i = i + n
end
-- The last keep records of v (n of them, "\n"-joined).
local function trim(v, n)
  local at = 1
  while n > keep do
    at = string.find(v, '\n', at, true) + 1
    n = n - 1
  end
  return at == 1 and v or string.sub(v, at)
end
local function count(v)
  local _, nl = string.gsub(v, '\n', '')
  return nl + 1
end
if #evs > 0 then
  -- %d, not tostring: tostring switches to exponent notation past 14 digits.
  local now = call('TIME')
  local nowms = now[1] * 1000 + math.floor(now[2] / 1000)
  local width = math.min(math.max(math.floor(ttl / 72), 60000), 3600000)
  local start = nowms - nowms % width
  local bucket = attidx .. ':' .. string.format('%d', start)
  for c = 1, #evs, 256 do -- bounded argument lists: Lua's stack is ~8000 slots
    local last = math.min(c + 255, #evs)
    local old = call('HMGET', bucket, unpack(evs, c, last))
    local hargs = {}
    for k = c, last do
      local evid, o = evs[k], old[k - c + 1]
      local v, n = recs[evid], nrecs[evid]
      if o then -- records of an earlier call in this bucket (a retry, a redelivery)
        v = o .. '\n' .. v
        n = n + count(o)
      end
      hargs[#hargs + 1] = evid
      hargs[#hargs + 1] = n > keep and trim(v, n) or v
    end
    call('HSET', bucket, unpack(hargs))
  end
  local s = string.format('%d', start)
  call('ZADD', attidx, s, s)
  call('PEXPIREAT', bucket, string.format('%d', start + 2 * width + ttl))
  call('PEXPIREAT', attidx, string.format('%d', start + 2 * width + ttl))
  local gone = call('ZRANGEBYSCORE', attidx, '-inf', string.format('(%d', nowms - width - ttl), 'LIMIT', 0, 8)
  for k = 1, #gone do
    call('UNLINK', attidx .. ':' .. gone[k])
    call('ZREM', attidx, gone[k])
  end
end
if rn > 0 then -- at most 2 entries dropped per entry kept, and 64: bounded work per call
  local total = call('INCRBY', KEYS[6], rbytes)
  local now = call('TIME')
  local cutoff = now[1] * 1000 + math.floor(now[2] / 1000) - rttl
  -- The first page is the oldest entry alone: usually nothing is due.
  local drop, last, budget, lo, size = 0, nil, 2 * rn + 64, '-', 1
  while budget > 0 do
    local page = call('XRANGE', KEYS[5], lo, '+', 'COUNT', size)
    local stop = #page < size
    for k = 1, #page do
      local id = page[k][1]
      if total - drop <= rmax and tonumber(string.match(id, '^%d+')) >= cutoff then
        stop = true
        break
      end
      local kv = page[k][2]
      for m = 1, #kv do
        drop = drop + #kv[m]
      end
      last = id
    end
    if stop or not last then
      break
    end
    lo, budget = '(' .. last, budget - #page
    size = math.min(budget, 64)
  end
  if last then
    local ms, seq = string.match(last, '^(%d+)-(%d+)$')
    call('XTRIM', KEYS[5], 'MINID', ms .. '-' .. string.format('%d', tonumber(seq) + 1))
    call('DECRBY', KEYS[6], drop)
  end
  -- Nothing delivered for the retain time: both keys go, together.
  call('PEXPIRE', KEYS[5], rttl)
  call('PEXPIRE', KEYS[6], rttl)
end
if #acked > 0 then
  call('XACK', events, group, unpack(acked))
  call('XDEL', events, unpack(acked))
end
return res
