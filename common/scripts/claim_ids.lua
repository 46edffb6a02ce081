-- claim_ids.lua: idempotent events (worker/dedupe.c). Claims the event ids of
-- one read batch (XREADGROUP or XAUTOCLAIM) for delivery, in one call: an id
-- is delivered at most once per dedupe window. Owns: the <p>:dd:<event id>
-- keys, each holding the stream entry id that claimed the event id, expiring
-- a window after its claim.
--
-- KEYS[i] <p>:dd:<event id> (one partition's: same slot)
-- ARGV[1] the window in ms   ARGV[1 + i] the stream entry id carrying KEYS[i]'s id
-- Returns one integer per key: 1 deliver (the id was free: claimed now; or it
-- is claimed by this very entry: read again after a crash, so it is delivered
-- again, a duplicate at most and never a loss), 0 a duplicate (claimed by
-- another entry within the window: acknowledged, not delivered).
-- SET NX GET (Redis 7.0, which hookq requires): one command per id.
local res, px = {}, ARGV[1]
for i = 1, #KEYS do
  local mine = ARGV[i + 1]
  local old = redis.call('SET', KEYS[i], mine, 'NX', 'GET', 'PX', px)
  res[i] = (not old or old == mine) and 1 or 0
end
return res
