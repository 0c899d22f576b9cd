//! The journeys over the API: registration, login, sessions, recovery, languages, the
//! host's own endpoint, letters on the host's routes.

use super::*;

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
/// `RECOVERY_LINK`, `EMAIL_CHANGE_LINK`, `EMAIL_CHANGE_CANCEL_LINK`): each letter's link is
/// the host's route with the token, and the token works through the API as the library's
/// own link would.
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
            ("EMAIL_CHANGE_LINK", format!("{front_end}/email/{{token}}")),
            (
                "EMAIL_CHANGE_CANCEL_LINK",
                format!("{front_end}/email-cancel/{{token}}"),
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
    let password = server.password();
    let session = login(&server, RESIDENT, &password).await;
    ask_email_change(&server, &session, "moved@example.org", &password).await;
    let cancel = token_after("Смена e-mail", &format!("{front_end}/email-cancel/"));
    assert_eq!(cancel.len(), 43);
    let token = token_after(
        "Подтверждение нового e-mail",
        &format!("{front_end}/email/"),
    );
    let (status, body, _) = server
        .post("/api/email/confirm", json!({"token": token}), None)
        .await;
    assert_eq!(
        (status.as_u16(), &body["email"]),
        (200, &json!("moved@example.org"))
    );
    login(&server, "moved@example.org", &password).await;
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

pub(crate) async fn full_journey(server: &Server) {
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
