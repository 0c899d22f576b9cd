#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

mod codec;
mod counters;
mod scripts;

use async_trait::async_trait;
use codec::{
    corrupt, failure, glob_escape, hex, keep_until, millis, session_fields, session_from,
    snapshot_fields, snapshot_from, unhex, SNAPSHOT_FIELDS,
};
use redis::{aio::ConnectionManager, AsyncCommands};
use resident_auth::{
    ports::{
        CabinetSnapshot, CounterKey, Expected, Session, SessionStore, SnapshotCache, SnapshotRead,
        StoreError, TokenHash, Versioned,
    },
    CabinetId, Timestamp,
};
use scripts::{FRAME_WRITE, OFFER_SNAPSHOT, PURGE, SWAP_SESSION};

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

/// Sessions ([`SessionStore`]) and counters ([`CounterStore`](resident_auth::ports::CounterStore)) in Redis, for a
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
}

/// A read served from this process's cache while Redis has not told it the keys changed
/// (server-assisted client-side caching: `CLIENT TRACKING` over RESP3).
fn cached() -> redis::CommandCacheConfig {
    redis::CommandCacheConfig::new().set_enable_cache(true)
}

/// The keys (sessions, snapshots) this process keeps in its cache of what it read, least
/// recently used dropped first.
const CACHED_KEYS: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(50_000) {
    Some(keys) => keys,
    None => std::num::NonZeroUsize::MIN,
};

/// The longest a key read stays in this process's cache, changed or not. Redis tells the
/// process of every change to a key it read, within the time a message takes; this bounds
/// what a notice lost with a connection that died without a sign could cost.
const CACHED_FOR: Duration = Duration::from_secs(5);

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
        use redis::IntoConnectionInfo as _;
        // RESP3: the server tells this client which keys it read have changed since, so
        // sessions and snapshots can be served from its cache until then.
        let info = url.into_connection_info().map_err(ConnectError)?;
        let settings = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(settings)).map_err(ConnectError)?;
        let cache = redis::caching::CacheConfig::new()
            .set_mode(redis::caching::CacheMode::OptIn)
            .set_size(CACHED_KEYS)
            .set_default_client_ttl(CACHED_FOR);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_cache_config(cache);
        let connection = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(ConnectError)?;
        Ok(Self {
            connection,
            prefix: prefix.into(),
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
        self.settle().await
    }

    /// Returns once Redis's notices of what this process just wrote have arrived, so that
    /// its next read of those keys never comes from its cache: Redis sends them after the
    /// write's answer, and before the answer to a `PING` sent after it.
    async fn settle(&self) -> Result<(), StoreError> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(failure)
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
        self.settle().await?;
        Ok(purged)
    }
}

/// Sessions by the hash of their token; beside each cabinet's index, the snapshot of the
/// cabinet a session check needs, kept for as long as
/// [`resident_auth::ports::SplitStore`] asks and dropped by every write of the cabinet.
#[async_trait]
impl SessionStore for RedisStore {
    #[tracing::instrument(name = "redis.session", skip_all, err(level = "debug", Display))]
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        // From this process's cache while Redis has not said the session changed; this
        // process's own writes are settled before they return (`settle`).
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.session_key(token))
            .set_cache_config(cached())
            .query_async(&mut self.connection())
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
        self.settle().await?;
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

    #[tracing::instrument(name = "redis.purge_sessions", skip_all, err(level = "debug", Display))]
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        // Redis forgets sessions by their TTL; this finds those whose grace is not over.
        let keys = self
            .scan(&format!("{}:session:*", glob_escape(&self.prefix)))
            .await?;
        self.purge(keys, "ea", now).await
    }
}

/// The snapshots of cabinets a session check needs, beside the sessions (a
/// [`resident_auth::ports::Cached`] store's cache): read from this process's cache while
/// Redis has not said they changed, each dropped by every write of its cabinet.
#[async_trait]
impl SnapshotCache for RedisStore {
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
            .set_cache_config(cached())
            .query_async(&mut self.connection())
            .await
            .map_err(failure)?;
        let fields: [Option<String>; 5] = fields.try_into().map_err(|_| corrupt("a snapshot"))?;
        snapshot_from(cabinet, fields)
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
        self.settle().await?;
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
}
