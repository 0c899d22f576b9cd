#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;
use redis::{aio::ConnectionManager, AsyncCommands, Script};
use resident_auth::{
    ports::{
        CabinetSnapshot, Count, CounterKey, CounterStore, Expected, Session, SessionStore,
        SnapshotRead, StoreError, TokenHash, Version, Versioned,
    },
    AccountNumber, CabinetId, Email, SessionId, Timestamp,
};

/// How long a record outlives its own expiry in Redis, so that the service (which judges
/// expiry by its own clock) still reads it as expired rather than absent, and a purge
/// still finds it.
const GRACE: Duration = Duration::from_secs(15 * 60);

/// How long a cabinet's snapshot generation outlives the last write or offer that set
/// it: far longer than a session check holds a generation before offering a snapshot.
const GENERATION_KEPT: Duration = Duration::from_secs(15 * 60);

/// How many keys one `SCAN` step asks for.
const SCAN_COUNT: usize = 500;

/// Why [`RedisStore::connect`] failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to Redis: {0}")]
pub struct ConnectError(#[source] redis::RedisError);

/// Sessions ([`SessionStore`]) and counters ([`CounterStore`]) in Redis, for a
/// [`resident_auth::ports::SplitStore`] whose records (links, cabinets, the mail queue)
/// stay in PostgreSQL.
///
/// Every write is one Lua script on one key — a compare-and-swap on a session, a count in
/// a fixed window — so it is atomic on one Redis and on a Redis Cluster alike; records
/// expire by Redis TTLs (their own expiry plus a grace of 15 minutes), so purges find
/// little. A cabinet's index of sessions (`{prefix}:{cabinet:…}:sessions`) is kept beside
/// them and read back against the sessions themselves. Cheap to clone: clones share one
/// multiplexed connection that reconnects by itself.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    prefix: Arc<str>,
    /// The cabinet of each session this process has read (a session never changes
    /// cabinet), so that a session check reads the session and its cabinet's snapshot in
    /// one round trip.
    cabinets_of_sessions: Arc<Mutex<HashMap<TokenHash, CabinetId>>>,
}

/// At most this many sessions' cabinets are remembered; a full memo starts again empty.
const MOST_REMEMBERED: usize = 100_000;

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://127.0.0.1:6379`, `rediss://…` for TLS if
    /// the `redis` crate has it) and keeps every key under `prefix` (e.g. `resident-auth`;
    /// instances of one portal share it, two portals on one Redis do not).
    ///
    /// # Errors
    /// [`ConnectError`] when the URL is malformed or Redis does not answer.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, ConnectError> {
        let client = redis::Client::open(url).map_err(ConnectError)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(ConnectError)?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
            cabinets_of_sessions: Arc::default(),
        })
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn session_key(&self, token: &TokenHash) -> String {
        format!("{}:session:{}", self.prefix, hex(token.as_bytes()))
    }

    fn cabinet_key(&self, cabinet: &CabinetId) -> String {
        // The hash tag keeps one cabinet's index in one slot of a cluster.
        format!(
            "{}:{{cabinet:{}}}:sessions",
            self.prefix,
            hex(cabinet.as_bytes())
        )
    }

    /// A cabinet's snapshot and generation (a hash), and the marker of a write of it in
    /// progress: both under the cabinet's hash tag, so one script reaches both on a cluster.
    fn snapshot_keys(&self, cabinet: &CabinetId) -> (String, String) {
        let tag = format!("{}:{{cabinet:{}}}", self.prefix, hex(cabinet.as_bytes()));
        (format!("{tag}:snapshot"), format!("{tag}:writing"))
    }

    fn remembered_cabinet(&self, token: &TokenHash) -> Option<CabinetId> {
        let memo = self
            .cabinets_of_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        memo.get(token).copied()
    }

    fn remember_cabinet(&self, token: &TokenHash, cabinet: Option<CabinetId>) {
        let mut memo = self
            .cabinets_of_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match cabinet {
            Some(cabinet) => {
                if memo.len() >= MOST_REMEMBERED {
                    memo.clear();
                }
                memo.insert(*token, cabinet);
            }
            None => {
                memo.remove(token);
            }
        }
    }

    /// Ends or begins a write of `cabinet`: a new generation, no snapshot, and the marker
    /// set for `pending` (or cleared for `None`).
    async fn frame_cabinet_write(
        &self,
        cabinet: &CabinetId,
        pending: Option<Duration>,
    ) -> Result<(), StoreError> {
        let (snapshot, writing) = self.snapshot_keys(cabinet);
        let _: i64 = FRAME_WRITE
            .key(snapshot)
            .key(writing)
            .arg(rand::random::<u64>().max(1))
            .arg(millis(GENERATION_KEPT))
            .arg(pending.map_or(0, millis))
            .invoke_async(&mut self.connection())
            .await
            .map_err(failure)?;
        Ok(())
    }

    /// A counter under its subject first, length-prefixed (`…:counter:20:a@example.org:
    /// login:cabinet`), so that one `SCAN MATCH` finds a subject's counters and nothing
    /// that merely ends like it.
    fn counter_key(&self, key: &CounterKey) -> String {
        let subject = key.subject();
        format!(
            "{}:counter:{}:{subject}:{}",
            self.prefix,
            subject.len(),
            key.family()
        )
    }

    /// The `SCAN` pattern of every counter about `subject`, and where its family starts.
    fn counters_of(&self, subject: &str) -> (String, usize) {
        let start = format!("{}:counter:{}:{subject}:", self.prefix, subject.len());
        (format!("{}*", glob_escape(&start)), start.len())
    }

    fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Every key matching `pattern` under the prefix, by `SCAN` (never `KEYS`).
    async fn scan(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut connection = self.connection();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut connection)
                .await
                .map_err(failure)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }

    /// Deletes the records under `keys` whose field `field` is at or before `now`; one
    /// script per key, so a record written meanwhile is kept.
    async fn purge(
        &self,
        keys: Vec<String>,
        field: &str,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut connection = self.connection();
        let mut purged = 0;
        for key in keys {
            let deleted: i64 = PURGE
                .key(&key)
                .arg(field)
                .arg(now.as_millis())
                .invoke_async(&mut connection)
                .await
                .map_err(failure)?;
            purged += u64::try_from(deleted).unwrap_or(0);
        }
        Ok(purged)
    }
}

/// A Redis failure as the store's: retryable when the connection or the server failed.
fn failure(error: redis::RedisError) -> StoreError {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
    {
        StoreError::unavailable(error)
    } else {
        StoreError::generic(error)
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

fn unhex<const N: usize>(text: &str) -> Result<[u8; N], StoreError> {
    let mut out = [0u8; N];
    if text.len() != N * 2 || !text.is_ascii() {
        return Err(corrupt("an identifier"));
    }
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = text
            .get(i * 2..i * 2 + 2)
            .ok_or_else(|| corrupt("an identifier"))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| corrupt("an identifier"))?;
    }
    Ok(out)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::generic(format!("unexpected value in Redis: {what}"))
}

/// When Redis may forget a record that dies at `expires`: never before the grace after
/// now, whatever clock the service runs on.
fn keep_until(expires: Timestamp) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let grace = i64::try_from(GRACE.as_millis()).unwrap_or(0);
    expires.as_millis().max(now).saturating_add(grace)
}

/// The compare-and-swap of one session: `KEYS[1]` the session; `ARGV[1]` `absent`, `any`
/// or `version`, `ARGV[2]` the version expected, `ARGV[3]` when Redis may forget it
/// (absolute ms, empty to delete), then the fields as name/value pairs. Returns 1 when it
/// wrote.
static SWAP_SESSION: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
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
static INCREMENT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
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
static OFFER_SNAPSHOT: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
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
static FRAME_WRITE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
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
static PURGE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
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

fn session_fields(session: &Session) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", hex(session.id.as_bytes())),
        ("cab", hex(session.cabinet.as_bytes())),
        ("cv", session.credential_version.to_string()),
        ("ca", session.created_at.as_millis().to_string()),
        ("lu", session.last_used.as_millis().to_string()),
        ("ea", session.expires_at.as_millis().to_string()),
    ];
    if let Some(account) = &session.active_account {
        fields.push(("acc", account.as_str().to_owned()));
    }
    if let Some(client) = &session.client {
        fields.push(("cl", client.clone()));
    }
    fields
}

fn session_from(
    fields: &HashMap<String, String>,
) -> Result<Option<Versioned<Session>>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let text = |name: &str| fields.get(name).ok_or_else(|| corrupt(name));
    let number =
        |name: &str| -> Result<i64, StoreError> { text(name)?.parse().map_err(|_| corrupt(name)) };
    let version: u64 = text("v")?.parse().map_err(|_| corrupt("v"))?;
    let session = Session {
        id: SessionId::from_bytes(unhex(text("id")?)?),
        cabinet: CabinetId::from_bytes(unhex(text("cab")?)?),
        credential_version: text("cv")?.parse().map_err(|_| corrupt("cv"))?,
        active_account: fields
            .get("acc")
            .map(|a| a.parse::<AccountNumber>().map_err(|_| corrupt("acc")))
            .transpose()?,
        created_at: Timestamp::from_millis(number("ca")?),
        last_used: Timestamp::from_millis(number("lu")?),
        expires_at: Timestamp::from_millis(number("ea")?),
        client: fields.get("cl").cloned(),
    };
    Ok(Some(Versioned {
        value: session,
        version: Version::new(version),
    }))
}

fn snapshot_fields(snapshot: &CabinetSnapshot) -> Vec<(&'static str, String)> {
    let accounts: Vec<&str> = snapshot
        .accounts
        .iter()
        .map(AccountNumber::as_str)
        .collect();
    vec![
        ("em", snapshot.email.to_string()),
        ("cv", snapshot.credential_version.to_string()),
        ("acc", accounts.join(",")),
        (
            "pe",
            snapshot
                .password_expires_at
                .map_or_else(String::new, |at| at.as_millis().to_string()),
        ),
    ]
}

/// The fields of a cabinet's snapshot hash as read: its generation, then the snapshot.
const SNAPSHOT_FIELDS: [&str; 5] = ["g", "em", "cv", "acc", "pe"];

/// A snapshot from [`SNAPSHOT_FIELDS`] as `HMGET` answered them.
fn snapshot_from(
    cabinet: &CabinetId,
    fields: [Option<String>; 5],
) -> Result<SnapshotRead, StoreError> {
    let [generation, email, credential_version, accounts, expires] = fields;
    let generation = generation
        .map(|g| g.parse::<u64>().map_err(|_| corrupt("g")))
        .transpose()?
        .unwrap_or(0);
    let (Some(email), Some(credential_version), Some(accounts), Some(expires)) =
        (email, credential_version, accounts, expires)
    else {
        return Ok(SnapshotRead::Missing { generation });
    };
    Ok(SnapshotRead::Found(CabinetSnapshot {
        id: *cabinet,
        email: email.parse::<Email>().map_err(|_| corrupt("em"))?,
        credential_version: credential_version.parse().map_err(|_| corrupt("cv"))?,
        accounts: accounts
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| a.parse::<AccountNumber>().map_err(|_| corrupt("acc")))
            .collect::<Result<_, _>>()?,
        password_expires_at: match expires.as_str() {
            "" => None,
            at => Some(Timestamp::from_millis(
                at.parse().map_err(|_| corrupt("pe"))?,
            )),
        },
    }))
}

/// Sessions by the hash of their token; beside each cabinet's index, the snapshot of the
/// cabinet a session check needs, kept for as long as
/// [`resident_auth::ports::SplitStore`] asks and dropped by every write of the cabinet.
#[async_trait]
impl SessionStore for RedisStore {
    #[tracing::instrument(name = "redis.session", skip_all, err(level = "debug", Display))]
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        let fields: HashMap<String, String> = self
            .connection()
            .hgetall(self.session_key(token))
            .await
            .map_err(failure)?;
        session_from(&fields)
    }

    #[tracing::instrument(name = "redis.swap_session", skip_all, err(level = "debug", Display))]
    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError> {
        let mut connection = self.connection();
        let token_hex = hex(token.as_bytes());
        // The cabinet's index learns of a session before it exists, and forgets it only
        // after it is gone: a listing checks each member against the session itself.
        if let Some(session) = next {
            let index = self.cabinet_key(&session.cabinet);
            let until = keep_until(session.expires_at);
            let _: () = redis::pipe()
                .sadd(&index, &token_hex)
                .ignore()
                .cmd("PEXPIREAT")
                .arg(&index)
                .arg(until)
                .arg("GT")
                .ignore()
                .cmd("PEXPIREAT")
                .arg(&index)
                .arg(until)
                .arg("NX")
                .ignore()
                .query_async(&mut connection)
                .await
                .map_err(failure)?;
        }
        let previous = match next {
            None => self.session(token).await?,
            Some(_) => None,
        };
        let mut invocation = SWAP_SESSION.key(self.session_key(token));
        match expected {
            Expected::Absent => invocation.arg("absent").arg(""),
            Expected::Any => invocation.arg("any").arg(""),
            Expected::Version(version) => invocation.arg("version").arg(version.get()),
        };
        match next {
            Some(session) => {
                invocation.arg(keep_until(session.expires_at));
                for (name, value) in session_fields(session) {
                    invocation.arg(name).arg(value);
                }
            }
            None => {
                invocation.arg("");
            }
        }
        let wrote: i64 = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(failure)?;
        if wrote == 1 && next.is_none() {
            if let Some(previous) = previous {
                let _: i64 = connection
                    .srem(self.cabinet_key(&previous.value.cabinet), &token_hex)
                    .await
                    .map_err(failure)?;
            }
        }
        Ok(wrote == 1)
    }

    #[tracing::instrument(
        name = "redis.cabinet_sessions",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        let mut connection = self.connection();
        let index = self.cabinet_key(cabinet);
        let members: Vec<String> = connection.smembers(&index).await.map_err(failure)?;
        let mut sessions = Vec::with_capacity(members.len());
        let mut stale = Vec::new();
        for member in members {
            let token = TokenHash::from_bytes(unhex(&member)?);
            match self.session(&token).await? {
                Some(session) if session.value.cabinet == *cabinet => {
                    sessions.push((token, session));
                }
                _ => stale.push(member),
            }
        }
        if !stale.is_empty() {
            let _: i64 = connection.srem(&index, stale).await.map_err(failure)?;
        }
        Ok(sessions)
    }

    #[tracing::instrument(
        name = "redis.cabinet_snapshot",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn cabinet_snapshot(&self, cabinet: &CabinetId) -> Result<SnapshotRead, StoreError> {
        let (snapshot, _) = self.snapshot_keys(cabinet);
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(snapshot)
            .arg(&SNAPSHOT_FIELDS)
            .query_async(&mut self.connection())
            .await
            .map_err(failure)?;
        let fields: [Option<String>; 5] = fields.try_into().map_err(|_| corrupt("a snapshot"))?;
        snapshot_from(cabinet, fields)
    }

    /// One round trip (the session and its cabinet's snapshot, pipelined) once this
    /// process knows the session's cabinet; two the first time.
    #[tracing::instrument(
        name = "redis.session_and_snapshot",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn session_and_snapshot(
        &self,
        token: &TokenHash,
    ) -> Result<Option<(Versioned<Session>, SnapshotRead)>, StoreError> {
        let Some(cabinet) = self.remembered_cabinet(token) else {
            let Some(session) = self.session(token).await? else {
                return Ok(None);
            };
            self.remember_cabinet(token, Some(session.value.cabinet));
            let snapshot = self.cabinet_snapshot(&session.value.cabinet).await?;
            return Ok(Some((session, snapshot)));
        };
        let (snapshot_key, _) = self.snapshot_keys(&cabinet);
        let (fields, snapshot): (HashMap<String, String>, Vec<Option<String>>) = redis::pipe()
            .hgetall(self.session_key(token))
            .cmd("HMGET")
            .arg(snapshot_key)
            .arg(&SNAPSHOT_FIELDS)
            .query_async(&mut self.connection())
            .await
            .map_err(failure)?;
        let Some(session) = session_from(&fields)? else {
            self.remember_cabinet(token, None);
            return Ok(None);
        };
        if session.value.cabinet != cabinet {
            // Never expected (a token belongs to one session): read it the long way.
            self.remember_cabinet(token, Some(session.value.cabinet));
            let snapshot = self.cabinet_snapshot(&session.value.cabinet).await?;
            return Ok(Some((session, snapshot)));
        }
        let snapshot = snapshot_from(
            &cabinet,
            snapshot.try_into().map_err(|_| corrupt("a snapshot"))?,
        )?;
        Ok(Some((session, snapshot)))
    }

    #[tracing::instrument(
        name = "redis.offer_cabinet_snapshot",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn offer_cabinet_snapshot(
        &self,
        generation: u64,
        snapshot: &CabinetSnapshot,
        keep: Duration,
    ) -> Result<bool, StoreError> {
        let (key, writing) = self.snapshot_keys(&snapshot.id);
        let mut invocation = OFFER_SNAPSHOT.key(key);
        invocation.key(writing).arg(generation).arg(millis(keep));
        for (name, value) in snapshot_fields(snapshot) {
            invocation.arg(name).arg(value);
        }
        let kept: i64 = invocation
            .invoke_async(&mut self.connection())
            .await
            .map_err(failure)?;
        Ok(kept == 1)
    }

    #[tracing::instrument(
        name = "redis.begin_cabinet_write",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn begin_cabinet_write(
        &self,
        cabinet: &CabinetId,
        pending: Duration,
    ) -> Result<(), StoreError> {
        self.frame_cabinet_write(cabinet, Some(pending.max(Duration::from_millis(1))))
            .await
    }

    #[tracing::instrument(
        name = "redis.end_cabinet_write",
        skip_all,
        err(level = "debug", Display)
    )]
    async fn end_cabinet_write(&self, cabinet: &CabinetId) -> Result<(), StoreError> {
        self.frame_cabinet_write(cabinet, None).await
    }

    #[tracing::instrument(name = "redis.purge_sessions", skip_all, err(level = "debug", Display))]
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        // Redis forgets sessions by their TTL; this finds those whose grace is not over.
        let keys = self
            .scan(&format!("{}:session:*", glob_escape(&self.prefix)))
            .await?;
        self.purge(keys, "ea", now).await
    }
}

#[async_trait]
impl CounterStore for RedisStore {
    #[tracing::instrument(name = "redis.increment", skip_all, err(level = "debug", Display))]
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let until = keep_until(Timestamp::from_millis(
            now.as_millis().saturating_add(window),
        ));
        let (count, ends): (i64, i64) = INCREMENT
            .key(self.counter_key(key))
            .arg(now.as_millis())
            .arg(window)
            .arg(until)
            .invoke_async(&mut self.connection())
            .await
            .map_err(failure)?;
        Ok(Count {
            count: u32::try_from(count).unwrap_or(u32::MAX),
            window_ends: Timestamp::from_millis(ends),
        })
    }

    #[tracing::instrument(name = "redis.reset", skip_all, err(level = "debug", Display))]
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        let _: i64 = self
            .connection()
            .del(self.counter_key(key))
            .await
            .map_err(failure)?;
        Ok(())
    }

    #[tracing::instrument(name = "redis.purge_counters", skip_all, err(level = "debug", Display))]
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let keys = self
            .scan(&format!("{}:counter:*", glob_escape(&self.prefix)))
            .await?;
        self.purge(keys, "e", now).await
    }

    #[tracing::instrument(name = "redis.counters_about", skip_all, err(level = "debug", Display))]
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        let mut found = Vec::new();
        for subject in subjects {
            let (pattern, family_at) = self.counters_of(subject);
            for stored in self.scan(&pattern).await? {
                let Some(family) = stored.get(family_at..) else {
                    continue;
                };
                let Some(key) =
                    CounterKey::from_stored(format!("{family}:{subject}"), subject.clone())
                else {
                    continue;
                };
                let fields: HashMap<String, i64> =
                    self.connection().hgetall(&stored).await.map_err(failure)?;
                if let (Some(count), Some(ends)) = (fields.get("c"), fields.get("e")) {
                    found.push((
                        key,
                        Count {
                            count: u32::try_from(*count).unwrap_or(u32::MAX),
                            window_ends: Timestamp::from_millis(*ends),
                        },
                    ));
                }
            }
        }
        Ok(found)
    }
}

/// `text` matching itself only in a `SCAN MATCH` glob.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::{glob_escape, hex, unhex};

    #[test]
    fn globs_match_only_themselves() {
        assert_eq!(
            glob_escape("a*b?[c]^-d\\e.f"),
            "a\\*b\\?\\[c\\]\\^\\-d\\\\e.f"
        );
        assert_eq!(glob_escape("resident@example.org"), "resident@example.org");
    }

    #[test]
    fn identifiers_round_trip_through_hex() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff, 0x10, 0xab, 0xcd];
        assert_eq!(unhex::<8>(&hex(&bytes)).unwrap(), bytes);
        assert!(unhex::<8>("zz").is_err());
        assert!(unhex::<1>("zz").is_err());
        assert!(unhex::<1>("é").is_err());
    }
}
