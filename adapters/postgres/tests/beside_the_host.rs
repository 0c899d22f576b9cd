//! The library's tables beside a host's own: a database that already has the host's sqlx
//! migrations and its own `sessions` and `cabinets` tables. Host and library migrate in
//! either order, twice, from several instances at once, and both keep working.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{empty_database, pool};
use resident_auth::{
    ports::CabinetStore,
    ports::{CabinetKey, CabinetSwap, Expected},
    CabinetId,
};
use resident_auth_postgres::{migrate, migrate_schema, PgPool, PgStore, Schema};

/// The host's own migrations, run by sqlx's migrator into `_sqlx_migrations`.
async fn host_migrate(pool: &PgPool) {
    let dir = std::env::temp_dir().join(format!("host-migrations-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0001_host.sql"),
        "CREATE TABLE sessions (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL);
         CREATE TABLE cabinets (id BIGSERIAL PRIMARY KEY, owner TEXT NOT NULL);",
    )
    .unwrap();
    let migrator = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
    migrator.run(pool).await.unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

/// The host's tables work and hold what the host put there.
async fn host_works(pool: &PgPool, round: i64) {
    sqlx::query("INSERT INTO sessions (note) VALUES ('host')")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO cabinets (owner) VALUES ('host')")
        .execute(pool)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM public.sessions")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(rows, round, "the host's own sessions table is the host's");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(
        applied, 1,
        "the host's ledger holds only the host's migration"
    );
}

/// The library's store works in `schema`.
async fn library_works(pool: &PgPool, schema: &Schema) {
    let store = PgStore::with_schema(pool.clone(), schema.clone());
    let cabinet = resident_auth::ports::Cabinet {
        id: CabinetId::generate(),
        email: format!("r{}@example.org", rand::random::<u32>())
            .parse()
            .unwrap(),
        password_hash: resident_auth::ports::HashedPassword::from_phc(
            "$argon2id$v=19$x".to_owned(),
        ),
        credential_version: 1,
        accounts: vec![],
        password_expires_at: None,
    };
    assert_eq!(
        store
            .swap_cabinet(&cabinet.id, Expected::Absent, Some(&cabinet), None)
            .await
            .unwrap(),
        CabinetSwap::Written
    );
    assert!(store
        .cabinet(CabinetKey::Id(&cabinet.id))
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn host_first_then_library_twice_each() {
    let url = empty_database().await;
    let pool = pool(&url, 4).await;
    let schema = Schema::default();
    host_migrate(&pool).await;
    migrate(&pool).await.unwrap();
    host_migrate(&pool).await;
    migrate(&pool).await.unwrap();
    host_works(&pool, 1).await;
    library_works(&pool, &schema).await;
}

#[tokio::test]
async fn library_first_then_host_twice_each_in_a_schema_of_the_hosts_choosing() {
    let url = empty_database().await;
    let pool = pool(&url, 4).await;
    let schema = Schema::new("billing_auth").unwrap();
    migrate_schema(&pool, &schema).await.unwrap();
    host_migrate(&pool).await;
    migrate_schema(&pool, &schema).await.unwrap();
    host_migrate(&pool).await;
    host_works(&pool, 1).await;
    library_works(&pool, &schema).await;
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'resident_auth'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables, 0,
        "nothing in the default schema when another was chosen"
    );
}

#[tokio::test]
async fn eight_instances_migrating_at_once_apply_each_migration_once() {
    let url = empty_database().await;
    let pools: Vec<PgPool> = futures::future::join_all((0..8).map(|_| pool(&url, 2))).await;
    let runs = futures::future::join_all(pools.iter().map(|pool| async move {
        tokio::time::timeout(Duration::from_secs(30), migrate(pool)).await
    }))
    .await;
    for run in runs {
        run.expect("no instance waits forever").unwrap();
    }
    let ledger: i64 = sqlx::query_scalar("SELECT count(*) FROM resident_auth.migrations")
        .fetch_one(&pools[0])
        .await
        .unwrap();
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|entry| {
            entry
                .as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
        })
        .count();
    assert_eq!(
        usize::try_from(ledger).unwrap(),
        shipped,
        "each shipped migration once"
    );
    library_works(&pools[0], &Schema::default()).await;
}

#[tokio::test]
async fn a_changed_or_unknown_migration_in_the_ledger_is_refused() {
    use resident_auth_postgres::MigrateError;
    let url = empty_database().await;
    let pool = pool(&url, 2).await;
    migrate(&pool).await.unwrap();
    sqlx::query("UPDATE resident_auth.migrations SET checksum = '\\x00' WHERE version = 1")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        migrate(&pool).await,
        Err(MigrateError::Changed { version: 1 })
    ));
    sqlx::query("DELETE FROM resident_auth.migrations")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO resident_auth.migrations (version, description, checksum) VALUES (99, 'later', '\\x00')",
    )
    .execute(&pool)
    .await
    .unwrap();
    assert!(matches!(
        migrate(&pool).await,
        Err(MigrateError::Newer { version: 99 })
    ));
}
