-- exhausted.lua: hookq.delivery.exhausted, the operational webhook that tells
-- an operator deliveries were dead-lettered because their attempts or their
-- retry window ran out (docs/flow-control.md#operational-webhooks). Batched:
-- at most one event per endpoint per interval, whatever the number of workers
-- and dead letters. Workers aggregate per endpoint in memory and send one call
-- per home partition per tick (worker/exhausted.c); this script owns the
-- shared part: <p>:{H}:exh:<ep>, a JSON object with the counts not yet
-- emitted and when the last event went out (sent), expiring one interval
-- after the last emission, so a quiet endpoint costs nothing.
--
-- KEYS[1] <p>:{H}:events (the home partition's fresh stream)
-- KEYS[2..n+1] <p>:{H}:exh:<ep>, one per endpoint of the call (same slot)
-- ARGV[1] interval ms  ARGV[2] sample size kept
-- then per endpoint 8 arguments: endpoint id, tenant ("" none), dead letters
-- "exhausted", dead letters "retry_window_exceeded", first event id, last
-- event id, first and last dead-letter ms, then the sample of event ids
-- ("\n"-joined, the first ones of the batch).
-- A call with both counts 0 is a poke: emit what is held if the interval
-- has passed (the worker pokes once the wait this script returned is over).
-- Returns one integer per endpoint: 0 nothing held back; else the ms to wait
-- before the held counts may be emitted (poke then).
local now_t = redis.call('TIME')
local now = now_t[1] * 1000 + math.floor(now_t[2] / 1000)
local interval, keep = tonumber(ARGV[1]), tonumber(ARGV[2])
local res = {}
local a = 3
for k = 2, #KEYS do
  local K = KEYS[k]
  local ep, tenant = ARGV[a], ARGV[a + 1]
  local ne, nw = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local raw = redis.call('GET', K)
  local s = raw and cjson.decode(raw) or {ne = 0, nw = 0, sent = 0}
  if ne + nw > 0 then
    if s.ne + s.nw == 0 then
      s.first_id, s.first_ms, s.sample = ARGV[a + 4], tonumber(ARGV[a + 6]), {}
    end
    s.last_id, s.last_ms = ARGV[a + 5], tonumber(ARGV[a + 7])
    s.ne, s.nw = s.ne + ne, s.nw + nw
    for id in string.gmatch(ARGV[a + 8], '[^\n]+') do
      if #s.sample < keep then s.sample[#s.sample + 1] = id end
    end
  end
  a = a + 9
  local wait = 0
  if s.ne + s.nw > 0 then
    if now - s.sent >= interval then
      local p = {type = 'hookq.delivery.exhausted', endpoint_id = ep,
        count = s.ne + s.nw, exhausted = s.ne, retry_window_exceeded = s.nw,
        first_event_id = s.first_id, last_event_id = s.last_id,
        sample_event_ids = s.sample, first_dead_ms = s.first_ms, last_dead_ms = s.last_ms,
        at_ms = now, interval_ms = interval}
      if tenant ~= '' then p.tenant_id = tenant end
      local id = 'hq_' .. ep .. '_' .. string.format('%d', now) .. '_exhausted'
      if tenant ~= '' then
        redis.call('XADD', KEYS[1], '*', 'type', p.type, 'id', id, 'payload', cjson.encode(p),
          'tenant', tenant)
      else
        redis.call('XADD', KEYS[1], '*', 'type', p.type, 'id', id, 'payload', cjson.encode(p))
      end
      redis.call('SET', K, cjson.encode({ne = 0, nw = 0, sent = now}), 'PX', interval)
    else
      wait = s.sent + interval - now
      -- Kept past its due time, so a poke a little late still finds it.
      redis.call('SET', K, cjson.encode(s), 'PX', wait + interval)
    end
  end
  res[#res + 1] = wait
end
return res
