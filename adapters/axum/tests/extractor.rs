//! The `Resident` extractor and the mounted API, through the router (no socket): a session
//! present, absent, expired, under the wrong scheme, by cookie with and without the CSRF
//! header, optional, and held back by a temporary password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{Request, StatusCode},
    routing::get,
    Router,
};
use http_body_util::BodyExt;
use resident_auth::{
    config::{Argon2Hasher, HashParams, ManualClock},
    journeys::RegistrationForm,
    memory::{register_by_mail, MemoryDirectory, MemoryStore, RecordingMailer},
    testing::{FaultMode, FaultyStore},
    AuthService, RequestContext, Timestamp,
};
use resident_auth_axum::{http::Api, Resident, ResidentAuth};
use tower::ServiceExt;

const DIRECTORY: &str = "account_number,surnames,address,premises\n\
    7800000000001,Иванов,\"ул. Садовая, д. 1, кв. 12\",12\n";

struct Fixture {
    auth: ResidentAuth,
    store: FaultyStore<MemoryStore>,
    clock: Arc<ManualClock>,
    token: String,
}

/// A portal with one activated cabinet and one session; `temporary` makes mailed
/// passwords temporary.
async fn fixture(temporary: bool) -> Fixture {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
    let mailer = Arc::new(RecordingMailer::new());
    let store = FaultyStore::new(MemoryStore::new());
    let (service, _background) = AuthService::builder("http://127.0.0.1")
        .store(store.clone())
        .directory(MemoryDirectory::from_csv(DIRECTORY).unwrap())
        .shared_mailer(mailer.clone())
        .hasher(Argon2Hasher::new(HashParams::insecure_fast_for_tests()).unwrap())
        .clock(clock.clone())
        .configure(|config| {
            config.mailed_password_lifetime = temporary.then_some(Duration::from_secs(3600));
        })
        .configure(|c| c.delivery.in_request = true)
        .build()
        .unwrap();
    let form = RegistrationForm {
        surname: "Иванов".into(),
        account_number: "7800000000001".into(),
        email: "resident@example.org".into(),
    };
    let context = RequestContext::default();
    let password = register_by_mail(&service, &mailer, &form, "12", &context)
        .await
        .unwrap();
    let logged_in = service
        .login("resident@example.org", password, &context)
        .await
        .unwrap();
    Fixture {
        token: logged_in.session_token.expose().to_owned(),
        auth: ResidentAuth::with_api(Api::new(service)),
        store,
        clock,
    }
}

async fn me(resident: Resident) -> String {
    format!(
        "{} {}",
        resident.email(),
        resident
            .active_account()
            .map(|a| a.to_string())
            .unwrap_or_default()
    )
}

async fn maybe(resident: Option<Resident>) -> String {
    resident.map_or_else(|| "nobody".to_owned(), |r| r.email().to_string())
}

fn app(auth: &ResidentAuth, prefix: &str) -> Router {
    Router::new()
        .route("/me", get(me).post(me))
        .route("/maybe", get(maybe))
        .merge(auth.router(prefix))
        .with_state(auth.clone())
}

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn get_with(path: &str, header: Option<(&str, &str)>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    request.body(Body::empty()).unwrap()
}

fn code(body: &str) -> String {
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["errors"][0]["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_bearer_session_gives_the_resident() {
    let f = fixture(false).await;
    let app = app(&f.auth, "/api");
    let bearer = format!("Bearer {}", f.token);
    let (status, body) = call(&app, get_with("/me", Some(("authorization", &bearer)))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "resident@example.org 7800000000001");
}

#[tokio::test]
async fn no_session_a_wrong_scheme_or_an_unknown_token_is_401_problem_json() {
    let f = fixture(false).await;
    let app = app(&f.auth, "/api");
    let basic = format!("Basic {}", f.token);
    for header in [
        None,
        Some(("authorization", basic.as_str())),
        Some(("authorization", "Bearer")),
        Some((
            "authorization",
            "Bearer q2dFm0yJm5Hc0fSxQ5pR8sW1vZ3bN6tK7uE4aL9cXyA",
        )),
    ] {
        let response = app.clone().oneshot(get_with("/me", header)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(code(std::str::from_utf8(&body).unwrap()), "session.invalid");
    }
}

#[tokio::test]
async fn an_expired_session_is_refused() {
    let f = fixture(false).await;
    let app = app(&f.auth, "/api");
    let bearer = format!("Bearer {}", f.token);
    f.clock.advance(Duration::from_secs(24 * 3600));
    let (status, body) = call(&app, get_with("/me", Some(("authorization", &bearer)))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "session.invalid");
    let (_, body) = call(&app, get_with("/maybe", Some(("authorization", &bearer)))).await;
    assert_eq!(body, "nobody");
}

#[tokio::test]
async fn the_cookie_works_for_reading_and_with_the_csrf_header_for_changing() {
    let f = fixture(false).await;
    let app = app(&f.auth, "/api");
    // Served over plain http: the cookies have no `__Host-` prefix.
    let session_cookie = format!("session={}", f.token);
    let (status, _) = call(&app, get_with("/me", Some(("cookie", &session_cookie)))).await;
    assert_eq!(status, StatusCode::OK, "GET by cookie");
    let post = |extra: Option<(&str, String)>, cookie: String| {
        let mut request = Request::post("/me").header("cookie", cookie);
        if let Some((name, value)) = extra {
            request = request.header(name, value);
        }
        request.body(Body::empty()).unwrap()
    };
    let (status, _) = call(&app, post(None, session_cookie.clone())).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "POST by cookie without CSRF"
    );
    let csrf = f.auth.api().csrf_key().issue(Some(&f.token));
    let both = format!("{session_cookie}; csrf={csrf}");
    let (status, _) = call(
        &app,
        post(Some(("x-csrf-token", csrf.clone())), both.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "POST by cookie with CSRF");
    let (status, _) = call(&app, post(Some(("x-csrf-token", "forged".into())), both)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a CSRF header that differs"
    );
    let unsigned = format!("{session_cookie}; csrf=planted");
    let (status, _) = call(
        &app,
        post(Some(("x-csrf-token", "planted".into())), unsigned),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a planted, unsigned CSRF cookie"
    );
}

#[tokio::test]
async fn an_optional_resident_is_none_without_a_session() {
    let f = fixture(false).await;
    let app = app(&f.auth, "/api");
    let (status, body) = call(&app, get_with("/maybe", None)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "nobody"));
    let bearer = format!("Bearer {}", f.token);
    let (_, body) = call(&app, get_with("/maybe", Some(("authorization", &bearer)))).await;
    assert_eq!(body, "resident@example.org");
}

#[tokio::test]
async fn a_temporary_password_holds_the_hosts_pages_back() {
    let f = fixture(true).await;
    let app = app(&f.auth, "/api");
    let bearer = format!("Bearer {}", f.token);
    for path in ["/me", "/maybe"] {
        let (status, body) = call(&app, get_with(path, Some(("authorization", &bearer)))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(code(&body), "password.change_required", "{path}");
    }
}

#[tokio::test]
async fn a_storage_outage_is_503_never_nobody() {
    let f = fixture(false).await;
    let app = app(&f.auth, "/api");
    let bearer = format!("Bearer {}", f.token);
    for path in ["/me", "/maybe"] {
        f.store.arm(0, FaultMode::BeforeTheCall);
        let (status, body) = call(&app, get_with(path, Some(("authorization", &bearer)))).await;
        f.store.disarm();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(code(&body), "service.store_unavailable", "{path}");
    }
}

#[tokio::test]
async fn the_api_is_mounted_under_the_hosts_prefix() {
    let f = fixture(false).await;
    let app = app(&f.auth, "/auth/v1/");
    let identify = Request::post("/auth/v1/login/identify")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"email":" Resident@Example.org"}"#))
        .unwrap();
    let (status, body) = call(&app, identify).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("resident@example.org"));
    let bearer = format!("Bearer {}", f.token);
    let (status, _) = call(
        &app,
        get_with("/auth/v1/session", Some(("authorization", &bearer))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, document) = call(&app, get_with("/auth/v1/openapi.json", None)).await;
    assert_eq!(status, StatusCode::OK);
    let document: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert!(document["paths"]["/auth/v1/sessions/{id}"]["delete"].is_object());
    let (status, body) = call(&app, get_with("/auth/v1/nope", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(code(&body), "request.not_found");
    let (status, _) = call(&app, get_with("/api/session", None)).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "nothing at the default prefix"
    );
    let response = app
        .clone()
        .oneshot(get_with("/auth/v1/login", None))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}
