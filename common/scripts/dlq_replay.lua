-- dlq_replay.lua: re-enqueues a batch of dead letters by entry id, atomically
-- (`hookq dlq replay`). Owns: reading each dead letter, re-adding its event to
-- the stream with a fresh attempt budget (no `attempt` field; `replay` = 1; same event id,
-- so the same webhook-id; its tenant when it has one) and deleting it from the dead stream. Reading and
-- deleting in the same script means two concurrent replays cannot enqueue an
-- entry twice.
--
-- KEYS[1] <p>:dead   KEYS[2] <p>:events (one partition's: same slot)   ARGV: entry ids
-- Resend (docs/resend.md) passes KEYS[1] <p>:retained, the delivered events kept
-- in dead letters' fields, and KEYS[3] <p>:retained:bytes: their bytes leave it.
-- Returns {replayed, not_replayable, missing}. Entries that hold no valid
-- event (reason "invalid: ...", or no endpoint/type/id) stay in the dead
-- stream and are counted as not replayable.

local replayed, skipped, missing = 0, 0, 0
for _, id in ipairs(ARGV) do
  local r = redis.call('XRANGE', KEYS[1], id, id)
  if #r == 0 then
    missing = missing + 1
  else
    local f = {}
    local kv = r[1][2]
    for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
    local reason = f['reason'] or ''
    if string.sub(reason, 1, 7) == 'invalid' or (f['event_id'] or '') == ''
        or (f['endpoint_id'] or '') == '' or (f['type'] or '') == '' or f['payload'] == nil then
      skipped = skipped + 1
    else
      -- replay = 1: exempt from the dedupe claim (worker/dedupe.c), which would
      -- otherwise find the id claimed by its first delivery and drop it.
      local ev = {'type', f['type'], 'payload', f['payload'], 'id', f['event_id'],
                  'endpoint', f['endpoint_id'], 'replay', '1'}
      -- The dead letter's tenant goes along: an endpoint moved to another
      -- tenant meanwhile gets it dead-lettered (tenant_mismatch), not delivered.
      if (f['tenant'] or '') ~= '' then
        table.insert(ev, 'tenant')
        table.insert(ev, f['tenant'])
      end
      redis.call('XADD', KEYS[2], '*', unpack(ev))
      redis.call('XDEL', KEYS[1], id)
      if KEYS[3] then
        local n = 0
        for i = 1, #kv do n = n + #kv[i] end
        redis.call('DECRBY', KEYS[3], n)
      end
      replayed = replayed + 1
    end
  end
end
return {replayed, skipped, missing}
