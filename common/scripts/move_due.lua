-- move_due.lua: moves one batch of due retries, atomically (scheduler).
-- Owns: the decision per due member (re-enqueue or dead-letter) and the
-- removal from the retry zset and data hash. Does not own: timing (the
-- scheduler process) or the format of retry data (the worker writes it per
-- docs/internals/redis-layout.md).
-- Being one script per batch is what makes N schedulers safe: a member is
-- read, moved and removed in one atomic step, so two schedulers can never
-- both move it, and a scheduler killed mid-batch loses nothing (the script
-- either ran whole or not at all).
--
-- KEYS[1] <p>:retry   KEYS[2] <p>:retry:data   KEYS[3] <p>:events   KEYS[4] <p>:dead
-- ARGV[1] batch size  ARGV[2] endpoint key prefix "<p>:ep:"
-- ARGV[3] dead-letter MAXLEN ~ (0 = keep all)  ARGV[4] max bytes of raw data kept
-- Endpoint hashes are computed at run time (single Redis, no Cluster; see
-- redis-layout.md).
-- Returns {requeued, dead, now_ms, next_due_score or ""}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local batch = tonumber(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, batch)

local function num(v)
  return string.format('%.0f', v)
end

local function dead(fields)
  local maxlen = tonumber(ARGV[3])
  if maxlen > 0 then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', unpack(fields))
  else
    redis.call('XADD', KEYS[4], '*', unpack(fields))
  end
end

-- Endpoint state per batch: "ok", "deleted" or "disabled" (one lookup per
-- endpoint, not per member: a recovered outage has many members per endpoint).
local ep_state = {}
local function endpoint_state(id)
  local s = ep_state[id]
  if s then return s end
  local key = ARGV[2] .. id
  local en = redis.call('HGET', key, 'enabled')
  if en == false then
    if redis.call('EXISTS', key) == 0 then s = 'deleted' else s = 'ok' end
  elseif en == '0' then
    s = 'disabled'
  else
    s = 'ok'
  end
  ep_state[id] = s
  return s
end

local function str_or(v, d)
  if type(v) == 'string' then return v end
  if type(v) == 'number' then return num(v) end
  return d
end

local requeued, ndead = 0, 0
for _, m in ipairs(due) do
  local raw = redis.call('HGET', KEYS[2], m)
  local d = nil
  if raw then
    local ok, v = pcall(cmsgpack.unpack, raw)
    if ok and type(v) == 'table' and type(v.type) == 'string' and type(v.id) == 'string'
        and type(v.endpoint) == 'string' and type(v.payload) == 'string'
        and type(v.attempt) == 'number' then
      d = v
    end
  end
  if d == nil then
    -- Member is <endpoint_id>/<event_id>/<attempt>; ids never hold '/'.
    local ep, ev, att = string.match(m, '^([^/]*)/(.*)/([^/]*)$')
    local f = {'event_id', ev or '', 'type', '', 'endpoint_id', ep or '', 'url', '',
               'attempts', att or '', 'last_status', '', 'last_error', '',
               'first_attempt_ms', '', 'last_attempt_ms', '',
               'reason', raw and 'invalid: retry data corrupt' or 'invalid: retry data missing',
               'payload', '', 'raw_member', m}
    if raw then
      table.insert(f, 'raw_data')
      table.insert(f, string.sub(raw, 1, tonumber(ARGV[4])))
    end
    dead(f)
    ndead = ndead + 1
  else
    local st = endpoint_state(d.endpoint)
    if st == 'ok' then
      redis.call('XADD', KEYS[3], '*', 'type', d.type, 'payload', d.payload, 'id', d.id,
                 'endpoint', d.endpoint, 'attempt', num(d.attempt),
                 'first_ms', str_or(d.first_ms, '0'))
      requeued = requeued + 1
    else
      dead({'event_id', d.id, 'type', d.type, 'endpoint_id', d.endpoint,
            'url', str_or(d.url, ''), 'attempts', num(d.attempt),
            'last_status', str_or(d.last_status, '0'), 'last_error', str_or(d.last_error, ''),
            'first_attempt_ms', str_or(d.first_ms, ''), 'last_attempt_ms', str_or(d.last_ms, ''),
            'reason', 'endpoint_' .. st, 'payload', d.payload})
      ndead = ndead + 1
    end
  end
end

-- Removal in chunks: unpack() of a whole batch could exceed Lua's C stack.
local i = 1
while i <= #due do
  local j = math.min(i + 499, #due)
  redis.call('ZREM', KEYS[1], unpack(due, i, j))
  redis.call('HDEL', KEYS[2], unpack(due, i, j))
  i = j + 1
end

local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {requeued, ndead, now, nxt[2] or ''}
