-- health.lua: one endpoint's circuit breaker (docs/flow-control.md#circuit-breaker).
-- Owns <p>:{H}:cb:<ep> (H: the endpoint's home partition) and the operational
-- events its transitions emit: the XADD runs in the execution that flips the
-- state, so each transition is emitted exactly once, whichever worker reports.
-- No hash = closed and clean: healthy endpoints are never written.
--
-- KEYS[1] <p>:{H}:cb:<ep>   KEYS[2] <p>:{H}:events (same slot)
-- ARGV[1] mode: "r" report outcomes, "c" claim the probe
-- ARGV[2] now ms  ARGV[3] endpoint id  ARGV[4] tenant ("" none)
-- ARGV[5] failures: open after this many consecutive failures
-- ARGV[6] ratio %: open when failures >= ratio % of the window's attempts (0 off)
-- ARGV[7] window ms  ARGV[8] min attempts in the window for the ratio
-- ARGV[9] probe interval ms  ARGV[10] probe lease ms (a dead prober frees it then)
-- report only: ARGV[11] ok  ARGV[12] failed  ARGV[13] failures after the last
-- success of the batch  ARGV[14] 1: the batch holds the probe's outcome
-- ARGV[15] last status  ARGV[16] last error  ARGV[17] 1: a 410 Gone answer,
-- disable at once  ARGV[18] disable after this long without a success (ms, 0
-- never)  ARGV[19] "failing" event after this long without a success (ms, 0 never)
-- mode "e" (hookq endpoint enable, after the registry write): forget the
-- breaker, emit hookq.endpoint.enabled (ARGV[5..] unused).
-- Returns {state, next_probe_ms, granted, transition, disable reason}: state "closed" (no
-- hash), "watch" (closed, failures counted), "open", "half_open" (a probe is
-- out until next_probe_ms), "disabled"; granted 1 when the claim won the
-- probe (disabled: next_probe_ms is when it was disabled); transition
-- "opened", "closed", "disabled" or "".
-- failing_since_ms: the first failure after the last success (reset by one).
local K, S = KEYS[1], KEYS[2]
local mode, now, ep, tenant = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local nfail, ratio, window = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local minn, interval, lease = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])

local h = redis.call('HMGET', K, 'state', 'fails', 'win_start', 'win_n', 'win_fail',
  'next_probe_ms', 'opened_ms', 'failing_since_ms', 'failing_sent')
local state = h[1] or 'closed'
local fails = tonumber(h[2] or '0')
local next_probe = tonumber(h[6] or '0')

local since, sent = tonumber(h[8] or '0'), h[9]
local reason -- of a disable

local function emit(kind, st, status, err, reason)
  local p = {type = 'hookq.endpoint.' .. kind, endpoint_id = ep, state = st,
    failures = fails, last_status = status, last_error = err, at_ms = now}
  if tenant ~= '' then p.tenant_id = tenant end
  if st == 'open' then p.next_probe_at_ms = next_probe end
  if since > 0 then p.failing_since_ms = since end
  if reason then p.reason = reason end
  local id = 'hq_' .. ep .. '_' .. now .. '_' .. kind
  if tenant ~= '' then
    redis.call('XADD', S, '*', 'type', p.type, 'id', id, 'payload', cjson.encode(p),
      'tenant', tenant)
  else
    redis.call('XADD', S, '*', 'type', p.type, 'id', id, 'payload', cjson.encode(p))
  end
end

if mode == 'e' then
  fails, since = 0, 0
  redis.call('DEL', K)
  emit('enabled', 'closed', 0, '')
  return {'closed', 0, 0, 'enabled', reason or ''}
end
if state == 'disabled' then
  local d = redis.call('HMGET', K, 'disabled_ms', 'reason')
  return {'disabled', tonumber(d[1] or '0'), 0, '', d[2] or ''}
end

if mode == 'c' then
  if (state == 'open' or state == 'half_open') and now >= next_probe then
    redis.call('HSET', K, 'state', 'half_open', 'next_probe_ms', now + lease)
    return {'half_open', now + lease, 1, '', reason or ''}
  end
  if state == 'closed' and h[1] then state = 'watch' end
  return {state, next_probe, 0, '', reason or ''}
end

local ok, failed, tail = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local probe, status, err = ARGV[14] == '1', tonumber(ARGV[15]), ARGV[16]
local gone, disable_after, failing_after = ARGV[17] == '1', tonumber(ARGV[18]), tonumber(ARGV[19])

if ok > 0 then
  if tail > 0 then since = now else since = 0 end
elseif failed > 0 and since == 0 then
  since = now
end
if gone then
  reason = '410 Gone'
elseif ok == 0 and since > 0 and disable_after > 0 and now - since >= disable_after then
  reason = 'no success for ' .. (now - since) .. ' ms (--disable-after ' .. disable_after .. ' ms)'
end
if reason then
  fails = fails + failed
  redis.call('DEL', K)
  redis.call('HSET', K, 'state', 'disabled', 'reason', reason, 'disabled_ms', now,
    'next_probe_ms', now, 'fails', fails,
    'failing_since_ms', since, 'last_status', status, 'last_error', err)
  emit('disabled', 'disabled', status, err, reason)
  return {'disabled', now, 0, 'disabled', reason or ''}
end
if ok == 0 and since > 0 and failing_after > 0 and now - since >= failing_after and not sent then
  sent = '1'
  redis.call('HSET', K, 'failing_sent', 1)
  emit('failing', state, status, err)
end

if state == 'open' or state == 'half_open' then
  if ok > 0 then -- any success closes: the endpoint answers again
    fails = 0
    redis.call('DEL', K)
    emit('circuit_closed', 'closed', status, err)
    return {'closed', 0, 0, 'closed', reason or ''}
  end
  fails = fails + failed
  if probe then -- the probe failed: the next one after an interval
    next_probe = now + interval
    redis.call('HSET', K, 'state', 'open', 'fails', fails, 'next_probe_ms', next_probe,
      'failing_since_ms', since, 'last_status', status, 'last_error', err)
    return {'open', next_probe, 0, '', reason or ''}
  end
  redis.call('HSET', K, 'fails', fails, 'failing_since_ms', since)
  return {state, next_probe, 0, '', reason or ''}
end

-- closed
if failed == 0 and not h[1] then return {'closed', 0, 0, '', ''} end
if ok > 0 then fails = tail else fails = fails + tail end
local ws, wn, wf = tonumber(h[3] or '0'), tonumber(h[4] or '0'), tonumber(h[5] or '0')
if ws == 0 or now - ws >= window then ws, wn, wf = now, 0, 0 end
wn = wn + ok + failed
wf = wf + failed
if fails >= nfail or (ratio > 0 and wn >= minn and wf * 100 >= ratio * wn) then
  next_probe = now + interval
  redis.call('DEL', K)
  redis.call('HSET', K, 'state', 'open', 'fails', fails, 'next_probe_ms', next_probe,
    'opened_ms', now, 'win_start', ws, 'win_n', wn, 'win_fail', wf, 'failing_since_ms', since,
    'last_status', status, 'last_error', err)
  if sent then redis.call('HSET', K, 'failing_sent', 1) end
  emit('circuit_opened', 'open', status, err)
  return {'open', next_probe, 0, 'opened', reason or ''}
end
if fails == 0 and wf == 0 and since == 0 then
  redis.call('DEL', K)
  return {'closed', 0, 0, '', reason or ''}
end
redis.call('HSET', K, 'state', 'closed', 'fails', fails, 'win_start', ws, 'win_n', wn,
  'win_fail', wf, 'failing_since_ms', since, 'last_status', status, 'last_error', err)
redis.call('PEXPIRE', K, 2 * window) -- forgotten after a quiet window
return {'watch', 0, 0, '', reason or ''}
