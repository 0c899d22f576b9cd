//! Opening the storage the configuration names: PostgreSQL (migrated, its directory
//! imported), the SQLite file, or memory; and Redis beside it.

use super::*;

/// `REDIS_URL`: sessions and throttles in Redis.
pub(super) async fn connect_redis(
    config: &PortalConfig,
    banner: &mut Vec<String>,
) -> Result<Option<resident_auth_redis::RedisStore>, ConfigError> {
    let Some((url, prefix)) = &config.redis else {
        return Ok(None);
    };
    let redis = resident_auth_redis::RedisStore::connect(url, prefix)
        .await
        .map_err(|e| ConfigError(format!("REDIS_URL: {}", chain(&e))))?;
    banner.push(format!(
        "Sessions and throttles: Redis, keys under {prefix}: (lost on a Redis restart: \
         residents log in again, throttles start a new window)"
    ));
    Ok(Some(redis))
}

/// What the storage the configuration names opened: the store, the directory, the audit
/// and events sinks, the letters waiting in a queue that outlives the process (checked
/// against the keys before any is delivered), and what to close at the stop.
pub(super) struct Opened {
    pub(super) store: Arc<dyn Store>,
    pub(super) directory: Arc<dyn AccountDirectory>,
    pub(super) audit: Arc<dyn Audit>,
    pub(super) events: Arc<dyn Events>,
    pub(super) waiting: Vec<Versioned<QueuedLetter>>,
    pub(super) stop: Stop,
}

pub(super) async fn open_storage(
    config: &PortalConfig,
    redis: Option<resident_auth_redis::RedisStore>,
    banner: &mut Vec<String>,
) -> Result<Opened, ConfigError> {
    match &config.storage {
        Storage::Postgres(url) => open_postgres(config, url, redis, banner).await,
        Storage::Sqlite(path) => open_sqlite(config, path, redis, banner).await,
        Storage::Memory => {
            let (csv, source) = read_directory_csv(config)?;
            let directory = MemoryDirectory::from_csv(&csv)
                .map_err(|e| ConfigError(format!("{source}: {e}")))?;
            banner.push(format!(
                "Storage: in memory (lost when the process stops); directory: {source} ({} accounts)",
                directory.len()
            ));
            Ok(Opened {
                store: with_redis(MemoryStore::new(), redis),
                directory: Arc::new(directory),
                audit: Arc::new(TracingAudit),
                events: Arc::new(TracingEvents),
                waiting: Vec::new(),
                stop: Stop::default(),
            })
        }
    }
}

async fn open_postgres(
    config: &PortalConfig,
    url: &str,
    redis: Option<resident_auth_redis::RedisStore>,
    banner: &mut Vec<String>,
) -> Result<Opened, ConfigError> {
    let pool = resident_auth_postgres::connect(url, &resident_auth_postgres::PoolConfig::default())
        .await
        .map_err(|e| ConfigError(format!("DATABASE_URL: cannot connect: {e}")))?;
    resident_auth_postgres::migrate(&pool)
        .await
        .map_err(|e| ConfigError(format!("DATABASE_URL: cannot migrate: {e}")))?;
    let empty: bool = directory_is_empty(&pool).await?;
    if config.registry_csv.is_some() || empty {
        let (csv, source) = read_directory_csv(config)?;
        let report = resident_auth_postgres::import_directory(&pool, &csv)
            .await
            .map_err(|e| ConfigError(format!("directory import from {source}: {e}")))?;
        banner.push(format!(
            "Directory: {source} imported into PostgreSQL ({} new, {} updated)",
            report.inserted, report.updated
        ));
    }
    banner.push("Storage: PostgreSQL".to_owned());
    let waiting = resident_auth_postgres::PgStore::new(pool.clone())
        .letters_waiting()
        .await
        .map_err(|e| ConfigError(format!("DATABASE_URL: the mail queue: {}", chain(&e))))?;
    Ok(Opened {
        store: with_redis(resident_auth_postgres::PgStore::new(pool.clone()), redis),
        audit: Arc::new(resident_auth_postgres::PgAudit::new(pool.clone())),
        events: Arc::new(resident_auth_postgres::PgEvents::new(pool.clone())),
        directory: Arc::new(resident_auth_postgres::PgDirectory::new(pool)),
        waiting,
        stop: Stop::default(),
    })
}

async fn open_sqlite(
    config: &PortalConfig,
    path: &Path,
    redis: Option<resident_auth_redis::RedisStore>,
    banner: &mut Vec<String>,
) -> Result<Opened, ConfigError> {
    let in_file = |what: String| ConfigError(format!("SQLITE_PATH {}: {what}", path.display()));
    let pool = resident_auth_sqlite::open(path, &resident_auth_sqlite::SqliteOptions::default())
        .await
        .map_err(|e| in_file(chain(&e)))?;
    let empty = resident_auth_sqlite::directory_is_empty(&pool)
        .await
        .map_err(|e| in_file(e.to_string()))?;
    if config.registry_csv.is_some() || empty {
        let (csv, source) = read_directory_csv(config)?;
        let report = resident_auth_sqlite::import_directory(&pool, &csv)
            .await
            .map_err(|e| ConfigError(format!("directory import from {source}: {}", chain(&e))))?;
        banner.push(format!(
            "Directory: {source} imported into the database ({} new, {} updated)",
            report.inserted, report.updated
        ));
    }
    banner.push(format!(
        "Storage: SQLite file {} (residents are kept across restarts)",
        path.display()
    ));
    let waiting = resident_auth_sqlite::SqliteStore::new(pool.clone())
        .letters_waiting()
        .await
        .map_err(|e| in_file(format!("the mail queue: {}", chain(&e))))?;
    Ok(Opened {
        store: with_redis(resident_auth_sqlite::SqliteStore::new(pool.clone()), redis),
        audit: Arc::new(resident_auth_sqlite::SqliteAudit::new(pool.clone())),
        events: Arc::new(resident_auth_sqlite::SqliteEvents::new(pool.clone())),
        directory: Arc::new(resident_auth_sqlite::SqliteDirectory::new(pool.clone())),
        waiting,
        stop: Stop { sqlite: Some(pool) },
    })
}
