-- attempts_read.lua: an event's attempt records in one partition, oldest
-- first, the last ARGV[2] of them (read-only). Records come from the list a
-- worker before attempt buckets wrote (KEYS[1], "<p>:att:<event id>": a rolling
-- upgrade, or records not yet expired) and then from every attempt bucket
-- listed in KEYS[2] ("<p>:attempts", buckets "<p>:attempts:<start ms>", each a
-- hash event id -> its records as JSON lines; record_outcomes.lua writes them).
-- KEYS[1] legacy list  KEYS[2] bucket index   ARGV[1] event id  ARGV[2] records kept
local call, id, keep = redis.call, ARGV[1], tonumber(ARGV[2])
local out = call('LRANGE', KEYS[1], 0, -1)
local starts = call('ZRANGE', KEYS[2], 0, -1)
for k = 1, #starts do
  local v = call('HGET', KEYS[2] .. ':' .. starts[k], id)
  if v then
    for rec in string.gmatch(v, '[^\n]+') do
      out[#out + 1] = rec
    end
  end
end
if #out > keep then
  local last = {}
  for k = #out - keep + 1, #out do
    last[#last + 1] = out[k]
  end
  return last
end
return out
