//! The contract checked from outside: schemathesis, and every documented status reached.

use super::*;

/// The checks schemathesis runs: no 5xx, every status, content type, header and body as
/// documented, schema-violating input rejected with 4xx, secured operations refusing a
/// request without credentials, undocumented methods answered 405 with `Allow`.
pub(crate) const SCHEMATHESIS_CHECKS: &str = "not_a_server_error,status_code_conformance,\
content_type_conformance,response_headers_conformance,response_schema_conformance,\
negative_data_rejection,ignored_auth,unsupported_method,allow_header_conformance,\
missing_required_header";

/// Schemathesis (PyPI), a tool we did not write, generates requests from the served
/// document, with a live session, and finds no defect. `SCHEMATHESIS` names its
/// executable (default `st`; `scripts/test.sh` installs it).
pub async fn schemathesis_finds_nothing(binary: &str) {
    schemathesis_on(&Server::start(binary, &[]).await).await;
}

pub(crate) async fn schemathesis_on(server: &Server) {
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

pub(crate) async fn schemathesis(document: &str, session: &str, filter: &[&str]) {
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
        "crates/resident-auth/tests/journeys/main.rs",
        "a_recovery_link_in_use_answers_wait_and_issues_one_password",
    ),
    (
        "POST /api/email/confirm 409",
        "crates/resident-auth/src/testing/email_change.rs",
        "journey_two_cabinets_asking_for_one_address_let_the_first_confirmed_win",
    ),
    (
        "POST /api/registrations/activate 409",
        "crates/resident-auth/src/testing.rs",
        "journey_resend_interval_and_coexisting_registrations",
    ),
];

/// Every operation and status the served document lists, as `METHOD /path STATUS`.
pub(crate) fn documented_statuses(document: &Value) -> std::collections::BTreeSet<String> {
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
pub(crate) struct Call<'a> {
    method: reqwest::Method,
    template: &'a str,
    path: String,
}

pub(crate) fn call(method: reqwest::Method, template: &str) -> Call<'_> {
    Call {
        method,
        path: template.to_owned(),
        template,
    }
}

/// Sends `call` with a JSON `body` (or a raw `text/plain` one) and a bearer token, and
/// records `METHOD /template STATUS` in `seen`.
pub(crate) async fn observe(
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
        "/api/email/confirm",
        "/api/email/cancel",
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
        (
            post("/api/cabinet/email"),
            Some(json!({"email": "new@example.org", "current_password": "x"})),
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
        "/api/cabinet/email",
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
    // Journey 12: a taken address, a wrong password, a change confirmed in this session,
    // a second one cancelled (which ends every session: a new login follows).
    let new_email =
        |email: &str, current: &str| Some(json!({"email": email, "current_password": current}));
    hit(post("/api/cabinet/email"), new_email(third, CHOSEN), me).await;
    hit(
        post("/api/cabinet/email"),
        new_email("fourth@example.org", "not the password"),
        me,
    )
    .await;
    hit(
        post("/api/cabinet/email"),
        new_email("fourth@example.org", CHOSEN),
        me,
    )
    .await;
    let made_up = Some(json!({"token": MADE_UP_TOKEN}));
    hit(post("/api/email/confirm"), made_up.clone(), None).await;
    hit(post("/api/email/cancel"), made_up, None).await;
    let confirm = server.link_token("Подтверждение нового e-mail");
    let (_, body) = hit(
        post("/api/email/confirm"),
        Some(json!({"token": confirm})),
        me,
    )
    .await;
    assert_eq!(body["email"], "fourth@example.org");
    hit(get("/api/session"), None, me).await;
    hit(
        post("/api/cabinet/email"),
        new_email("fifth@example.org", CHOSEN),
        me,
    )
    .await;
    let cancel = server.link_token("Смена e-mail");
    hit(
        post("/api/email/cancel"),
        Some(json!({"token": cancel})),
        None,
    )
    .await;
    // The cancel retired the password and mailed new credentials: sign in with those and
    // choose the password again.
    let mailed = server.password();
    let session = login(&server, "fourth@example.org", &mailed).await;
    let me = Some(session.as_str());
    hit(post("/api/password"), change(&mailed), me).await;
    for _ in 0..6 {
        hit(post("/api/password"), change("wrong current password"), me).await;
    }
    hit(
        post("/api/cabinet/email"),
        new_email("sixth@example.org", CHOSEN),
        me,
    )
    .await;
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
            post("/api/cabinet/email"),
            Some(json!({"email": "new@example.org", "current_password": mailed.clone()})),
        ),
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
        (
            post("/api/cabinet/email"),
            Some(json!({"email": "new@example.org", "current_password": mailed.clone()})),
        ),
        (
            post("/api/email/confirm"),
            Some(json!({"token": MADE_UP_TOKEN})),
        ),
        (
            post("/api/email/cancel"),
            Some(json!({"token": MADE_UP_TOKEN})),
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

pub(crate) const MADE_UP_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
