-- move_due.lua: moves one batch of due retries of one partition, atomically
-- (scheduler). Owns: re-enqueueing each due member, dead-lettering members
-- whose retry data is missing or corrupt, and the removal from the retry zset
-- and data hash. Does not own: timing (the scheduler process), the format of
-- retry data (the worker writes it per docs/internals/redis-layout.md), or
-- the endpoint's state: a retry whose endpoint was deleted or disabled
-- meanwhile is re-enqueued like any other and the worker dead-letters it
-- (endpoint_deleted / endpoint_disabled) when it reads it. The registry lives
-- in another slot ({reg}) than the partition, so a script touching both could
-- not run on a cluster.
-- Being one script per batch is what makes N schedulers safe: a member is
-- read, moved and removed in one atomic step, so two schedulers can never
-- both move it, and a scheduler killed mid-batch loses nothing (the script
-- either ran whole or not at all).
--
-- KEYS[1] <b>:retry   KEYS[2] <b>:retry:data   KEYS[3] <b>:events   KEYS[4] <b>:dead
-- KEYS[5] <b>:retries (the retry lane; optional)
-- (<b>: the partition's base, so all five share its slot)
-- ARGV[1] batch size  ARGV[2] dead-letter MAXLEN ~ (0 = keep all)
-- ARGV[3] max bytes of raw data kept
-- ARGV[4] lane bound: move only while <b>:retries holds fewer entries (0 = no bound)
-- Returns {requeued, dead, now_ms, next_due_score or "", held}: held = 1 when
-- due retries were left in the zset because the lane was full.
--
-- The retry lane (docs/internals/scheduler.md): due retries go to <b>:retries,
-- which workers read with a bounded share of their capacity, not to
-- <b>:events. Only while that stream exists: workers that read it create it
-- (XGROUP CREATE ... MKSTREAM), so a deployment whose workers predate the lane
-- keeps getting its retries on <b>:events and none is stranded, whichever of
-- workers and schedulers is upgraded first. The lane holds fewer than
-- ARGV[4] entries (unread + unacknowledged: workers XDEL what they ack): the
-- zset stays the buffer of a storm, in due order.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local batch = tonumber(ARGV[1])
local target, held = KEYS[3], 0
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then
  target = KEYS[5]
  local bound = tonumber(ARGV[4] or '0')
  if bound > 0 then
    local room = bound - redis.call('XLEN', KEYS[5])
    if room < batch then
      batch = room > 0 and room or 0
      held = 1
    end
  end
end
if batch == 0 then
  local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if not nxt[2] or tonumber(nxt[2]) > now then held = 0 end
  return {0, 0, now, nxt[2] or '', held}
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, batch)

local function num(v)
  return string.format('%.0f', v)
end

local function dead(fields)
  local maxlen = tonumber(ARGV[2])
  if maxlen > 0 then
    redis.call('XADD', KEYS[4], 'MAXLEN', '~', maxlen, '*', unpack(fields))
  else
    redis.call('XADD', KEYS[4], '*', unpack(fields))
  end
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
      table.insert(f, string.sub(raw, 1, tonumber(ARGV[3])))
    end
    dead(f)
    ndead = ndead + 1
  else
    local f = {'type', d.type, 'payload', d.payload, 'id', d.id, 'endpoint', d.endpoint,
               'attempt', num(d.attempt), 'first_ms', str_or(d.first_ms, '0')}
    -- The event's tenant, when it named one: the retry stays within it.
    if type(d.tenant) == 'string' and d.tenant ~= '' then
      table.insert(f, 'tenant')
      table.insert(f, d.tenant)
    end
    -- A batch retried whole (docs/batching.md): its members go with it.
    if type(d.batch) == 'string' and d.batch ~= '' then
      table.insert(f, 'batch')
      table.insert(f, d.batch)
    end
    redis.call('XADD', target, '*', unpack(f))
    requeued = requeued + 1
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
-- held only when due members were actually left behind
if held == 1 and #due < batch then held = 0 end
return {requeued, ndead, now, nxt[2] or '', held}
