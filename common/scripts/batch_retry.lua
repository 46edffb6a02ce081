-- batch_retry.lua: writes the retry item of a failed batch retried whole
-- (worker/batch_retry.c, docs/batching.md), before any of its members' stream
-- entries is acknowledged: the data, then its due time, in one step. Written
-- again (a reclaimed batch failing again) it is the same member: overwritten.
-- KEYS[1] <b>:retry (zset)   KEYS[2] <b>:retry:data (hash)
-- ARGV[1] member   ARGV[2] due ms   ARGV[3] retry data (a msgpack map)
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
