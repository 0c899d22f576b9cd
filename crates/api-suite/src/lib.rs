//! One black-box test suite of the JSON API (docs/contract.md §5), run against every example.
//!
//! It starts the example's binary on 127.0.0.1 with the embedded default (a SQLite file
//! and letters in a temporary directory of its own), talks HTTP to it, and reads letters from the
//! outbox as a resident would. An example runs the whole suite with one line:
//!
//! ```ignore
//! api_suite::api_tests!(env!("CARGO_BIN_EXE_portal-axum"));
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::missing_panics_doc
)]

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

pub mod services;

/// Generates one `#[tokio::test]` per suite check against `$binary`.
#[macro_export]
macro_rules! api_tests {
    ($binary:expr) => {
        $crate::api_tests!(@checks $binary;
            full_journey_with_two_addresses,
            the_default_keeps_residents_across_a_restart,
            letters_link_to_the_hosts_own_routes,
            registration_errors,
            login_errors_and_throttling,
            session_errors,
            recovery,
            english_messages_and_unknown_paths,
            the_hosts_own_endpoint_is_guarded_by_the_extractor,
            the_operators_api_needs_a_token_and_stays_apart,
            the_operators_api_on_postgres_and_smtp,
            schemathesis_on_the_operators_api,
            a_mail_outage_never_reaches_the_answers,
            letters_wait_out_a_mail_outage_on_postgres_and_smtp,
            a_killed_instance_leaves_its_letters_to_the_next,
            two_instances_deliver_each_letter_once,
            two_instances_share_sessions_and_limits_on_redis,
            metrics_are_served_apart_and_tell_no_registration,
            slow_clients_are_cut_off_and_others_still_answered,
            framework_refusals_are_problem_json,
            only_json_bodies_are_read,
            forwarded_clients_count_only_behind_trusted_proxies,
            openapi_document_matches_the_routes,
            password_change_and_sessions,
            residents_download_their_data_and_close_the_cabinet,
            an_erased_cabinet_leaves_nothing_in_the_files,
            cancelling_an_email_change_retires_the_password,
            a_lost_key_file_is_refused_while_letters_wait,
            two_portals_share_one_sqlite_file,
            look_alike_emails_are_the_address_they_look_like,
            a_database_outage_is_answered_at_once_and_recovered_from,
            temporary_passwords_must_be_changed,
            schemathesis_finds_nothing,
            journeys_on_postgres_and_smtp,
            schemathesis_on_postgres_and_smtp,
            every_documented_status_is_reached
        );
    };
    (@checks $binary:expr; $($check:ident),+) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::$check($binary).await;
            }
        )+
    };
}

/// The HTML pages' checks ([`pages`]) and the browser walk ([`browser`]) against `$binary`,
/// one `#[tokio::test]` each.
#[macro_export]
macro_rules! pages_tests {
    ($binary:expr) => {
        $crate::pages_tests!(@checks $binary;
            pages::pages_set_http_only_same_site_cookies_and_security_headers,
            pages::cookies_are_secure_when_the_portal_is_served_over_https,
            pages::every_answer_says_nosniff_and_pages_restrict_base_and_form_targets,
            pages::forms_without_the_matching_csrf_token_are_refused,
            pages::login_issues_a_fresh_session_whatever_cookie_came_with_it_and_logout_ends_it,
            pages::the_language_switch_returns_only_to_known_pages,
            pages::following_a_link_twice_consumes_nothing_and_the_link_still_works,
            pages::every_form_refuses_a_missing_forged_or_foreign_csrf_token,
            pages::the_password_and_sessions_pages_work_with_their_forms,
            pages::bodies_over_the_limit_are_refused_with_a_page,
            pages::the_data_page_downloads_the_data_and_closes_the_cabinet,
            pages::the_email_pages_change_confirm_and_cancel,
            browser::a_resident_walks_the_whole_guide_in_chromium
        );
    };
    (@checks $binary:expr; $($module:ident :: $check:ident),+) => {
        $(
            #[tokio::test]
            async fn $check() {
                $crate::$module::$check($binary).await;
            }
        )+
    };
}

pub mod browser;
mod contract;
mod edges;
mod erasure;
mod instances;
mod journeys;
mod mail;
mod operators;
mod outage;
pub mod pages;
mod settings;

pub use contract::*;
pub use edges::*;
pub use erasure::*;
pub use instances::*;
pub use journeys::*;
pub use mail::*;
pub use operators::*;
pub use outage::*;
pub use settings::*;

/// The mail queue key of the checks on PostgreSQL (32 bytes, base64).
pub const MAIL_QUEUE_KEY: &str = "W+GnW7ovu4+pLcpFJ0PaV7gPF+26mTSjS/eVsQfLjUM=";

/// A running example binary.
pub struct Server {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Where the binary writes letters.
    pub outbox: PathBuf,
    /// An HTTP client for the calls.
    pub client: Client,
    _child: Child,
    _dir: tempfile::TempDir,
    _smtp: Option<services::SmtpSink>,
    /// The database's URL, when the server runs on PostgreSQL.
    pub database: Option<String>,
    /// `http://127.0.0.1:<port>` of the operators' API, when `ADMIN_BIND` was given.
    pub admin: Option<String>,
    binary: String,
    extra: Vec<(String, String)>,
}

/// Spawns `binary` with its files in `dir` (outbox, SQLite file) and `extra` variables;
/// waits until it listens: the child, the base URL, the operators' API's URL.
pub(crate) async fn spawn(
    binary: &str,
    dir: &Path,
    extra: &[(String, String)],
) -> (Child, String, Option<String>) {
    let mut child = command(binary, dir, extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("start {binary}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut admin = None;
    let listening = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(address) = line.strip_prefix("Admin listening on ") {
                admin = Some(format!("http://{}", address.trim()));
            }
            if let Some(address) = line.strip_prefix("Listening on ") {
                return address.trim().to_owned();
            }
        }
        panic!("{binary} exited before listening");
    })
    .await
    .expect("the example did not start within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, format!("http://{listening}"), admin)
}

/// Runs `binary` as [`command`] does and expects it to refuse to start: exit code 2
/// within a minute (a pool's wait included). What it said on stderr.
pub(crate) async fn refused_start(binary: &str, dir: &Path, extra: &[(String, String)]) -> String {
    let refused = tokio::time::timeout(
        Duration::from_secs(60),
        command(binary, dir, extra).kill_on_drop(true).output(),
    )
    .await
    .expect("the example refuses to start within a minute, not serve")
    .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert_eq!(refused.status.code(), Some(2), "{said}");
    said
}

/// The command that runs `binary` with its files in `dir` and `extra` variables (over the
/// suite's defaults), its environment otherwise empty.
pub(crate) fn command(binary: &str, dir: &Path, extra: &[(String, String)]) -> Command {
    let mut command = Command::new(binary);
    // Port 0: the example binds a free port itself and says which; no other test can
    // take it between a pick and a bind.
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND", "127.0.0.1:0")
        .env("OUTBOX_DIR", dir.join("outbox"))
        // The embedded default, a SQLite file, in this server's own directory.
        .env("SQLITE_PATH", dir.join("resident-auth.db"))
        .env("ARGON2_TEST_PARAMS", "1")
        .env("RUST_LOG", "warn")
        // The checks read each letter right after the step that queued it; the mail
        // queue's own checks ask for `worker` (the default) instead.
        .env("MAIL_DELIVERY", "in-request");
    for (name, value) in extra {
        command.env(name, value);
    }
    command
}

impl Server {
    /// Starts `binary` on a free port with the embedded default and `extra` variables.
    pub async fn start(binary: &str, extra: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let (child, base, admin) = spawn(binary, dir.path(), &extra).await;
        Self {
            base,
            outbox,
            client: Client::builder()
                .timeout(Duration::from_secs(30))
                // The server closes a connection idle for its head timeout (10 s by
                // default, 2 s in one edge test): a pooled connection must never be
                // reused near that moment, or the request races the close.
                .pool_idle_timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
            _child: child,
            _dir: dir,
            _smtp: None,
            database: None,
            admin,
            binary: binary.to_owned(),
            extra,
        }
    }

    /// Kills the example (SIGKILL) and starts it again on the same files and variables: a
    /// crash and a restart. The address changes (a new free port).
    pub async fn restart(&mut self) {
        self.kill().await;
        let (child, base, admin) = spawn(&self.binary, self._dir.path(), &self.extra).await;
        self._child = child;
        self.base = base;
        self.admin = admin;
    }

    /// Starts `binary` on the real services: a fresh PostgreSQL database (`DATABASE_URL`,
    /// migrated and given the demo directory by the example itself) and an SMTP server
    /// (`SMTP_URL`), whose received letters [`Server::letters`] reads.
    pub async fn start_on_services(binary: &str, extra: &[(&str, String)]) -> Self {
        let database = services::fresh_database().await;
        let smtp = services::SmtpSink::start().await;
        let mut variables = vec![
            ("DATABASE_URL", database.clone()),
            ("SMTP_URL", smtp.url.clone()),
            ("MAIL_QUEUE_KEY", MAIL_QUEUE_KEY.to_owned()),
        ];
        variables.extend(extra.iter().cloned());
        let mut server = Self::start(binary, &variables).await;
        server.outbox = smtp.maildir.clone();
        server._smtp = Some(smtp);
        server.database = Some(database);
        server
    }

    /// Asks the example to stop (SIGTERM, as a service manager or Ctrl-C does) and waits
    /// until it has exited.
    pub async fn stop(&mut self) {
        let pid = self._child.id().expect("the example runs");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(40), self._child.wait())
            .await
            .expect("the example stops within 40 s")
            .unwrap();
        assert!(
            status.success(),
            "a stop on request is a clean exit: {status}"
        );
    }

    /// Kills the example at once (SIGKILL: no shutdown, no flushing) and waits for it.
    pub async fn kill(&mut self) {
        self._child.kill().await.unwrap();
    }

    /// POSTs JSON (optionally with a bearer token): status, body, `Retry-After`.
    pub async fn post(
        &self,
        path: &str,
        body: Value,
        bearer: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        read(request.send().await.unwrap()).await
    }

    /// POSTs a raw body with an `Accept-Language`.
    pub async fn post_raw(
        &self,
        path: &str,
        body: &'static str,
        language: &str,
    ) -> (StatusCode, Value, Option<String>) {
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("accept-language", language)
            .body(body);
        read(request.send().await.unwrap()).await
    }

    /// DELETEs (optionally with a bearer token).
    pub async fn delete(
        &self,
        path: &str,
        bearer: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        self.without_body(reqwest::Method::DELETE, path, bearer)
            .await
    }

    /// GETs (optionally with a bearer token).
    pub async fn get(
        &self,
        path: &str,
        bearer: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        self.without_body(reqwest::Method::GET, path, bearer).await
    }

    async fn without_body(
        &self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
    ) -> (StatusCode, Value, Option<String>) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        read(request.send().await.unwrap()).await
    }

    /// Every letter in the outbox, oldest first, as (subject, text part).
    pub fn letters(&self) -> Vec<(String, String)> {
        letters_in(&self.outbox)
    }

    /// The token of the newest letter with `subject`.
    pub fn link_token(&self, subject: &str) -> String {
        let text = self.newest(subject);
        let start = text.find("token=").expect("a link") + "token=".len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }

    /// The password of the newest "Данные для входа" letter.
    pub fn password(&self) -> String {
        let text = self.newest("Данные для входа");
        text.lines()
            .find_map(|l| l.strip_prefix("Пароль: "))
            .expect("a password line")
            .to_owned()
    }

    /// The text of the newest letter with `subject`.
    pub fn newest(&self, subject: &str) -> String {
        self.letters()
            .into_iter()
            .rev()
            .find(|(s, _)| s == subject)
            .unwrap_or_else(|| panic!("no letter {subject:?} in the outbox"))
            .1
    }
}

/// The letters of an outbox folder as (decoded subject, text part), oldest first.
#[must_use]
pub fn letters_in(outbox: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|file| {
            let raw = std::fs::read(file).unwrap();
            let mail = mailparse::parse_mail(&raw).unwrap();
            use mailparse::MailHeaderMap;
            let subject = mail.headers.get_first_value("Subject").unwrap_or_default();
            let text = mail
                .subparts
                .iter()
                .find(|p| p.ctype.mimetype == "text/plain")
                .map(|p| p.get_body().unwrap())
                .unwrap_or_default();
            (subject, text)
        })
        .collect()
}

pub(crate) async fn read(response: reqwest::Response) -> (StatusCode, Value, Option<String>) {
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body, retry_after)
}

pub(crate) fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("an error body: {body}"))
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) const RESIDENT: &str = "resident@example.org";

pub(crate) fn registration(account: &str, email: &str) -> Value {
    json!({"surname": "Иванов", "account_number": account, "email": email})
}

/// Asks to register `account` for `email` (as Иванов): the answer's status and body.
pub(crate) async fn register(server: &Server, account: &str, email: &str) -> (StatusCode, Value) {
    let (status, body, _) = server
        .post("/api/registrations", registration(account, email), None)
        .await;
    (status, body)
}

/// Registers, confirms and activates `account` for `email`; returns the password.
pub async fn activate(server: &Server, account: &str, email: &str, premises: &str) -> String {
    let (status, body) = register(server, account, email).await;
    assert_eq!(status, 202, "{body}");
    let token = server.link_token("Подтверждение e-mail");
    let (status, body, _) = server
        .post("/api/registrations/confirm", json!({"token": token}), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let activation = body["activation_token"].as_str().unwrap().to_owned();
    let (status, body, _) = server
        .post(
            "/api/registrations/activate",
            json!({"activation_token": activation, "premises": premises}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.password()
}

/// Asks, in `session`, for the cabinet's email to become `email` (journey 12): 202.
pub(crate) async fn ask_email_change(server: &Server, session: &str, email: &str, password: &str) {
    let (status, body, _) = server
        .post(
            "/api/cabinet/email",
            json!({"email": email, "current_password": password}),
            Some(session),
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

/// Closes the session's cabinet, confirmed (journey 11): 204 and the farewell letter.
pub(crate) async fn close_cabinet(server: &Server, session: &str, password: &str) {
    let (status, body, _) = server
        .post(
            "/api/cabinet/close",
            json!({"current_password": password, "confirm": true}),
            Some(session),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(server.newest("Личный кабинет закрыт").contains("закрыт"));
}

pub(crate) async fn login(server: &Server, email: &str, password: &str) -> String {
    let (status, body, _) = server
        .post(
            "/api/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["session_token"].as_str().unwrap().to_owned()
}
