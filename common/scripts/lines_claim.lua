-- lines_claim.lua: sends the due heads of one partition's lines (ordered
-- endpoints, docs/ordering.md) to its retry lane, one in flight per line.
-- Run by every worker on a tick; atomic, so two workers never send one head.
--
-- A line (<p>:lines:<endpoint>/<key>, zset) holds its items by member: the
-- origin entry's id padded to "<ms:15>-<seq:20>", score 0, so it sorts in
-- stream order. <p>:lines (zset) holds each line's due time: 0 when its head
-- may go, a retry's backoff after a failure, +inf while its head is in
-- flight (record_outcomes.lua's "o" op ends that, atomically with the ack).
--
-- The watermark: a head goes only when it is older than every entry still
-- pending in the partition's events stream (XPENDING summary). Entries are
-- read in id order and an entry's ordered pairs are parked in the same call
-- that acks it, so every earlier entry is then already in its line.
--
-- KEYS[1] <p>:events  KEYS[2] <p>:retries  KEYS[3] <p>:lines  KEYS[4] <p>:dead
-- ARGV[1] group  ARGV[2] max heads to send  ARGV[3] heads in flight per endpoint
-- ARGV[4] dead-letter MAXLEN ~ (0 = keep all)
-- Returns {sent, held back by the watermark, ms until the next due line or -1,
-- lines left}.
local call = redis.call
local t = call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local idx, max, cap = KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3])
local busyk, datak = idx .. ':busy', idx .. ':data'

local function pad(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return string.rep('0', 15 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
end

local wm = nil
local pend = call('XPENDING', KEYS[1], ARGV[1])
if pend[1] > 0 then
  wm = pad(pend[2])
end

local function num(v)
  return string.format('%.0f', v)
end

local due = call('ZRANGEBYSCORE', idx, '-inf', now, 'LIMIT', 0, 256)
local sent, held, busy = 0, 0, {}
for _, name in ipairs(due) do
  if sent >= max then break end
  local ep, key = string.match(name, '^([^/]*)/(.*)$')
  local line = idx .. ':' .. name
  local head = call('ZRANGE', line, 0, 0)[1]
  if not head then
    call('ZREM', idx, name)
  elseif wm and head >= wm then
    held = held + 1
  else
    if not busy[ep] then
      busy[ep] = tonumber(call('HGET', busyk, ep) or '0')
    end
    if busy[ep] < cap then
      local field = name .. '/' .. head
      local raw = call('HGET', datak, field)
      local ok, d = false, nil
      if raw then
        ok, d = pcall(cmsgpack.unpack, raw)
      end
      if ok and type(d) == 'table' and type(d.type) == 'string' and type(d.id) == 'string'
          and type(d.payload) == 'string' and type(d.attempt) == 'number' then
        local f = {'type', d.type, 'payload', d.payload, 'id', d.id, 'endpoint', ep,
                   'attempt', num(d.attempt), 'line', head}
        if type(d.first_ms) == 'number' and d.first_ms > 0 then
          table.insert(f, 'first_ms')
          table.insert(f, num(d.first_ms))
        end
        if key ~= '' then
          table.insert(f, 'key')
          table.insert(f, key)
        end
        if type(d.tenant) == 'string' and d.tenant ~= '' then
          table.insert(f, 'tenant')
          table.insert(f, d.tenant)
        end
        call('XADD', KEYS[2], '*', unpack(f))
        call('ZADD', idx, '+inf', name)
        call('HINCRBY', busyk, ep, 1)
        busy[ep] = busy[ep] + 1
        sent = sent + 1
      else
        -- Unreadable data: dead-letter the item, the line goes on.
        local dl = {'event_id', '', 'type', '', 'endpoint_id', ep, 'url', '', 'attempts', '0',
                    'last_status', '', 'last_error', '', 'first_attempt_ms', '',
                    'last_attempt_ms', '', 'reason', 'invalid: line data missing or corrupt',
                    'payload', '', 'raw_member', field}
        if tonumber(ARGV[4]) > 0 then
          call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*', unpack(dl))
        else
          call('XADD', KEYS[4], '*', unpack(dl))
        end
        call('ZREM', line, head)
        call('HDEL', datak, field)
      end
    end
  end
end
local nxt = call('ZRANGEBYSCORE', idx, '-inf', '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
local wait = -1
if nxt[2] and nxt[2] ~= 'inf' then
  wait = math.max(0, tonumber(nxt[2]) - now)
end
return {sent, held, wait, call('ZCARD', idx)}
