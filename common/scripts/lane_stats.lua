-- lane_stats.lua: the numbers of one partition's retry lane, for the worker's
-- gauges and `hookq stats` (read-only). Owns: nothing; reads the stream and
-- its group. One script so the age is computed with Redis' own clock and the
-- group's position in one step.
--
-- KEYS[1] <b>:retries   ARGV[1] the consumer group ("workers")
-- Returns {depth, unread, pending, age_ms}:
--   depth    entries in the stream (workers XDEL what they ack: unread + pending)
--   unread   entries the group has not read yet (all of them when the group is missing)
--   pending  entries read and not yet acknowledged
--   age_ms   age of the oldest unread entry by Redis' clock (0 when none)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local depth = redis.call('XLEN', KEYS[1])
if depth == 0 then
  return {0, 0, 0, 0}
end
local last, pending = nil, 0
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if ok then
  for _, g in ipairs(groups) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f['name'] == ARGV[1] then
      last = f['last-delivered-id']
      pending = f['pending'] or 0
    end
  end
end
-- The oldest unread entry: the first after the group's position.
local first = redis.call('XRANGE', KEYS[1], last and ('(' .. last) or '-', '+', 'COUNT', 1)
local age = 0
if #first > 0 then
  local ms = tonumber(string.match(first[1][1], '^(%d+)-'))
  if ms and now > ms then age = now - ms end
end
local unread = depth - pending
if unread < 0 then unread = 0 end
return {depth, unread, pending, age}
