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
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] attempt record ttl (ms)  ARGV[4] attempt records kept
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
local events, retry, rdata, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer = ARGV[1], ARGV[2]
local ttl, keep, attpre = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local deadmax = tonumber(ARGV[6])
local mine = nil -- id -> true for this consumer's pending entries in the range
if ARGV[7] ~= '' then
  local count = tonumber(ARGV[9])
  local p = redis.call('XPENDING', events, group, ARGV[7], ARGV[8], count, consumer)
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
  local p = redis.call('XPENDING', events, group, id, id, 1)
  return #p == 1 and p[1][2] == consumer
end
local res, acked = {}, {}
local i = 10
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  if owned(id) then
    local j = i
    while j < i + n do
      local evid, att = ARGV[j + 1], ARGV[j + 2]
      if evid ~= '' then
        local akey = attpre .. evid
        if redis.call('RPUSH', akey, att) > keep then
          redis.call('LTRIM', akey, -keep, -1)
        end
        redis.call('PEXPIRE', akey, ttl)
      end
      if ARGV[j] == 'a' then
        j = j + 3
      else
        local member, nd = ARGV[j + 3], tonumber(ARGV[j + 6])
        if member ~= '' then
          redis.call('ZADD', retry, ARGV[j + 4], member)
          redis.call('HSET', rdata, member, ARGV[j + 5])
        end
        if nd > 0 then
          if deadmax > 0 then
            redis.call('XADD', dead, 'MAXLEN', '~', deadmax, '*', unpack(ARGV, j + 7, j + 6 + nd))
          else
            redis.call('XADD', dead, '*', unpack(ARGV, j + 7, j + 6 + nd))
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
  redis.call('XACK', events, group, unpack(acked))
  redis.call('XDEL', events, unpack(acked))
end
return res
