//! The `Resident` extractor and the mounted API, through actix-web's test service: a
//! session present, absent, expired, under the wrong scheme, by cookie with and without the
//! CSRF header, optional, and held back by a temporary password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{sync::Arc, time::Duration};

use actix_web::{
    dev::{Service, ServiceResponse},
    http::StatusCode,
    test, web, App,
};
use resident_auth::{
    config::{Argon2Hasher, HashParams, ManualClock},
    journeys::RegistrationForm,
    memory::{register_by_mail, MemoryDirectory, MemoryStore, RecordingMailer},
    testing::{FaultMode, FaultyStore},
    AuthService, RequestContext, Timestamp,
};
use resident_auth_actix::{MaybeResident, Resident, ResidentAuth};

const DIRECTORY: &str = "account_number,surnames,address,premises\n\
    7800000000001,Иванов,\"ул. Садовая, д. 1, кв. 12\",12\n";

/// A portal with one activated cabinet, its session token, and its clock.
async fn fixture(temporary: bool) -> (ResidentAuth, Arc<ManualClock>, String) {
    let (auth, clock, token, _) = fixture_with_store(temporary).await;
    (auth, clock, token)
}

/// [`fixture`] with its store, to make it fail.
async fn fixture_with_store(
    temporary: bool,
) -> (
    ResidentAuth,
    Arc<ManualClock>,
    String,
    FaultyStore<MemoryStore>,
) {
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_800_000_000_000)));
    let mailer = Arc::new(RecordingMailer::new());
    let store = FaultyStore::new(MemoryStore::new());
    let (service, _background) = AuthService::builder("http://127.0.0.1")
        .store(store.clone())
        .directory(MemoryDirectory::from_csv(DIRECTORY).unwrap())
        .shared_mailer(mailer.clone())
        .hasher(Argon2Hasher::new(HashParams::insecure_fast_for_tests()).unwrap())
        .clock(clock.clone())
        .configure(|c| c.mailed_password_lifetime = temporary.then_some(Duration::from_secs(60)))
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
    let token = logged_in.session_token.expose().to_owned();
    (ResidentAuth::new(service), clock, token, store)
}

async fn me(resident: Resident) -> String {
    format!(
        "{} {}",
        resident.email(),
        resident.active_account().unwrap()
    )
}

async fn maybe(resident: MaybeResident) -> String {
    resident
        .into_inner()
        .map_or_else(|| "nobody".to_owned(), |r| r.email().to_string())
}

async fn service(
    auth: &ResidentAuth,
    prefix: &str,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    test::init_service(
        App::new()
            .route("/me", web::get().to(me))
            .route("/me", web::post().to(me))
            .route("/maybe", web::get().to(maybe))
            .configure(auth.configure(prefix)),
    )
    .await
}

fn code(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    json["errors"][0]["code"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_bearer_session_gives_the_resident_and_others_get_401() {
    let (auth, _, token) = fixture(false).await;
    let app = service(&auth, "/api").await;
    let request = test::TestRequest::get()
        .uri("/me")
        .insert_header(("authorization", format!("Bearer {token}")))
        .to_request();
    let body = test::call_and_read_body(&app, request).await;
    assert_eq!(&body[..], b"resident@example.org 7800000000001");
    for header in [
        None,
        Some(format!("Basic {token}")),
        Some("Bearer q2dFm0yJm5Hc0fSxQ5pR8sW1vZ3bN6tK7uE4aL9cXyA".to_owned()),
    ] {
        let mut request = test::TestRequest::get().uri("/me");
        if let Some(value) = &header {
            request = request.insert_header(("authorization", value.as_str()));
        }
        let response = test::call_service(&app, request.to_request()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header:?}");
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(code(&test::read_body(response).await), "session.invalid");
    }
}

#[actix_web::test]
async fn an_expired_session_is_refused_and_optional_is_none() {
    let (auth, clock, token) = fixture(false).await;
    let app = service(&auth, "/api").await;
    let bearer = format!("Bearer {token}");
    let maybe = || test::TestRequest::get().uri("/maybe");
    let body = test::call_and_read_body(&app, maybe().to_request()).await;
    assert_eq!(&body[..], b"nobody");
    let signed_in = maybe().insert_header(("authorization", bearer.as_str()));
    let body = test::call_and_read_body(&app, signed_in.to_request()).await;
    assert_eq!(&body[..], b"resident@example.org");
    clock.advance(Duration::from_secs(24 * 3600));
    let request = test::TestRequest::get()
        .uri("/me")
        .insert_header(("authorization", bearer.as_str()));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn the_cookie_works_for_reading_and_with_the_csrf_header_for_changing() {
    let (auth, _, token) = fixture(false).await;
    let app = service(&auth, "/api").await;
    // Served over plain http: the cookies have no `__Host-` prefix.
    let session = format!("session={token}");
    let get = test::TestRequest::get()
        .uri("/me")
        .insert_header(("cookie", session.as_str()));
    assert_eq!(
        test::call_service(&app, get.to_request()).await.status(),
        StatusCode::OK
    );
    let csrf = auth.api().csrf_key().issue(Some(&token));
    let both = format!("{session}; csrf={csrf}");
    for (cookie, header, expected) in [
        (session.as_str(), None, StatusCode::UNAUTHORIZED),
        (both.as_str(), Some(csrf.as_str()), StatusCode::OK),
        (both.as_str(), Some("forged"), StatusCode::UNAUTHORIZED),
    ] {
        let mut post = test::TestRequest::post()
            .uri("/me")
            .insert_header(("cookie", cookie));
        if let Some(value) = header {
            post = post.insert_header(("x-csrf-token", value));
        }
        let status = test::call_service(&app, post.to_request()).await.status();
        assert_eq!(status, expected, "{header:?}");
    }
}

#[actix_web::test]
async fn a_temporary_password_holds_the_hosts_pages_back() {
    let (auth, _, token) = fixture(true).await;
    let app = service(&auth, "/api").await;
    let request = test::TestRequest::get()
        .uri("/me")
        .insert_header(("authorization", format!("Bearer {token}")));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        code(&test::read_body(response).await),
        "password.change_required"
    );
    // The optional extractor is empty only without a session: a required password change
    // is still 403, as on axum (actix's own `Option<Resident>` said "nobody").
    let request = test::TestRequest::get()
        .uri("/maybe")
        .insert_header(("authorization", format!("Bearer {token}")));
    let response = test::call_service(&app, request.to_request()).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[actix_web::test]
async fn a_storage_outage_is_503_never_nobody() {
    let (auth, _, token, store) = fixture_with_store(false).await;
    let app = service(&auth, "/api").await;
    for path in ["/me", "/maybe"] {
        let request = test::TestRequest::get()
            .uri(path)
            .insert_header(("authorization", format!("Bearer {token}")));
        store.arm(0, FaultMode::BeforeTheCall);
        let response = test::call_service(&app, request.to_request()).await;
        store.disarm();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert_eq!(
            code(&test::read_body(response).await),
            "service.store_unavailable",
            "{path}"
        );
    }
}

#[actix_web::test]
async fn the_api_is_mounted_under_the_hosts_prefix() {
    let (auth, _, token) = fixture(false).await;
    let app = service(&auth, "/auth/v1").await;
    let identify = test::TestRequest::post()
        .uri("/auth/v1/login/identify")
        .insert_header(("content-type", "application/json"))
        .set_payload(r#"{"email":" Resident@Example.org"}"#);
    let response = test::call_service(&app, identify.to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let session = test::TestRequest::get()
        .uri("/auth/v1/session")
        .insert_header(("authorization", format!("Bearer {token}")));
    assert_eq!(
        test::call_service(&app, session.to_request())
            .await
            .status(),
        StatusCode::OK
    );
    let document = test::TestRequest::get().uri("/auth/v1/openapi.json");
    let document: serde_json::Value =
        serde_json::from_slice(&test::call_and_read_body(&app, document.to_request()).await)
            .unwrap();
    assert!(document["paths"]["/auth/v1/sessions/{id}"]["delete"].is_object());
    let response = test::call_service(
        &app,
        test::TestRequest::get().uri("/auth/v1/nope").to_request(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(&test::read_body(response).await), "request.not_found");
    let wrong_method = test::TestRequest::get().uri("/auth/v1/login").to_request();
    let response = test::call_service(&app, wrong_method).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers().get("allow").unwrap(), "POST");
}

#[actix_web::test]
async fn without_the_api_mounted_the_extractor_answers_500() {
    let app = test::init_service(App::new().route("/me", web::get().to(me))).await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/me").to_request()).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
}
