-- dd_seen.lua: idempotent events, the producers' side (read-only): is an event
-- id claimed by a worker within the dedupe window? Sent by `hookq produce` and
-- libhookq (report_dups) pipelined with the event's XADD: still one round
-- trip. Looks the id up in every live claim generation listed in the index
-- (claim_ids.lua owns both; a generation whose score, the moment its newest
-- claim is a window old, has passed is not read, as the workers do).
-- KEYS[1] <p>:dd, the generation index (generations are KEYS[1] .. ':' .. start ms)
-- ARGV[1] event id
-- Returns the entry id holding the claim, or false (nil) when the id is free.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf')
for k = #live, 1, -1 do
  local v = redis.call('HGET', KEYS[1] .. ':' .. live[k], ARGV[1])
  if v then
    return v
  end
end
return false
