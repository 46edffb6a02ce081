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
-- ARGV[4] dead-letter MAXLEN ~ (0 = keep all)  ARGV[5] the workers' --max-payload
-- (bytes: a line's batch body stays within it)
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

local function num(v)
  return string.format('%.0f', v)
end

local wm = nil
local pend = call('XPENDING', KEYS[1], ARGV[1])
if pend[1] > 0 then
  wm = pad(pend[2])
end

local function item_ok(d)
  return type(d) == 'table' and type(d.type) == 'string' and type(d.id) == 'string'
      and type(d.payload) == 'string' and type(d.attempt) == 'number'
end

-- The retry-lane entry's fields of d (an item's data, or a batch's).
local function fields(d, ep, key, item)
  local f = {'type', d.type, 'payload', d.payload, 'id', d.id, 'endpoint', ep,
             'attempt', num(d.attempt), 'line', item}
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
  if type(d.batch) == 'string' then
    table.insert(f, 'batch')
    table.insert(f, d.batch)
  end
  return f
end

local b64c = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = string.byte(s, i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local q = {math.floor(n / 262144), math.floor(n / 4096) % 64, math.floor(n / 64) % 64, n % 64}
    for k = 1, 4 do
      q[k] = string.sub(b64c, q[k] + 1, q[k] + 1)
    end
    if not b then
      q[3], q[4] = '=', '='
    elseif not c then
      q[4] = '='
    end
    out[#out + 1] = table.concat(q)
  end
  return table.concat(out)
end

-- Batches of an ordered line (an endpoint both --ordered and --batch,
-- docs/batching.md): up to the head's bmax consecutive items below the
-- watermark, within its bbytes and the workers' --max-payload (ARGV[5]),
-- sent as one batch retried whole (worker/batch_retry.c's item: payload the
-- JSON array body, id "bat_...", field batch the member list "id type ts
-- payload_offset payload_len b64"), "line" its last item. Items stop a batch
-- when parked without batch data (bmax: before --batch was set). Nil when
-- fewer than two go: the head goes alone.
local function batch_new(ep, key, name, line, d)
  local ids = call('ZRANGE', line, 0, d.bmax - 1)
  local maxpay = tonumber(ARGV[5])
  local limit = math.min(d.bbytes or 1048576, maxpay)
  local body, ml, size, n, last, mlsize = {'['}, {}, 1, 0, nil, 0
  for k = 1, #ids do
    local it = ids[k]
    if wm and it >= wm then break end
    local m = d
    if k > 1 then
      local raw = call('HGET', datak, name .. '/' .. it)
      local ok
      ok, m = false, nil
      if raw then
        ok, m = pcall(cmsgpack.unpack, raw)
      end
      if not (ok and item_ok(m) and m.attempt == 0 and m.bmax) then break end
    end
    local js = m.json == 1
    local pay = js and m.payload or b64(m.payload)
    local ts = type(m.ts) == 'number' and num(m.ts) or string.match(it, '^0*(%d+)-')
    local pre = (n > 0 and ',' or '') .. '{"id":"' .. m.id .. '","type":"' .. m.type ..
                '","timestamp":' .. ts .. (js and ',"payload":' or ',"payload_b64":"')
    local post = js and '}' or '"}'
    local add = #pre + #pay + #post
    local mline = m.id .. ' ' .. m.type .. ' ' .. ts .. ' ' .. (size + #pre) .. ' ' .. #pay ..
                  ' ' .. (js and '0' or '1') .. '\n'
    -- The body within bbytes; body and member list within --max-payload.
    if n > 0 and (size + add + 1 > limit or size + add + 1 + mlsize + #mline > maxpay) then
      break
    end
    ml[#ml + 1] = mline
    mlsize = mlsize + #mline
    body[#body + 1] = pre
    body[#body + 1] = pay
    body[#body + 1] = post
    size, n, last = size + add, n + 1, it
  end
  if n < 2 then return nil end
  body[#body + 1] = ']'
  local b = {type = d.type, payload = table.concat(body), attempt = 0, first_ms = d.first_ms,
             tenant = d.tenant, batch = table.concat(ml),
             id = 'bat_' .. string.sub(redis.sha1hex(ep .. '\0' .. d.id .. '\0' .. n), 1, 32)}
  return fields(b, ep, key, last)
end

-- A batch being retried whole: its data as the last outcome kept it (k), its
-- members the first ones of the line (one per line of its member list).
local function batch_again(ep, key, line, raw)
  local ok, d = pcall(cmsgpack.unpack, raw)
  if not (ok and item_ok(d) and type(d.batch) == 'string') then return nil end
  local _, n = string.gsub(d.batch, '\n', '')
  local last = n > 0 and call('ZRANGE', line, n - 1, n - 1)[1]
  if not last then return nil end
  return fields(d, ep, key, last)
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
      local f, raw = nil, call('HGET', datak, field)
      local ok, d = false, nil
      if raw then
        ok, d = pcall(cmsgpack.unpack, raw)
      end
      if ok and item_ok(d) then
        -- Only a head parked with batch data can start a batch (#b: its first member).
        if type(d.bmax) == 'number' and d.bmax >= 2 then
          local bd = call('HGET', datak, name .. '/#b')
          if bd then
            f = batch_again(ep, key, line, bd)
            if not f then
              call('HDEL', datak, name .. '/#b') -- unreadable: its members go again
            end
          end
          if not f and d.attempt == 0 then
            f = batch_new(ep, key, name, line, d)
          end
        end
        f = f or fields(d, ep, key, head)
      end
      if f then
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
