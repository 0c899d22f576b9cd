//! A session check's read on the default SQLite file, three ways side by side in one run:
//! the statement through sqlx's pool (a connection's own thread, reached by a channel; what
//! `SqliteStore` ran before), through rusqlite on tokio's blocking pool, and the store's
//! `session_with_cabinet` as it is (rusqlite on the calling task, `store/reader.rs`). 32 tasks on a 2-worker runtime, each reading sessions at random
//! for `--seconds` (default 3), the three ways in turn, `--rounds` (default 3) times.
//!
//! `cargo run --release -p resident-auth-benches --bin sqlite-reads`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use resident_auth::{
    ports::{
        Cabinet, CabinetStore, Expected, HashedPassword, Session, SessionStore, Store, Token,
        TokenHash,
    },
    AccountNumber, CabinetId, Email, SessionId, Timestamp,
};

const SESSIONS: usize = 2_000;
const TASKS: usize = 32;

const SQL: &str = "SELECT s.session_id, s.cabinet_id, s.credential_version, s.active_account,
       s.created_at, s.last_used, s.expires_at, s.client, s.version,
       c.id, c.email, c.credential_version, c.password_expires_at, c.version,
       (SELECT group_concat(account_number, ',' ORDER BY position)
          FROM resident_auth_cabinet_accounts WHERE cabinet_id = c.id)
  FROM resident_auth_sessions s JOIN resident_auth_cabinets c ON c.id = s.cabinet_id
 WHERE s.token_hash = ?1";

/// Reads every column of the row, as a decoder would.
fn read_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<usize> {
    let id: Vec<u8> = row.get(0)?;
    let email: String = row.get(10)?;
    let accounts: Option<String> = row.get(14)?;
    let mut n = id.len() + email.len() + accounts.map_or(0, |a| a.len());
    for i in [2, 4, 5, 6, 8, 11, 13] {
        n += usize::from(row.get::<_, i64>(i)? > 0);
    }
    Ok(n)
}

/// Reads every column of an sqlx row, as a decoder would.
fn sqlx_row(row: &sqlx::sqlite::SqliteRow) -> usize {
    use sqlx::Row as _;
    let id: Vec<u8> = row.get(0);
    let email: String = row.get(10);
    let accounts: Option<String> = row.get(14);
    let mut n = id.len() + email.len() + accounts.map_or(0, |a| a.len());
    for i in [2, 4, 5, 6, 8, 11, 13] {
        n += usize::from(row.get::<i64, _>(i) > 0);
    }
    n
}

fn read(connection: &rusqlite::Connection, token: &[u8]) -> usize {
    let mut statement = connection.prepare_cached(SQL).unwrap();
    statement
        .query_row([token], read_row)
        .expect("the session is there")
}

fn reader(path: &std::path::Path) -> rusqlite::Connection {
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(path, flags).unwrap()
}

async fn run<F, Fut>(seconds: u64, tokens: Arc<Vec<TokenHash>>, check: F) -> f64
where
    F: Fn(TokenHash) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (stop, done, tokens, check) =
                (stop.clone(), done.clone(), tokens.clone(), check.clone());
            tokio::spawn(async move {
                let mut i = task * 7919;
                while !stop.load(Ordering::Relaxed) {
                    i = (i + 104_729) % tokens.len();
                    check(tokens[i]).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    // A request yields at its I/O; so does each check here, whichever way
                    // it read.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn fill(store: &resident_auth_sqlite::SqliteStore) -> Vec<TokenHash> {
    let now = Timestamp::from_millis(1_800_000_000_000);
    let mut tokens = Vec::new();
    for i in 0..SESSIONS {
        let id = CabinetId::generate();
        let cabinet = Cabinet {
            id,
            email: format!("resident{i}@example.org").parse::<Email>().unwrap(),
            password_hash: HashedPassword::from_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g".to_owned()),
            credential_version: 1,
            accounts: vec![format!("78{:011}", i).parse::<AccountNumber>().unwrap()],
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
            created_at: now,
            last_used: now,
            expires_at: now.plus(Duration::from_secs(86_400 * 365)),
            client: None,
        };
        store
            .swap_session(&token, Expected::Absent, Some(&session))
            .await
            .unwrap();
        tokens.push(token);
    }
    tokens
}

fn flag(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let (seconds, rounds) = (flag("--seconds", 3), flag("--rounds", 3));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("resident-auth.db");
        let pool = resident_auth_sqlite::open(&path, &resident_auth_sqlite::SqliteOptions::default())
            .await
            .unwrap();
        let store = resident_auth_sqlite::SqliteStore::new(pool.clone());
        let tokens = Arc::new(fill(&store).await);
        let readers: Arc<Vec<Mutex<rusqlite::Connection>>> =
            Arc::new((0..4).map(|_| Mutex::new(reader(&path))).collect());
        println!("| round | sqlx pool, checks/s | the store (rusqlite on the calling task) | rusqlite on the blocking pool | store ÷ sqlx | blocking ÷ sqlx |");
        println!("|---|---|---|---|---|---|");
        for round in 1..=rounds {
            let sqlx_rate = run(seconds, tokens.clone(), {
                let pool = pool.clone();
                move |token| {
                    let pool = pool.clone();
                    async move {
                        let row = sqlx::query(SQL)
                            .bind(token.as_bytes().as_slice())
                            .fetch_one(&pool)
                            .await
                            .unwrap();
                        std::hint::black_box(sqlx_row(&row));
                    }
                }
            })
            .await;
            eprintln!("sqlx: {sqlx_rate:.0}/s");
            let inline = run(seconds, tokens.clone(), {
                let store = store.clone();
                move |token| {
                    let store = store.clone();
                    async move {
                        store.session_with_cabinet(&token).await.unwrap().unwrap();
                    }
                }
            })
            .await;
            eprintln!("inline: {inline:.0}/s");
            let blocking = run(seconds, tokens.clone(), {
                let readers = readers.clone();
                move |token| {
                    let readers = readers.clone();
                    async move {
                        tokio::task::spawn_blocking(move || {
                            let connection = readers
                                .iter()
                                .find_map(|r| r.try_lock().ok())
                                .unwrap_or_else(|| readers[0].lock().unwrap());
                            std::hint::black_box(read(&connection, token.as_bytes()));
                        })
                        .await
                        .unwrap();
                    }
                }
            })
            .await;
            println!(
                "| {round} | {sqlx_rate:.0} | {inline:.0} | {blocking:.0} | {:.2} | {:.2} |",
                inline / sqlx_rate,
                blocking / sqlx_rate
            );
        }
        resident_auth_sqlite::close(&pool).await.unwrap();
    });
}
