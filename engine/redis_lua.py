"""The Lua scripts behind `engine.redis_queue.RedisPriorityQueue`: one atomic script per operation.

Every script gets one key, the queue's prefix `heapwatch:{name}:` (its hash tag keeps all the
queue's keys in one cluster slot), and names the others from it:

    levels    ZSET  member: a priority ('%r' of a float), score: the aging key of its head
    tails     ZSET  same members, score: the aging key of its tail (kept only when aging)
    l:<p>     LIST  the FIFO of priority <p>: elements 'id:t:a:r'
    jobs      HASH  id -> the encoded payload
    leases    ZSET  the lease's token -> lease deadline (server TIME). The token is the
                    element as delivered, '|', its priority, then '|' and the consumer's
                    name when the consumer gave one (the host that holds the lease): the
                    one structure a lease needs, so a lease costs one ZADD and one ZREM;
                    plus one anchor member that is no lease (see ANCHOR below)
    retry     ZSET  '<p>|<element>' -> due time (server TIME)
    dead      LIST  dead letters: 'id|p|attempts|first arrival|at|reason' LF payload
    counters  HASH  seq, depth, peak, submitted, completed, ... (see COUNTERS)
    meta      HASH  epoch (TIME at creation), aging_rate, overflow (both stored by the process
                    that created the queue; a dashboard may change them): every script reads
                    the stored settings, so a change reaches every process
    ready     LIST  wake-up tokens for getters blocked in BLPOP (get_waiters counts them)
    room      LIST  wake-up tokens for putters blocked in BLPOP (put_waiters counts them)
    reaper    STR   the reaper's lock, held for one reap interval (SET NX PX)

An element is 'id:t:a:r': the job id (a global arrival sequence, so id order is arrival
order), the first enqueue time, the deliveries already made and 1 when the last one ended in
an expired lease. The element as delivered starts the lease's token: a later delivery of the
same job has another attempt count, so an ack of a reaped lease finds nothing.

Scripts format every number they store or return with string.format, because Lua's tostring
keeps 14 digits and Redis truncates a returned Lua number to an integer. COUNTERS names the
fields of the counters hash (`seq` is the last job id given out).
"""

from __future__ import annotations

__all__ = [
    "ACK", "COUNTERS", "EXTEND", "GET", "INIT", "LEASES", "NACK", "PUT", "REAP", "RELEASE",
    "SETTINGS", "STATS", "TOP",
]  # fmt: skip

COUNTERS = (
    "submitted", "completed", "dead_lettered", "evicted", "rejected", "redelivered",
    "expired", "stale_acks", "puts", "gets", "depth", "peak", "get_waiters", "put_waiters",
)  # fmt: skip

_COMMON = r"""
local P = KEYS[1]
local C = P .. 'counters'
-- The stored rate, not the caller's: a dashboard may have changed it (SETTINGS).
local rate = tonumber(redis.call('HGET', P .. 'meta', 'aging_rate') or ARGV[1])
local epoch = tonumber(ARGV[2])

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function num(x) return string.format('%.17g', x) end
-- One command over many members, in slices that Lua's unpack() can pass.
local BULK = 1000
local function bulk(cmd, key, members)
  for s = 1, #members, BULK do
    redis.call(cmd, P .. key, unpack(members, s, math.min(#members, s + BULK - 1)))
  end
end
local function stamp(x) return string.format('%.6f', x) end
-- The leases ZSET keeps one member that is no lease: ANCHOR, at +inf (never reaped), longer
-- than zset-max-listpack-value (64 bytes by default). Redis then holds the set as a skiplist,
-- O(log L) an insert, and never as a listpack, whose ZADD walks past every lease due before
-- the new one (all of them: a batch's deadline is the latest), O(L) per member; and the key
-- never empties, so it does not come back as one. Measured (INFO commandstats, bench_redis
-- 'apart'): a batch's ZADD of 50 leases, 71 us as a listpack, 9 us as a skiplist. It has no
-- '|': it is no token.
local ANCHOR = '~heapwatch-leases-anchor' .. string.rep('~', 48)
local function aging_key(p, t)
  if rate == 0 then return tonumber(p) end
  return tonumber(p) + rate * (t - epoch)
end
local function parse(e)
  local id, t, a, r = string.match(e, '^(%d+):([^:]+):(%d+):(%d)$')
  return id, tonumber(t), tonumber(a), r
end
local function elem_time(e) return tonumber(string.match(e, '^%d+:([^:]+):')) end
local function counter(name)
  return tonumber(redis.call('HGET', C, name) or '0')
end
-- Waiters registered under `waiters` get one token each on `list`, at most `n` of them.
local function wake(waiters, list, n)
  local w = counter(waiters)
  if w <= 0 or n <= 0 then return end
  if n < w then w = n end
  local tokens = {}
  for i = 1, w do tokens[i] = '1' end
  redis.call('RPUSH', P .. list, unpack(tokens))
  redis.call('HINCRBY', C, waiters, -w)
end
local function unregister(waiters)
  if counter(waiters) > 0 then redis.call('HINCRBY', C, waiters, -1) end
end
local function grew(n)
  local depth = redis.call('HINCRBY', C, 'depth', n)
  if depth > counter('peak') then redis.call('HSET', C, 'peak', depth) end
  return depth
end
local function refresh_tail(p, lk)
  if rate == 0 then return end
  local last = redis.call('LINDEX', lk, -1)
  if last then redis.call('ZADD', P .. 'tails', num(aging_key(p, elem_time(last))), p) end
end
-- Back to its original place: before the first element that arrived after it. Only items
-- that came back (expired, nacked, retried) can be older than it, so the scan is short.
local function put_back(p, e)
  local lk = P .. 'l:' .. p
  local id = tonumber(string.match(e, '^(%d+):'))
  local pivot, first = nil, nil
  local start = 0
  while true do
    local part = redis.call('LRANGE', lk, start, start + 63)
    for i = 1, #part do
      if tonumber(string.match(part[i], '^(%d+):')) > id then
        pivot = part[i]
        first = (start + i == 1)
        break
      end
    end
    if pivot or #part < 64 then break end
    start = start + 64
  end
  if pivot then
    redis.call('LINSERT', lk, 'BEFORE', pivot, e)
  else
    first = (redis.call('RPUSH', lk, e) == 1)
    refresh_tail(p, lk)
  end
  if first then redis.call('ZADD', P .. 'levels', num(aging_key(p, elem_time(e))), p) end
  grew(1)
  wake('get_waiters', 'ready', 1)
end
local function dead_letter(id, p, e, attempts, t, reason)
  local payload = redis.call('HGET', P .. 'jobs', id) or ''
  redis.call('HDEL', P .. 'jobs', id)
  local head = table.concat({id, p, attempts, stamp(elem_time(e)), stamp(t), reason}, '|')
  redis.call('RPUSH', P .. 'dead', head .. '\n' .. payload)
  redis.call('HINCRBY', C, 'dead_lettered', 1)
end
-- A lease's token -> the element as delivered, its priority.
local function token_parts(token) return string.match(token, '^([^|]+)|([^|]+)') end
-- The lease `token` ends here: its element and priority, or nil (counted) when it was reaped.
local function take_lease(token)
  if token == ANCHOR or redis.call('ZREM', P .. 'leases', token) == 0 then
    redis.call('HINCRBY', C, 'stale_acks', 1)
    return nil
  end
  return token_parts(token)
end
-- A lease ends without an ack: back in the queue (after `delay`), or dead past max_attempts.
local function settle_back(e, p, t, max_attempts, delay, expired, reason)
  local id, et, a = parse(e)
  local attempts = a + 1
  if attempts >= max_attempts then
    dead_letter(id, p, e, attempts, t, reason)
    return 'dead-lettered'
  end
  local back = table.concat({id, stamp(et), attempts, expired}, ':')
  if delay > 0 then
    redis.call('ZADD', P .. 'retry', num(t + delay), p .. '|' .. back)
    return 'retry'
  end
  put_back(p, back)
  return 'queued'
end
-- Several going back at once go newest first: each then lands in front of the ones before
-- it, so put_back's scan stops at once instead of walking past them (k items: O(k log k)).
local function newest_first(list, pattern)
  table.sort(list, function(x, y)
    return tonumber(string.match(x, pattern)) > tonumber(string.match(y, pattern))
  end)
end
-- Ack the leases in 'token,token,...': one flag per lease, '1' acked, '0' refused (reaped,
-- or the same lease twice in one batch). Three commands for the batch, not one per lease.
local function ack(list)
  local tokens = {}
  for token in string.gmatch(list, '[^,]+') do tokens[#tokens + 1] = token end
  local flags, gone, ids, seen = {}, {}, {}, {}
  for s = 1, #tokens, BULK do
    local part = {unpack(tokens, s, math.min(#tokens, s + BULK - 1))}
    local held = redis.call('ZMSCORE', P .. 'leases', unpack(part))
    for i = 1, #part do
      local token = part[i]
      if held[i] and not seen[token] and token ~= ANCHOR then
        seen[token] = true
        gone[#gone + 1] = token
        ids[#ids + 1] = string.match(token, '^%d+')
        flags[#flags + 1] = '1'
      else
        flags[#flags + 1] = '0'
      end
    end
  end
  bulk('ZREM', 'leases', gone)
  bulk('HDEL', 'jobs', ids)
  if #gone > 0 then redis.call('HINCRBY', C, 'completed', #gone) end
  if #gone < #tokens then redis.call('HINCRBY', C, 'stale_acks', #tokens - #gone) end
  return table.concat(flags)
end
local function promote_due(t)
  local due = redis.call('ZRANGEBYSCORE', P .. 'retry', '-inf', num(t), 'LIMIT', 0, 256)
  newest_first(due, '|(%d+):')
  for i = 1, #due do
    redis.call('ZREM', P .. 'retry', due[i])
    local p, e = string.match(due[i], '^([^|]+)|(.*)$')
    put_back(p, e)
  end
end
"""

# ARGV: aging rate, overflow policy ('': a reader, which stores none) -> {epoch, aging rate,
# overflow or false}. The first process stores its settings; later ones read them.
INIT = r"""
local P = KEYS[1]
local t = redis.call('TIME')
redis.call('HSETNX', P .. 'meta', 'epoch', t[1] .. '.' .. string.format('%06d', t[2]))
redis.call('HSETNX', P .. 'meta', 'aging_rate', ARGV[1])
if ARGV[2] ~= '' then redis.call('HSETNX', P .. 'meta', 'overflow', ARGV[2]) end
return redis.call('HMGET', P .. 'meta', 'epoch', 'aging_rate', 'overflow')
"""

# ARGV: rate, epoch, priority, maxsize, policy, registered, payload... -> {accepted, depth,
# full, evicted newcomers, the policy used (the stored one if set), then (priority, payload)
# per queued item evicted}
PUT = _COMMON + r"""
local p = ARGV[3]
local maxsize = tonumber(ARGV[4])
local policy = redis.call('HGET', P .. 'meta', 'overflow') or ARGV[5]
if ARGV[6] == '1' then unregister('put_waiters') end
local n = #ARGV - 6
local t = now()
local depth = counter('depth')
local room = n
if maxsize > 0 then room = math.max(0, math.min(n, maxsize - depth)) end
local take, full, refused = room, 0, 0
local out = {}
if room < n then
  if policy == 'block' then
    full = 1
    redis.call('HINCRBY', C, 'put_waiters', 1)
  elseif policy == 'reject' then
    refused = n - room
    redis.call('HINCRBY', C, 'rejected', refused)
  else
    local newkey = aging_key(p, t)
    for i = room + 1, n do
      local worst
      if rate == 0 then worst = redis.call('ZRANGE', P .. 'levels', -1, -1, 'WITHSCORES')
      else worst = redis.call('ZRANGE', P .. 'tails', -1, -1, 'WITHSCORES') end
      if #worst == 0 or newkey >= tonumber(worst[2]) then
        refused = refused + 1
      else
        local wp = worst[1]
        local wk = P .. 'l:' .. wp
        local victim = redis.call('RPOP', wk)
        local vid = string.match(victim, '^(%d+):')
        out[#out + 1] = wp
        out[#out + 1] = redis.call('HGET', P .. 'jobs', vid) or ''
        redis.call('HDEL', P .. 'jobs', vid)
        if redis.call('LLEN', wk) == 0 then
          redis.call('ZREM', P .. 'levels', wp)
          if rate > 0 then redis.call('ZREM', P .. 'tails', wp) end
        else
          refresh_tail(wp, wk)
        end
        redis.call('HINCRBY', C, 'depth', -1)
        take = take + 1
      end
    end
    redis.call('HINCRBY', C, 'evicted', refused + #out / 2)
  end
end
if take > 0 then
  local last = redis.call('HINCRBY', C, 'seq', take)
  local suffix = ':' .. stamp(t) .. ':0:0'
  local elems, bodies = {}, {}
  for i = 1, take do
    local id = last - take + i
    elems[i] = id .. suffix
    bodies[2 * i - 1] = id
    bodies[2 * i] = ARGV[6 + i]
  end
  local lk = P .. 'l:' .. p
  redis.call('HSET', P .. 'jobs', unpack(bodies))
  if redis.call('RPUSH', lk, unpack(elems)) == take then
    redis.call('ZADD', P .. 'levels', num(aging_key(p, t)), p)
  end
  if rate > 0 then redis.call('ZADD', P .. 'tails', num(aging_key(p, t)), p) end
  redis.call('HINCRBY', C, 'puts', take)
  depth = grew(take)
  -- One getter at a time, as BullMQ's marker: it takes a batch and, if items are left, its
  -- own script wakes the next one. Waking one per item would send a herd of getters after
  -- one batch.
  wake('get_waiters', 'ready', 1)
  if maxsize > 0 and depth < maxsize then wake('put_waiters', 'room', 1) end
end
redis.call('HINCRBY', C, 'submitted', take + refused)
table.insert(out, 1, policy)
table.insert(out, 1, refused)
table.insert(out, 1, full)
table.insert(out, 1, depth)
table.insert(out, 1, take)
return out
"""

# ARGV: rate, epoch, n, lease, registered, consumer ('' or its name), leases to ack first
# ('token,token,...' or '': the ack of one batch rides with the lease of the next) -> {now,
# depth, count, the ack's flags (as ACK's), then per level served: priority, k, and k (token,
# payload) pairs}; when nothing is queued {now, depth, 0, flags, the next due retry or lease
# deadline, or ''}.
GET = _COMMON + r"""
local n = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
if ARGV[5] == '1' then unregister('get_waiters') end
local owner = ''
if ARGV[6] ~= '' then owner = '|' .. ARGV[6] end  -- tokens end '|priority' or '|priority|owner'
local out = {0, 0, 0, ''}
if ARGV[7] ~= '' then out[4] = ack(ARGV[7]) end
local t = now()
out[1] = stamp(t)
promote_due(t)
local deadline = num(t + lease)
local got = 0
local runs, tokens, ids, leases = {}, {}, {}, {}
while got < n do
  local best = redis.call('ZRANGE', P .. 'levels', 0, 0)
  if #best == 0 then break end
  local p = best[1]
  local lk = P .. 'l:' .. p
  local elems = redis.call('LPOP', lk, n - got) or {}
  runs[#runs + 1] = {p, got + 1, got + #elems}
  local suffix = '|' .. p .. owner
  local again = 0
  for i = 1, #elems do
    local e = elems[i]
    got = got + 1
    local token = e .. suffix
    tokens[got], ids[got] = token, string.match(e, '^%d+')
    leases[2 * got - 1], leases[2 * got] = deadline, token
    if string.byte(e, -1) == 49 then again = again + 1 end  -- ends ':1': after an expiry
  end
  if again > 0 then redis.call('HINCRBY', C, 'redelivered', again) end
  local head = redis.call('LINDEX', lk, 0)
  if not head then
    redis.call('ZREM', P .. 'levels', p)
    if rate > 0 then redis.call('ZREM', P .. 'tails', p) end
  elseif rate > 0 then
    redis.call('ZADD', P .. 'levels', num(aging_key(p, elem_time(head))), p)
  end
end
if got == 0 then
  local hint = ''
  local r = redis.call('ZRANGE', P .. 'retry', 0, 0, 'WITHSCORES')
  local l = redis.call('ZRANGE', P .. 'leases', 0, 0, 'WITHSCORES')
  if #r > 0 then hint = r[2] end
  if #l > 0 and l[1] ~= ANCHOR and (hint == '' or tonumber(l[2]) < tonumber(hint)) then
    hint = l[2]
  end
  redis.call('HINCRBY', C, 'get_waiters', 1)
  out[2] = counter('depth')
  out[5] = hint
  return out
end
local bodies = redis.call('HMGET', P .. 'jobs', unpack(ids))
for r = 1, #runs do
  local run = runs[r]
  out[#out + 1] = run[1]
  out[#out + 1] = run[3] - run[2] + 1
  for i = run[2], run[3] do
    out[#out + 1] = tokens[i]
    out[#out + 1] = bodies[i] or ''
  end
end
leases[2 * got + 1], leases[2 * got + 2] = '+inf', ANCHOR  -- a no-op once it is there
redis.call('ZADD', P .. 'leases', unpack(leases))
redis.call('HINCRBY', C, 'gets', got)
out[2] = redis.call('HINCRBY', C, 'depth', -got)
out[3] = got
wake('put_waiters', 'room', 1)  -- that putter wakes the next while room is left
if out[2] > 0 then wake('get_waiters', 'ready', 1) end
return out
"""

# ARGV: rate, epoch, 'token,token,...' -> one flag per lease, '1' acked, '0' refused (reaped).
# One argument for the batch, not one per lease.
ACK = _COMMON + r"""
return ack(ARGV[3])
"""

# ARGV: rate, epoch, max_attempts, delay, token, reason -> the fate, or 'stale'
NACK = _COMMON + r"""
local e, p = take_lease(ARGV[5])
if not e then return 'stale' end
return settle_back(e, p, now(), tonumber(ARGV[3]), tonumber(ARGV[4]), 0, ARGV[6])
"""

# ARGV: rate, epoch, token -> 'queued' (back at its place, the attempt not counted) or 'stale'
RELEASE = _COMMON + r"""
local e, p = take_lease(ARGV[3])
if not e then return 'stale' end
local id, et, a = parse(e)
put_back(p, table.concat({id, stamp(et), a, 0}, ':'))
return 'queued'
"""

# ARGV: rate, epoch, token, seconds -> the new deadline, or false when the lease is gone
EXTEND = _COMMON + r"""
local e = ARGV[3]
if e == ANCHOR or not redis.call('ZSCORE', P .. 'leases', e) then
  redis.call('HINCRBY', C, 'stale_acks', 1)
  return false
end
local deadline = num(now() + tonumber(ARGV[4]))
redis.call('ZADD', P .. 'leases', 'XX', deadline, e)
return deadline
"""

# ARGV: rate, epoch, max_attempts, lock ms, limit -> {returned, dead-lettered}, or {-1, 0}
# when another process holds the reaper's lock. The lock is kept for its whole TTL, so the
# processes together reap once per interval; a full batch releases it to go on at once.
REAP = _COMMON + r"""
if not redis.call('SET', P .. 'reaper', '1', 'NX', 'PX', ARGV[4]) then return {-1, 0} end
local t = now()
local limit = tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYSCORE', P .. 'leases', '-inf', num(t), 'LIMIT', 0, limit)
newest_first(ids, '^(%d+):')
local back, dead = 0, 0
for i = 1, #ids do
  local e, p = token_parts(ids[i])
  if not e then  -- leased by a version that kept the priority in a 'leased' hash
    e = ids[i]
    p = string.match(redis.call('HGET', P .. 'leased', e) or '', '^[^|]+')
    redis.call('HDEL', P .. 'leased', e)
  end
  redis.call('ZREM', P .. 'leases', ids[i])
  redis.call('HINCRBY', C, 'expired', 1)
  if not p then
    -- no priority known for it: nothing to put back (as before, when the hash had none)
  elseif settle_back(e, p, t, tonumber(ARGV[3]), 0, 1, 'lease expired') == 'queued' then
    back = back + 1
  else
    dead = dead + 1
  end
end
if #ids == limit then redis.call('DEL', P .. 'reaper') end
promote_due(t)
return {back, dead}
"""

# ARGV: rate, epoch -> {now, leased, retry, dead, stored aging rate, stored overflow or '',
# counters as name/value..., '|', then
# (priority, depth, head element) per level}. O(P) in the levels.
STATS = _COMMON + r"""
local t = now()
local leased = redis.call('ZCARD', P .. 'leases')
if redis.call('ZSCORE', P .. 'leases', ANCHOR) then leased = leased - 1 end
local out = {stamp(t), leased, redis.call('ZCARD', P .. 'retry'),
  redis.call('LLEN', P .. 'dead'), num(rate), redis.call('HGET', P .. 'meta', 'overflow') or ''}
local flat = redis.call('HGETALL', C)
for i = 1, #flat do out[#out + 1] = flat[i] end
out[#out + 1] = '|'
local levels = redis.call('ZRANGE', P .. 'levels', 0, -1)
for i = 1, #levels do
  local lk = P .. 'l:' .. levels[i]
  out[#out + 1] = levels[i]
  out[#out + 1] = redis.call('LLEN', lk)
  out[#out + 1] = redis.call('LINDEX', lk, 0)
end
return out
"""

# ARGV: rate, epoch, 'aging_rate' or 'overflow', value -> {aging rate, overflow or ''}. A new
# rate rescores every level's head (and tail) key at once: O(P log P), atomic, so no process
# ever serves by a mix of two rates.
SETTINGS = _COMMON + r"""
if ARGV[3] == 'overflow' then
  redis.call('HSET', P .. 'meta', 'overflow', ARGV[4])
else
  rate = tonumber(ARGV[4])
  redis.call('HSET', P .. 'meta', 'aging_rate', ARGV[4])
  redis.call('DEL', P .. 'tails')
  local levels = redis.call('ZRANGE', P .. 'levels', 0, -1)
  for i = 1, #levels do
    local p = levels[i]
    local lk = P .. 'l:' .. p
    redis.call('ZADD', P .. 'levels', num(aging_key(p, elem_time(redis.call('LINDEX', lk, 0)))), p)
    refresh_tail(p, lk)
  end
end
return {num(rate), redis.call('HGET', P .. 'meta', 'overflow') or ''}
"""

# ARGV: rate, epoch, k, priority ('' for all) -> {now, then (priority, element, payload) per
# entry, best first}. Each level's list is in key order, and the levels ZSET is scored by
# each head's key, so a merge of at most k levels through a heap finds the best k: O(log P + k)
# to find the levels, O(k log k) to merge them, one LINDEX (within k of the head) per entry.
TOP = _COMMON + r"""
local k = tonumber(ARGV[3])
local out = {stamp(now())}
local levels
if ARGV[4] ~= '' then levels = {ARGV[4]} else levels = redis.call('ZRANGE', P .. 'levels', 0, k - 1) end
local heap = {}
local function less(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end
local function swap(i, j) heap[i], heap[j] = heap[j], heap[i] end
local function push(c)
  heap[#heap + 1] = c
  local i = #heap
  while i > 1 and less(heap[i], heap[math.floor(i / 2)]) do
    swap(i, math.floor(i / 2))
    i = math.floor(i / 2)
  end
end
local function sift()
  local i = 1
  while true do
    local m, l, r = i, 2 * i, 2 * i + 1
    if l <= #heap and less(heap[l], heap[m]) then m = l end
    if r <= #heap and less(heap[r], heap[m]) then m = r end
    if m == i then return end
    swap(i, m)
    i = m
  end
end
-- A cursor: {key, id, priority, position in its list, element}; positions stay below k.
local function advance(p, pos)
  local e = redis.call('LINDEX', P .. 'l:' .. p, pos)
  if e then push({aging_key(p, elem_time(e)), tonumber(string.match(e, '^(%d+):')), p, pos, e}) end
end
local next_level = 1
local got, ids = 0, {}
while got < k do
  -- A level whose head comes before the heap's best joins the merge (levels are in head order).
  while next_level <= #levels and (#heap == 0 or tonumber(redis.call('ZSCORE', P .. 'levels',
      levels[next_level]) or '0') <= heap[1][1]) do
    advance(levels[next_level], 0)
    next_level = next_level + 1
  end
  if #heap == 0 then break end
  local c = heap[1]
  got = got + 1
  ids[got] = c[2]
  out[#out + 1] = c[3]
  out[#out + 1] = c[5]
  heap[1] = heap[#heap]
  heap[#heap] = nil
  sift()
  advance(c[3], c[4] + 1)
end
if got > 0 then
  local bodies = redis.call('HMGET', P .. 'jobs', unpack(ids))
  local full = {out[1]}
  for i = 1, got do
    full[#full + 1] = out[2 * i]
    full[#full + 1] = out[2 * i + 1]
    full[#full + 1] = bodies[i] or ''
  end
  out = full
end
return out
"""

# ARGV: rate, epoch -> {now, then (consumer, leased, soonest deadline, latest deadline) per
# consumer that named itself} (O(leases)): what the dashboard shows of a host that is gone.
LEASES = _COMMON + r"""
local flat = redis.call('ZRANGE', P .. 'leases', 0, -1, 'WITHSCORES')
local by = {}
local order = {}
for i = 1, #flat, 2 do
  local owner = string.match(flat[i], '^[^|]+|[^|]+|(.*)$')
  if owner then
    local d = tonumber(flat[i + 1])
    local s = by[owner]
    if not s then
      s = {0, d, d}
      by[owner] = s
      order[#order + 1] = owner
    end
    s[1] = s[1] + 1
    if d < s[2] then s[2] = d end
    if d > s[3] then s[3] = d end
  end
end
local out = {stamp(now())}
for i = 1, #order do
  local s = by[order[i]]
  out[#out + 1] = order[i]
  out[#out + 1] = s[1]
  out[#out + 1] = num(s[2])
  out[#out + 1] = num(s[3])
end
return out
"""
