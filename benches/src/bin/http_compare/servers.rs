//! Starting the servers compared (ours, the peer, the no-op ceilings), reading the letters ours sends, and the instances-on-Redis comparison.

use super::*;

pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub(super) async fn wait_until_up(base: &str, path: &str) {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client.get(format!("{base}{path}")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not come up");
}

/// gunicorn workers for this machine: the documented 2 × cores + 1 (argon2-cffi releases
/// the GIL, but each sync worker serves one request at a time).
pub(super) fn peer_workers() -> usize {
    2 * cores() + 1
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

pub(super) async fn start_peer(options: &Options, env: &[(&str, String)], users: usize) -> Server {
    let python = options.venv.join("bin/python");
    let run = |args: Vec<String>| {
        let mut command = std::process::Command::new(&python);
        command.current_dir(&options.peer).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        let status = command.status().expect("the peer's python");
        assert!(status.success(), "peer set-up failed");
    };
    run(vec!["manage.py".into(), "migrate".into(), "-v0".into()]);
    run(vec![
        "manage.py".into(),
        "seed_residents".into(),
        users.to_string(),
        PEER_PASSWORD.into(),
    ]);
    let port = free_port();
    let mut command = Command::new(options.venv.join("bin/gunicorn"));
    command
        .current_dir(&options.peer)
        .args([
            "-w",
            &peer_workers().to_string(),
            "-b",
            &format!("127.0.0.1:{port}"),
        ])
        .args(["--log-level", "warning", "peer.wsgi"])
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().expect("gunicorn");
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base, "/noop").await;
    Server {
        base,
        _child: child,
    }
}

/// The no-op ceiling of axum: this binary again, serving `GET /noop` in its own process.
pub(super) async fn start_noop_axum() -> Server {
    let port = free_port();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--serve-noop", &port.to_string()])
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base, "/noop").await;
    Server {
        base,
        _child: child,
    }
}

pub(super) fn serve_noop(port: u16) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let app = axum::Router::new().route("/noop", axum::routing::get(|| async { "" }));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        axum::serve(listener, app).await.unwrap();
    });
}

/// The token (`token=…`) or password (`Пароль: …`) in the latest letter of `kind` to
/// `email` in `outbox`, waiting for it to arrive.
pub(super) async fn from_letter(outbox: &Path, kind: &str, email: &str) -> String {
    // Letters are named `<time>-<seq>-<kind>-<hash>.eml`, the recipient only inside.
    let marker = format!("-{}-", kind.replace('-', "_"));
    let to = format!("To: {email}\r\n");
    for _ in 0..400 {
        let mut names: Vec<PathBuf> = std::fs::read_dir(outbox)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                    .filter(|p| p.to_string_lossy().contains(&marker))
                    .filter(|p| {
                        std::fs::read(p)
                            .is_ok_and(|raw| raw.windows(to.len()).any(|w| w == to.as_bytes()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        if let Some(path) = names.last() {
            let raw = std::fs::read(path).unwrap();
            let mail = mailparse::parse_mail(&raw).unwrap();
            let text = mail
                .subparts
                .iter()
                .find(|p| p.ctype.mimetype == "text/plain")
                .map(|p| p.get_body().unwrap())
                .unwrap_or_default();
            let found = text.lines().find_map(|line| {
                line.split_once("token=")
                    .map(|(_, token)| token.trim().to_owned())
                    .or_else(|| line.strip_prefix("Пароль: ").map(|p| p.trim().to_owned()))
            });
            if let Some(found) = found {
                return found;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no {kind} letter to {email}");
}

/// `--instances N --redis URL`: N instances of ours on one PostgreSQL database behind this
/// driver, with their sessions and counters in PostgreSQL, then in Redis; the axum no-op
/// ceiling measured between them.
pub(super) async fn instances_on_redis(options: &Options, redis: &str, residents: usize) {
    let noop = start_noop_axum().await;
    let noop_load = |noop: String| {
        let target = Target::new(Kind::Ours, noop);
        saturate(options.clients, options.seconds, move |_, _| {
            let target = target.clone();
            async move { target.noop().await }
        })
    };
    let alone_db = api_suite::services::fresh_database().await;
    let alone = ours_spread(options, Some(&alone_db), residents, options.instances, &[]).await;
    let ceiling_between = noop_load(noop.base.clone()).await;
    let redis_db = api_suite::services::fresh_database().await;
    let prefix = format!("bench-{}", std::process::id());
    let extra = [("REDIS_URL", redis.to_owned()), ("REDIS_PREFIX", prefix)];
    let with_redis = ours_spread(
        options,
        Some(&redis_db),
        residents,
        options.instances,
        &extra,
    )
    .await;
    let ceiling_after = noop_load(noop.base.clone()).await;
    let ceiling = (ceiling_between.per_second + ceiling_after.per_second) / 2.0;
    println!(
        "\n{} instances of ours on one PostgreSQL database, {} clients spread over them in turn",
        options.instances, options.clients
    );
    println!("\n| storage | logins/s | session checks/s | session p50 | session p99 |");
    println!("|---|---|---|---|---|");
    for (name, f) in [("PostgreSQL", &alone), ("PostgreSQL + Redis", &with_redis)] {
        println!(
            "| {name} | {:.1} | {:.0} | {} | {} |",
            f.logins.per_second,
            f.sessions.per_second,
            ms(f.sessions.p50),
            ms(f.sessions.p99)
        );
    }
    println!("| axum no-op ceiling (one process; mean of two runs) | — | {ceiling:.0} | — | — |");
    println!("\n| ratio | value | target |");
    println!("|---|---|---|");
    println!(
        "| session checks/s PostgreSQL + Redis ÷ PostgreSQL alone | {:.2} | ≥ 3 |",
        with_redis.sessions.per_second / alone.sessions.per_second
    );
    println!(
        "| session checks/s PostgreSQL + Redis ÷ no-op ceiling | {:.2} | ≥ 0.5 |",
        with_redis.sessions.per_second / ceiling
    );
    println!(
        "| logins/s PostgreSQL + Redis ÷ PostgreSQL alone | {:.3} | 1 within noise |",
        with_redis.logins.per_second / alone.logins.per_second
    );
}

/// A server process, killed on drop.
pub(crate) struct Server {
    pub(crate) base: String,
    _child: Child,
}

pub(crate) async fn start_ours(
    binary: &Path,
    scratch: &Path,
    directory: &Path,
    outbox: &Path,
    database: Option<&str>,
    extra: &[(&str, String)],
) -> Server {
    let mut command = Command::new(binary);
    command
        .env_clear()
        // Whatever the portal writes (the default SQLite file, its key file) stays in the
        // scratch folder, removed with it: nothing is left in the checkout.
        .current_dir(scratch)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SQLITE_PATH", scratch.join("resident-auth.db"))
        .env("BIND", "127.0.0.1:0")
        .env("REGISTRY_CSV", directory)
        .env("OUTBOX_DIR", outbox)
        .env("TRUSTED_PROXIES", "127.0.0.1")
        .env("RUST_LOG", "error")
        // The driver reads each letter right after the step that queued it.
        .env("MAIL_DELIVERY", "in-request")
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = database {
        command
            .env("DATABASE_URL", url)
            .env("MAIL_QUEUE_KEY", api_suite::MAIL_QUEUE_KEY);
    }
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start our portal");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(address) = line.strip_prefix("Listening on ") {
                return address.trim().to_owned();
            }
        }
        panic!("our portal exited before listening");
    })
    .await
    .expect("our portal listens within 60 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Server {
        base: format!("http://{address}"),
        _child: child,
    }
}
