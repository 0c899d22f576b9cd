//! The Lua scripts that make each write one atomic step on one key (or on one cabinet's
//! hash-tagged keys, so that they share a Redis Cluster slot).

use std::sync::LazyLock;

use redis::Script;

/// The compare-and-swap of one session: `KEYS[1]` the session; `ARGV[1]` `absent`, `any`
/// or `version`, `ARGV[2]` the version expected, `ARGV[3]` when Redis may forget it
/// (absolute ms, empty to delete), then the fields as name/value pairs. Returns 1 when it
/// wrote.
pub(crate) static SWAP_SESSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == 'absent' and current then return 0 end
if ARGV[1] == 'version' and current ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('DEL', KEYS[1])
  return 1
end
local version = 1
if current then version = tonumber(current) + 1 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', version, unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
return 1
",
    )
});

/// One event counted: `KEYS[1]` the counter; `ARGV[1]` now, `ARGV[2]` the window (ms),
/// `ARGV[3]` when Redis may forget a new window (absolute ms). Returns `{count, ends}`.
pub(crate) static INCREMENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local ends = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
if redis.call('EXISTS', KEYS[1]) == 0 or ends <= now then
  ends = now + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'c', 1, 'e', ends)
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  return {1, ends}
end
return {redis.call('HINCRBY', KEYS[1], 'c', 1), ends}
",
    )
});

/// A snapshot offered: `KEYS[1]` the cabinet's snapshot hash, `KEYS[2]` its write marker;
/// `ARGV[1]` the generation the offer was read at (`0`: none), `ARGV[2]` how long to keep it
/// (ms), then the fields as name/value pairs. Kept only if no write is in progress and the
/// generation is unchanged. Returns 1 when kept.
pub(crate) static OFFER_SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
if (redis.call('HGET', KEYS[1], 'g') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// A write of a cabinet begins or ends: `KEYS[1]` its snapshot hash, `KEYS[2]` its write
/// marker; `ARGV[1]` the new generation, `ARGV[2]` how long it is kept (ms), `ARGV[3]` how
/// long the marker lasts (ms; `0` clears it). The snapshot goes either way.
pub(crate) static FRAME_WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[3] == '0' then
  redis.call('DEL', KEYS[2])
else
  redis.call('SET', KEYS[2], 1, 'PX', ARGV[3])
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'g', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Deletes `KEYS[1]` if its field `ARGV[1]` is at or before `ARGV[2]`. Returns 1 if it did.
pub(crate) static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local at = redis.call('HGET', KEYS[1], ARGV[1])
if at and tonumber(at) <= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
",
    )
});
