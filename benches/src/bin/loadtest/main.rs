//! Answers the login questions of the README's performance section with ratios measured in one run and build:
//! login latency and saturated throughput against bare argon2id verification with the
//! same parameters, peak memory, a trivial request's p99 while logins saturate the
//! machine (next to a naive baseline that hashes on the async worker), unknown-email ÷
//! wrong-password time, and — with PostgreSQL — each journey step's p50/p99 and round
//! trips.
//!
//! Run: `cargo run --release -p resident-auth-benches --bin loadtest` (add `-- --sqlite` for
//! the SQLite file's figures and `-- --postgres` for PostgreSQL's; `DATABASE_URL` is used
//! when set, else a throwaway cluster with `pg_stat_statements` is started).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::{
    process::Command,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use argon2::{
    password_hash::{PasswordHasher as _, PasswordVerifier as _},
    Argon2,
};
use async_trait::async_trait;
use resident_auth::{
    config::{
        AccountDirectory, Argon2Hasher, AuthConfig, CredentialHasher, HashError, HashParams, Limit,
        Ports, SystemClock, Verification,
    },
    letters::Links,
    memory::{MemoryDirectory, MemoryStore, RecordingMailer},
    ports::{HashedPassword, Store},
    secrecy::{ExposeSecret, SecretString},
    AuthService, RequestContext,
};
use resident_auth_benches::{
    activated_cabinet, database_url, directory, email, percentile, reset_stats, JourneySteps,
};

mod stores;
use stores::{postgres, sqlite};

const CABINETS: usize = 64;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn bare_hash(password: &str) -> String {
    let salt: [u8; 16] = rand::random();
    Argon2::default()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// One bare verification as the service's hashing workers run it: RustCrypto's `argon2`
/// in memory this thread keeps, wiped after the run.
fn bare_verify(phc: &str, password: &str) -> bool {
    use secrecy::zeroize::Zeroize;
    thread_local! {
        static MEMORY: std::cell::RefCell<Vec<argon2::Block>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let parsed = argon2::PasswordHash::new(phc).unwrap();
    let params = argon2::Params::try_from(&parsed).unwrap();
    let expected = parsed.hash.unwrap();
    let salt = parsed.salt.as_ref().unwrap();
    let mut out = [0u8; 32];
    MEMORY.with_borrow_mut(|memory| {
        memory.resize(params.block_count(), argon2::Block::default());
        Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut *memory)
            .unwrap();
        memory.iter_mut().for_each(Zeroize::zeroize);
    });
    out[..] == *expected.as_bytes()
}

/// The same verification by RustCrypto's `argon2` (the reference, allocating its memory).
fn rustcrypto_verify(phc: &str, password: &str) -> bool {
    let parsed = argon2::PasswordHash::new(phc).unwrap();
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// H: one bare verification on one thread (median), and RustCrypto's, in alternating
/// samples.
fn bare_latency(samples: usize) -> (Duration, Duration) {
    let phc = bare_hash("correct horse battery staple");
    let (mut ours, mut reference) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let start = Instant::now();
        assert!(bare_verify(&phc, "correct horse battery staple"));
        ours.push(start.elapsed());
        let start = Instant::now();
        assert!(rustcrypto_verify(&phc, "correct horse battery staple"));
        reference.push(start.elapsed());
    }
    (percentile(&mut ours, 0.5), percentile(&mut reference, 0.5))
}

/// T: bare verifications per second with one thread per core.
fn bare_throughput(duration: Duration) -> f64 {
    let phc = Arc::new(bare_hash("pw"));
    let deadline = Instant::now() + duration;
    let handles: Vec<_> = (0..cores())
        .map(|_| {
            let phc = Arc::clone(&phc);
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    bare_verify(&phc, "pw");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / duration.as_secs_f64()
}

/// The naive baseline: argon2 right on the async worker that runs the request.
struct InlineHasher {
    dummy: String,
}

#[async_trait]
impl CredentialHasher for InlineHasher {
    async fn hash(&self, password: SecretString) -> Result<HashedPassword, HashError> {
        Ok(HashedPassword::from_phc(bare_hash(
            password.expose_secret(),
        )))
    }

    async fn verify(
        &self,
        password: SecretString,
        stored: Option<HashedPassword>,
    ) -> Result<Verification, HashError> {
        Ok(match stored {
            Some(stored) if bare_verify(stored.as_phc(), password.expose_secret()) => {
                Verification::Match { rehash: false }
            }
            Some(_) => Verification::Mismatch,
            None => {
                bare_verify(&self.dummy, password.expose_secret());
                Verification::Mismatch
            }
        })
    }
}

/// Throttles off: the benchmark logs in many times a second on purpose.
fn bench_config() -> AuthConfig {
    let open = Limit::new(u32::MAX, Duration::from_secs(1));
    let mut config = AuthConfig::new(Links::new("https://portal.example.org"));
    config.login_per_cabinet = open;
    config.login_per_cabinet_and_client = open;
    config.login_per_client = open;
    // Setting up reads each letter right after its step.
    config.delivery.in_request = true;
    config
}

/// Recovery requests, known and unknown emails alternating, as the examples run them: the
/// letter queued for the delivery worker (none runs here: the queue only grows), limits
/// open. Medians: (registered, unknown).
async fn recovery_timing(setup: &Setup, samples: usize) -> (Duration, Duration) {
    let open = Limit::new(u32::MAX, Duration::from_secs(1));
    let mut config = bench_config();
    config.delivery.in_request = false;
    config.recovery_per_email = open;
    config.letters_per_address_daily = open;
    config.letter_resend_interval = Duration::ZERO;
    let service = AuthService::new(setup.service.ports().clone(), config);
    let context = RequestContext::default();
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let start = Instant::now();
        service
            .request_recovery(&email(i % CABINETS), &context)
            .await
            .unwrap();
        known.push(start.elapsed());
        let start = Instant::now();
        service
            .request_recovery(&format!("nobody{i}@example.org"), &context)
            .await
            .unwrap();
        unknown.push(start.elapsed());
    }
    (percentile(&mut known, 0.5), percentile(&mut unknown, 0.5))
}

/// Medians of logins with no subscriber and with one that formats every span and event
/// at `info` (the residents' events among them) to nowhere, and of bare verifications,
/// all alternating: (plain, traced, bare).
async fn traced_login_latency(setup: &Setup, samples: usize) -> (Duration, Duration, Duration) {
    use tracing::instrument::WithSubscriber as _;
    let phc = bare_hash("pw");
    let (mut plain, mut traced, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..samples {
        let start = Instant::now();
        login(setup, i).await;
        plain.push(start.elapsed());
        let subscriber = tracing_subscriber::fmt()
            .with_writer(std::io::sink)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let start = Instant::now();
        login(setup, i).with_subscriber(subscriber).await;
        traced.push(start.elapsed());
        let start = Instant::now();
        bare_verify(&phc, "pw");
        bare.push(start.elapsed());
    }
    (
        percentile(&mut plain, 0.5),
        percentile(&mut traced, 0.5),
        percentile(&mut bare, 0.5),
    )
}

struct Setup {
    service: AuthService,
    passwords: Vec<SecretString>,
}

async fn setup(
    store: Arc<dyn Store>,
    directory: Arc<dyn AccountDirectory>,
    hasher: Arc<dyn CredentialHasher>,
) -> Setup {
    let mailer = RecordingMailer::new();
    let service = AuthService::new(
        Ports::new(
            store,
            directory,
            Arc::new(mailer.clone()),
            hasher,
            Arc::new(SystemClock),
        ),
        bench_config(),
    );
    let mut passwords = Vec::new();
    for i in 0..CABINETS {
        passwords.push(activated_cabinet(&service, &mailer, i).await);
    }
    Setup { service, passwords }
}

async fn memory_setup(hasher: Arc<dyn CredentialHasher>) -> Setup {
    let directory = MemoryDirectory::from_csv(&directory(CABINETS)).unwrap();
    setup(Arc::new(MemoryStore::new()), Arc::new(directory), hasher).await
}

async fn login(setup: &Setup, i: usize) {
    let i = i % CABINETS;
    setup
        .service
        .login(
            &email(i),
            setup.passwords[i].clone(),
            &RequestContext::default(),
        )
        .await
        .unwrap();
}

/// Medians of unloaded logins and of bare verifications, taken alternately so that the
/// machine's drift hits both alike: (login, bare).
async fn login_latency(setup: &Setup, samples: usize) -> (Duration, Duration) {
    let phc = bare_hash("pw");
    let (mut logins, mut bare) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let start = Instant::now();
        login(setup, i).await;
        logins.push(start.elapsed());
        let start = Instant::now();
        bare_verify(&phc, "pw");
        bare.push(start.elapsed());
    }
    (percentile(&mut logins, 0.5), percentile(&mut bare, 0.5))
}

/// Logins per second with `clients` concurrent clients for `duration`.
async fn saturated(setup: &Arc<Setup>, clients: usize, duration: Duration) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let setup = Arc::clone(setup);
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut i = c;
                while Instant::now() < deadline {
                    login(&setup, i).await;
                    done.fetch_add(1, Ordering::Relaxed);
                    i += clients;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / duration.as_secs_f64()
}

/// p99 of a session check every 2 ms while `clients` logins run.
async fn probe_during_load(
    setup: &Arc<Setup>,
    clients: usize,
    duration: Duration,
) -> (Duration, Duration) {
    let session = setup
        .service
        .login(
            &email(0),
            setup.passwords[0].clone(),
            &RequestContext::default(),
        )
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let stop = Arc::new(AtomicBool::new(false));
    let load: Vec<_> = (0..clients)
        .map(|c| {
            let setup = Arc::clone(setup);
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut i = c + 1;
                while !stop.load(Ordering::Relaxed) {
                    login(&setup, i).await;
                    i += clients;
                    // Each login stands for one request: a server runs it as a task of
                    // its own, so the worker moves on between requests.
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    // The probe is a request like the others: a task on the same runtime's workers.
    let probe_setup = Arc::clone(setup);
    let probe = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut times = Vec::new();
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            // A request "arrives" every 2 ms; its latency runs from arrival to answer, so
            // time spent waiting for a free worker counts.
            let arrival = tokio::time::Instant::now() + Duration::from_millis(2);
            tokio::time::sleep_until(arrival).await;
            probe_setup.service.authenticate(&session).await.unwrap();
            times.push(arrival.elapsed());
        }
        times
    });
    let mut times = probe.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let p50 = percentile(&mut times, 0.5);
    (p50, percentile(&mut times, 0.99))
}

/// Median times of a wrong password and of an unknown email, alternating.
async fn enumeration(setup: &Setup, samples: usize) -> (Duration, Duration) {
    let context = RequestContext::default();
    let (mut wrong, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..samples {
        let start = Instant::now();
        let _ = setup
            .service
            .login(&email(i % CABINETS), SecretString::from("wrong"), &context)
            .await;
        wrong.push(start.elapsed());
        let start = Instant::now();
        let _ = setup
            .service
            .login(
                &format!("nobody{i}@example.org"),
                SecretString::from("wrong"),
                &context,
            )
            .await;
        unknown.push(start.elapsed());
    }
    (percentile(&mut wrong, 0.5), percentile(&mut unknown, 0.5))
}

fn vm_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Child-process mode: 50 concurrent logins for 3 s, then print peak RSS growth in KiB.
async fn peak_memory_child() {
    let setup =
        Arc::new(memory_setup(Arc::new(Argon2Hasher::new(HashParams::default()).unwrap())).await);
    let before = vm_kib("VmRSS:");
    saturated(&setup, 50, Duration::from_secs(3)).await;
    println!("{} {}", vm_kib("VmHWM:"), before);
}

fn peak_memory() -> (u64, u64) {
    let output = Command::new(std::env::current_exe().unwrap())
        .arg("--peak-memory-child")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text
        .split_whitespace()
        .map(|n| n.parse::<u64>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

fn row(figure: &str, value: String, target: &str, limit: &str) {
    println!("| {figure} | {value} | {target} | {limit} |");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--peak-memory-child") {
        peak_memory_child().await;
        return;
    }
    let params = HashParams::default();
    let cores = cores();
    println!(
        "cores: {cores}; argon2id m={} KiB, t={}, p={}; build: {}",
        params.m_cost,
        params.t_cost,
        params.p_cost,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!();
    println!("| figure | measured | target | what limits it |");
    println!("|---|---|---|---|");

    if args.iter().any(|a| a == "--recovery-only") {
        let setup = memory_setup(Arc::new(Argon2Hasher::new(params).unwrap())).await;
        let (known, unknown) = recovery_timing(&setup, 2000).await;
        println!(
            "recovery registered ÷ unknown (in memory): {:.3} ({:.2} µs ÷ {:.2} µs)",
            ms(known) / ms(unknown),
            ms(known) * 1000.0,
            ms(unknown) * 1000.0
        );
        return;
    }
    let (h, reference) = bare_latency(25);
    let t = bare_throughput(Duration::from_secs(4));
    row(
        &format!(
            "H: bare argon2id verify (RustCrypto argon2, pooled memory), 1 thread, {} core",
            Argon2Hasher::core()
        ),
        format!("{:.2} ms", ms(h)),
        "—",
        "argon2 itself",
    );
    row(
        "H (pooled memory, wiped) ÷ argon2's allocating verify (alternating samples)",
        format!(
            "{:.3} ({:.2} ms ÷ {:.2} ms)",
            ms(h) / ms(reference),
            ms(h),
            ms(reference)
        ),
        "—",
        "19 MiB allocated per run against kept and wiped",
    );
    row(
        "T: bare verifies/s, all cores",
        format!("{t:.1}/s ({:.1}/s per core)", t / cores as f64),
        "—",
        "cores × 1/H",
    );

    let pooled = Arc::new(memory_setup(Arc::new(Argon2Hasher::new(params).unwrap())).await);
    let (latency, h_alongside) = login_latency(&pooled, 40).await;
    row(
        "login latency in memory ÷ H (alternating samples)",
        format!(
            "{:.3} ({:.2} ms ÷ {:.2} ms)",
            ms(latency) / ms(h_alongside),
            ms(latency),
            ms(h_alongside)
        ),
        "≤ 1.05",
        "one argon2 verify + 3 store calls + a channel hop",
    );
    for clients in [cores, 50] {
        let rate = saturated(&pooled, clients, Duration::from_secs(5)).await;
        row(
            &format!("saturated logins/s in memory ÷ T, {clients} clients"),
            format!(
                "{:.3} ({rate:.1}/s, {:.1}/s per core)",
                rate / t,
                rate / cores as f64
            ),
            "≥ 0.90",
            "the hashing pool: one worker per core",
        );
    }
    let (wrong, unknown) = enumeration(&pooled, 40).await;
    row(
        "unknown-email ÷ wrong-password login time",
        format!("{:.3}", ms(unknown) / ms(wrong)),
        "0.95–1.05",
        "the same argon2 work and store calls by design",
    );
    let (known, unknown) = recovery_timing(&pooled, 2000).await;
    row(
        "recovery request, registered ÷ unknown email (in memory)",
        format!(
            "{:.3} ({:.1} µs ÷ {:.1} µs)",
            ms(known) / ms(unknown),
            ms(known) * 1000.0,
            ms(unknown) * 1000.0
        ),
        "0.95–1.05",
        "the same work by design: a token, a sealed letter, one conditional write",
    );
    let (plain, traced, bare) = traced_login_latency(&pooled, 40).await;
    row(
        "login ÷ H with every span and event formatted (info), vs without",
        format!(
            "{:.3} vs {:.3} ({:.2} ms, {:.2} ms, H {:.2} ms)",
            ms(traced) / ms(bare),
            ms(plain) / ms(bare),
            ms(traced),
            ms(plain),
            ms(bare)
        ),
        "unchanged within noise",
        "a span, an event and three store calls per login",
    );

    let (probe_p50, probe_p99) = probe_during_load(&pooled, 50, Duration::from_secs(4)).await;
    row(
        "session check p99 while 50 logins saturate (pool)",
        format!("{:.2} ms (p50 {:.2} ms)", ms(probe_p99), ms(probe_p50)),
        "≤ 5 ms",
        "async workers stay free: argon2 runs on its own threads",
    );
    let inline = Arc::new(
        memory_setup(Arc::new(InlineHasher {
            dummy: bare_hash("dummy"),
        }))
        .await,
    );
    let (naive_p50, naive_p99) = probe_during_load(&inline, 50, Duration::from_secs(4)).await;
    row(
        "same, naive baseline (argon2 on the async worker)",
        format!("{:.2} ms (p50 {:.2} ms)", ms(naive_p99), ms(naive_p50)),
        "—",
        "requests queue behind hashing",
    );

    let (peak, baseline) = peak_memory();
    let limit = 4 * cores as u64 * u64::from(params.m_cost);
    row(
        "peak RSS growth with 50 concurrent logins",
        format!(
            "{:.1} MiB (peak {:.1} MiB, before {:.1} MiB)",
            (peak.saturating_sub(baseline)) as f64 / 1024.0,
            peak as f64 / 1024.0,
            baseline as f64 / 1024.0
        ),
        &format!("≤ {:.0} MiB (4 × cores × m)", limit as f64 / 1024.0),
        "hash memory allocated once per worker",
    );
    println!();
    println!("Keycloak's published sizing: 15 password logins/s per vCPU; ours above, per core.");

    if args.iter().any(|a| a == "--sqlite") {
        sqlite(t).await;
    }
    if args.iter().any(|a| a == "--postgres") {
        postgres(t).await;
    }
}
