//! The HTML pages' defences (docs/security.md, ASVS V3.4 and CSRF), checked at the HTTP level
//! against the running binary: cookie attributes, the double-submit CSRF check, a fresh
//! session at login whatever cookie the browser brought (no fixation), logout, and the
//! pages' security headers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use crate::{activate, Server};
use reqwest::{header, redirect::Policy, Client, Response, StatusCode};

mod email_change;
mod own_data;
pub use email_change::the_email_pages_change_confirm_and_cancel;
pub use own_data::the_data_page_downloads_the_data_and_closes_the_cabinet;

const RESIDENT: &str = "resident@example.org";
const PLANTED_CSRF: &str =
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn client() -> Client {
    // Redirects are part of what is checked: never follow them.
    // A pooled connection idle near the server's head timeout would race its close.
    Client::builder()
        .redirect(Policy::none())
        .pool_idle_timeout(std::time::Duration::from_secs(1))
        .build()
        .unwrap()
}

/// The `Set-Cookie` header that sets `name`.
fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value)
        .unwrap()
}

fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect()
}

/// A first visit: the CSRF token the page set in its cookie.
async fn csrf(server: &Server, client: &Client) -> String {
    let response = client.get(&server.base).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    cookie_value(&set_cookie(&response, "csrf").expect("a csrf cookie")).to_owned()
}

/// A login form sent by a browser holding the session cookie `session` and the CSRF
/// token `csrf` (which must be the one issued for that cookie).
async fn log_in(
    server: &Server,
    client: &Client,
    session: &str,
    csrf: &str,
    password: &str,
) -> Response {
    client
        .post(format!("{}/login", server.base))
        .header(header::COOKIE, format!("csrf={csrf}; session={session}"))
        .form(&[("csrf", csrf), ("email", RESIDENT), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// The CSRF token a page issues to a browser holding the session cookie `session`.
async fn csrf_with_session(server: &Server, client: &Client, session: &str) -> String {
    let response = client
        .get(format!("{}/register", server.base))
        .header(header::COOKIE, format!("session={session}"))
        .send()
        .await
        .unwrap();
    cookie_value(&set_cookie(&response, "csrf").expect("a csrf cookie")).to_owned()
}

/// Pages set http only same site cookies and security headers.
pub async fn pages_set_http_only_same_site_cookies_and_security_headers(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let response = client().get(&server.base).send().await.unwrap();
    let csrf = set_cookie(&response, "csrf").unwrap();
    let attributes = attributes(&csrf);
    assert!(attributes.contains(&"HttpOnly".to_owned()), "{csrf}");
    assert!(attributes.contains(&"SameSite=Lax".to_owned()), "{csrf}");
    assert!(
        !attributes.contains(&"Secure".to_owned()),
        "plain http: {csrf}"
    );
    let headers = response.headers();
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
}

/// Cookies are secure when the portal is served over https.
pub async fn cookies_are_secure_when_the_portal_is_served_over_https(binary: &str) {
    let server = Server::start(binary, &[("BASE_URL", "https://portal.example".into())]).await;
    let response = client().get(&server.base).send().await.unwrap();
    assert!(
        set_cookie(&response, "csrf").is_none(),
        "only the __Host- cookie"
    );
    let csrf = set_cookie(&response, "__Host-csrf").unwrap();
    let attributes = attributes(&csrf);
    assert!(attributes.contains(&"Secure".to_owned()), "{csrf}");
    assert!(attributes.contains(&"Path=/".to_owned()), "{csrf}");
    assert!(
        !attributes.iter().any(|a| a.starts_with("Domain")),
        "{csrf}"
    );
    assert_eq!(
        response.headers()[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000; includeSubDomains"
    );
    // Over plain http there is no HSTS (it would be ignored, and mislead).
    let plain = Server::start(binary, &[]).await;
    let response = client().get(&plain.base).send().await.unwrap();
    assert!(response
        .headers()
        .get(header::STRICT_TRANSPORT_SECURITY)
        .is_none());
}

/// Every answer says nosniff and pages restrict base and form targets.
pub async fn every_answer_says_nosniff_and_pages_restrict_base_and_form_targets(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let client = client();
    for path in [
        "/",
        "/register",
        "/api/openapi.json",
        "/api/session",
        "/api/nothing",
    ] {
        let response = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()[header::X_CONTENT_TYPE_OPTIONS],
            "nosniff",
            "{path}"
        );
    }
    let page = client.get(&server.base).send().await.unwrap();
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    for directive in [
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
}

/// Forms without the matching csrf token are refused.
pub async fn forms_without_the_matching_csrf_token_are_refused(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let client = client();
    let token = csrf(&server, &client).await;
    let url = format!("{}/login/identify", server.base);
    let attempts = [
        (None, Some(token.as_str())),                 // a forged form: no cookie
        (Some(token.as_str()), None),                 // cookie, no field
        (Some(token.as_str()), Some("forged-value")), // a mismatched field
        (Some(""), Some("")),                         // empty both
        // An attacker's own value planted in the cookie and the field: not signed here.
        (Some(PLANTED_CSRF), Some(PLANTED_CSRF)),
    ];
    for (cookie, field) in attempts {
        let mut form = vec![("email", RESIDENT)];
        if let Some(field) = field {
            form.push(("csrf", field));
        }
        let mut request = client.post(&url).form(&form);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("csrf={cookie}"));
        }
        let status = request.send().await.unwrap().status();
        // Without the field the form does not even parse (422); with it, the check refuses.
        let expected = if field.is_some() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        assert_eq!(status, expected, "cookie {cookie:?}, field {field:?}");
    }
    let response = client
        .post(&url)
        .header(header::COOKIE, format!("csrf={token}"))
        .form(&[("csrf", token.as_str()), ("email", RESIDENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the genuine form passes");
}

/// Login issues a fresh session whatever cookie came with it and logout ends it.
pub async fn login_issues_a_fresh_session_whatever_cookie_came_with_it_and_logout_ends_it(
    binary: &str,
) {
    let server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let client = client();
    let planted = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    // The form's token is the one the page issued to this browser, cookie and all.
    let token = csrf_with_session(&server, &client, planted).await;
    let response = log_in(&server, &client, planted, &token, &password).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/cabinet");
    let session_cookie = set_cookie(&response, "session").expect("a session cookie");
    let session = cookie_value(&session_cookie).to_owned();
    assert_ne!(session, planted, "the planted session id was not adopted");
    let session_attributes = attributes(&session_cookie);
    for expected in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(
            session_attributes.contains(&expected.to_owned()),
            "{session_cookie}"
        );
    }
    assert!(
        !session_attributes.iter().any(|a| a.starts_with("Max-Age")),
        "the session cookie ends with the browser: {session_cookie}"
    );
    assert_eq!(session.len(), 43, "a 256-bit token");

    // The planted cookie opens nothing; the issued one opens the cabinet.
    let cabinet = |cookie: String| {
        let client = client.clone();
        let url = format!("{}/cabinet", server.base);
        async move {
            client
                .get(url)
                .header(header::COOKIE, cookie)
                .send()
                .await
                .unwrap()
        }
    };
    let response = cabinet(format!("session={planted}")).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
    assert_eq!(
        cabinet(format!("session={session}")).await.status(),
        StatusCode::OK
    );

    // A second login gets another token.
    let again = log_in(&server, &client, planted, &token, &password).await;
    let second = cookie_value(&set_cookie(&again, "session").unwrap()).to_owned();
    assert_ne!(second, session);

    // The anonymous form's token does not pass with a session: tokens are bound to it.
    let response = client
        .post(format!("{}/logout", server.base))
        .header(header::COOKIE, format!("csrf={token}; session={session}"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Logout ends the session on the server and clears the cookie.
    let token = csrf_with_session(&server, &client, &session).await;
    let response = client
        .post(format!("{}/logout", server.base))
        .header(header::COOKIE, format!("csrf={token}; session={session}"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(&response, "session").unwrap();
    assert_eq!(cookie_value(&cleared), "");
    assert!(attributes(&cleared).contains(&"Max-Age=0".to_owned()));
    let response = cabinet(format!("session={session}")).await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "ended server-side"
    );
    assert_eq!(
        cabinet(format!("session={second}")).await.status(),
        StatusCode::OK,
        "other sessions of the cabinet stay"
    );

    // A login that arrives with a live session cookie ends that session on the server.
    let token = csrf_with_session(&server, &client, &second).await;
    let response = log_in(&server, &client, &second, &token, &password).await;
    let third = cookie_value(&set_cookie(&response, "session").unwrap()).to_owned();
    assert_eq!(
        cabinet(format!("session={second}")).await.status(),
        StatusCode::SEE_OTHER,
        "the old session ended"
    );
    assert_eq!(
        cabinet(format!("session={third}")).await.status(),
        StatusCode::OK
    );
}

/// The language switch returns only to known pages.
pub async fn the_language_switch_returns_only_to_known_pages(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let client = client();
    for (back, expected) in [
        ("/%09/evil.example", "/"),
        ("/%0d%0a/evil.example", "/"),
        ("//evil.example", "/"),
        ("/%5Cevil.example", "/"),
        ("%5C%5Cevil.example", "/"),
        ("https://evil.example/", "/"),
        ("http:evil.example", "/"),
        ("/cabinet%3Fx=1", "/"),
        ("/cabinet", "/cabinet"),
        ("/register", "/register"),
    ] {
        let response = client
            .get(format!("{}/lang/en?back={back}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{back}");
        assert_eq!(
            response.headers()[header::LOCATION].to_str().unwrap(),
            expected,
            "back={back}"
        );
    }
}

/// Following a link twice consumes nothing and the link still works.
pub async fn following_a_link_twice_consumes_nothing_and_the_link_still_works(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let client = client();
    let (status, _, _) = server
        .post(
            "/api/registrations",
            serde_json::json!({"surname": "Иванов", "account_number": "7800000000001", "email": RESIDENT}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    // A mail scanner, then the resident: both follow a link with GET; then it is used.
    let follow_twice_then_use = |page: &'static str, api: &'static str, token: String| {
        let client = client.clone();
        let server = &server;
        async move {
            for _ in 0..2 {
                let response = client
                    .get(format!("{}/{page}?token={token}", server.base))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{page}");
            }
            let (status, body, _) = server
                .post(api, serde_json::json!({"token": token}), None)
                .await;
            assert_eq!(status, 200, "the link was not spent by the GETs: {body}");
            body
        }
    };
    let token = server.link_token("Подтверждение e-mail");
    let body = follow_twice_then_use("confirm", "/api/registrations/confirm", token).await;
    let activation = body["activation_token"].as_str().unwrap().to_owned();
    let (status, _, _) = server
        .post(
            "/api/registrations/activate",
            serde_json::json!({"activation_token": activation, "premises": "12"}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _, _) = server
        .post(
            "/api/recovery",
            serde_json::json!({"email": RESIDENT}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let recovery = server.link_token("Восстановление пароля");
    follow_twice_then_use("recover", "/api/recovery/complete", recovery).await;
}

/// Every form refuses a missing forged or foreign csrf token.
pub async fn every_form_refuses_a_missing_forged_or_foreign_csrf_token(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let client = client();
    let genuine = csrf(&server, &client).await;
    let forms: [(&str, &[(&str, &str)]); 18] = [
        ("/login/identify", &[("email", RESIDENT)]),
        ("/login", &[("email", RESIDENT), ("password", "x")]),
        (
            "/register",
            &[
                ("surname", "Иванов"),
                ("account_number", "7800000000001"),
                ("email", RESIDENT),
            ],
        ),
        (
            "/confirm",
            &[("token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        ),
        (
            "/activate",
            &[
                (
                    "activation_token",
                    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                ),
                ("premises", "12"),
            ],
        ),
        ("/cabinet/select", &[("account_number", "7800000000001")]),
        (
            "/cabinet/add",
            &[("surname", "Иванов"), ("account_number", "7800000000002")],
        ),
        ("/logout", &[]),
        ("/recover", &[("email", RESIDENT)]),
        (
            "/recover/complete",
            &[("token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        ),
        (
            "/password",
            &[
                ("current_password", "x"),
                ("new_password", "тихий вечер у старой реки"),
            ],
        ),
        (
            "/sessions/end",
            &[("session_id", "0123456789abcdef0123456789abcdef")],
        ),
        ("/sessions/end-others", &[]),
        ("/cabinet/data/export", &[("current_password", "x")]),
        (
            "/cabinet/close",
            &[("close_password", "x"), ("confirm", "yes")],
        ),
        (
            "/cabinet/email",
            &[("email", "moved@example.org"), ("current_password", "x")],
        ),
        (
            "/email/confirm",
            &[("token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        ),
        (
            "/email/cancel",
            &[("token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        ),
    ];
    let posted: std::collections::BTreeSet<&str> =
        <resident_auth_http::Pages as resident_auth_http::integration::Surface>::ROUTES
            .iter()
            .filter(|route| route.method() == resident_auth_http::integration::Method::Post)
            .map(|route| route.path())
            .collect();
    let covered: std::collections::BTreeSet<&str> = forms.iter().map(|(path, _)| *path).collect();
    assert_eq!(covered, posted, "every form of the pages is tried");
    for (path, fields) in forms {
        // (cookie, field): forged field, planted unsigned pair, no cookie.
        let attempts = [
            (Some(genuine.as_str()), "forged-value"),
            (Some(PLANTED_CSRF), PLANTED_CSRF),
            (None, genuine.as_str()),
        ];
        for (cookie, field) in attempts {
            let mut form: Vec<(&str, &str)> = fields.to_vec();
            form.push(("csrf", field));
            let mut request = client.post(format!("{}{path}", server.base)).form(&form);
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, format!("csrf={cookie}"));
            }
            let status = request.send().await.unwrap().status();
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{path} with cookie {cookie:?}"
            );
        }
    }
    assert!(server.letters().is_empty(), "no refused form sent a letter");
}

/// Journeys 8 and 9 through the pages: the sessions page lists both sessions and ends the
/// other; the password page changes the password and keeps this session; a temporary
/// password sends the resident to the password page first.
pub async fn the_password_and_sessions_pages_work_with_their_forms(binary: &str) {
    let server = Server::start(binary, &[("TEMPORARY_PASSWORD_HOURS", "24".to_owned())]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let client = client();
    let login = |cookie_session: &'static str| {
        let (client, server, password) = (client.clone(), &server, password.clone());
        async move {
            let token = csrf_with_session(server, &client, cookie_session).await;
            let response = log_in(server, &client, cookie_session, &token, &password).await;
            let location = response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .to_owned();
            let session = cookie_value(&set_cookie(&response, "session").unwrap()).to_owned();
            (location, session)
        }
    };
    let (location, this) = login("none").await;
    assert_eq!(
        location, "/password",
        "a temporary password is changed first"
    );
    let (_, other) = login("none").await;
    let get = |path: &str, session: &str| {
        client
            .get(format!("{}{path}", server.base))
            .header(header::COOKIE, format!("session={session}"))
            .send()
    };
    let response = get("/cabinet", &this).await.unwrap();
    assert_eq!(response.headers()[header::LOCATION], "/password");

    let page = get("/sessions", &this).await.unwrap().text().await.unwrap();
    assert_eq!(page.matches("class=\"session\"").count(), 2, "{page}");
    let other_id = page
        .split("data-session=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .find(|id| page.contains(&format!("name=\"session_id\" value=\"{id}\"")))
        .expect("the other session has an end button");
    let csrf = csrf_with_session(&server, &client, &this).await;
    let post = |path: &str, fields: Vec<(&str, String)>| {
        client
            .post(format!("{}{path}", server.base))
            .header(header::COOKIE, format!("csrf={csrf}; session={this}"))
            .form(&fields)
            .send()
    };
    let response = post(
        "/sessions/end",
        vec![("csrf", csrf.clone()), ("session_id", other_id)],
    )
    .await
    .unwrap();
    assert_eq!(response.headers()[header::LOCATION], "/sessions");
    assert_eq!(
        get("/cabinet", &other).await.unwrap().headers()[header::LOCATION],
        "/",
        "the other session ended"
    );

    let change = |current: String, new: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("current_password", current),
            ("new_password", new.to_owned()),
        ]
    };
    let response = post("/password", change(password.clone(), "short"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("не менее 15 символов"));
    let response = post(
        "/password",
        change(password.clone(), "тихий вечер у старой реки"),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("Пароль изменён"));
    assert_eq!(
        get("/cabinet", &this).await.unwrap().status(),
        StatusCode::OK
    );
    assert!(server.letters().iter().any(|(s, _)| s == "Пароль изменён"));
}

/// A form over the body limit is refused with a page (413), not read; what a resident typed
/// comes back escaped.
pub async fn bodies_over_the_limit_are_refused_with_a_page(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let client = client();
    let token = csrf(&server, &client).await;
    let huge = "а".repeat(40 * 1024);
    let response = client
        .post(format!("{}/register", server.base))
        .header(header::COOKIE, format!("csrf={token}"))
        .form(&[
            ("csrf", token.as_str()),
            ("surname", huge.as_str()),
            ("account_number", "7800000000001"),
            ("email", RESIDENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html")));
    let planted = "<script>alert(1)</script>\"'";
    // A fresh connection: the server closes the one whose body it refused to read.
    let response = self::client()
        .post(format!("{}/register", server.base))
        .header(header::COOKIE, format!("csrf={token}"))
        .form(&[
            ("csrf", token.as_str()),
            ("surname", planted),
            ("account_number", planted),
            ("email", planted),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;"),
        "{page}"
    );
}
