//! When the database goes away (docs/operating.md): answered at once, found back at once.

use std::sync::{Arc, Mutex};

use tokio::{net::TcpListener, task::JoinHandle};

use super::*;

/// A TCP relay from a port of its own to PostgreSQL that the test can cut (every
/// connection reset, new ones refused) and restore on the same port: the database going
/// away and coming back, as the portal sees it.
struct Relay {
    port: u16,
    upstream: String,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Relay {
    async fn start(upstream: String) -> Self {
        let port = services::free_port();
        let relay = Self {
            port,
            upstream,
            tasks: Arc::default(),
        };
        relay.open().await;
        relay
    }

    async fn open(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let relayed = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(relayed);
            }
        });
        self.tasks.lock().unwrap().push(accepting);
    }

    /// Refuses new connections and resets every open one.
    fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

/// PostgreSQL goes away under a running portal: the first request that finds it so may
/// wait, every later one is answered 503 with `Retry-After` without waiting out the
/// pool's 5 s; once it is back the portal serves again by itself. A portal started while
/// it is down says why ("Connection refused"), not only that its pool timed out. Before:
/// every request waited 5 s (a recovery request 10), 503s had no `Retry-After`, and the
/// start-up error hid the cause.
pub async fn a_database_outage_is_answered_at_once_and_recovered_from(binary: &str) {
    let database = services::fresh_database().await;
    let (base, name) = database.rsplit_once('/').unwrap();
    let upstream = base.rsplit_once('@').unwrap().1.to_owned();
    let relay = Relay::start(upstream).await;
    let relayed = format!("postgres://postgres@127.0.0.1:{}/{name}", relay.port);
    let server = Server::start_on_services(binary, &[("DATABASE_URL", relayed.clone())]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let session = login(&server, RESIDENT, &password).await;

    relay.cut();
    let pool_wait = Duration::from_secs(5);
    // A request finds the database gone by waiting out the pool (one whose pooled
    // connection broke mid-statement answers 503 at once, and the next one waits).
    let mut found = false;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, _, _) = server.get("/api/session", Some(&session)).await;
        assert_eq!(status, 503, "the database is gone");
        if started.elapsed() >= pool_wait / 2 {
            found = true;
            break;
        }
    }
    assert!(
        found,
        "no request waited for the pool: was the database cut?"
    );
    let mut slowest = Duration::ZERO;
    for path in ["/api/session", "/api/recovery", "/api/login"] {
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let (status, body, retry_after) = if path == "/api/session" {
                server.get(path, Some(&session)).await
            } else {
                let body = json!({"email": RESIDENT, "password": password});
                server.post(path, body, None).await
            };
            let took = started.elapsed();
            slowest = slowest.max(took);
            assert_eq!(status, 503, "{path}: {body}");
            assert_eq!(retry_after.as_deref(), Some("2"), "{path}");
            assert!(
                took < pool_wait / 2,
                "{path} waited {took:?}: the outage is known, nothing should wait the pool out"
            );
        }
    }

    relay.open().await;
    let back = std::time::Instant::now();
    loop {
        let (status, _, _) = server.get("/api/session", Some(&session)).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(back.elapsed() < Duration::from_secs(30), "never found back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    login(&server, RESIDENT, &password).await;
    eprintln!(
        "outage: the slowest of 9 answers once it was known {slowest:?} (the pool's wait \
         {pool_wait:?}); served again {:?} after the database was back",
        back.elapsed()
    );

    // Started while the database is down: the cause is named.
    relay.cut();
    let dir = tempfile::tempdir().unwrap();
    let said = refused_start(
        binary,
        dir.path(),
        &[
            ("DATABASE_URL".to_owned(), relayed),
            ("MAIL_QUEUE_KEY".to_owned(), MAIL_QUEUE_KEY.to_owned()),
            (
                "OUTBOX_DIR".to_owned(),
                dir.path().join("outbox").display().to_string(),
            ),
        ],
    )
    .await;
    assert!(said.contains("refused"), "the cause is named: {said}");
}
