//! Ours and a peer over HTTP, on this machine, in one run (README, "Side by side with
//! django-allauth"). Started by `benches/peer/compare.sh`, which builds and installs what
//! it names:
//!
//! ```text
//! http-compare --ours target/release/portal-axum --peer benches/peer --venv target/peer-venv \
//!     [--seconds 8] [--clients 32] [--no-postgres] [--h-native <argon2-h built native>]
//! http-compare --ours target/release/portal-axum --instances 3 --redis redis://127.0.0.1:6379
//! ```
//!
//! The second form measures only ours: N instances on one PostgreSQL database behind this
//! driver, sessions and counters in PostgreSQL and then in Redis (`benches/README.md`,
//! "Many instances").
//!
//! For ours (the axum example, release, production argon2) in memory, on the default SQLite
//! file (in a scratch folder) and on
//! PostgreSQL, and for django-allauth (headless API, gunicorn, argon2-cffi at our
//! parameters) on SQLite and PostgreSQL: logins/s at saturation with p50/p99, session
//! checks/s, session-check p99 while logins saturate the hasher; for ours the register →
//! confirm → activate journey; a no-op handler on each framework as its ceiling; and H,
//! one argon2id verification, for our default build, a native build and argon2-cffi,
//! interleaved. Every run is bounded in time and count; everything listens on 127.0.0.1.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss,
    clippy::too_many_lines,
    missing_docs
)]

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// A fresh client address for each login (10.0.0.0/8 has 2^24 of them).
mod servers;
mod stores;
use servers::*;
use stores::{axum_noop_ceiling, stores_beside_noop};

static NEXT_ADDRESS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1 << 16);

/// The password every peer resident has (ours are generated and mailed).
const PEER_PASSWORD: &str = "correct horse battery staple";

struct Options {
    ours: PathBuf,
    peer: PathBuf,
    venv: PathBuf,
    seconds: u64,
    clients: usize,
    postgres: bool,
    h_native: Option<PathBuf>,
    /// `--instances N --redis URL`: only ours on PostgreSQL, N instances behind this one
    /// driver, without and with sessions and counters in Redis.
    instances: usize,
    redis: Option<String>,
    /// `--stores`: only ours, on each store, beside the axum no-op (no peer, no H).
    stores: bool,
}

fn options() -> Options {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        ours: "target/release/portal-axum".into(),
        peer: "benches/peer".into(),
        venv: "target/peer-venv".into(),
        seconds: 8,
        clients: 32,
        postgres: true,
        h_native: None,
        instances: 1,
        redis: None,
        stores: false,
    };
    while let Some(arg) = args.next() {
        let mut value = || args.next().expect("a value after the flag");
        match arg.as_str() {
            "--ours" => options.ours = value().into(),
            "--peer" => options.peer = value().into(),
            "--venv" => options.venv = value().into(),
            "--seconds" => options.seconds = value().parse().expect("seconds"),
            "--clients" => options.clients = value().parse().expect("clients"),
            "--no-postgres" => options.postgres = false,
            "--h-native" => options.h_native = Some(value().into()),
            "--instances" => options.instances = value().parse().expect("instances"),
            "--redis" => options.redis = Some(value()),
            "--stores" => options.stores = true,
            "--serve-noop" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    // Children run in other directories: every path absolute.
    let absolute = |path: &PathBuf| {
        std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    options.ours = absolute(&options.ours);
    if options.redis.is_none() && !options.stores {
        options.peer = absolute(&options.peer);
        options.venv = absolute(&options.venv);
    }
    options.h_native = options.h_native.as_ref().map(absolute);
    options
}

/// Which server a load runs against: the paths and bodies differ, nothing else.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Ours,
    Peer,
}

#[derive(Clone)]
struct Target {
    kind: Kind,
    bases: Arc<Vec<String>>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    client: reqwest::Client,
}

impl Target {
    fn new(kind: Kind, base: String) -> Self {
        Self::spread(kind, vec![base])
    }

    /// Requests spread over `bases` in turn, as a load balancer would.
    fn spread(kind: Kind, bases: Vec<String>) -> Self {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self {
            kind,
            bases: Arc::new(bases),
            next: Arc::default(),
            client,
        }
    }

    /// The next instance's base URL.
    fn base(&self) -> &str {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        &self.bases[n % self.bases.len()]
    }

    /// Logs in; returns the session token. `client` tells our per-client limits apart
    /// (ours runs behind a trusted proxy address; the peer's limits are off).
    async fn login(&self, email: &str, password: &str, client: u32) -> String {
        let (path, body) = match self.kind {
            Kind::Ours => ("/api/login", json!({"email": email, "password": password})),
            Kind::Peer => (
                "/_allauth/app/v1/auth/login",
                json!({"email": email, "password": password}),
            ),
        };
        let response = self
            .client
            .post(format!("{}{path}", self.base()))
            .header("x-forwarded-for", forwarded(client))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "login: {body}");
        match self.kind {
            Kind::Ours => body["session_token"].as_str().unwrap().to_owned(),
            Kind::Peer => body["meta"]["session_token"].as_str().unwrap().to_owned(),
        }
    }

    async fn session(&self, token: &str, client: u32) {
        let request = match self.kind {
            Kind::Ours => self
                .client
                .get(format!("{}/api/session", self.base()))
                .bearer_auth(token),
            Kind::Peer => self
                .client
                .get(format!("{}/_allauth/app/v1/auth/session", self.base()))
                .header("x-session-token", token),
        };
        let response = request
            .header("x-forwarded-for", forwarded(client))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "session check");
        let _ = response.bytes().await.unwrap();
    }

    async fn noop(&self) {
        let response = self
            .client
            .get(format!("{}/noop", self.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await.unwrap();
    }
}

fn forwarded(client: u32) -> String {
    let [_, a, b, c] = client.to_be_bytes();
    format!("10.{a}.{b}.{}", c.max(1))
}

/// Throughput and latency of `clients` loops of `step` for `seconds`.
struct Load {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn saturate<F, Fut>(clients: usize, seconds: u64, step: F) -> Load
where
    F: Fn(usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let (stop, step) = (stop.clone(), step.clone());
        tasks.push(tokio::spawn(async move {
            let mut histogram = Histogram::<u64>::new(3).unwrap();
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                let began = Instant::now();
                step(client, round).await;
                histogram
                    .record(began.elapsed().as_micros() as u64)
                    .unwrap();
                round += 1;
            }
            histogram
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Histogram::<u64>::new(3).unwrap();
    for task in tasks {
        total.add(task.await.unwrap()).unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    Load {
        per_second: total.len() as f64 / elapsed,
        p50: Duration::from_micros(total.value_at_quantile(0.5)),
        p99: Duration::from_micros(total.value_at_quantile(0.99)),
    }
}

/// Register → confirm → activate for resident `i` of the generated directory; returns the
/// mailed password.
async fn journey(target: &Target, outbox: &Path, i: usize) -> String {
    let (account, email) = (
        resident_auth_benches::account(i),
        resident_auth_benches::email(i),
    );
    let client = u32::try_from(i).unwrap() + 1;
    let post = |path: &'static str, body: Value| {
        let target = target.clone();
        async move {
            let response = target
                .client
                .post(format!("{}{path}", target.base()))
                .header("x-forwarded-for", forwarded(client))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(status.is_success(), "{path}: {status} {text}");
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null)
        }
    };
    post(
        "/api/registrations",
        json!({"surname": "Иванов", "account_number": account, "email": email}),
    )
    .await;
    let token = from_letter(outbox, "confirm-email", &email).await;
    let confirmed = post("/api/registrations/confirm", json!({"token": token})).await;
    let activation = confirmed["activation_token"].as_str().unwrap().to_owned();
    post(
        "/api/registrations/activate",
        json!({"activation_token": activation, "premises": (i + 1).to_string()}),
    )
    .await;
    from_letter(outbox, "credentials", &email).await
}

/// The figures of one server.
struct Figures {
    logins: Load,
    sessions: Load,
    session_under_logins: Load,
    logins_while_checking: Load,
    journeys_per_second: Option<f64>,
}

async fn measure(target: &Target, users: &[(String, String)], options: &Options) -> Figures {
    let clients = options.clients;
    let seconds = options.seconds;
    let users = Arc::new(users.to_vec());
    let login = {
        let (target, users) = (target.clone(), users.clone());
        // Each client logs its own resident in, again and again, each time from another
        // address, as logins arrive from many residents: a client's limit counts every
        // try whatever the cabinet, so one address repeating logins would be throttled
        // (ours has its limits on; the peer's are off).
        move |client: usize, _round: u64| {
            let (target, users) = (target.clone(), users.clone());
            async move {
                let (email, password) = &users[client % users.len()];
                let address = NEXT_ADDRESS.fetch_add(1, Ordering::Relaxed);
                target.login(email, password, address).await;
            }
        }
    };
    let logins = saturate(clients, seconds, login.clone()).await;
    let mut tokens = Vec::new();
    for (n, (email, password)) in users.iter().enumerate().take(clients) {
        tokens.push(target.login(email, password, n as u32 + 1).await);
    }
    let tokens = Arc::new(tokens);
    let check = {
        let (target, tokens) = (target.clone(), tokens.clone());
        move |client: usize, _round: u64| {
            let (target, tokens) = (target.clone(), tokens.clone());
            async move {
                target
                    .session(&tokens[client % tokens.len()], client as u32 + 1)
                    .await;
            }
        }
    };
    let sessions = saturate(clients, seconds, check.clone()).await;
    // Logins saturate the hasher while a few clients keep checking their sessions.
    let checking = tokio::spawn(saturate(4, seconds, check));
    let logins_while_checking = saturate(clients, seconds, login).await;
    let session_under_logins = checking.await.unwrap();
    Figures {
        logins,
        sessions,
        session_under_logins,
        logins_while_checking,
        journeys_per_second: None,
    }
}

/// Where one row of ours keeps its residents: each row is labelled by what it runs.
enum OursOn<'a> {
    /// `STORAGE=memory`.
    Memory,
    /// The default SQLite file, made in the row's scratch folder (never the checkout).
    Sqlite,
    /// `DATABASE_URL`.
    Postgres(&'a str),
}

async fn ours_on(options: &Options, on: OursOn<'_>, residents: usize) -> Figures {
    match on {
        OursOn::Memory => {
            ours_spread(
                options,
                None,
                residents,
                1,
                &[("STORAGE", "memory".to_owned())],
            )
            .await
        }
        // start_ours sets SQLITE_PATH inside the scratch folder.
        OursOn::Sqlite => ours_spread(options, None, residents, 1, &[]).await,
        OursOn::Postgres(url) => ours_spread(options, Some(url), residents, 1, &[]).await,
    }
}

/// Ours on `instances` processes sharing `database` (each with `extra` variables), the
/// load spread over them in turn.
async fn ours_spread(
    options: &Options,
    database: Option<&str>,
    residents: usize,
    instances: usize,
    extra: &[(&str, String)],
) -> Figures {
    let scratch = tempfile::tempdir().unwrap();
    let directory = scratch.path().join("directory.csv");
    std::fs::write(&directory, resident_auth_benches::directory(residents)).unwrap();
    let outbox = scratch.path().join("outbox");
    let mut servers = Vec::new();
    for _ in 0..instances {
        servers.push(
            start_ours(
                &options.ours,
                scratch.path(),
                &directory,
                &outbox,
                database,
                extra,
            )
            .await,
        );
    }
    let target = Target::spread(
        Kind::Ours,
        servers.iter().map(|server| server.base.clone()).collect(),
    );
    // The journey, `clients` residents at a time, every resident once.
    let started = Instant::now();
    let mut users = Vec::new();
    for batch in (0..residents).collect::<Vec<_>>().chunks(options.clients) {
        let walks = batch.iter().map(|&i| {
            let (target, outbox) = (target.clone(), outbox.clone());
            async move {
                (
                    resident_auth_benches::email(i),
                    journey(&target, &outbox, i).await,
                )
            }
        });
        users.extend(futures::future::join_all(walks).await);
    }
    let journeys_per_second = residents as f64 / started.elapsed().as_secs_f64();
    let mut figures = measure(&target, &users, options).await;
    figures.journeys_per_second = Some(journeys_per_second);
    figures
}

async fn peer_on(options: &Options, env: &[(&str, String)], residents: usize) -> Figures {
    let server = start_peer(options, env, residents).await;
    let target = Target::new(Kind::Peer, server.base.clone());
    let users: Vec<(String, String)> = (0..residents)
        .map(|i| (resident_auth_benches::email(i), PEER_PASSWORD.to_owned()))
        .collect();
    measure(&target, &users, options).await
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

/// H of one implementation: the mean verification time its program prints.
fn h_of(program: &Path, args: &[&str]) -> f64 {
    let output = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let text = String::from_utf8_lossy(&output.stdout);
    text.split(": ")
        .nth(1)
        .and_then(|ms| ms.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: {text}", program.display()))
}

fn main() {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--serve-noop") {
        serve_noop(args.next().unwrap().parse().unwrap());
        return;
    }
    let options = options();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(options));
}

async fn run(options: Options) {
    let residents = options.clients * 2;
    if let Some(redis) = options.redis.clone() {
        instances_on_redis(&options, &redis, residents).await;
        return;
    }
    if options.stores {
        stores_beside_noop(&options, residents).await;
        return;
    }
    println!(
        "cores: {}; argon2id m=19456 KiB, t=2, p=1; {} clients, {} s per figure; \
         gunicorn workers: {}",
        cores(),
        options.clients,
        options.seconds,
        peer_workers()
    );
    // H, interleaved: RustCrypto's argon2 as our hashing workers run it (memory kept and
    // wiped) and allocating per run, each in the default and the native build;
    // argon2-cffi.
    let default_h = std::env::current_exe().unwrap().with_file_name("argon2-h");
    let python = options.venv.join("bin/python");
    let script = options.peer.join("argon2_verify.py");
    let script = script.to_string_lossy().into_owned();
    let mut samples: [Vec<f64>; 5] = Default::default();
    for _ in 0..5 {
        samples[0].push(h_of(&default_h, &["20", "pool"]));
        samples[1].push(h_of(&default_h, &["20", "allocating"]));
        if let Some(native) = &options.h_native {
            samples[2].push(h_of(native, &["20", "pool"]));
            samples[3].push(h_of(native, &["20", "allocating"]));
        }
        samples[4].push(h_of(&python, &[&script, "20"]));
    }
    let [ours_h, allocating_h, native_h, allocating_native_h, peer_h] = samples.map(|mut s| {
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
    });
    println!(
        "\n| H: one argon2id verify (median of 5 interleaved rounds of 20) | ms | ÷ ours default |"
    );
    println!("|---|---|---|");
    println!(
        "| ours: RustCrypto argon2 0.6, pooled memory, default build ({} at run time) | {ours_h:.2} | 1.000 |",
        resident_auth::config::Argon2Hasher::core()
    );
    for (name, h) in [
        ("ours, `-C target-cpu=native`", native_h),
        (
            "RustCrypto argon2 0.6 allocating per run, default build",
            allocating_h,
        ),
        (
            "RustCrypto argon2 0.6 allocating per run, `-C target-cpu=native`",
            allocating_native_h,
        ),
        ("peer, argon2-cffi (libargon2)", peer_h),
    ] {
        if h.is_finite() {
            println!("| {name} | {h:.2} | {:.3} |", h / ours_h);
        }
    }
    if native_h.is_finite() {
        println!(
            "\nH default ÷ H native: pooled {:.3}, allocating {:.3}",
            ours_h / native_h,
            allocating_h / allocating_native_h
        );
    }

    let noop_ours = axum_noop_ceiling(&options).await;

    let scratch = tempfile::tempdir().unwrap();
    let sqlite = scratch.path().join("peer.sqlite3");
    // Each row is labelled by what it runs; each ratio sets ours beside the peer on its
    // counterpart. The peer has no in-memory store: ours in memory is set beside the peer
    // on SQLite, its lightest store.
    let mut rows = vec![
        (
            "ours, memory",
            ours_on(&options, OursOn::Memory, residents).await,
        ),
        (
            "ours, SQLite file (the default)",
            ours_on(&options, OursOn::Sqlite, residents).await,
        ),
        (
            "peer, SQLite",
            peer_on(
                &options,
                &[("PEER_SQLITE", sqlite.to_string_lossy().into_owned())],
                residents,
            )
            .await,
        ),
    ];
    let mut pairs = vec![(0, 2), (1, 2)];
    if options.postgres {
        let ours_db = api_suite::services::fresh_database().await;
        rows.push((
            "ours, PostgreSQL",
            ours_on(&options, OursOn::Postgres(&ours_db), residents).await,
        ));
        let peer_db = api_suite::services::fresh_database().await;
        let (base, name) = peer_db.rsplit_once('/').unwrap();
        let url = url::Url::parse(base).unwrap();
        let env = [
            ("PEER_DATABASE", "postgres".to_owned()),
            ("PEER_PG_NAME", name.to_owned()),
            ("PEER_PG_USER", url.username().to_owned()),
            (
                "PEER_PG_HOST",
                url.host_str().unwrap_or("127.0.0.1").to_owned(),
            ),
            ("PEER_PG_PORT", url.port().unwrap_or(5432).to_string()),
        ];
        rows.push(("peer, PostgreSQL", peer_on(&options, &env, residents).await));
        pairs.push((3, 4));
    }
    let peer_noop = {
        let server = start_peer(
            &options,
            &[("PEER_SQLITE", sqlite.to_string_lossy().into_owned())],
            0,
        )
        .await;
        let target = Target::new(Kind::Peer, server.base.clone());
        saturate(options.clients, options.seconds, move |_, _| {
            let target = target.clone();
            async move { target.noop().await }
        })
        .await
    };

    println!("\n| server | logins/s | login p50 | login p99 | session checks/s | session p99 | session p99 while logins saturate (logins/s then) | journeys/s |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, f) in &rows {
        println!(
            "| {name} | {:.1} | {} | {} | {:.0} | {} | {} ({:.1}) | {} |",
            f.logins.per_second,
            ms(f.logins.p50),
            ms(f.logins.p99),
            f.sessions.per_second,
            ms(f.sessions.p99),
            ms(f.session_under_logins.p99),
            f.logins_while_checking.per_second,
            f.journeys_per_second
                .map_or_else(|| "—".to_owned(), |j| format!("{j:.1}")),
        );
    }
    println!(
        "| no-op ceiling: axum | — | — | — | {:.0} | {} | — | — |",
        noop_ours.per_second,
        ms(noop_ours.p99)
    );
    println!(
        "| no-op ceiling: Django on gunicorn | — | — | — | {:.0} | {} | — | — |",
        peer_noop.per_second,
        ms(peer_noop.p99)
    );
    println!("\n| ratio | value | target |");
    println!("|---|---|---|");
    for (ours, peer) in pairs {
        let ((ours_name, ours), (peer_name, peer)) = (&rows[ours], &rows[peer]);
        println!(
            "| logins/s {ours_name} ÷ {peer_name} | {:.2} | ≥ 1.2 |",
            ours.logins.per_second / peer.logins.per_second
        );
        println!(
            "| session checks/s {ours_name} ÷ {peer_name} | {:.2} | ≥ 5 |",
            ours.sessions.per_second / peer.sessions.per_second
        );
        println!(
            "| session p99 while logins saturate, {ours_name} ÷ {peer_name} | {:.3} | ≤ 0.2 |",
            ours.session_under_logins.p99.as_secs_f64()
                / peer.session_under_logins.p99.as_secs_f64()
        );
        println!(
            "| session checks/s {ours_name} ÷ axum no-op ceiling | {:.2} | — |",
            ours.sessions.per_second / noop_ours.per_second
        );
        println!(
            "| session checks/s {peer_name} ÷ Django no-op ceiling | {:.2} | — |",
            peer.sessions.per_second / peer_noop.per_second
        );
    }
}
