//! The operators' command line on a real PostgreSQL: each call a support person takes,
//! with its exit code, and erasure checked by scanning every column of the database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{process::Output, sync::Arc};

use resident_auth::{
    config::{Argon2Hasher, HashParams},
    journeys::{AddressForm, RegistrationForm},
    letters::LetterKind,
    memory::{register_by_mail, RecordingMailer},
    AuthService, RequestContext,
};
use resident_auth_postgres::{
    connect, import_directory, migrate, PgDirectory, PgStore, PoolConfig,
};
use serde_json::Value;

const DIRECTORY: &str = "account_number,surnames,address,premises\n\
    7800000000001,Иванов,\"ул. Садовая, д. 1, кв. 12\",12\n\
    7800000000002,Иванов,\"ул. Садовая, д. 1, машино-место 123/456П\",123/456П\n\
    7800000000003,Петрова,\"Невский пр., д. 5, кв. 7\",7\n";
const RESIDENT: &str = "resident@example.org";

struct Portal {
    url: String,
    pool: sqlx::PgPool,
    service: AuthService,
    mailer: Arc<RecordingMailer>,
    outbox: tempfile::TempDir,
}

async fn portal() -> Portal {
    let url = api_suite::services::fresh_database().await;
    let pool = connect(&url, &PoolConfig::default()).await.unwrap();
    migrate(&pool).await.unwrap();
    import_directory(&pool, DIRECTORY).await.unwrap();
    let mailer = Arc::new(RecordingMailer::new());
    let (service, _background) = AuthService::builder("http://127.0.0.1")
        .store(PgStore::new(pool.clone()))
        .directory(PgDirectory::new(pool.clone()))
        .shared_mailer(mailer.clone())
        .hasher(Argon2Hasher::new(HashParams::insecure_fast_for_tests()).unwrap())
        .configure(|c| c.delivery.in_request = true)
        .build()
        .unwrap();
    Portal {
        url,
        pool,
        service,
        mailer,
        // Owner-only, as the outbox refuses a folder others may enter.
        outbox: tempfile::Builder::new()
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir()
            .unwrap(),
    }
}

fn form(account: &str, email: &str) -> RegistrationForm {
    RegistrationForm {
        surname: "Иванов".into(),
        account_number: account.into(),
        email: email.into(),
    }
}

/// A cabinet with both accounts and a live session, and a failed login (a lock).
async fn cabinet_of_two(p: &Portal) {
    let context = RequestContext::default();
    let password = register_by_mail(
        &p.service,
        &p.mailer,
        &form("7800000000001", RESIDENT),
        "12",
        &context,
    )
    .await
    .unwrap();
    let session = p.service.login(RESIDENT, password, &context).await.unwrap();
    let who = p
        .service
        .authenticate(session.session_token.expose())
        .await
        .unwrap();
    let add = AddressForm {
        surname: "Иванов".into(),
        account_number: "7800000000002".into(),
    };
    p.service.add_address(&who, &add, &context).await.unwrap();
    let to = RESIDENT.parse().unwrap();
    let link = p.mailer.last(&to, LetterKind::ConfirmEmail).unwrap();
    let token = resident_auth::memory::link_token(&link).unwrap();
    let activation = p.service.confirm_email(&token).await.unwrap();
    p.service
        .activate(activation.expose(), "123/456П", &context)
        .await
        .unwrap();
    let letter = p.mailer.last(&to, LetterKind::Credentials).unwrap();
    let password = resident_auth::memory::mailed_password(&letter).unwrap();
    p.service.login(RESIDENT, password, &context).await.unwrap();
    let _ = p
        .service
        .login(RESIDENT, "wrong".to_owned().into(), &context)
        .await;
}

async fn admin(p: &Portal, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_resident-auth-admin"))
        .env_clear()
        .env("DATABASE_URL", &p.url)
        .env("OUTBOX_DIR", p.outbox.path())
        .env(
            "MAIL_QUEUE_KEY",
            "W+GnW7ovu4+pLcpFJ0PaV7gPF+26mTSjS/eVsQfLjUM=",
        )
        .args(["--operator", "Мария"])
        .args(args)
        .output()
        .await
        .unwrap()
}

fn json(output: &Output) -> Value {
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn find_unlock_end_sessions_and_export() {
    let p = portal().await;
    cabinet_of_two(&p).await;
    let found = json(&admin(&p, &["--json", "find", "78 0000 0000 002"]).await);
    assert_eq!(found["cabinet"]["email"], RESIDENT);
    assert_eq!(found["cabinet"]["accounts"].as_array().unwrap().len(), 2);
    assert_eq!(found["cabinet"]["sessions"], 1);
    assert!(found["locks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["counter"] == "login:cabinet"));
    let human = admin(&p, &["find", RESIDENT]).await;
    let text = String::from_utf8(human.stdout).unwrap();
    assert!(
        text.contains("машино-место") && text.contains("sessions: 1 live"),
        "{text}"
    );
    let cleared = json(&admin(&p, &["--json", "unlock", RESIDENT]).await);
    assert!(cleared["counters_cleared"].as_u64().unwrap() >= 1);
    let ended = json(&admin(&p, &["--json", "end-sessions", RESIDENT]).await);
    assert!(ended["sessions_ended"].as_u64().unwrap() >= 1);
    let export = json(&admin(&p, &["export", RESIDENT]).await);
    assert_eq!(export["cabinet"]["email"], RESIDENT);
    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT operator, action FROM resident_auth.audit ORDER BY id")
            .fetch_all(&p.pool)
            .await
            .unwrap();
    let actions: Vec<&str> = audit.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(actions, ["clear_locks", "end_sessions", "export"]);
    assert!(audit.iter().all(|(operator, _)| operator == "Мария"));
}

#[tokio::test]
async fn exit_codes_say_not_found_refused_and_malformed() {
    let p = portal().await;
    cabinet_of_two(&p).await;
    assert_eq!(
        admin(&p, &["find", "nobody@example.org"])
            .await
            .status
            .code(),
        Some(2)
    );
    for malformed in ["780000000000", "resident@", "Иванов"] {
        let output = admin(&p, &["find", malformed]).await;
        assert_eq!(output.status.code(), Some(1), "{malformed}");
        let message = String::from_utf8_lossy(&output.stderr);
        assert!(message.contains("13-digit"), "{malformed}: {message}");
    }
    let output = admin(&p, &["unlink", "7800000000001"]).await;
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let refused = admin(&p, &["unlink", "7800000000002"]).await;
    assert_eq!(
        refused.status.code(),
        Some(3),
        "the last account without --erase"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("last account"));
    let letters: Vec<_> = std::fs::read_dir(p.outbox.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        letters.iter().any(|name| name.contains("account_unlinked")),
        "{letters:?}"
    );
    let no_operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_resident-auth-admin"))
        .env_clear()
        .env("DATABASE_URL", &p.url)
        .args(["unlock", RESIDENT])
        .output()
        .await
        .unwrap();
    assert_eq!(
        no_operator.status.code(),
        Some(1),
        "a change needs an operator"
    );
}

#[tokio::test]
async fn a_pending_registration_gets_its_letter_again() {
    let p = portal().await;
    let context = RequestContext::default();
    let mut petrova = form("7800000000003", "petrova@example.org");
    petrova.surname = "Петрова".into();
    p.service.register(&petrova, &context).await.unwrap();
    let sent = json(&admin(&p, &["--json", "resend", "7800000000003"]).await);
    assert_eq!(sent["sent_to"], "petrova@example.org");
    let letters: Vec<_> = std::fs::read_dir(p.outbox.path()).unwrap().collect();
    assert_eq!(letters.len(), 1, "the new confirmation letter");
    assert_eq!(
        admin(&p, &["resend", RESIDENT]).await.status.code(),
        Some(2)
    );
}

async fn rows_mentioning(pool: &sqlx::PgPool, needle: &str) -> Vec<String> {
    api_suite::services::columns_mentioning(pool, needle).await
}

#[tokio::test]
async fn erasure_leaves_no_trace_of_the_resident_and_the_account_registers_again() {
    let p = portal().await;
    cabinet_of_two(&p).await;
    p.service
        .request_recovery(RESIDENT, &RequestContext::default())
        .await
        .unwrap();
    let id = json(&admin(&p, &["--json", "find", RESIDENT]).await)["cabinet"]["cabinet"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !rows_mentioning(&p.pool, RESIDENT).await.is_empty(),
        "the scan finds it before"
    );
    let erased = json(&admin(&p, &["--json", "erase", "7800000000001"]).await);
    assert_eq!(erased["cabinets"], 1);
    for needle in [RESIDENT, "Иванов", "7800000000001", "7800000000002"] {
        assert_eq!(
            rows_mentioning(&p.pool, needle).await,
            Vec::<String>::new(),
            "{needle}"
        );
    }
    // The opaque identity stays only in the audit record, linked to no account or email.
    assert_eq!(rows_mentioning(&p.pool, &id).await, ["audit.cabinet"]);
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM resident_auth.audit WHERE action = 'erase'")
            .fetch_one(&p.pool)
            .await
            .unwrap();
    assert_eq!(kept, 1, "only the non-personal audit record stays");
    assert_eq!(admin(&p, &["find", RESIDENT]).await.status.code(), Some(2));
    register_by_mail(
        &p.service,
        &p.mailer,
        &form("7800000000001", RESIDENT),
        "12",
        &RequestContext::default(),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_directory_is_imported_by_a_subcommand() {
    let p = portal().await;
    let file = p.outbox.path().join("directory.csv");
    std::fs::write(
        &file,
        format!("{DIRECTORY}7800000000004,Семёнов,\"Литейный пр., 1\",4\n"),
    )
    .unwrap();
    let report = json(&admin(&p, &["--json", "import-directory", file.to_str().unwrap()]).await);
    assert_eq!(report["inserted"], 1);
    assert_eq!(report["unchanged"], 3);
}

#[tokio::test]
async fn a_new_operator_token_comes_with_the_entry_that_admits_it() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_resident-auth-admin"))
        .env_clear()
        .args(["--json", "new-operator-token", "maria"])
        .output()
        .await
        .unwrap();
    let answer = json(&output);
    let (token, entry) = (
        answer["token"].as_str().unwrap(),
        answer["admin_operators_entry"].as_str().unwrap(),
    );
    assert!(entry.starts_with("maria=") && !entry.contains(token));
    let tokens = resident_auth_http::OperatorTokens::parse(entry).unwrap();
    assert_eq!(
        tokens.operator(token).map(ToString::to_string).as_deref(),
        Some("maria")
    );
}

/// Without `DATABASE_URL` the tool works on the portal's SQLite file (`SQLITE_PATH`), its
/// letters sealed with the key file beside it; a path with no database is refused, not
/// created.
#[tokio::test]
async fn on_the_portals_sqlite_file_with_the_key_file_beside_it() {
    use resident_auth_sqlite::{open, SqliteDirectory, SqliteOptions, SqliteStore};
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("resident-auth.db");
    let pool = open(&database, &SqliteOptions::default()).await.unwrap();
    resident_auth_sqlite::import_directory(&pool, DIRECTORY)
        .await
        .unwrap();
    std::fs::write(
        dir.path().join("resident-auth.db.mail-queue-key"),
        "W+GnW7ovu4+pLcpFJ0PaV7gPF+26mTSjS/eVsQfLjUM=\n",
    )
    .unwrap();
    let mailer = Arc::new(RecordingMailer::new());
    let (service, _background) = AuthService::builder("http://127.0.0.1")
        .store(SqliteStore::new(pool.clone()))
        .directory(SqliteDirectory::new(pool.clone()))
        .shared_mailer(mailer.clone())
        .hasher(Argon2Hasher::new(HashParams::insecure_fast_for_tests()).unwrap())
        .configure(|c| c.delivery.in_request = true)
        .build()
        .unwrap();
    let context = RequestContext::default();
    let password = register_by_mail(
        &service,
        &mailer,
        &form("7800000000001", RESIDENT),
        "12",
        &context,
    )
    .await
    .unwrap();
    service.login(RESIDENT, password, &context).await.unwrap();
    // A registration under way, for `resend`.
    service
        .register(
            &RegistrationForm {
                surname: "Петрова".into(),
                account_number: "7800000000003".into(),
                email: "neighbour@example.org".into(),
            },
            &context,
        )
        .await
        .unwrap();
    let outbox = dir.path().join("outbox");
    let run = |database: std::path::PathBuf, args: Vec<&'static str>| {
        let outbox = outbox.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_resident-auth-admin"))
                .env_clear()
                .env("SQLITE_PATH", database)
                .env("OUTBOX_DIR", outbox)
                .args(["--operator", "Мария"])
                .args(args)
                .output()
                .await
                .unwrap()
        }
    };
    let found = json(&run(database.clone(), vec!["--json", "find", RESIDENT]).await);
    assert_eq!(found["cabinet"]["sessions"], 1);
    let resent = json(&run(database.clone(), vec!["--json", "resend", "7800000000003"]).await);
    assert_eq!(resent["sent_to"], "neighbour@example.org");
    assert_eq!(
        std::fs::read_dir(&outbox).unwrap().count(),
        1,
        "the letter opened with the key file"
    );
    let ended = json(&run(database.clone(), vec!["--json", "end-sessions", RESIDENT]).await);
    assert_eq!(ended["sessions_ended"], 1);
    let erased = json(&run(database.clone(), vec!["--json", "erase", RESIDENT]).await);
    assert_eq!(erased["cabinets"], 1);
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action FROM resident_auth_audit ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(audit, ["resend_confirmation", "end_sessions", "erase"]);
    let missing = dir.path().join("typo.db");
    let refused = run(missing.clone(), vec!["find", RESIDENT]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no portal database"));
    assert!(!missing.exists(), "no empty database is made");
}
