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
pub mod pages;

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
async fn spawn(
    binary: &str,
    dir: &Path,
    extra: &[(String, String)],
) -> (Child, String, Option<String>) {
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
        .env("MAIL_DELIVERY", "in-request")
        .stdout(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command
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

async fn read(response: reqwest::Response) -> (StatusCode, Value, Option<String>) {
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

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("an error body: {body}"))
        .iter()
        .map(|e| e["code"].as_str().unwrap().to_owned())
        .collect()
}

const RESIDENT: &str = "resident@example.org";

fn registration(account: &str, email: &str) -> Value {
    json!({"surname": "Иванов", "account_number": account, "email": email})
}

/// Asks to register `account` for `email` (as Иванов): the answer's status and body.
async fn register(server: &Server, account: &str, email: &str) -> (StatusCode, Value) {
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

async fn login(server: &Server, email: &str, password: &str) -> String {
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

/// Journeys 1–5 and 7 through every success status of the API.
pub async fn full_journey_with_two_addresses(binary: &str) {
    full_journey(&Server::start(binary, &[]).await).await;
}

/// The embedded default is a SQLite file: a resident activated before a crash (SIGKILL)
/// logs in after the restart, with the mailed password and the session opened before it.
pub async fn the_default_keeps_residents_across_a_restart(binary: &str) {
    let mut server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let session = login(&server, RESIDENT, &password).await;
    server.restart().await;
    let (status, body, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(status, 200, "the session outlives the restart: {body}");
    login(&server, RESIDENT, &password).await;
    let (status, body) = register(&server, "7800000000001", "someone-else@example.org").await;
    assert_eq!(status, 409, "the account is still taken: {body}");
}

/// An API-only host points letters at its own front end (`CONFIRMATION_LINK`,
/// `RECOVERY_LINK`): each letter's link is the host's route with the token, and the token
/// works through the API as the library's own link would.
pub async fn letters_link_to_the_hosts_own_routes(binary: &str) {
    let front_end = "http://localhost:5173/#";
    let server = Server::start(
        binary,
        &[
            (
                "CONFIRMATION_LINK",
                format!("{front_end}/confirm/{{token}}"),
            ),
            (
                "RECOVERY_LINK",
                format!("{front_end}/reset?t={{token}}&lang=ru"),
            ),
        ],
    )
    .await;
    let token_after = |subject: &str, prefix: &str| {
        let text = server.newest(subject);
        let start = text
            .find(prefix)
            .unwrap_or_else(|| panic!("{prefix} in {text}"))
            + prefix.len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect::<String>()
    };
    let (status, body) = register(&server, "7800000000001", RESIDENT).await;
    assert_eq!(status, 202, "{body}");
    let token = token_after("Подтверждение e-mail", &format!("{front_end}/confirm/"));
    assert_eq!(token.len(), 43);
    let (status, body, _) = server
        .post("/api/registrations/confirm", json!({"token": token}), None)
        .await;
    assert_eq!(
        status, 200,
        "the host's route hands the token to the API: {body}"
    );
    let activation = body["activation_token"].as_str().unwrap().to_owned();
    let (status, body, _) = server
        .post(
            "/api/registrations/activate",
            json!({"activation_token": activation, "premises": "12"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = server
        .post("/api/recovery", json!({"email": RESIDENT}), None)
        .await;
    assert_eq!(status, 202, "{body}");
    let token = token_after("Восстановление пароля", &format!("{front_end}/reset?t="));
    assert!(server
        .newest("Восстановление пароля")
        .contains(&format!("{token}&lang=ru")));
    let (status, body, _) = server
        .post("/api/recovery/complete", json!({"token": token}), None)
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The journeys (1–9) and schemathesis' defects, on PostgreSQL and SMTP: the example's own
/// connect, migrate, directory import and send paths.
pub async fn journeys_on_postgres_and_smtp(binary: &str) {
    full_journey(&Server::start_on_services(binary, &[]).await).await;
    password_change_and_sessions_on(&Server::start_on_services(binary, &[]).await).await;
}

/// Schemathesis against the example on PostgreSQL and SMTP.
pub async fn schemathesis_on_postgres_and_smtp(binary: &str) {
    schemathesis_on(&Server::start_on_services(binary, &[]).await).await;
}

async fn full_journey(server: &Server) {
    let (status, body, _) = server
        .post(
            "/api/registrations",
            registration("78 0000 0000 001", " Resident@Example.org"),
            None,
        )
        .await;
    assert_eq!((status, &body), (StatusCode::ACCEPTED, &Value::Null));
    let letters = server.letters();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].0, "Подтверждение e-mail");
    let token = server.link_token("Подтверждение e-mail");
    let (status, body, _) = server
        .post("/api/registrations/confirm", json!({"token": token}), None)
        .await;
    assert_eq!(status, 200);
    let activation = body["activation_token"].as_str().unwrap().to_owned();
    let (status, body, _) = server
        .post("/api/registrations/confirm", json!({"token": token}), None)
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["link.invalid".to_owned()]),
        "single use"
    );

    let (status, body, _) = server
        .post(
            "/api/registrations/activate",
            json!({"activation_token": activation, "premises": "13"}),
            None,
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["code"], "activation.wrong_premises");
    assert_eq!(body["errors"][0]["field"], "premises");
    let (status, body, _) = server
        .post(
            "/api/registrations/activate",
            json!({"activation_token": activation, "premises": "12А"}),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["premises.unknown_letter".to_owned()])
    );
    let (status, _, _) = server
        .post(
            "/api/registrations/activate",
            json!({"activation_token": activation, "premises": " 12 "}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let password = server.password();
    assert!(server
        .letters()
        .iter()
        .any(|(_, text)| text.lines().any(|l| l == format!("Логин: {RESIDENT}"))));

    let (status, body, _) = server
        .post(
            "/api/login/identify",
            json!({"email": " RESIDENT@example.org"}),
            None,
        )
        .await;
    assert_eq!((status, &body["email"]), (StatusCode::OK, &json!(RESIDENT)));
    let session = login(server, RESIDENT, &password).await;
    let (status, body, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(status, 200);
    assert_eq!(body["email"], RESIDENT);
    assert_eq!(body["active_account"], "7800000000001");
    assert_eq!(body["accounts"][0]["account_number"], "7800000000001");
    assert_eq!(body["accounts"][0]["premises"], "12");
    assert!(body["accounts"][0]["address"]
        .as_str()
        .unwrap()
        .contains("Садовая"));

    let (status, body, _) = server
        .post(
            "/api/session/active-account",
            json!({"account_number": "7800000000002"}),
            Some(&session),
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["session.account_not_linked".to_owned()])
    );
    let (status, _, _) = server
        .post(
            "/api/addresses",
            json!({"surname": "Иванова", "account_number": "7800000000002"}),
            Some(&session),
        )
        .await;
    assert_eq!(status, 202);
    let token = server.link_token("Подтверждение e-mail");
    let (_, body, _) = server
        .post("/api/registrations/confirm", json!({"token": token}), None)
        .await;
    let activation = body["activation_token"].as_str().unwrap().to_owned();
    let (status, _, _) = server
        .post(
            "/api/registrations/activate",
            json!({"activation_token": activation, "premises": "123/456п"}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(status, 401, "new credentials end the old sessions");
    let (status, _, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": password}),
            None,
        )
        .await;
    assert_eq!(status, 401, "the old password stopped working");

    let session = login(server, RESIDENT, &server.password()).await;
    let (_, body, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(body["accounts"].as_array().unwrap().len(), 2);
    let (status, body, _) = server
        .post(
            "/api/session/active-account",
            json!({"account_number": "7800000000002"}),
            Some(&session),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, body, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(body["active_account"], "7800000000002");
    let (status, body, _) = server
        .post("/api/logout", Value::Null, Some(&session))
        .await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(status, 401);
}

/// 422 with every field error together, malformed bodies, 409, unserved regions.
pub async fn registration_errors(binary: &str) {
    let server = Server::start(binary, &[("SERVED_REGIONS", "78".to_owned())]).await;
    let (status, body, _) = server
        .post("/api/registrations", json!({"surname": "Иванов И.И.", "account_number": "780000", "email": "a b@example.org"}), None)
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        codes(&body),
        [
            "surname.initials",
            "account_number.wrong_length",
            "email.whitespace"
        ]
    );
    assert_eq!(body["errors"][0]["field"], "surname");
    assert_eq!(
        body["errors"][0]["message"],
        "Фамилия вводится без инициалов"
    );
    let (status, body, _) = server
        .post(
            "/api/registrations",
            registration("4700000000005", RESIDENT),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["account.region_not_served".to_owned()])
    );
    let (status, body, _) = server
        .post(
            "/api/registrations",
            registration("7899999999999", RESIDENT),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["registration.account_not_found".to_owned()])
    );
    let (status, body, _) = server
        .post_raw("/api/registrations", "{not json", "ru")
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["request.malformed".to_owned()])
    );
    let (status, body, _) = server
        .post_raw("/api/registrations", "{\"surname\": \"Иванов\"}", "ru")
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["request.malformed".to_owned()])
    );

    activate(&server, "7800000000001", RESIDENT, "12").await;
    let (status, body, _) = server
        .post(
            "/api/registrations",
            registration("7800000000002", RESIDENT),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (409, vec!["registration.already_registered".to_owned()])
    );
    assert!(body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("Пользователь уже зарегистрирован"));
    let (status, _, _) = server
        .post(
            "/api/registrations",
            registration("7800000000001", "other@example.org"),
            None,
        )
        .await;
    assert_eq!(status, 409);
    let (status, body, retry) = server
        .post(
            "/api/registrations",
            registration("7800000000002", "other@example.org"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let (status, body, retry_again) = server
        .post(
            "/api/registrations",
            registration("7800000000002", "other@example.org"),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (429, vec!["request.too_many".to_owned()])
    );
    assert!(retry.is_none());
    assert!(retry_again.unwrap().parse::<u64>().unwrap() > 0);
}

/// 422 "Некорректные данные", identical 401s, 429 with Retry-After.
pub async fn login_errors_and_throttling(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let (status, body, _) = server
        .post(
            "/api/login/identify",
            json!({"email": " resident example.org"}),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["login.incorrect_data".to_owned()])
    );
    assert_eq!(body["errors"][0]["message"], "Некорректные данные");
    let (status, body, _) = server
        .post(
            "/api/login/identify",
            json!({"email": "nobody@example.org"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "identify never reveals registration: {body}");
    let (wrong_status, wrong, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": "wrong"}),
            None,
        )
        .await;
    let (unknown_status, unknown, _) = server
        .post(
            "/api/login",
            json!({"email": "nobody@example.org", "password": "wrong"}),
            None,
        )
        .await;
    assert_eq!(
        (wrong_status, unknown_status),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(
        wrong, unknown,
        "the same answer for a wrong password and an unknown email"
    );
    assert_eq!(
        wrong["errors"][0]["message"],
        "Неверное имя пользователя или пароль"
    );
    for _ in 0..4 {
        server
            .post(
                "/api/login",
                json!({"email": RESIDENT, "password": "wrong"}),
                None,
            )
            .await;
    }
    let (status, body, retry_after) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": password}),
            None,
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (429, vec!["login.throttled".to_owned()])
    );
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=900).contains(&seconds), "{seconds}");
}

/// 401 for a missing, malformed or ended session on every bearer endpoint.
pub async fn session_errors(binary: &str) {
    let server = Server::start(binary, &[]).await;
    for bearer in [
        None,
        Some("garbage"),
        Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let (status, body, _) = server.get("/api/session", bearer).await;
        assert_eq!(
            (status.as_u16(), codes(&body)),
            (401, vec!["session.invalid".to_owned()])
        );
        let (status, _, _) = server
            .post(
                "/api/session/active-account",
                json!({"account_number": "7800000000001"}),
                bearer,
            )
            .await;
        assert_eq!(status, 401);
        let (status, _, _) = server.post("/api/logout", Value::Null, bearer).await;
        assert_eq!(status, 401);
        let (status, _, _) = server
            .post(
                "/api/addresses",
                json!({"surname": "Иванов", "account_number": "7800000000002"}),
                bearer,
            )
            .await;
        assert_eq!(status, 401);
    }
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let session = login(&server, RESIDENT, &password).await;
    let (status, body, _) = server
        .post(
            "/api/addresses",
            json!({"surname": "Иванов", "account_number": "7800000000001"}),
            Some(&session),
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (409, vec!["registration.already_registered".to_owned()])
    );
    let (status, body, _) = server
        .post(
            "/api/addresses",
            json!({"surname": "", "account_number": "x"}),
            Some(&session),
        )
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (
            422,
            vec![
                "surname.empty".to_owned(),
                "account_number.non_digit".to_owned()
            ]
        )
    );
}

/// 202 always; a new password by link; single use; 429 after three requests.
pub async fn recovery(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let old = activate(&server, "7800000000001", RESIDENT, "12").await;
    let (status, body, _) = server
        .post(
            "/api/recovery",
            json!({"email": "nobody@example.org"}),
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::ACCEPTED, Value::Null));
    let before = server.letters().len();
    let (status, _, _) = server
        .post("/api/recovery", json!({"email": RESIDENT}), None)
        .await;
    assert_eq!(status, 202);
    assert_eq!(server.letters().len(), before + 1);
    let token = server.link_token("Восстановление пароля");
    let (status, body, _) = server
        .post("/api/recovery/complete", json!({"token": token}), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let new = server.password();
    assert_ne!(new, old);
    let (status, _, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": old}),
            None,
        )
        .await;
    assert_eq!(status, 401);
    login(&server, RESIDENT, &new).await;
    let (status, body, _) = server
        .post("/api/recovery/complete", json!({"token": token}), None)
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (422, vec!["link.invalid".to_owned()])
    );
    for _ in 0..2 {
        server
            .post("/api/recovery", json!({"email": RESIDENT}), None)
            .await;
    }
    let (status, _, retry_after) = server
        .post("/api/recovery", json!({"email": RESIDENT}), None)
        .await;
    assert_eq!(status, 429);
    assert!(retry_after.is_some());
    let (status, body, _) = server
        .post("/api/recovery", json!({"email": "not an email"}), None)
        .await;
    assert_eq!(status, 422, "{body}");
}

/// `Accept-Language: en` answers in English; unknown API paths are 404 JSON.
pub async fn english_messages_and_unknown_paths(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let (status, body, _) = server
        .post_raw(
            "/api/login/identify",
            "{\"email\": \"bad email\"}",
            "en-GB,en;q=0.9",
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["message"], "Incorrect data");
    let (status, body, _) = server.get("/api/nothing-here", None).await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (404, vec!["request.not_found".to_owned()])
    );
}

/// The example's own endpoint, `GET /bills`, guarded by the integration's `Resident`
/// extractor: 401 problem JSON (in the language of the `lang` cookie, which both examples
/// honour) without a session, the selected account's address with a bearer token or the
/// session cookie.
pub async fn the_hosts_own_endpoint_is_guarded_by_the_extractor(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let bills = |header: Option<(&'static str, String)>| {
        let mut request = server.client.get(format!("{}/bills", server.base));
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move { read(request.send().await.unwrap()).await }
    };
    let (status, body, _) = bills(Some(("cookie", "lang=en".to_owned()))).await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (401, vec!["session.invalid".to_owned()])
    );
    assert_eq!(
        body["errors"][0]["message"], "Your session has ended. Please log in again",
        "{body}"
    );
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let token = login(&server, RESIDENT, &password).await;
    for header in [
        ("authorization", format!("Bearer {token}")),
        ("cookie", format!("session={token}")),
    ] {
        let (status, body, _) = bills(Some(header)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["account_number"], "7800000000001");
        assert!(
            body["address"].as_str().unwrap().contains("Садовая"),
            "{body}"
        );
    }
    let (status, _, _) = bills(Some(("authorization", format!("Basic {token}")))).await;
    assert_eq!(status, 401, "another scheme");
}

/// An operator's token and the `ADMIN_*` variables that admit it on a listener of its own.
fn operator_variables() -> (String, Vec<(&'static str, String)>) {
    let operator = "maria".parse().unwrap();
    let (token, line) = resident_auth_http::admin_api::OperatorTokens::issue(&operator);
    let variables = vec![
        ("ADMIN_BIND", "127.0.0.1:0".to_owned()),
        ("ADMIN_OPERATORS", line),
    ];
    (token, variables)
}

/// The operators' API (docs/operating.md): only on its own listener, only with an
/// operator token; find, unlock, end sessions, export, unlink (refused for the last
/// account), erase, each answering as documented.
pub async fn the_operators_api_needs_a_token_and_stays_apart(binary: &str) {
    let (token, variables) = operator_variables();
    operators_api_on(&Server::start(binary, &variables).await, &token).await;
}

/// The same on the real services: PostgreSQL (its audit table checked) and SMTP.
pub async fn the_operators_api_on_postgres_and_smtp(binary: &str) {
    let (token, variables) = operator_variables();
    let server = Server::start_on_services(binary, &variables).await;
    operators_api_on(&server, &token).await;
    let pool = sqlx::PgPool::connect(server.database.as_deref().unwrap())
        .await
        .unwrap();
    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT operator, action FROM resident_auth.audit ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let actions: Vec<&str> = actions
        .iter()
        .map(|(operator, action)| {
            assert_eq!(operator, "maria");
            action.as_str()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "find",
            "resend_confirmation",
            "find",
            "clear_locks",
            "export",
            "end_sessions",
            "erase",
            "find"
        ],
        "every lookup and every change, in order"
    );
}

async fn operators_api_on(server: &Server, token: &str) {
    let token = token.to_owned();
    let admin = server
        .admin
        .clone()
        .expect("the example announces the admin listener");
    let call = |method: reqwest::Method, path: &str, bearer: Option<&str>| {
        let mut request = server
            .client
            .request(method, format!("{admin}/admin{path}"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move { read(request.send().await.unwrap()).await }
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    for bearer in [None, Some("not-a-token"), Some(token.get(1..).unwrap())] {
        let (status, body, _) = call(get.clone(), &format!("/cabinets/{RESIDENT}"), bearer).await;
        assert_eq!(
            (status.as_u16(), codes(&body)),
            (401, vec!["admin.unauthorized".to_owned()])
        );
    }
    let operator_token = token.clone();
    let token = Some(token.as_str());
    let (status, _, _) = call(get.clone(), "/cabinets/780000000000", token).await;
    assert_eq!(status, 422, "a 12-digit account");
    let (status, _, _) = call(get.clone(), &format!("/cabinets/{RESIDENT}"), token).await;
    assert_eq!(status, 404);
    // "The letter never came": a pending registration's letter again, past the cooldown.
    let petrova = json!({"surname": "Петрова", "account_number": "7800000000003", "email": "petrova@example.org"});
    assert_eq!(
        server.post("/api/registrations", petrova, None).await.0,
        202
    );
    let before = server.letters().len();
    let (status, sent, _) = call(post.clone(), "/cabinets/7800000000003/resend", token).await;
    assert_eq!((status.as_u16(), &sent["changed"]), (200, &json!(1)));
    let arrived = wait_for_letters(server, before + 1).await;
    assert!(arrived, "the resent confirmation letter arrived");
    let password = activate(server, "7800000000001", RESIDENT, "12").await;
    let session = login(server, RESIDENT, &password).await;
    let (status, found, _) = call(get.clone(), "/cabinets/7800000000001", token).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["cabinet"]["email"], RESIDENT);
    assert_eq!(found["cabinet"]["sessions"], 1);
    let (status, _, _) = call(post.clone(), &format!("/cabinets/{RESIDENT}/unlock"), token).await;
    assert_eq!(status, 200);
    let (status, export, _) =
        call(get.clone(), &format!("/cabinets/{RESIDENT}/export"), token).await;
    assert_eq!(
        (status.as_u16(), &export["cabinet"]["email"]),
        (200, &json!(RESIDENT))
    );
    let (status, ended, _) = call(
        post.clone(),
        &format!("/cabinets/{RESIDENT}/end-sessions"),
        token,
    )
    .await;
    assert_eq!((status.as_u16(), &ended["changed"]), (200, &json!(1)));
    assert_eq!(server.get("/api/session", Some(&session)).await.0, 401);
    let (status, body, _) = call(post.clone(), "/accounts/7800000000001/unlink", token).await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (409, vec!["admin.refused".to_owned()])
    );
    let (status, erased, _) = call(
        reqwest::Method::DELETE,
        &format!("/cabinets/{RESIDENT}"),
        token,
    )
    .await;
    assert_eq!((status.as_u16(), &erased["cabinets"]), (200, &json!(1)));
    let (status, _, _) = call(get.clone(), &format!("/cabinets/{RESIDENT}"), token).await;
    assert_eq!(status, 404, "erased");
    // Not on the residents' listener, whatever the path.
    for path in [
        format!("/admin/cabinets/{RESIDENT}"),
        format!("/api/admin/cabinets/{RESIDENT}"),
    ] {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .bearer_auth(&operator_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // And the erased account registers again.
    activate(server, "7800000000001", RESIDENT, "12").await;
}

/// Waits (bounded) until `count` letters have arrived.
async fn wait_for_letters(server: &Server, count: usize) -> bool {
    for _ in 0..100 {
        if server.letters().len() >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// schemathesis against the operators' API document, with an operator's token.
pub async fn schemathesis_on_the_operators_api(binary: &str) {
    let (token, variables) = operator_variables();
    let server = Server::start(binary, &variables).await;
    activate(&server, "7800000000001", RESIDENT, "12").await;
    let admin = server.admin.clone().unwrap();
    schemathesis(&format!("{admin}/admin/openapi.json"), &token, &[]).await;
}

/// A body any web page can send cross-site without a CORS preflight (`text/plain`, form
/// encodings, none at all) is refused with 415 before anything happens: no letter.
pub async fn only_json_bodies_are_read(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let client = reqwest::Client::new();
    let registration =
        r#"{"surname":"Иванов","account_number":"7800000000001","email":"victim@example.org"}"#;
    for (path, body) in [
        ("/api/registrations", registration),
        ("/api/recovery", r#"{"email":"victim@example.org"}"#),
    ] {
        for content_type in [
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
            None,
        ] {
            let mut request = client.post(format!("{}{path}", server.base)).body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let (status, answer, _) = read(request.send().await.unwrap()).await;
            assert_eq!(status, 415, "{path} {content_type:?}: {answer}");
            assert_eq!(codes(&answer), ["request.unsupported_media_type"]);
        }
    }
    assert!(server.letters().is_empty(), "no letter for a refused body");
    for path in ["/api/openapi.json", "/api/session"] {
        let response = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "every answer: {path}"
        );
    }
    // The same body as JSON (with a charset parameter) is read.
    let (status, _, _) = read(
        client
            .post(format!("{}/api/registrations", server.base))
            .header("content-type", "Application/JSON; charset=utf-8")
            .body(registration)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202);
}

/// Per-client limits key a client by its socket address, and read `X-Forwarded-For` only
/// from a trusted proxy, keying IPv6 clients by their /64: rotating addresses inside one
/// /64 does not get past the registration limit (20 an hour per client), and a forged
/// header from an untrusted peer changes nothing.
pub async fn forwarded_clients_count_only_behind_trusted_proxies(binary: &str) {
    let registration = |server: &Server, client: String| {
        let request = server
            .client
            .post(format!("{}/api/registrations", server.base))
            .header("x-forwarded-for", client)
            .json(&json!({"surname": "Петров", "account_number": "7800000000009", "email": "x@example.org"}));
        async move { read(request.send().await.unwrap()).await.0 }
    };
    let behind_proxy =
        Server::start(binary, &[("TRUSTED_PROXIES", "127.0.0.1/32".to_owned())]).await;
    for n in 1..=20 {
        let status = registration(&behind_proxy, format!("2001:db8:1:1::{n:x}")).await;
        assert_eq!(status, 422, "try {n} counted and answered");
    }
    let status = registration(&behind_proxy, "2001:db8:1:1:ffff::1".to_owned()).await;
    assert_eq!(
        status, 429,
        "another address of the same /64 is the same client"
    );
    let status = registration(&behind_proxy, "2001:db8:1:2::1".to_owned()).await;
    assert_eq!(status, 422, "another /64 is another client");

    let direct = Server::start(binary, &[]).await;
    for n in 1..=20 {
        let status = registration(&direct, format!("198.51.100.{n}")).await;
        assert_eq!(status, 422, "try {n}");
    }
    let status = registration(&direct, "203.0.113.1".to_owned()).await;
    assert_eq!(
        status, 429,
        "a forged X-Forwarded-For from an untrusted peer is ignored"
    );
}

/// The mail server is down (nothing listens at `SMTP_URL`): registration and recovery
/// answer as usual — the letters wait in the queue — and nothing asks to retry.
pub async fn a_mail_outage_never_reaches_the_answers(binary: &str) {
    let closed = services::free_port();
    let smtp = format!("smtp://127.0.0.1:{closed}?tls=none&timeout=2");
    let server = Server::start(binary, &[("SMTP_URL", smtp)]).await;
    let (status, body) = register(&server, "7800000000001", RESIDENT).await;
    assert_eq!(status, 202, "{body}");
    let (status, body, _) = server
        .post(
            "/api/recovery",
            json!({"email": "someone@example.org"}),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
}

/// The letters queued for `to` in the database at `url`: (kind, status, attempts, the
/// letter opened with the checks' key while it is queued).
async fn queued_letters(
    pool: &sqlx::PgPool,
    to: &str,
) -> Vec<(String, String, i32, Option<resident_auth::letters::Letter>)> {
    let keys = resident_auth::MailQueueKeys::new(MAIL_QUEUE_KEY.parse().unwrap());
    type Row = (Vec<u8>, String, String, i32, Option<Vec<u8>>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, kind, status, attempts, sealed FROM resident_auth.letters
          WHERE recipient = $1 ORDER BY queued_at",
    )
    .bind(to)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, kind, status, attempts, sealed)| {
            let id = resident_auth::mail_queue::LetterId::from_bytes(id.try_into().unwrap());
            let letter = sealed.map(|sealed| {
                keys.open(
                    &id,
                    &resident_auth::mail_queue::SealedLetter::from_bytes(sealed),
                )
                .unwrap()
            });
            (kind, status, attempts, letter)
        })
        .collect()
}

/// The newest queued letter of `kind` to `to`, opened.
async fn queued(pool: &sqlx::PgPool, to: &str, kind: &str) -> resident_auth::letters::Letter {
    queued_letters(pool, to)
        .await
        .into_iter()
        .rev()
        .find(|(k, status, _, _)| k == kind && status == "queued")
        .and_then(|(_, _, _, letter)| letter)
        .unwrap_or_else(|| panic!("no queued {kind} letter to {to}"))
}

/// Waits (bounded) until `maildir` holds `count` letters.
async fn wait_for_mail(maildir: &Path, count: usize) -> Vec<(String, String)> {
    for _ in 0..300 {
        let letters = letters_in(maildir);
        if letters.len() >= count {
            return letters;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{count} letters did not arrive in 30 s: {:?}",
        letters_in(maildir)
    );
}

fn queue_variables(database: &str, smtp_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", database.to_owned()),
        (
            "SMTP_URL",
            format!("smtp://127.0.0.1:{smtp_port}?tls=none&timeout=2"),
        ),
        ("MAIL_QUEUE_KEY", MAIL_QUEUE_KEY.to_owned()),
        ("MAIL_DELIVERY", "worker".to_owned()),
        ("MAIL_RETRY_FIRST_MS", "200".to_owned()),
        // A letter claimed by an instance killed mid-delivery is due again after this.
        ("MAIL_CLAIM_SECONDS", "3".to_owned()),
    ]
}

/// The mail server is down for a whole journey — register, confirm, activate, log in,
/// recover — on PostgreSQL, with the delivery worker: every answer is as usual; the
/// letters wait in the queue (read here with the key, as the resident would read them
/// later), and no column holds a token or a password in clear meanwhile. When the server
/// comes up, every letter arrives, each once; a 4xx recipient is retried, a 5xx one is a
/// dead letter.
pub async fn letters_wait_out_a_mail_outage_on_postgres_and_smtp(binary: &str) {
    let database = services::fresh_database().await;
    let port = services::free_port();
    let server = Server::start(binary, &queue_variables(&database, port)).await;
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    let post = |path: &'static str, body: Value| server.post(path, body, None);
    let (status, body, _) = post(
        "/api/registrations",
        registration("7800000000001", RESIDENT),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let letter = queued(&pool, RESIDENT, "confirm_email").await;
    let confirmation = resident_auth::memory::link_token(&letter).unwrap();
    let (status, body, _) =
        post("/api/registrations/confirm", json!({"token": confirmation})).await;
    assert_eq!(status, 200, "{body}");
    let activation = body["activation_token"].as_str().unwrap().to_owned();
    let (status, body, _) = post(
        "/api/registrations/activate",
        json!({"activation_token": activation, "premises": "12"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let letter = queued(&pool, RESIDENT, "credentials").await;
    let password = resident_auth::memory::mailed_password(&letter).unwrap();
    use resident_auth::secrecy::ExposeSecret as _;
    let password = password.expose_secret().to_owned();
    login(&server, RESIDENT, &password).await;
    let (status, body, _) = post("/api/recovery", json!({"email": RESIDENT})).await;
    assert_eq!(status, 202, "{body}");
    let letter = queued(&pool, RESIDENT, "recover_password").await;
    let recovery = resident_auth::memory::link_token(&letter).unwrap();
    // A recipient the server will answer 451 (retried) and one it will answer 550 (dead).
    for (account, email) in [
        ("7800000000003", "busy-1@example.org"),
        ("7800000000004", "reject-1@example.org"),
    ] {
        let body = json!({"surname": if account.ends_with('3') { "Петрова" } else { "Семёнов" },
                          "account_number": account, "email": email});
        let (status, answer, _) = post("/api/registrations", body).await;
        assert_eq!(status, 202, "{answer}");
    }
    // While they wait: no column holds a token, a link or the password in clear.
    for secret in [&confirmation, &recovery, &password] {
        assert_eq!(
            services::columns_mentioning(&pool, secret).await,
            Vec::<String>::new(),
            "a secret of a queued letter is stored in clear"
        );
    }
    let waiting = queued_letters(&pool, RESIDENT).await;
    assert_eq!(waiting.len(), 3);
    assert!(waiting
        .iter()
        .all(|(_, status, attempts, _)| status == "queued" && *attempts >= 1));
    // The mail server comes up on the port the portal was told of.
    let smtp = services::SmtpSink::start_on(Some(port)).await;
    let arrived = wait_for_mail(&smtp.maildir, 3).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrived_later = letters_in(&smtp.maildir);
    assert_eq!(arrived_later.len(), arrived.len(), "a letter arrived twice");
    let subjects: Vec<&str> = arrived_later.iter().map(|(s, _)| s.as_str()).collect();
    for subject in ["Данные для входа", "Восстановление пароля"] {
        assert_eq!(
            subjects.iter().filter(|s| **s == subject).count(),
            1,
            "{subjects:?}"
        );
    }
    // The resident's confirmation, and the 451 recipient's is not among them.
    assert_eq!(
        subjects
            .iter()
            .filter(|s| **s == "Подтверждение e-mail")
            .count(),
        1,
        "{subjects:?}"
    );
    let after: Vec<_> = queued_letters(&pool, RESIDENT).await;
    assert!(after
        .iter()
        .all(|(_, status, _, letter)| status == "sent" && letter.is_none()));
    let busy = queued_letters(&pool, "busy-1@example.org").await;
    assert_eq!(busy[0].1, "queued", "a 4xx answer is retried");
    assert!(busy[0].2 >= 2, "{busy:?}");
    let rejected = queued_letters(&pool, "reject-1@example.org").await;
    assert_eq!(rejected[0].1, "dead", "a 5xx answer makes a dead letter");
    assert!(rejected[0].3.is_none(), "a dead letter keeps no content");
    // The residents' events are in the table, by kind, without the email.
    let events: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT kind, outcome, account_number FROM resident_auth.events ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for kind in [
        "registered",
        "confirmed",
        "activated",
        "login_succeeded",
        "recovery_requested",
        "letter_dead",
    ] {
        assert!(
            events.iter().any(|(k, _, _)| k == kind),
            "no {kind} event: {events:?}"
        );
    }
    assert!(events.iter().any(|(k, outcome, account)| k == "registered"
        && outcome == "succeeded"
        && account.as_deref() == Some("7800000000001")));
    assert_eq!(
        services::columns_mentioning(&pool, RESIDENT)
            .await
            .iter()
            .filter(|column| column.starts_with("events."))
            .count(),
        0,
        "an event names the resident's email"
    );
    // The links work: the recovery link issues a new password, mailed.
    let (status, body, _) = post("/api/recovery/complete", json!({"token": recovery})).await;
    assert!(status == 200 || status == 202, "{status} {body}");
}

/// An instance is killed (SIGKILL) with letters in the queue while the mail server is
/// down; another instance, started later on the same database with the key rotated,
/// delivers them.
pub async fn a_killed_instance_leaves_its_letters_to_the_next(binary: &str) {
    let database = services::fresh_database().await;
    let port = services::free_port();
    let mut first = Server::start(binary, &queue_variables(&database, port)).await;
    let (status, body) = register(&first, "7800000000001", RESIDENT).await;
    assert_eq!(status, 202, "{body}");
    first.kill().await;
    let smtp = services::SmtpSink::start_on(Some(port)).await;
    // The next instance comes up with the key rotated: a new MAIL_QUEUE_KEY, the old one
    // kept as MAIL_QUEUE_OLD_KEY to open what it sealed.
    let mut rotated = queue_variables(&database, port);
    rotated.retain(|(name, _)| *name != "MAIL_QUEUE_KEY");
    rotated.push((
        "MAIL_QUEUE_KEY",
        "iCdSOmvhJI/UgTWr4mYF8He6urVlPzejyJ1oiSvU+zQ=".to_owned(),
    ));
    rotated.push(("MAIL_QUEUE_OLD_KEY", MAIL_QUEUE_KEY.to_owned()));
    let _second = Server::start(binary, &rotated).await;
    let arrived = wait_for_mail(&smtp.maildir, 1).await;
    assert_eq!(arrived[0].0, "Подтверждение e-mail");
}

/// Two instances on one database deliver 200 queued letters: each arrives exactly once.
pub async fn two_instances_deliver_each_letter_once(binary: &str) {
    use resident_auth::{ports::Expected, ports::LinkStore as _};
    const LETTERS: usize = 200;
    let database = services::fresh_database().await;
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    resident_auth_postgres::migrate(&pool).await.unwrap();
    let store = resident_auth_postgres::PgStore::new(pool.clone());
    let keys = resident_auth::MailQueueKeys::new(MAIL_QUEUE_KEY.parse().unwrap());
    let now = resident_auth::Timestamp::from_millis(
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap(),
    );
    // 200 letters queued with 200 recovery links, as 200 requests would have left them.
    for i in 0..LETTERS {
        let to: resident_auth::Email = format!("resident-{i:03}@example.org").parse().unwrap();
        let token = resident_auth::ports::Token::generate();
        let letter = resident_auth::letters::Letter {
            to: to.clone(),
            locale: resident_auth::Locale::Ru,
            content: resident_auth::letters::LetterContent::RecoverPassword {
                link: resident_auth::secrecy::SecretString::from(format!(
                    "http://127.0.0.1/recover?token={}",
                    token.expose()
                )),
            },
        };
        let id = resident_auth::mail_queue::LetterId::generate();
        let queued = resident_auth::mail_queue::QueuedLetter {
            id,
            to: to.clone(),
            cabinet: None,
            kind: resident_auth::letters::LetterKind::RecoverPassword,
            sealed: Some(keys.seal(&id, &letter)),
            status: resident_auth::mail_queue::LetterStatus::Queued,
            attempts: 0,
            queued_at: now,
            next_attempt_at: now,
            give_up_at: now.plus(Duration::from_secs(3600)),
            keep_until: None,
            last_error: None,
        };
        let link = resident_auth::ports::Link {
            purpose: resident_auth::ports::LinkPurpose::Recovery,
            email: to,
            account_number: None,
            cabinet: None,
            credential_version: Some(1),
            expires_at: now.plus(Duration::from_secs(3600)),
            issuing_until: None,
        };
        let hash = token.hash();
        assert!(store
            .swap_link(&hash, Expected::Absent, Some((&hash, &link)), Some(&queued))
            .await
            .unwrap());
    }
    let smtp = services::SmtpSink::start().await;
    let port: u16 = smtp
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let variables = queue_variables(&database, port);
    let (_one, _two) = tokio::join!(
        Server::start(binary, &variables),
        Server::start(binary, &variables)
    );
    wait_for_mail(&smtp.maildir, LETTERS).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrived = letters_in(&smtp.maildir);
    assert_eq!(arrived.len(), LETTERS, "a letter was sent twice");
    let mut recipients: Vec<String> = std::fs::read_dir(&smtp.maildir)
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            (path.extension()? == "json").then(|| std::fs::read_to_string(path).unwrap())
        })
        .map(|meta| serde_json::from_str::<Value>(&meta).unwrap()["rcpt_tos"].to_string())
        .collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(
        recipients.len(),
        LETTERS,
        "each recipient got exactly one letter"
    );
    let sent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM resident_auth.letters WHERE status = 'sent'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(sent, i64::try_from(LETTERS).unwrap());
}

/// Two instances on one PostgreSQL database with `REDIS_URL`: a session opened on one is
/// live on the other and ended there for both; wrong passwords sent to both instances in
/// turn meet one shared throttle; and neither sessions nor counters are in PostgreSQL.
pub async fn two_instances_share_sessions_and_limits_on_redis(binary: &str) {
    let database = services::fresh_database().await;
    let outbox = tempfile::tempdir().unwrap();
    let prefix = format!("suite-{}", std::process::id());
    let variables = [
        ("DATABASE_URL", database.clone()),
        ("MAIL_QUEUE_KEY", MAIL_QUEUE_KEY.to_owned()),
        ("OUTBOX_DIR", outbox.path().display().to_string()),
        ("REDIS_URL", services::redis_url().to_owned()),
        ("REDIS_PREFIX", format!("{prefix}-{}", binary.len())),
    ];
    let (mut one, mut two) = tokio::join!(
        Server::start(binary, &variables),
        Server::start(binary, &variables)
    );
    one.outbox = outbox.path().to_owned();
    two.outbox = outbox.path().to_owned();
    let password = activate(&one, "7800000000001", RESIDENT, "12").await;
    let session = login(&one, RESIDENT, &password).await;
    let (status, body, _) = two.get("/api/session", Some(&session)).await;
    assert_eq!(
        status, 200,
        "the session is live on the other instance: {body}"
    );
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    for table in ["sessions", "counters"] {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM resident_auth.{table}"))
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            rows, 0,
            "nothing in PostgreSQL's {table}: they are in Redis"
        );
    }
    let mut throttled_at = None;
    for attempt in 0..40 {
        let server = if attempt % 2 == 0 { &one } else { &two };
        let (status, body, _) = server
            .post(
                "/api/login",
                json!({"email": RESIDENT, "password": "not the password at all"}),
                None,
            )
            .await;
        if status == 429 {
            throttled_at = Some(attempt);
            break;
        }
        assert_eq!(status, 401, "{body}");
    }
    let throttled_at = throttled_at.expect("the shared throttle");
    let other = if throttled_at % 2 == 0 { &two } else { &one };
    let (status, body, _) = other
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": "not the password at all"}),
            None,
        )
        .await;
    assert_eq!(status, 429, "the other instance throttles too: {body}");
    let (status, _, _) = two.post("/api/logout", json!({}), Some(&session)).await;
    assert_eq!(status, 204);
    let (status, _, _) = one.get("/api/session", Some(&session)).await;
    assert_eq!(status, 401, "ended on one instance, ended on both");
}

/// Journeys 10 and 11 over the API: the data comes back after the current password,
/// without a secret; closing needs `"confirm": true`, mails "Личный кабинет закрыт", ends
/// the session, and the account can be registered again.
pub async fn residents_download_their_data_and_close_the_cabinet(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let session = login(&server, RESIDENT, &password).await;
    let me = Some(session.as_str());
    let (status, body, _) = server
        .post(
            "/api/cabinet/export",
            json!({"current_password": "wrong"}),
            me,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "password.current_wrong");
    let (status, body, _) = server
        .post(
            "/api/cabinet/export",
            json!({"current_password": password}),
            me,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cabinet"]["email"], RESIDENT);
    assert_eq!(
        body["cabinet"]["accounts"][0]["account_number"],
        "7800000000001"
    );
    let text = body.to_string();
    assert!(
        !text.contains(&password) && !text.contains(&session),
        "{text}"
    );
    let (status, body, _) = server
        .post(
            "/api/cabinet/close",
            json!({"current_password": password, "confirm": false}),
            me,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "cabinet.close_not_confirmed");
    let (status, body, _) = server
        .post(
            "/api/cabinet/close",
            json!({"current_password": password, "confirm": true}),
            me,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(server.newest("Личный кабинет закрыт").contains("закрыт"));
    let (status, _, _) = server.get("/api/session", me).await;
    assert_eq!(status, 401, "the session ended with the cabinet");
    let (status, body) = register(&server, "7800000000001", RESIDENT).await;
    assert_eq!(status, 202, "the account is free again: {body}");
}

/// Every counter line of a Prometheus exposition (`name{labels} value`), HTTP durations
/// aside (their buckets are timings).
fn counter_lines(exposition: &str) -> std::collections::BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains("_total"))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// What moved between two expositions' counters.
fn counters_moved(before: &str, after: &str) -> Vec<(String, f64)> {
    let before = counter_lines(before);
    counter_lines(after)
        .into_iter()
        .filter_map(|(name, value)| {
            let delta = value - before.get(&name).copied().unwrap_or(0.0);
            (delta != 0.0).then_some((name, delta))
        })
        .collect()
}

/// The metrics are never on the residents' listener: `GET /metrics` there is the API's
/// 404, with or without `METRICS_BIND`. On `METRICS_BIND` they answer Prometheus' text
/// format with the service's metrics, name nobody, and a recovery request moves the same
/// counters for a registered email as for an unknown one (docs/security.md, "enumerator").
pub async fn metrics_are_served_apart_and_tell_no_registration(binary: &str) {
    let plain = Server::start(binary, &[]).await;
    let bind = format!("127.0.0.1:{}", services::free_port());
    let server = Server::start(binary, &[("METRICS_BIND", bind.clone())]).await;
    for portal in [&plain, &server] {
        let on_portal = portal
            .client
            .get(format!("{}/metrics", portal.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            on_portal.status(),
            404,
            "no metrics on the residents' listener"
        );
    }
    let scrape = || async {
        for _ in 0..50 {
            if let Ok(response) = server
                .client
                .get(format!("http://{bind}/metrics"))
                .send()
                .await
            {
                assert_eq!(response.status(), 200);
                return response.text().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no metrics on METRICS_BIND {bind}");
    };
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    login(&server, RESIDENT, &password).await;
    let (status, _, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": "wrong"}),
            None,
        )
        .await;
    assert_eq!(status, 401);
    let text = scrape().await;
    for expected in [
        "resident_auth_logins_total{outcome=\"succeeded\"} 1",
        "resident_auth_logins_total{outcome=\"failed\"} 1",
        "resident_auth_letters_queued_total{kind=\"credentials\"} 1",
        "resident_auth_letters_sent_total{kind=\"confirm_email\"} 1",
        "resident_auth_hasher_wait_seconds",
        "resident_auth_hasher_queue_depth",
        "resident_auth_hasher_core{core=\"",
        "resident_auth_http_request_duration_seconds_bucket{",
        "# TYPE resident_auth_http_request_duration_seconds histogram",
        "route=\"/login\"",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    for secret in [RESIDENT, password.as_str()] {
        assert!(
            !text.contains(secret),
            "a metric names a resident or a secret"
        );
    }
    let mut moved = Vec::new();
    for email in [RESIDENT, "nobody@example.org"] {
        let before = scrape().await;
        let (status, _, _) = server
            .post("/api/recovery", json!({"email": email}), None)
            .await;
        assert_eq!(status, 202);
        moved.push(counters_moved(&before, &scrape().await));
    }
    assert!(!moved[0].is_empty(), "a recovery moves the letter counters");
    assert_eq!(
        moved[0], moved[1],
        "a registered email (left) and an unknown one (right) moved different counters"
    );
}

/// A raw connection's fate: what it read before the server closed it, and after how long.
struct Closed {
    answer: String,
    after: Duration,
}

/// Opens a connection to `base` and sends `head` at once, then `trickle` one byte every
/// 500 ms (nothing when it is empty), until the server closes the connection (or
/// `give_up` passes: `None`).
async fn slow_client(
    base: &str,
    head: String,
    trickle: &'static [u8],
    give_up: Duration,
) -> Option<Closed> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = base.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let reading = async {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    let writing = async {
        // An empty trickle sends nothing more: the connection just sits there.
        for byte in trickle.iter().cycle() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    };
    let closed = tokio::time::timeout(give_up, async {
        tokio::select! {
            answer = reading => answer,
            () = writing => unreachable!(),
        }
    })
    .await
    .ok()?;
    Some(Closed {
        answer: closed,
        after: started.elapsed(),
    })
}

/// Slow clients are cut off (docs/security.md, "slow clients"): with a 2-second head and body
/// timeout and room for eight connections, eight connections that send nothing, trickle
/// their head a byte at a time, or trickle their body are all closed (the body ones with a
/// 408 in the API's problem JSON), and a new client, waiting while they hold every slot,
/// is answered once they are gone. Before, such connections stayed open for good.
pub async fn slow_clients_are_cut_off_and_others_still_answered(binary: &str) {
    let server = Server::start(
        binary,
        &[
            ("HEAD_TIMEOUT_SECS", "2".to_owned()),
            ("BODY_TIMEOUT_SECS", "2".to_owned()),
            ("MAX_CONNECTIONS", "8".to_owned()),
        ],
    )
    .await;
    let give_up = Duration::from_secs(20);
    let host = server.base.trim_start_matches("http://").to_owned();
    let trickled_head = format!("POST /api/login HTTP/1.1\r\nHost: {host}\r\n");
    let trickled_body = format!(
        "POST /api/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: 200\r\n\r\n{{"
    );
    let mut slow = Vec::new();
    for index in 0..8 {
        let (head, trickle): (String, &'static [u8]) = match index % 3 {
            0 => (String::new(), b""),
            1 => (trickled_head.clone(), b"X-Slow: 1\r\n"),
            _ => (trickled_body.clone(), b" "),
        };
        let base = server.base.clone();
        slow.push(tokio::spawn(async move {
            slow_client(&base, head, trickle, give_up)
                .await
                .map(|closed| (index, closed))
        }));
    }
    // Every slot is taken (or about to be): a new client waits for one to free.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let newcomer = std::time::Instant::now();
    let (status, body, _) = server.get("/api/session", None).await;
    assert_eq!(status, 401, "the new client is answered: {body}");
    let waited = newcomer.elapsed();
    for task in slow {
        let (index, closed) = task
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("a slow connection was still open after {give_up:?}"));
        if index % 3 == 2 {
            assert!(
                closed.answer.starts_with("HTTP/1.1 408"),
                "a trickled body is answered 408: {:?}",
                closed.answer
            );
            assert!(
                closed.answer.contains("request.timeout")
                    && closed
                        .answer
                        .to_lowercase()
                        .contains("content-type: application/json"),
                "with the API's problem JSON: {:?}",
                closed.answer
            );
        }
        println!(
            "slow connection {index} closed after {:?} ({} bytes answered)",
            closed.after,
            closed.answer.len()
        );
    }
    println!("the new client was answered after {waited:?}");
}

/// Every refusal of the API, the web framework's own included, is the documented problem
/// JSON: 413 for a body over the limit, 405 (with `Allow`) for a wrong method, 404 for an
/// unknown path under the prefix (the prefix itself too), 422 for malformed JSON. Before,
/// 413 was empty on axum and text on actix, and 405 was empty on both.
pub async fn framework_refusals_are_problem_json(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let check = |response: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(response.status().as_u16(), status, "{code}");
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{code}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], code, "{body}");
        assert!(body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        headers
    };
    let large = format!("{{\"email\":\"{}\"}}", "a".repeat(10 * 1024 * 1024));
    let response = server
        .client
        .post(format!("{}/api/login", server.base))
        .header("content-type", "application/json")
        .body(large)
        .send()
        .await;
    // A server may answer 413 before it has read the whole body and close the connection;
    // then the client may fail to send the rest: the answer, when it came, is checked.
    if let Ok(response) = response {
        check(response, 413, "request.too_large").await;
    }
    let just_over = format!("{{\"email\":\"{}\"}}", "a".repeat(70 * 1024));
    let response = server
        .client
        .post(format!("{}/api/login", server.base))
        .header("content-type", "application/json")
        .body(just_over)
        .send()
        .await
        .unwrap();
    check(response, 413, "request.too_large").await;
    for (method, path, allow) in [
        (reqwest::Method::GET, "/api/login", "POST"),
        (reqwest::Method::PUT, "/api/sessions", "GET"),
        (reqwest::Method::POST, "/api/openapi.json", "GET"),
    ] {
        let response = server
            .client
            .request(method, format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        let headers = check(response, 405, "request.method_not_allowed").await;
        assert_eq!(
            headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{path}"
        );
    }
    for path in ["/api/no-such-thing", "/api", "/api/"] {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        check(response, 404, "request.not_found").await;
    }
    let response = server
        .client
        .post(format!("{}/api/login", server.base))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    check(response, 422, "request.malformed").await;
}

/// The served OpenAPI document: every operation in it is routed (a request with an empty
/// object is answered with one of the statuses documented for it, never 404/405), and it
/// has exactly the operations of docs/contract.md §5.
pub async fn openapi_document_matches_the_routes(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let response = server
        .client
        .get(format!("{}/api/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push(format!("{} {path}", method.to_uppercase()));
            let url = format!("{}{path}", server.base);
            let request = match method.as_str() {
                "get" => server.client.get(url),
                "delete" => server.client.delete(url),
                "post" => server.client.post(url).json(&json!({})),
                other => panic!("unexpected method {other}"),
            };
            let status = request.send().await.unwrap().status();
            let documented = &operation["responses"][status.as_str()];
            assert!(
                documented.is_object(),
                "{method} {path} answered {status}, which the document does not list"
            );
        }
    }
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /api/sessions/others",
            "DELETE /api/sessions/{id}",
            "GET /api/session",
            "GET /api/sessions",
            "POST /api/addresses",
            "POST /api/cabinet/close",
            "POST /api/cabinet/export",
            "POST /api/login",
            "POST /api/login/identify",
            "POST /api/logout",
            "POST /api/password",
            "POST /api/recovery",
            "POST /api/recovery/complete",
            "POST /api/registrations",
            "POST /api/registrations/activate",
            "POST /api/registrations/confirm",
            "POST /api/session/active-account",
        ]
    );
}

const CHOSEN: &str = "тихий вечер у старой реки";

/// Journeys 8 and 9 over HTTP: the list of sessions, a password change that keeps only
/// the asking session and mails the notice, ending one session by its id and all others.
pub async fn password_change_and_sessions(binary: &str) {
    password_change_and_sessions_on(&Server::start(binary, &[]).await).await;
}

async fn password_change_and_sessions_on(server: &Server) {
    let password = activate(server, "7800000000001", RESIDENT, "12").await;
    let this = login(server, RESIDENT, &password).await;
    let other = login(server, RESIDENT, &password).await;
    let (status, body, _) = server.get("/api/sessions", Some(&this)).await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["current"], false);
    let other_id = sessions[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(other_id.len(), 32);
    assert!(sessions[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(!body.to_string().contains(&other), "ids are not tokens");

    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    for (body, code) in [
        (change(&password, "short"), "password.too_short"),
        (
            change(&password, "resident-1987-07-12-x"),
            "password.contains_email",
        ),
        (change(&password, "passwordpassword"), "password.common"),
        (
            change("wrong current password", CHOSEN),
            "password.current_wrong",
        ),
    ] {
        let (status, answer, _) = server.post("/api/password", body, Some(&this)).await;
        assert_eq!(
            (status.as_u16(), codes(&answer)),
            (422, vec![code.to_owned()])
        );
    }
    let (status, _, _) = server
        .post("/api/password", change(&password, CHOSEN), None)
        .await;
    assert_eq!(status, 401);
    let (status, body, _) = server
        .post("/api/password", change(&password, CHOSEN), Some(&this))
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(server.get("/api/session", Some(&this)).await.0, 200);
    assert_eq!(server.get("/api/session", Some(&other)).await.0, 401);
    assert!(server
        .letters()
        .iter()
        .any(|(subject, _)| subject == "Пароль изменён"));
    let (status, _, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": password}),
            None,
        )
        .await;
    assert_eq!(status, 401, "the old password is dead");

    let second = login(server, RESIDENT, CHOSEN).await;
    let third = login(server, RESIDENT, CHOSEN).await;
    let (_, body, _) = server.get("/api/sessions", Some(&second)).await;
    let second_id = body["sessions"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, _) = server
        .delete(&format!("/api/sessions/{second_id}"), Some(&this))
        .await;
    assert_eq!(status, 204);
    assert_eq!(server.get("/api/session", Some(&second)).await.0, 401);
    let (status, body, _) = server
        .delete(&format!("/api/sessions/{second_id}"), Some(&this))
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (404, vec!["session.not_found".to_owned()])
    );
    let (status, body, _) = server.delete("/api/sessions/others", Some(&this)).await;
    assert_eq!((status.as_u16(), body), (200, json!({"ended": 1})));
    assert_eq!(server.get("/api/session", Some(&third)).await.0, 401);
    assert_eq!(server.get("/api/session", Some(&this)).await.0, 200);
    for path in ["/api/sessions/others", &format!("/api/sessions/{other_id}")] {
        assert_eq!(server.delete(path, None).await.0, 401);
    }
    assert_eq!(server.get("/api/sessions", None).await.0, 401);
}

/// With `TEMPORARY_PASSWORD_HOURS`, the mailed password opens only the password change
/// (403 `password.change_required` elsewhere) until the resident chooses one.
pub async fn temporary_passwords_must_be_changed(binary: &str) {
    let server = Server::start(binary, &[("TEMPORARY_PASSWORD_HOURS", "24".to_owned())]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    assert!(server
        .newest("Данные для входа")
        .contains("временный пароль"));
    let (status, body, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": password}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["password_change_required"], true);
    let session = body["session_token"].as_str().unwrap().to_owned();
    let (status, body, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (403, vec!["password.change_required".to_owned()])
    );
    for (path, request) in [
        (
            "/api/session/active-account",
            json!({"account_number": "7800000000001"}),
        ),
        (
            "/api/addresses",
            json!({"surname": "Иванов", "account_number": "7800000000002"}),
        ),
    ] {
        assert_eq!(
            server.post(path, request, Some(&session)).await.0,
            403,
            "{path}"
        );
    }
    let (status, _, _) = server
        .post(
            "/api/password",
            json!({"current_password": password, "new_password": CHOSEN}),
            Some(&session),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(server.get("/api/session", Some(&session)).await.0, 200);
    let (_, body, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": CHOSEN}),
            None,
        )
        .await;
    assert_eq!(body["password_change_required"], false);
}

/// The checks schemathesis runs: no 5xx, every status, content type, header and body as
/// documented, schema-violating input rejected with 4xx, secured operations refusing a
/// request without credentials, undocumented methods answered 405 with `Allow`.
const SCHEMATHESIS_CHECKS: &str = "not_a_server_error,status_code_conformance,\
content_type_conformance,response_headers_conformance,response_schema_conformance,\
negative_data_rejection,ignored_auth,unsupported_method,allow_header_conformance,\
missing_required_header";

/// Schemathesis (PyPI), a tool we did not write, generates requests from the served
/// document, with a live session, and finds no defect. `SCHEMATHESIS` names its
/// executable (default `st`; `scripts/test.sh` installs it).
pub async fn schemathesis_finds_nothing(binary: &str) {
    schemathesis_on(&Server::start(binary, &[]).await).await;
}

async fn schemathesis_on(server: &Server) {
    let password = activate(server, "7800000000001", RESIDENT, "12").await;
    let session = login(server, RESIDENT, &password).await;
    let document = format!("{}/api/openapi.json", server.base);
    // Logout, and ending a session by the id the list gives (schemathesis follows the
    // list's ids to it), would end the session the other operations are fuzzed with: they
    // run last.
    let enders = ["/api/logout", "/api/sessions/{id}"];
    let mut first = Vec::new();
    for path in enders {
        first.extend(["--exclude-path", path]);
    }
    schemathesis(&document, &session, &first).await;
    // The session lived through the run, so the secured operations were fuzzed signed in.
    let (status, _, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(status, 200);
    schemathesis(
        &document,
        &session,
        &["--include-path", "/api/sessions/{id}"],
    )
    .await;
    schemathesis(&document, &session, &["--include-path", "/api/logout"]).await;
    let (status, _, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(status, 401, "logout ran and ended the session");
}

async fn schemathesis(document: &str, session: &str, filter: &[&str]) {
    let program = std::env::var("SCHEMATHESIS").unwrap_or_else(|_| "st".to_owned());
    // schemathesis keeps a cache in its working directory: give it a scratch one.
    let scratch = tempfile::tempdir().unwrap();
    let output = Command::new(&program)
        .current_dir(scratch.path())
        .args(["run", document, "--checks", SCHEMATHESIS_CHECKS])
        .args(["--max-examples", "50", "--no-color", "--warnings", "off"])
        .args(["--header", &format!("Authorization: Bearer {session}")])
        .args(filter)
        .output()
        .await
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): pip install schemathesis, or set SCHEMATHESIS")
        });
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = report
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_default();
    eprintln!("schemathesis {filter:?}: {}", summary.trim());
    assert!(summary.contains("passed"), "no test cases ran:\n{report}");
}

/// Documented statuses reached by a library test rather than over HTTP here (a race the
/// black box cannot time), each with the test that reaches it (`file` :: `name`).
pub const REACHED_ELSEWHERE: &[(&str, &str, &str)] = &[
    (
        "POST /api/recovery/complete 429",
        "crates/resident-auth/tests/journeys.rs",
        "a_recovery_link_in_use_answers_wait_and_issues_one_password",
    ),
    (
        "POST /api/registrations/activate 409",
        "crates/resident-auth/src/conformance.rs",
        "journey_resend_interval_and_coexisting_registrations",
    ),
];

/// Every operation and status the served document lists, as `METHOD /path STATUS`.
fn documented_statuses(document: &Value) -> std::collections::BTreeSet<String> {
    let mut all = std::collections::BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in operation["responses"].as_object().unwrap().keys() {
                all.insert(format!("{} {path} {status}", method.to_uppercase()));
            }
        }
    }
    all
}

/// What the status check sends: method, the path as documented, the path as sent.
struct Call<'a> {
    method: reqwest::Method,
    template: &'a str,
    path: String,
}

fn call(method: reqwest::Method, template: &str) -> Call<'_> {
    Call {
        method,
        path: template.to_owned(),
        template,
    }
}

/// Sends `call` with a JSON `body` (or a raw `text/plain` one) and a bearer token, and
/// records `METHOD /template STATUS` in `seen`.
async fn observe(
    server: &Server,
    seen: &std::sync::Mutex<std::collections::BTreeSet<String>>,
    call: &Call<'_>,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = server
        .client
        .request(call.method.clone(), format!("{}{}", server.base, call.path));
    request = match body {
        Some(Value::String(raw)) => request.header("content-type", "text/plain").body(raw),
        Some(json) => request.json(&json),
        None => request,
    };
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let (status, answer, _) = read(request.send().await.unwrap()).await;
    seen.lock().unwrap().insert(format!(
        "{} {} {}",
        call.method,
        call.template,
        status.as_u16()
    ));
    (status, answer)
}

/// Every status the OpenAPI document lists for every operation is produced: here over
/// HTTP (in memory; with temporary passwords for 403; on PostgreSQL made unreachable for
/// 503), or by the library test [`REACHED_ELSEWHERE`] names. A status documented but never
/// produced fails, and so does one produced but not documented.
pub async fn every_documented_status_is_reached(binary: &str) {
    use reqwest::Method;
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let server = Server::start(binary, &[]).await;
    let document: Value = server
        .client
        .get(format!("{}/api/openapi.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let post = |template| call(Method::POST, template);
    let get = |template| call(Method::GET, template);
    let delete = |template| call(Method::DELETE, template);
    let text = || Some(Value::String("{}".to_owned()));
    let (s, seen_ref) = (&server, &seen);
    let hit = |c: Call<'static>, body: Option<Value>, bearer: Option<&str>| {
        let bearer = bearer.map(str::to_owned);
        async move { observe(s, seen_ref, &c, body, bearer.as_deref()).await }
    };
    let registration = |account: &str, email: &str| {
        Some(json!({"surname": "Иванов", "account_number": account, "email": email}))
    };
    let credentials =
        |email: &str, password: &str| Some(json!({"email": email, "password": password}));
    let address =
        |surname: &str, account: &str| Some(json!({"surname": surname, "account_number": account}));
    let change = |current: &str| Some(json!({"current_password": current, "new_password": CHOSEN}));

    // 415 and 422 (malformed) on every operation that reads a body without a session.
    for path in [
        "/api/registrations",
        "/api/registrations/confirm",
        "/api/registrations/activate",
        "/api/login/identify",
        "/api/login",
        "/api/recovery",
        "/api/recovery/complete",
    ] {
        hit(post(path), text(), None).await;
        hit(post(path), Some(json!({})), None).await;
    }

    // Journeys 1–3: the first account locked by wrong premises numbers, the second activated.
    hit(
        post("/api/registrations"),
        registration("7800000000001", RESIDENT),
        None,
    )
    .await;
    hit(
        post("/api/registrations"),
        registration("7800000000001", "x@example.org"),
        None,
    )
    .await;
    let link = server.link_token("Подтверждение e-mail");
    let (_, body) = hit(
        post("/api/registrations/confirm"),
        Some(json!({"token": link})),
        None,
    )
    .await;
    let locked = body["activation_token"].as_str().unwrap().to_owned();
    for _ in 0..6 {
        let body = Some(json!({"activation_token": locked, "premises": "99"}));
        hit(post("/api/registrations/activate"), body, None).await;
    }
    let second = "second@example.org";
    hit(
        post("/api/registrations"),
        registration("7800000000002", second),
        None,
    )
    .await;
    let link = server.link_token("Подтверждение e-mail");
    hit(
        post("/api/registrations/confirm"),
        Some(json!({"token": MADE_UP_TOKEN})),
        None,
    )
    .await;
    let (_, body) = hit(
        post("/api/registrations/confirm"),
        Some(json!({"token": link})),
        None,
    )
    .await;
    let body = Some(json!({"activation_token": body["activation_token"], "premises": "123/456П"}));
    hit(post("/api/registrations/activate"), body, None).await;
    let password = server.password();
    hit(
        post("/api/registrations"),
        registration("7800000000002", "x@example.org"),
        None,
    )
    .await;
    let third = "third@example.org";
    activate(&server, "4700000000005", third, "48").await;

    // Journey 4.
    hit(
        post("/api/login/identify"),
        Some(json!({"email": second})),
        None,
    )
    .await;
    hit(post("/api/login"), credentials("not an email", "x"), None).await;
    let (_, body) = hit(post("/api/login"), credentials(second, &password), None).await;
    let session = body["session_token"].as_str().unwrap().to_owned();
    for _ in 0..6 {
        hit(
            post("/api/login"),
            credentials(third, "wrong password"),
            None,
        )
        .await;
    }

    // Journey 6.
    for email in ["nobody@example.org", "nobody@example.org", "x", third] {
        hit(post("/api/recovery"), Some(json!({"email": email})), None).await;
    }
    let recovery = server.link_token("Восстановление пароля");
    for token in [MADE_UP_TOKEN, recovery.as_str()] {
        hit(
            post("/api/recovery/complete"),
            Some(json!({"token": token})),
            None,
        )
        .await;
    }

    // The signed-in operations: without a session, unreadable, refused and done.
    let zero_id = format!("/api/sessions/{}", "0".repeat(32));
    let mut end = delete("/api/sessions/{id}");
    end.path.clone_from(&zero_id);
    for (c, body) in [
        (get("/api/session"), None),
        (
            post("/api/session/active-account"),
            Some(json!({"account_number": "7800000000002"})),
        ),
        (post("/api/addresses"), address("Семёнов", "7800000000004")),
        (post("/api/password"), change("x")),
        (get("/api/sessions"), None),
        (delete("/api/sessions/others"), None),
        (post("/api/logout"), None),
        (
            post("/api/cabinet/export"),
            Some(json!({"current_password": "x"})),
        ),
        (
            post("/api/cabinet/close"),
            Some(json!({"current_password": "x", "confirm": true})),
        ),
    ] {
        hit(c, body, None).await;
    }
    observe(&server, &seen, &end, None, None).await;
    observe(&server, &seen, &end, None, Some(&session)).await;
    let me = Some(session.as_str());
    for path in [
        "/api/session/active-account",
        "/api/addresses",
        "/api/password",
        "/api/cabinet/export",
        "/api/cabinet/close",
    ] {
        hit(post(path), text(), me).await;
        hit(post(path), Some(json!({})), me).await;
    }
    hit(get("/api/session"), None, me).await;
    let select = Some(json!({"account_number": "7800000000002"}));
    hit(post("/api/session/active-account"), select, me).await;
    hit(
        post("/api/addresses"),
        address("Семёнов", "7800000000004"),
        me,
    )
    .await;
    hit(
        post("/api/addresses"),
        address("Иванов", "4700000000005"),
        me,
    )
    .await;
    hit(
        post("/api/addresses"),
        address("Иванов", "7800000000001"),
        me,
    )
    .await;
    hit(post("/api/password"), change(&password), me).await;
    hit(get("/api/sessions"), None, me).await;
    let current = |password: &str| Some(json!({"current_password": password}));
    hit(post("/api/cabinet/export"), current("not the password"), me).await;
    hit(post("/api/cabinet/export"), current(CHOSEN), me).await;
    let closing = Some(json!({"current_password": CHOSEN, "confirm": false}));
    hit(post("/api/cabinet/close"), closing, me).await;
    for ended in ["others", "one"] {
        let (_, body) = hit(post("/api/login"), credentials(second, CHOSEN), None).await;
        let other = body["session_token"].as_str().unwrap().to_owned();
        if ended == "others" {
            hit(delete("/api/sessions/others"), None, me).await;
        } else {
            let (_, list) = hit(get("/api/sessions"), None, Some(&other)).await;
            end.path = format!(
                "/api/sessions/{}",
                list["sessions"][0]["id"].as_str().unwrap()
            );
            observe(&server, &seen, &end, None, me).await;
        }
    }
    for _ in 0..6 {
        hit(post("/api/password"), change("wrong current password"), me).await;
    }
    hit(post("/api/cabinet/export"), current(CHOSEN), me).await;
    let closing = Some(json!({"current_password": CHOSEN, "confirm": true}));
    hit(post("/api/cabinet/close"), closing, me).await;
    hit(post("/api/logout"), None, me).await;

    // 403: a temporary password opens only the password change.
    let temporary = Server::start(binary, &[("TEMPORARY_PASSWORD_HOURS", "24".to_owned())]).await;
    let mailed = activate(&temporary, "7800000000001", RESIDENT, "12").await;
    let session = login(&temporary, RESIDENT, &mailed).await;
    for (c, body) in [
        (get("/api/session"), None),
        (
            post("/api/session/active-account"),
            Some(json!({"account_number": "7800000000001"})),
        ),
        (post("/api/addresses"), address("Иванов", "7800000000002")),
        (
            post("/api/cabinet/close"),
            Some(json!({"current_password": mailed.clone(), "confirm": true})),
        ),
    ] {
        observe(&temporary, &seen, &c, body, Some(&session)).await;
    }

    // 503: the example on PostgreSQL, whose database then refuses every connection.
    let services = Server::start_on_services(binary, &[]).await;
    let mailed = activate(&services, "7800000000001", RESIDENT, "12").await;
    let session = login(&services, RESIDENT, &mailed).await;
    services::make_unreachable(services.database.as_deref().unwrap()).await;
    end.path = zero_id;
    let token = Some(json!({"token": MADE_UP_TOKEN}));
    let calls: Vec<(Call<'static>, Option<Value>)> = vec![
        (
            post("/api/registrations"),
            registration("7800000000002", "c@example.org"),
        ),
        (post("/api/registrations/confirm"), token.clone()),
        (
            post("/api/registrations/activate"),
            Some(json!({"activation_token": MADE_UP_TOKEN, "premises": "12"})),
        ),
        (post("/api/login"), credentials(RESIDENT, &mailed)),
        (post("/api/recovery"), Some(json!({"email": RESIDENT}))),
        (post("/api/recovery/complete"), token),
        (get("/api/session"), None),
        (
            post("/api/session/active-account"),
            Some(json!({"account_number": "7800000000001"})),
        ),
        (post("/api/addresses"), address("Иванов", "7800000000002")),
        (post("/api/password"), change(&mailed)),
        (get("/api/sessions"), None),
        (delete("/api/sessions/others"), None),
        (end, None),
        (post("/api/logout"), None),
        (
            post("/api/cabinet/export"),
            Some(json!({"current_password": mailed.clone()})),
        ),
        (
            post("/api/cabinet/close"),
            Some(json!({"current_password": mailed.clone(), "confirm": true})),
        ),
    ];
    let mut answers = tokio::task::JoinSet::new();
    for (c, body) in calls {
        let (base, client, session) = (
            services.base.clone(),
            services.client.clone(),
            session.clone(),
        );
        answers.spawn(async move {
            let mut request = client
                .request(c.method.clone(), format!("{base}{}", c.path))
                .bearer_auth(session);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let status = request.send().await.unwrap().status();
            format!("{} {} {}", c.method, c.template, status.as_u16())
        });
    }
    while let Some(answer) = answers.join_next().await {
        let answer = answer.unwrap();
        assert!(
            answer.ends_with(" 503"),
            "with the database unreachable: {answer}"
        );
        seen.lock().unwrap().insert(answer);
    }

    let seen = seen.into_inner().unwrap();
    let documented = documented_statuses(&document);
    let elsewhere: std::collections::BTreeSet<String> = REACHED_ELSEWHERE
        .iter()
        .map(|(s, _, _)| (*s).to_owned())
        .collect();
    let unreached: Vec<&String> = documented
        .iter()
        .filter(|s| !seen.contains(*s) && !elsewhere.contains(*s))
        .collect();
    assert!(
        unreached.is_empty(),
        "documented but never produced: {unreached:?}"
    );
    let undocumented: Vec<&String> = seen.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "produced but not documented: {undocumented:?}"
    );
}

const MADE_UP_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
