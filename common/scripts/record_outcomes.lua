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
-- KEYS[1] events stream   KEYS[2] retry zset   KEYS[3] retry data hash   KEYS[4] dead stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] attempt record ttl (ms after Redis' TIME)  ARGV[4] attempt records kept
-- ARGV[5] attempt key prefix ("<p>:att:")  ARGV[6] dead stream MAXLEN (0 = unbounded)
-- ARGV[7] fence range start id or ""  ARGV[8] range end id  ARGV[9] range count
-- then per entry: entry id, n, and n arguments holding its ops (encoded by
-- worker/outcome_ops.c, the one writer of this format), each either
--   "a", event id, attempt record JSON                    (a delivery), or
--   "f", event id for the attempt record or "", attempt record JSON or "",
--   retry member or "", due ms, retry data (a msgpack map, stored as is) or "",
--   d = the number of dead-letter field/value strings (0: none), those d strings
-- (plain arguments, not msgpack: no unpacking or table per op here).
-- Returns one integer per entry: 1 recorded and acked, 0 fenced.
-- ARGV and redis.call are globals: locals make each use a register access.
local argv, call = ARGV, redis.call
local events, retry, rdata, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer = argv[1], argv[2]
local keep, attpre = tonumber(argv[4]), argv[5]
local deadmax = tonumber(argv[6])
-- Attempt lists expire at an absolute time, Redis' now + ttl (one TIME per
-- call): Redis rewrites every PEXPIRE into a PEXPIREAT for propagation (a
-- new argument object and a command lookup per key); a PEXPIREAT stays as sent.
local now = call('TIME')
-- %d, not tostring: tostring switches to exponent notation past 14 digits.
local expat = string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000) + tonumber(argv[3]))
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
local function owned(id)
  if mine then
    return mine[id] == true
  end
  local p = call('XPENDING', events, group, id, id, 1)
  return #p == 1 and p[1][2] == consumer
end
local res, acked = {}, {}
local i, nargs = 10, #argv
while i <= nargs do
  local id, n = argv[i], tonumber(argv[i + 1])
  i = i + 2
  if owned(id) then
    local j = i
    while j < i + n do
      local evid, att = argv[j + 1], argv[j + 2]
      if evid ~= '' then
        local akey = attpre .. evid
        if call('RPUSH', akey, att) > keep then
          call('LTRIM', akey, -keep, -1)
        end
        call('PEXPIREAT', akey, expat)
      end
      if argv[j] == 'a' then
        j = j + 3
      else
        local member, nd = argv[j + 3], tonumber(argv[j + 6])
        if member ~= '' then
          call('ZADD', retry, argv[j + 4], member)
          call('HSET', rdata, member, argv[j + 5])
        end
        if nd > 0 then
          if deadmax > 0 then
            call('XADD', dead, 'MAXLEN', '~', deadmax, '*', unpack(argv, j + 7, j + 6 + nd))
          else
            call('XADD', dead, '*', unpack(argv, j + 7, j + 6 + nd))
          end
        end
        j = j + 7 + nd
      end
    end
    acked[#acked + 1] = id
    res[#res + 1] = 1
  else
    res[#res + 1] = 0
  end
  i = i + n
end
if #acked > 0 then
  call('XACK', events, group, unpack(acked))
  call('XDEL', events, unpack(acked))
end
return res
