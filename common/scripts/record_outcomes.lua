-- record_outcomes.lua: makes every outcome of a batch of stream entries durable,
-- then acknowledges (XACK) and deletes (XDEL) exactly the entries this consumer
-- still owns. One call per batch, sent by the worker once per loop turn.
--
-- Fencing: an entry whose pending-list owner is no longer this consumer (a
-- paused worker whose entry was reclaimed by another) records nothing. The same
-- check makes a retried call harmless: an entry acked by a first call whose
-- reply was lost is no longer pending, so the retry skips it.
--
-- KEYS[1] events stream   KEYS[2] retry zset   KEYS[3] retry data hash   KEYS[4] dead stream
-- ARGV[1] group  ARGV[2] consumer  ARGV[3] attempt record ttl (ms)  ARGV[4] attempt records kept
-- ARGV[5] attempt key prefix ("<p>:att:")  ARGV[6] dead stream MAXLEN (0 = unbounded)
-- then per entry: entry id, op count, ops. An op is a msgpack array
--   [event id for the attempt record or "", attempt record JSON or "",
--    retry member or "", due ms (string), retry data (msgpack map) or "",
--    dead-letter fields (array of strings) or nil]
-- Returns one integer per entry: 1 recorded and acked, 0 fenced.
local events, retry, rdata, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer = ARGV[1], ARGV[2]
local ttl, keep, attpre = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local deadmax = tonumber(ARGV[6])
local res, acked = {}, {}
local i = 7
while i <= #ARGV do
  local id, n = ARGV[i], tonumber(ARGV[i + 1])
  i = i + 2
  local p = redis.call('XPENDING', events, group, id, id, 1)
  if #p == 1 and p[1][2] == consumer then
    for k = i, i + n - 1 do
      local o = cmsgpack.unpack(ARGV[k])
      if o[1] ~= '' then
        local akey = attpre .. o[1]
        if redis.call('RPUSH', akey, o[2]) > keep then
          redis.call('LTRIM', akey, -keep, -1)
        end
        redis.call('PEXPIRE', akey, ttl)
      end
      if o[3] ~= '' then
        redis.call('ZADD', retry, o[4], o[3])
        redis.call('HSET', rdata, o[3], o[5])
      end
      if type(o[6]) == 'table' then
        if deadmax > 0 then
          redis.call('XADD', dead, 'MAXLEN', '~', deadmax, '*', unpack(o[6]))
        else
          redis.call('XADD', dead, '*', unpack(o[6]))
        end
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
