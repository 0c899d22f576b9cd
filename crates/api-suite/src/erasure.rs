//! What the files keep and what a crash or a cancelled change leaves behind
//! (docs/security.md, "What the files keep"; journey 12's "это был не я").

use super::*;

/// The server's own files other than the outbox: the SQLite database, its log and shared
/// memory, the mail queue's key.
fn files_at_rest(server: &Server) -> Vec<(PathBuf, Vec<u8>)> {
    std::fs::read_dir(server._dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap_or_default();
            (path, bytes)
        })
        .collect()
}

fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

/// Where `needle` is found among the server's files, and how often.
fn found(server: &Server, needle: &str) -> Vec<(PathBuf, usize)> {
    files_at_rest(server)
        .into_iter()
        .map(|(path, bytes)| (path, occurrences(&bytes, needle.as_bytes())))
        .filter(|(_, count)| *count > 0)
        .collect()
}

/// Closing a cabinet on the default SQLite file leaves no byte of the resident's email —
/// nor of the new address of a change under way — in the database file or its
/// write-ahead log, at once and after the portal stops (Ctrl-C / SIGTERM), which leaves no
/// log behind. The outbox folder and its letters are owner-only. Before: the email 24
/// times in the file and ~500 in its log two seconds after the close.
pub async fn an_erased_cabinet_leaves_nothing_in_the_files(binary: &str) {
    const ERASED: &str = "erased.resident@example.org";
    const MOVING_TO: &str = "moving.resident@example.org";
    let mut server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", ERASED, "12").await;
    let session = login(&server, ERASED, &password).await;
    ask_email_change(&server, &session, MOVING_TO, &password).await;
    assert!(!found(&server, ERASED).is_empty(), "the scan sees the rows");
    close_cabinet(&server, &session, &password).await;
    for address in [ERASED, MOVING_TO] {
        assert_eq!(
            found(&server, address),
            [],
            "{address} is still in the files after the close"
        );
    }
    server.stop().await;
    for address in [ERASED, MOVING_TO] {
        assert_eq!(found(&server, address), [], "{address} after the stop");
    }
    let log = server._dir.path().join("resident-auth.db-wal");
    assert!(
        std::fs::metadata(&log).map_or(true, |log| log.len() == 0),
        "the stopped portal left a write-ahead log"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&server.outbox), 0o700, "the outbox is owner-only");
    for letter in std::fs::read_dir(&server.outbox).unwrap() {
        let letter = letter.unwrap().path();
        assert_eq!(mode(&letter), 0o600, "{}", letter.display());
    }
    assert_eq!(mode(&server._dir.path().join("resident-auth.db")), 0o600);
}

/// "Это был не я": asking for a change of address needs the current password, so a change
/// the owner cancels means someone else has it. The cancel retires that password — it no
/// longer signs in — and new credentials go to the address in force; every session ends.
/// Before, the thief's password kept working.
pub async fn cancelling_an_email_change_retires_the_password(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let thief = login(&server, RESIDENT, &password).await;
    ask_email_change(&server, &thief, "thief@example.org", &password).await;
    let cancel = server.link_token("Смена e-mail");
    let (status, body, _) = server
        .post("/api/email/cancel", json!({"token": cancel}), None)
        .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, _) = server.get("/api/session", Some(&thief)).await;
    assert_eq!(status, 401, "every session ended");
    let (status, body, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": password}),
            None,
        )
        .await;
    assert_eq!(
        status, 401,
        "the password that asked for the change: {body}"
    );
    let mailed = server.password();
    assert_ne!(
        mailed, password,
        "new credentials went to the address in force"
    );
    login(&server, RESIDENT, &mailed).await;
    let (status, _, _) = server
        .post("/api/email/cancel", json!({"token": cancel}), None)
        .await;
    assert_eq!(status, 422, "the cancel link is single-use");
    let (status, _, _) = server
        .post(
            "/api/login",
            json!({"email": "thief@example.org", "password": mailed}),
            None,
        )
        .await;
    assert_eq!(status, 401, "the cancelled address is no login");
}

/// The key file of the mail queue deleted while letters wait sealed under it: the portal
/// made a new key and the letters died unsent at the next round, though residents had
/// been answered 202. Now it refuses to start, naming the file, how many letters wait
/// and the way out; `GIVE_UP_SEALED_LETTERS=1` gives them up once and says how many.
pub async fn a_lost_key_file_is_refused_while_letters_wait(binary: &str) {
    let mut server = Server::start(binary, &[]).await;
    // Letters cannot leave: the outbox path is a file, so each one waits for a retry.
    let outbox = server._dir.path().join("blocked-outbox");
    std::fs::write(&outbox, b"").unwrap();
    server
        .extra
        .push(("OUTBOX_DIR".to_owned(), outbox.display().to_string()));
    server.restart().await;
    let (status, body) = register(&server, "7800000000001", RESIDENT).await;
    assert_eq!(status, 202, "{body}");
    server.kill().await;
    let key = server._dir.path().join("resident-auth.db.mail-queue-key");
    std::fs::remove_file(&key).unwrap();
    let said = refused_start(binary, server._dir.path(), &server.extra).await;
    assert!(
        said.contains("1 letters wait") && said.contains("mail-queue-key"),
        "the refusal names the count and the file: {said}"
    );
    assert!(said.contains("GIVE_UP_SEALED_LETTERS=1"), "{said}");
    // The operator gives them up, once, on purpose; the banner says how many.
    let mut giving_up = server.extra.clone();
    giving_up.push(("GIVE_UP_SEALED_LETTERS".to_owned(), "1".to_owned()));
    let mut child = command(binary, server._dir.path(), &giving_up)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("Listening on ") {
                return;
            }
            banner.push(line);
        }
        panic!("exited before listening: {banner:?}");
    })
    .await
    .expect("started within 30 s");
    assert!(
        banner.iter().any(|line| line.contains("1 of 1 letters")),
        "{banner:?}"
    );
    child.kill().await.unwrap();
    // With them given up, a plain start is a start again.
    server.restart().await;
    let (status, _, _) = server.get("/api/session", None).await;
    assert_eq!(status, 401);
}

/// Two portals on one SQLite file (docs/operating.md says it is supported): a resident
/// registered through one signs in through the other, and a session opened on one is
/// live on the other and ended there for both.
///
/// The second one logs at `info` to a pipe, as a service manager's journal or a log file
/// receives it: plain text, no terminal colour codes (before: `\x1b[` in every line).
pub async fn two_portals_share_one_sqlite_file(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let mut logging = server.extra.clone();
    logging.push(("RUST_LOG".to_owned(), "info".to_owned()));
    let mut second = command(binary, server._dir.path(), &logging)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(second.stdout.take().unwrap()).lines();
    let other = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(address) = line.strip_prefix("Listening on ") {
                return format!("http://{}", address.trim());
            }
        }
        panic!("the second portal exited before listening");
    })
    .await
    .expect("the second portal started within 30 s");
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let on_the_other = |path: &str| server.client.post(format!("{other}{path}"));
    // A recovery letter asked for on the second portal is written (and logged) there.
    let response = on_the_other("/api/recovery")
        .json(&json!({"email": RESIDENT}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let response = on_the_other("/api/login")
        .json(&json!({"email": RESIDENT, "password": password}))
        .send()
        .await
        .unwrap();
    let (status, body, _) = read(response).await;
    assert_eq!(
        status, 200,
        "registered on one, signed in on the other: {body}"
    );
    let session = body["session_token"].as_str().unwrap().to_owned();
    let (status, body, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(status, 200, "{body}");
    let response = on_the_other("/api/logout")
        .bearer_auth(&session)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let (status, _, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(status, 401, "ended on one, ended for both");
    second.kill().await.unwrap();
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut second.stderr.take().unwrap(), &mut log)
        .await
        .unwrap();
    assert!(log.contains("letter written to the outbox"), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour codes in a log that is no terminal: {log:?}"
    );
}

/// Look-alike addresses are one address: `ｃased@example.org` (a fullwidth `ｃ`) is
/// `cased@example.org`, so it can neither open a second cabinet beside it nor become
/// another cabinet's login by an email change. Before, both passed.
pub async fn look_alike_emails_are_the_address_they_look_like(binary: &str) {
    let server = Server::start(binary, &[]).await;
    activate(&server, "7800000000001", "cased@example.org", "12").await;
    let (status, body) = register(&server, "7800000000002", "\u{ff43}ased@example.org").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(codes(&body), ["registration.already_registered"]);
    let password = activate(&server, "7800000000002", "other@example.org", "123/456П").await;
    let session = login(&server, "other@example.org", &password).await;
    let (status, body, _) = server
        .post(
            "/api/cabinet/email",
            json!({"email": "c\u{ff41}sed@example.org", "current_password": password}),
            Some(&session),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(codes(&body), ["email_change.email_taken"]);
    // The look-alike signs in as the address it looks like.
    let (status, body, _) = server
        .post(
            "/api/login/identify",
            json!({"email": "\u{ff43}ased@example.org"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["email"], "cased@example.org");
}
