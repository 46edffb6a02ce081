-- disable.lua: the registry side of an automatic disable (worker/breaker.c),
-- after health.lua flipped the endpoint's breaker to "disabled". Idempotent:
-- an endpoint already disabled (or deleted) is left alone, so every worker
-- that sees the flip may send it.
--
-- KEYS[1] <r>:ep:<id>   KEYS[2] <r>:endpoints:ver (same slot)
-- ARGV[1] reason  ARGV[2] now ms  ARGV[3] when the breaker was disabled (ms)
-- Returns 1 when it disabled the endpoint, 0 when there was nothing to do:
-- already disabled, deleted, or changed by an operator since the breaker was
-- disabled (`endpoint enable` writes updated_ms: a worker that has not seen
-- the enable yet must not undo it).
local e = redis.call('HMGET', KEYS[1], 'enabled', 'updated_ms')
if e[1] ~= '1' or tonumber(e[2] or '0') > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], 'enabled', '0', 'disabled_reason', ARGV[1], 'disabled_ms', ARGV[2])
redis.call('INCR', KEYS[2])
return 1
