//! The SQLite adapter on its own file: permissions and journal mode, the migrations ledger,
//! residents and queued letters across a restart, concurrency of one process's tasks, the
//! directory import, and what the file holds at rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{path::Path, sync::Arc, time::Duration};

use resident_auth::{
    config::{Argon2Hasher, AuthConfig, HashParams, ManualClock, Ports},
    journeys::RegistrationForm,
    letters::{LetterKind, Links},
    mail::{MailQueueKey, MailQueueKeys},
    memory::{link_token, mailed_password, RecordingMailer},
    ports::{CounterKey, CounterStore, Expected, Link, LinkPurpose, LinkStore, Token},
    secrecy::ExposeSecret,
    AuthService, Locale, RequestContext, Timestamp,
};
use resident_auth_sqlite::{
    import_directory, migrate, open, ImportError, MigrateError, SqliteDirectory, SqliteOptions,
    SqliteStore,
};

const DIRECTORY: &str = "account_number,surnames,address,premises\n\
7800000000001,Иванов,\"г. Санкт-Петербург, ул. Садовая, д. 1, кв. 12\",12\n\
7800000000002,Иванов;Петрова,\"г. Санкт-Петербург, ул. Садовая, д. 1, м/м 123/456П\",123/456П\n";
const RESIDENT: &str = "resident@example.org";

fn start() -> Timestamp {
    Timestamp::from_millis(1_767_225_600_000)
}

fn ctx() -> RequestContext {
    RequestContext::new(Locale::Ru)
}

/// A service on the file at `path`, sealing letters with `key`; letters are sent only by
/// [`AuthService::deliver_due`] unless `in_request`.
async fn service_on(
    path: &Path,
    key: &[u8; 32],
    mailer: &RecordingMailer,
    in_request: bool,
) -> (AuthService, resident_auth_sqlite::SqlitePool) {
    let pool = open(path, &SqliteOptions::default()).await.unwrap();
    let mut config = AuthConfig::new(Links::new("https://portal.example.org"));
    config.delivery.in_request = in_request;
    config.mail_queue_keys = MailQueueKeys::new(MailQueueKey::from_bytes(key).unwrap());
    let service = AuthService::new(
        Ports::new(
            Arc::new(SqliteStore::new(pool.clone())),
            Arc::new(SqliteDirectory::new(pool.clone())),
            Arc::new(mailer.clone()),
            Arc::new(Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 2).unwrap()),
            Arc::new(ManualClock::new(start())),
        ),
        config,
    );
    (service, pool)
}

fn random_key() -> [u8; 32] {
    rand::random()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_new_file_is_private_in_wal_mode_and_migrates_once() {
    let path = common::new_path();
    let pool = open(&path, &SqliteOptions::default()).await.unwrap();
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    import_directory(&pool, DIRECTORY).await.unwrap();
    #[cfg(unix)]
    for file in [path.clone(), path.with_extension("db-wal")] {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    // Again, and from a second pool on the same file: nothing is applied twice.
    migrate(&pool).await.unwrap();
    let again = open(&path, &SqliteOptions::default()).await.unwrap();
    let ledger: Vec<i64> = sqlx::query_scalar("SELECT version FROM resident_auth_migrations")
        .fetch_all(&again)
        .await
        .unwrap();
    assert_eq!(ledger, [1, 2, 3]);
    // A migration applied with other contents, or one from a newer build, is refused.
    sqlx::query("UPDATE resident_auth_migrations SET checksum = x'00' WHERE version = 1")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        migrate(&pool).await,
        Err(MigrateError::Changed { version: 1 })
    ));
    sqlx::query("DELETE FROM resident_auth_migrations")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO resident_auth_migrations (version, description, checksum) VALUES (99, 'future', x'00')")
        .execute(&pool)
        .await
        .unwrap();
    assert!(matches!(
        migrate(&pool).await,
        Err(MigrateError::Newer { version: 99 })
    ));
}

/// A file made by the first release (migration 1 only) keeps its pending links through
/// the rebuild of the links table that migration 2 makes, and then takes email-change links.
#[tokio::test]
async fn a_first_release_file_keeps_its_links_through_the_email_change_migration() {
    let path = common::new_path();
    let pool = open(&path, &SqliteOptions::default()).await.unwrap();
    // Back to what the first release left: its tables and a ledger of one migration.
    sqlx::raw_sql(
        "DROP TABLE resident_auth_links; DELETE FROM resident_auth_migrations WHERE version > 1;",
    )
    .execute(&pool)
    .await
    .unwrap();
    let first = include_str!("../migrations/0001_tables.sql");
    let links_table = first
        .split_once("CREATE TABLE resident_auth_links")
        .and_then(|(_, rest)| rest.split_once("CREATE TABLE resident_auth_sessions"))
        .map(|(table, _)| format!("CREATE TABLE resident_auth_links{table}"))
        .unwrap();
    sqlx::raw_sql(&links_table).execute(&pool).await.unwrap();
    let store = SqliteStore::new(pool.clone());
    let now = start();
    let kept = Token::generate().hash();
    let link = Link {
        purpose: LinkPurpose::Recovery,
        email: RESIDENT.parse().unwrap(),
        account_number: None,
        cabinet: None,
        credential_version: Some(1),
        expires_at: now.plus(Duration::from_secs(3600)),
        issuing_until: None,
    };
    assert!(store
        .swap_link(&kept, Expected::Absent, Some((&kept, &link)), None)
        .await
        .unwrap());
    let change = Link {
        purpose: LinkPurpose::EmailChange,
        ..link.clone()
    };
    let refused = Token::generate().hash();
    assert!(
        store
            .swap_link(&refused, Expected::Absent, Some((&refused, &change)), None)
            .await
            .is_err(),
        "the first release's table refuses the new purpose"
    );
    migrate(&pool).await.unwrap();
    assert_eq!(store.link(&kept).await.unwrap().unwrap().value, link);
    let added = Token::generate().hash();
    assert!(store
        .swap_link(&added, Expected::Absent, Some((&added, &change)), None)
        .await
        .unwrap());
    assert_eq!(
        store.link(&added).await.unwrap().unwrap().value.purpose,
        LinkPurpose::EmailChange
    );
    let indexes: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'resident_auth_links' AND sql IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(indexes, 4);
}

/// Counters written before migration 3 get the subject their key was written with, so the
/// operators' lookups by subject still find them
/// (`resident_auth::testing::counters_from_before_subjects_are_found`); and a key must end
/// with its subject.
#[tokio::test]
async fn counters_from_before_subjects_keep_theirs_through_the_migration() {
    use resident_auth::testing::{
        counters_from_before_subjects_are_found, COUNTERS_BEFORE_SUBJECTS,
    };
    let path = common::new_path();
    let pool = open(&path, &SqliteOptions::default()).await.unwrap();
    let first = include_str!("../migrations/0001_tables.sql");
    let counters_table = first
        .split_once("CREATE TABLE resident_auth_counters")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(table, _)| format!("CREATE TABLE resident_auth_counters{table};"))
        .unwrap();
    sqlx::raw_sql(&format!(
        "DROP TABLE resident_auth_counters; DELETE FROM resident_auth_migrations WHERE version = 3;
         {counters_table}"
    ))
    .execute(&pool)
    .await
    .unwrap();
    for (key, count) in COUNTERS_BEFORE_SUBJECTS {
        sqlx::query("INSERT INTO resident_auth_counters (key, count, window_ends) VALUES (?1, ?2, 9000000000000)")
            .bind(key)
            .bind(count)
            .execute(&pool)
            .await
            .unwrap();
    }
    migrate(&pool).await.unwrap();
    counters_from_before_subjects_are_found(&SqliteStore::new(pool.clone())).await;
    let refused = sqlx::query(
        "INSERT INTO resident_auth_counters (key, subject, count, window_ends)
         VALUES ('login:cabinet:a@example.org', 'b@example.org', 1, 0)",
    )
    .execute(&pool)
    .await;
    assert!(refused.is_err(), "a key must end with its subject");
}

#[tokio::test]
async fn residents_and_queued_letters_outlive_a_restart() {
    let path = common::new_path();
    let key = random_key();
    let mailer = RecordingMailer::new();
    let email = RESIDENT.parse().unwrap();
    {
        let (service, pool) = service_on(&path, &key, &mailer, true).await;
        import_directory(&pool, DIRECTORY).await.unwrap();
        let form = RegistrationForm {
            surname: "Иванов".into(),
            account_number: "7800000000001".into(),
            email: RESIDENT.into(),
        };
        service.register(&form, &ctx()).await.unwrap();
        let confirmation =
            link_token(&mailer.last(&email, LetterKind::ConfirmEmail).unwrap()).unwrap();
        let activation = service.confirm_email(&confirmation).await.unwrap();
        service
            .activate(activation.expose(), "12", &ctx())
            .await
            .unwrap();
        pool.close().await;
    }
    // The process restarts: same file, same key; the resident logs in with the mailed
    // password, and asks for recovery while delivery is left to the worker.
    let (service, pool) = service_on(&path, &key, &mailer, false).await;
    let password = mailed_password(&mailer.last(&email, LetterKind::Credentials).unwrap()).unwrap();
    service.login(RESIDENT, password, &ctx()).await.unwrap();
    service.request_recovery(RESIDENT, &ctx()).await.unwrap();
    assert!(mailer.last(&email, LetterKind::RecoverPassword).is_none());
    pool.close().await;
    // Restarted again: the queued recovery letter is still there, and opens with the key.
    let (service, _pool) = service_on(&path, &key, &mailer, false).await;
    let report = service.deliver_due().await.unwrap();
    assert_eq!(report.sent, 1, "{report:?}");
    let recovery = link_token(&mailer.last(&email, LetterKind::RecoverPassword).unwrap()).unwrap();
    service.complete_recovery(&recovery, &ctx()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_of_one_process_count_exactly_and_one_consumer_of_a_link_wins() {
    let store = SqliteStore::new(
        open(common::new_path(), &SqliteOptions::with_max_connections(16))
            .await
            .unwrap(),
    );
    let key = CounterKey::new("login:client", "192.0.2.1");
    let counts: Vec<u32> = futures::future::join_all((0..200).map(|_| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            store
                .increment(&key, start(), Duration::from_secs(3600))
                .await
                .unwrap()
                .count
        })
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=200).collect::<Vec<u32>>(), "each count once");

    let token = Token::generate().hash();
    let link = Link {
        purpose: LinkPurpose::Confirmation,
        email: RESIDENT.parse().unwrap(),
        account_number: Some("7800000000001".parse().unwrap()),
        cabinet: None,
        credential_version: None,
        expires_at: start().plus(Duration::from_secs(3600)),
        issuing_until: None,
    };
    assert!(store
        .swap_link(&token, Expected::Absent, Some((&token, &link)), None)
        .await
        .unwrap());
    let version = store.link(&token).await.unwrap().unwrap().version;
    let wins = futures::future::join_all((0..50).map(|_| {
        let (store, link) = (store.clone(), link.clone());
        tokio::spawn(async move {
            let next = Token::generate().hash();
            store
                .swap_link(
                    &token,
                    Expected::Version(version),
                    Some((&next, &link)),
                    None,
                )
                .await
                .expect("a loser is told false, not an error")
        })
    }))
    .await
    .into_iter()
    .filter(|won| *won.as_ref().unwrap())
    .count();
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn the_directory_import_is_all_or_nothing_and_writes_only_changes() {
    let pool = common::fresh_pool().await;
    let report = import_directory(&pool, DIRECTORY).await.unwrap();
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (2, 0, 0)
    );
    let report = import_directory(&pool, DIRECTORY).await.unwrap();
    assert_eq!(
        (report.inserted, report.updated, report.unchanged),
        (0, 0, 2)
    );
    let changed = "account_number,surnames,address,premises\n\
7800000000001,Иванов,\"г. Санкт-Петербург, ул. Садовая, д. 1, кв. 12\",12Н\n";
    let report = import_directory(&pool, changed).await.unwrap();
    assert_eq!(
        (
            report.inserted,
            report.updated,
            report.unchanged,
            report.absent
        ),
        (0, 1, 0, 1)
    );
    let bad = "account_number,surnames,address,premises\n\
7800000000003,Сидоров,\"ул. Новая, 1\",5\n\
78000000000,Сидоров,\"ул. Новая, 2\",6\n";
    assert!(matches!(
        import_directory(&pool, bad).await,
        Err(ImportError::Csv(_))
    ));
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM resident_auth_directory")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        accounts, 2,
        "a bad file writes nothing, not even its good rows"
    );
    let directory = SqliteDirectory::new(pool);
    let record = resident_auth::config::AccountDirectory::lookup(
        &directory,
        &"7800000000002".parse().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(record.surnames, ["Иванов", "Петрова"]);
    assert_eq!(record.premises.to_string(), "123/456П");
}

/// Every byte SQLite keeps for the database: the file and its write-ahead log.
fn bytes_at_rest(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    if let Ok(wal) = std::fs::read(path.with_extension("db-wal")) {
        bytes.extend(wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

#[tokio::test]
async fn the_file_holds_no_password_token_or_letter_text() {
    let path = common::new_path();
    let mailer = RecordingMailer::new();
    let email = RESIDENT.parse().unwrap();
    // Letters wait in the queue (sealed) until delivered: the last one stays there while
    // we look.
    let (service, pool) = service_on(&path, &random_key(), &mailer, false).await;
    import_directory(&pool, DIRECTORY).await.unwrap();
    let form = RegistrationForm {
        surname: "Иванов".into(),
        account_number: "7800000000001".into(),
        email: RESIDENT.into(),
    };
    service.register(&form, &ctx()).await.unwrap();
    service.deliver_due().await.unwrap();
    let confirmation = link_token(&mailer.last(&email, LetterKind::ConfirmEmail).unwrap()).unwrap();
    let activation = service.confirm_email(&confirmation).await.unwrap();
    service
        .activate(activation.expose(), "12", &ctx())
        .await
        .unwrap();
    service.deliver_due().await.unwrap();
    let password = mailed_password(&mailer.last(&email, LetterKind::Credentials).unwrap()).unwrap();
    let session = service
        .login(RESIDENT, password.clone(), &ctx())
        .await
        .unwrap();
    service.request_recovery(RESIDENT, &ctx()).await.unwrap();
    let queued: i64 =
        sqlx::query_scalar("SELECT count(*) FROM resident_auth_letters WHERE status = 'queued'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(queued, 1, "the recovery letter waits in the queue");

    let at_rest = bytes_at_rest(&path);
    assert!(
        contains(&at_rest, b"$argon2id$"),
        "the scan sees the hashes"
    );
    assert!(
        contains(&at_rest, RESIDENT.as_bytes()),
        "the scan sees the rows"
    );
    for secret in [
        password.expose_secret(),
        confirmation.as_str(),
        activation.expose(),
        session.session_token.expose(),
    ] {
        assert!(
            !contains(&at_rest, secret.as_bytes()),
            "a secret is stored in plaintext"
        );
    }
    assert!(
        !contains(&at_rest, "Восстановление".as_bytes()),
        "a letter's text is stored unsealed"
    );
}

/// How many times `needle` occurs in `haystack`.
fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

/// Closing a cabinet leaves no byte of the resident's email in the database file or its
/// write-ahead log: deleted rows are overwritten (`secure_delete`), the log is truncated
/// after the erasure and after the farewell letter's record goes, and [`close`] leaves
/// no log at all. Before: 24 copies in the file and ~500 in the log two seconds after.
#[tokio::test]
async fn a_closed_cabinet_leaves_no_byte_of_its_email_in_the_files() {
    let path = common::new_path();
    let mailer = RecordingMailer::new();
    let email = RESIDENT.parse().unwrap();
    let (service, pool) = service_on(&path, &random_key(), &mailer, true).await;
    import_directory(&pool, DIRECTORY).await.unwrap();
    let form = RegistrationForm {
        surname: "Иванов".into(),
        account_number: "7800000000001".into(),
        email: RESIDENT.into(),
    };
    let password = resident_auth::memory::register_by_mail(&service, &mailer, &form, "12", &ctx())
        .await
        .unwrap();
    for _ in 0..2 {
        let _ = service
            .login(
                RESIDENT,
                resident_auth::secrecy::SecretString::from("wrong"),
                &ctx(),
            )
            .await;
    }
    let token = service
        .login(RESIDENT, password.clone(), &ctx())
        .await
        .unwrap()
        .session_token;
    let session = service.authenticate(token.expose()).await.unwrap();
    assert!(occurrences(&bytes_at_rest(&path), RESIDENT.as_bytes()) > 0);
    service
        .close_cabinet(&session, password, true, &ctx())
        .await
        .unwrap();
    assert!(mailer.last(&email, LetterKind::CabinetClosed).is_some());
    assert_eq!(
        occurrences(&bytes_at_rest(&path), RESIDENT.as_bytes()),
        0,
        "the email in the file or its log after the erasure"
    );
    // The session checks above ran on the store's own readers (store/reader.rs), still
    // held by `service`: closing the pool closes them first.
    resident_auth_sqlite::close(&pool).await.unwrap();
    assert!(
        std::fs::metadata(path.with_extension("db-wal")).map_or(true, |wal| wal.len() == 0),
        "no write-ahead log is left behind"
    );
    drop(service);
    assert_eq!(occurrences(&bytes_at_rest(&path), RESIDENT.as_bytes()), 0);
}

/// A database file other users may read (a backup restored with the default umask) is
/// refused with the command that fixes it; so is its write-ahead log.
#[cfg(unix)]
#[tokio::test]
async fn a_file_others_may_read_is_refused_with_the_chmod_that_fixes_it() {
    use std::os::unix::fs::PermissionsExt;
    let path = common::new_path();
    let pool = open(&path, &SqliteOptions::default()).await.unwrap();
    pool.close().await;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = open(&path, &SqliteOptions::default()).await.unwrap_err();
    let shown = error.to_string();
    assert!(
        shown.contains("chmod 600") && shown.contains(&path.display().to_string()),
        "{shown}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let wal = path.with_extension("db-wal");
    std::fs::write(&wal, b"").unwrap();
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o640)).unwrap();
    let shown = open(&path, &SqliteOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        shown.contains("-wal") && shown.contains("chmod 600"),
        "{shown}"
    );
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o600)).unwrap();
    open(&path, &SqliteOptions::default()).await.unwrap();
}

/// The session check reads on the calling task through the store's own readers
/// (store/reader.rs), not through the pool: it still answers once the pool is closed (what
/// it could not if it went through the pool), and sees a session written just before it;
/// `resident_auth_sqlite::close` closes the readers too, after which the check fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_check_reads_beside_the_pool() {
    use resident_auth::{
        ports::{Cabinet, CabinetStore, HashedPassword, Session, SessionStore, Store},
        CabinetId, SessionId,
    };
    let path = common::new_path();
    let pool = open(&path, &SqliteOptions::default()).await.unwrap();
    let store = SqliteStore::new(pool.clone());
    let id = CabinetId::generate();
    let cabinet = Cabinet {
        id,
        email: RESIDENT.parse().unwrap(),
        password_hash: HashedPassword::from_phc(
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        ),
        credential_version: 1,
        accounts: vec!["7800000000001".parse().unwrap()],
        password_expires_at: None,
    };
    store
        .swap_cabinet(&id, Expected::Absent, Some(&cabinet), None)
        .await
        .unwrap();
    let token = Token::generate().hash();
    let session = Session {
        id: SessionId::generate(),
        cabinet: id,
        credential_version: 1,
        active_account: None,
        created_at: start(),
        last_used: start(),
        expires_at: start().plus(Duration::from_secs(3600)),
        client: None,
    };
    store
        .swap_session(&token, Expected::Absent, Some(&session))
        .await
        .unwrap();
    let (found, snapshot) = store.session_with_cabinet(&token).await.unwrap().unwrap();
    assert_eq!((found.value, snapshot.email.as_str()), (session, RESIDENT));
    pool.close().await;
    assert!(store
        .cabinet(resident_auth::ports::CabinetKey::Id(&id))
        .await
        .is_err());
    assert!(
        store.session_with_cabinet(&token).await.unwrap().is_some(),
        "the check went through the closed pool"
    );
    // The pool is closed already: its checkpoint fails, the readers close all the same.
    assert!(resident_auth_sqlite::close(&pool).await.is_err());
    assert!(store.session_with_cabinet(&token).await.is_err());
}
