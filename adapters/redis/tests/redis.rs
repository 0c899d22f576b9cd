//! What the service does when its Redis restarts and loses everything: every session ends,
//! every throttle starts again — by at most the one window it was in — and while Redis is
//! away the answers are "unavailable", never a way around a limit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
};

use resident_auth::{
    config::{Argon2Hasher, AuthConfig, HashParams, ManualClock, Ports},
    errors::Explain,
    journeys::RegistrationForm,
    letters::{LetterKind, Links},
    memory::{link_token, mailed_password, MemoryDirectory, MemoryStore, RecordingMailer},
    ports::{Cabinet, CabinetKey, CabinetStore, Cached, Expected, SplitStore},
    secrecy::SecretString,
    AuthService, Error, Locale, RequestContext, Timestamp,
};
use resident_auth_redis::RedisStore;

const DIRECTORY: &str = "account_number,surnames,address,premises\n\
7800000000001,Иванов,\"г. Санкт-Петербург, ул. Садовая, д. 1, кв. 12\",12\n";
const RESIDENT: &str = "resident@example.org";

/// A Redis of this test's own on `port`, to stop and start again.
fn redis_on(port: u16) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/throwaway-redis.sh");
    let mut child = Command::new("bash")
        .arg(script)
        .arg(port.to_string())
        .env("WATCH_PID", std::process::id().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("bash scripts/throwaway-redis.sh");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.starts_with("READY "), "{line:?}");
    child
}

fn stop(mut redis: Child) {
    // The script's trap stops the server and deletes its directory.
    let _ = Command::new("kill").arg(redis.id().to_string()).status();
    redis.wait().unwrap();
}

fn ctx() -> RequestContext {
    RequestContext::new(Locale::Ru).with_client("203.0.113.7")
}

fn wrong() -> SecretString {
    SecretString::from("not the password at all".to_owned())
}

/// Wrong passwords until the login is throttled; returns how many were answered first.
async fn tries_before_the_throttle(service: &AuthService) -> usize {
    for tries in 0..100 {
        match service.login(RESIDENT, wrong(), &ctx()).await {
            Err(error) if error.problems().first().map(|p| p.code()) == Some("login.throttled") => {
                return tries
            }
            Err(error) => assert_eq!(
                error.problems().first().map(|p| p.code()),
                Some("login.invalid_credentials")
            ),
            Ok(_) => panic!("a wrong password logged in"),
        }
    }
    panic!("never throttled")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_ends_sessions_and_resets_throttles_by_one_window_at_most() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = redis_on(port);
    let url = format!("redis://127.0.0.1:{port}");
    let sessions = RedisStore::connect(&url, "portal").await.unwrap();
    let records = MemoryStore::new();
    let store = Cached::new(
        SplitStore::new(records.clone(), sessions.clone(), sessions.clone()),
        sessions,
    );
    let split = store.clone();
    let mailer = RecordingMailer::new();
    let mut config = AuthConfig::new(Links::new("https://portal.example.org"));
    config.delivery.in_request = true;
    let service = AuthService::new(
        Ports::new(
            Arc::new(store),
            Arc::new(MemoryDirectory::from_csv(DIRECTORY).unwrap()),
            Arc::new(mailer.clone()),
            Arc::new(Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 2).unwrap()),
            Arc::new(ManualClock::new(Timestamp::from_millis(1_767_225_600_000))),
        ),
        config,
    );
    let email = RESIDENT.parse().unwrap();
    let form = RegistrationForm {
        surname: "Иванов".into(),
        account_number: "7800000000001".into(),
        email: RESIDENT.into(),
    };
    service.register(&form, &ctx()).await.unwrap();
    let confirmation = link_token(&mailer.last(&email, LetterKind::ConfirmEmail).unwrap()).unwrap();
    let activation = service.confirm_email(&confirmation).await.unwrap();
    service
        .activate(activation.expose(), "12", &ctx())
        .await
        .unwrap();
    let password = mailed_password(&mailer.last(&email, LetterKind::Credentials).unwrap()).unwrap();
    let session = service.login(RESIDENT, password, &ctx()).await.unwrap();
    let token = session.session_token.expose().to_owned();
    service.authenticate(&token).await.unwrap();
    let allowed = tries_before_the_throttle(&service).await;
    assert!(allowed >= 1);

    // Redis goes away: nothing is let through, everything is "unavailable".
    stop(redis);
    assert!(matches!(
        service.authenticate(&token).await,
        Err(Error::Unavailable(_))
    ));
    assert!(matches!(
        service.login(RESIDENT, wrong(), &ctx()).await,
        Err(Error::Unavailable(_))
    ));
    // A cabinet write is refused too: it could not drop the cabinet's snapshot kept
    // beside the sessions, so it does not happen.
    let cabinet = records
        .cabinet(CabinetKey::Email(&email))
        .await
        .unwrap()
        .unwrap();
    let reissued = Cabinet {
        credential_version: cabinet.value.credential_version + 1,
        ..cabinet.value.clone()
    };
    assert!(split
        .swap_cabinet(
            &cabinet.value.id,
            Expected::Version(cabinet.version),
            Some(&reissued),
            None
        )
        .await
        .is_err());
    assert_eq!(
        records.cabinet(CabinetKey::Email(&email)).await.unwrap(),
        Some(cabinet)
    );

    // It comes back empty: the session has ended, the throttle starts a new window — and
    // throttles again after exactly as many tries as one window allows.
    let redis = redis_on(port);
    let mut answered = None;
    for _ in 0..50 {
        match service.authenticate(&token).await {
            Err(Error::Unavailable(_)) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => {
                answered = Some(other);
                break;
            }
        }
    }
    let error = answered
        .expect("reconnected")
        .expect_err("the session ended");
    assert_eq!(
        error.problems().first().map(|p| p.code()),
        Some("session.invalid")
    );
    assert_eq!(tries_before_the_throttle(&service).await, allowed);
    stop(redis);
}
