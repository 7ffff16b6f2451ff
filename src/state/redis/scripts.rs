//! The Lua scripts the Redis store runs: each budget operation and each health change is one
//! script, so that it is atomic however many processes run it at once.
//!
//! Numbers that go back into Redis are formatted with `%d`: Lua's own number-to-string
//! conversion would write large integers in exponent notation, which `HINCRBY` rejects.

/// Shared by the budget scripts: drop lapsed reservations (their amount is the member's suffix
/// after the last `:`), and roll the counter into a later window.
const BUDGET_PRELUDE: &str = r#"
local now = tonumber(ARGV[1])
local function fmt(x) return string.format('%d', x) end
local function purge(h, z)
  local gone = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #gone > 0 then
    local sum = 0
    for _, m in ipairs(gone) do
      sum = sum + (tonumber(string.match(m, ':(%d+)$')) or 0)
    end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    local r = (tonumber(redis.call('HGET', h, 'reserved')) or 0) - sum
    if r < 0 then r = 0 end
    redis.call('HSET', h, 'reserved', fmt(r))
  end
end
local function roll(h, window)
  local w = tonumber(redis.call('HGET', h, 'window')) or 0
  if window > w then
    redis.call('HSET', h, 'window', fmt(window), 'spent', '0')
  end
end
local function expire(h, z, at, idle)
  if at > 0 then
    redis.call('PEXPIREAT', h, fmt(at))
    redis.call('PEXPIREAT', z, fmt(at))
  else
    redis.call('PEXPIRE', h, fmt(idle))
    redis.call('PEXPIRE', z, fmt(idle))
  end
end
"#;

/// KEYS: per claim, its counter hash and its holds zset.
/// ARGV: now_ms, amount, member, lease_until_ms, idle_ttl_ms, then per claim: window, limit,
/// expire_at_ms (0: idle TTL).
/// Returns `{'-1', spent, reserved, ...}` (each claim's counters after the grant) when granted,
/// else `{claim index, spent, reserved}` of the refusing claim.
const RESERVE_BODY: &str = r#"
local amount = tonumber(ARGV[2])
local idle = tonumber(ARGV[5])
local n = #KEYS / 2
for i = 1, n do
  local h, z, base = KEYS[2 * i - 1], KEYS[2 * i], 5 + (i - 1) * 3
  purge(h, z)
  roll(h, tonumber(ARGV[base + 1]))
  local spent = tonumber(redis.call('HGET', h, 'spent')) or 0
  local reserved = tonumber(redis.call('HGET', h, 'reserved')) or 0
  if spent + reserved + amount > tonumber(ARGV[base + 2]) then
    expire(h, z, tonumber(ARGV[base + 3]), idle)
    return {fmt(i - 1), fmt(spent), fmt(reserved)}
  end
end
local out = {'-1'}
for i = 1, n do
  local h, z, base = KEYS[2 * i - 1], KEYS[2 * i], 5 + (i - 1) * 3
  local reserved = redis.call('HINCRBY', h, 'reserved', ARGV[2])
  redis.call('ZADD', z, ARGV[4], ARGV[3])
  expire(h, z, tonumber(ARGV[base + 3]), idle)
  out[#out + 1] = redis.call('HGET', h, 'spent') or '0'
  out[#out + 1] = fmt(reserved)
end
return out
"#;

/// KEYS: per claim, its counter hash and its holds zset; for a credit (spend made while Redis
/// was away), one more: the credit's marker.
/// ARGV: now_ms, member, reserved, spent, idle_ttl_ms, credit_ttl_ms, then per claim: window,
/// expire_at_ms.
///
/// Idempotent, because a call that timed out may still run, and is then replayed: a hold still
/// listed gives its reservation back and adds its spend; a hold no longer listed before its
/// lease ended was settled already (nothing to do); one whose lease has ended lapsed (its
/// reservation went back then), so only its spend is added. The member names its lease's end
/// (`INSTANCE.HOLD.LEASE_MS:AMOUNT`). A credit counts once: its marker is set with `NX`.
const SETTLE_BODY: &str = r#"
local member = ARGV[2]
local reserved = tonumber(ARGV[3])
local idle = tonumber(ARGV[5])
local lease = tonumber(string.match(member, '%.(%d+):%d+$')) or 0
if #KEYS % 2 == 1 then
  if not redis.call('SET', KEYS[#KEYS], '1', 'NX', 'PX', ARGV[6]) then return 0 end
end
local n = math.floor(#KEYS / 2)
for i = 1, n do
  local h, z, base = KEYS[2 * i - 1], KEYS[2 * i], 6 + (i - 1) * 2
  purge(h, z)
  roll(h, tonumber(ARGV[base + 1]))
  local listed = redis.call('ZREM', z, member) == 1
  if listed then
    local r = (tonumber(redis.call('HGET', h, 'reserved')) or 0) - reserved
    if r < 0 then r = 0 end
    redis.call('HSET', h, 'reserved', fmt(r))
  end
  if ARGV[4] ~= '0' and (listed or now >= lease) then
    redis.call('HINCRBY', h, 'spent', ARGV[4])
  end
  expire(h, z, tonumber(ARGV[base + 2]), idle)
end
return 1
"#;

/// KEYS: the counter hash and its holds zset. ARGV: now_ms, window.
/// Returns `{spent, reserved}` in that window.
const COUNTERS_BODY: &str = r#"
local h, z = KEYS[1], KEYS[2]
if redis.call('EXISTS', h) == 0 then return {'0', '0'} end
purge(h, z)
local w = tonumber(redis.call('HGET', h, 'window')) or 0
local spent = tonumber(redis.call('HGET', h, 'spent')) or 0
local reserved = tonumber(redis.call('HGET', h, 'reserved')) or 0
if w < tonumber(ARGV[2]) then spent = 0 end
return {fmt(spent), fmt(reserved)}
"#;

/// The reserve script.
pub(super) fn reserve() -> String {
    format!("{BUDGET_PRELUDE}{RESERVE_BODY}")
}

/// The settle (and release: a spend of 0) script.
pub(super) fn settle() -> String {
    format!("{BUDGET_PRELUDE}{SETTLE_BODY}")
}

/// The counters script.
pub(super) fn counters() -> String {
    format!("{BUDGET_PRELUDE}{COUNTERS_BODY}")
}

/// Health news goes out as `KIND INSTANCE UNTIL_MS FLAG TARGET` (the target last: it may hold
/// anything but a newline).
///
/// KEYS: the rest key. ARGV: until_ms, quota flag (0/1), channel, instance, target.
/// Extends the rest (never shortens it) and tells the fleet; returns 1 if it was extended.
pub(super) const REST: &str = r#"
local untl = tonumber(ARGV[1])
local cur = redis.call('GET', KEYS[1])
if cur and (tonumber(string.match(cur, '^(%d+)')) or 0) >= untl then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PXAT', ARGV[1])
redis.call('PUBLISH', ARGV[3], 'rest ' .. ARGV[4] .. ' ' .. ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[5])
return 1
"#;

/// KEYS: the circuit hash, the probe key. ARGV: until_ms, channel, instance, target, window_ms.
/// Opens the circuit until `until_ms` (or keeps a later opening) and tells the fleet.
pub(super) const OPEN: &str = r#"
local untl = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'until')) or 0
if cur > untl then untl = cur end
redis.call('HSET', KEYS[1], 'until', string.format('%d', untl))
redis.call('PEXPIREAT', KEYS[1], string.format('%d', untl + tonumber(ARGV[5])))
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], 'open ' .. ARGV[3] .. ' ' .. string.format('%d', untl) .. ' 0 ' .. ARGV[4])
return 1
"#;

/// KEYS: the circuit hash, the probe key, the rest key. ARGV: kind (`closed`, `abandon` or
/// `reset`), channel, instance, target.
/// `closed` and `reset` forget the circuit (`reset` the rest too); `abandon` frees the probe.
pub(super) const CLOSE: &str = r#"
if ARGV[1] ~= 'abandon' then redis.call('DEL', KEYS[1]) end
if ARGV[1] == 'reset' then redis.call('DEL', KEYS[3]) end
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. ARGV[3] .. ' 0 0 ' .. ARGV[4])
return 1
"#;

/// KEYS: the circuit hash. ARGV: now_ms, successes, failures, bucket_ms, min_requests,
/// threshold, cool_down_ms, window_ms, bucket key prefix, channel, instance, target, buckets.
/// Counts the outcomes into the fleet's rolling window (ignored while the circuit is open or
/// half-open: its probe decides then); opens the circuit when failures reach the threshold.
/// Returns the cool-down's end in Unix ms if it opened it, else 0.
pub(super) const RECORD: &str = r#"
local now = tonumber(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local s, f = tonumber(ARGV[2]), tonumber(ARGV[3])
local bucket_ms, window_ms = tonumber(ARGV[4]), tonumber(ARGV[8])
local buckets = tonumber(ARGV[13])
local b = math.floor(now / bucket_ms)
local key = ARGV[9] .. string.format('%d', b)
if s > 0 then redis.call('HINCRBY', key, 's', ARGV[2]) end
if f > 0 then redis.call('HINCRBY', key, 'f', ARGV[3]) end
redis.call('PEXPIRE', key, string.format('%d', window_ms + bucket_ms))
if f == 0 then return 0 end
local total_s, total_f = 0, 0
for i = 0, buckets - 1 do
  local v = redis.call('HMGET', ARGV[9] .. string.format('%d', b - i), 's', 'f')
  total_s = total_s + (tonumber(v[1]) or 0)
  total_f = total_f + (tonumber(v[2]) or 0)
end
local counted = total_s + total_f
if counted >= tonumber(ARGV[5]) and total_f >= tonumber(ARGV[6]) * counted then
  local untl = now + tonumber(ARGV[7])
  redis.call('HSET', KEYS[1], 'until', string.format('%d', untl))
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', untl + window_ms))
  for i = 0, buckets - 1 do
    redis.call('DEL', ARGV[9] .. string.format('%d', b - i))
  end
  redis.call('PUBLISH', ARGV[10], 'open ' .. ARGV[11] .. ' ' .. string.format('%d', untl) .. ' 0 ' .. ARGV[12])
  return untl
end
return 0
"#;
