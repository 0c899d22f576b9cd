//! The reference portal on axum: routing, cookies and CSRF around
//! [`resident_auth_portal::api`] (JSON, documented at `/api/openapi.json`) and the HTML
//! pages of the guide.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

mod html;
mod pages;

use std::net::SocketAddr;

use axum::{
    body::Bytes,
    extract::Path,
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Router,
};
use resident_auth::{AuthService, Locale, RequestContext};
use resident_auth_portal::{
    api::{self, Api, ApiResponse},
    client::ClientAddressing,
    openapi,
};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub api: Api,
    /// Session cookies get `Secure` and the `__Host-` prefix, and answers get HSTS, when
    /// the portal is served over https.
    pub secure_cookies: bool,
    /// The key that signs CSRF tokens (random per process).
    pub(crate) csrf_key: std::sync::Arc<[u8; 32]>,
}

impl AppState {
    /// The session cookie's name: `__Host-session` over https (no other host or path can
    /// set it), `session` otherwise.
    #[must_use]
    pub fn session_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-session"
        } else {
            "session"
        }
    }

    /// The CSRF cookie's name: `__Host-csrf` over https, `csrf` otherwise.
    #[must_use]
    pub fn csrf_cookie(&self) -> &'static str {
        if self.secure_cookies {
            "__Host-csrf"
        } else {
            "csrf"
        }
    }

    #[must_use]
    pub fn new(service: AuthService, secure_cookies: bool) -> Self {
        Self::with_client_addressing(service, secure_cookies, ClientAddressing::default())
    }

    /// The state of a portal behind the proxies `clients` trusts.
    #[must_use]
    pub fn with_client_addressing(
        service: AuthService,
        secure_cookies: bool,
        clients: ClientAddressing,
    ) -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Self {
            api: Api::with_client_addressing(service, clients),
            secure_cookies,
            csrf_key: std::sync::Arc::new(key),
        }
    }

    pub fn service(&self) -> &AuthService {
        self.api.service()
    }
}

/// The whole portal: HTML pages and `/api`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/registrations", post(api_register))
        .route("/api/registrations/confirm", post(api_confirm))
        .route("/api/registrations/activate", post(api_activate))
        .route("/api/login/identify", post(api_identify))
        .route("/api/login", post(api_login))
        .route("/api/session", get(api_session))
        .route("/api/session/active-account", post(api_select_account))
        .route("/api/logout", post(api_logout))
        .route("/api/recovery", post(api_request_recovery))
        .route("/api/recovery/complete", post(api_complete_recovery))
        .route("/api/addresses", post(api_add_address))
        .route("/api/password", post(api_change_password))
        .route("/api/sessions", get(api_sessions))
        .route("/api/sessions/others", delete(api_end_other_sessions))
        .route("/api/sessions/{id}", delete(api_end_session))
        .route(openapi::DOCUMENT_PATH, get(api_document))
        .route(
            "/api/{*rest}",
            get(api_not_found).post(api_not_found).delete(api_not_found),
        )
        .merge(pages::routes())
        .layer(axum::middleware::map_response(no_sniffing))
        .with_state(state)
}

/// Every answer, pages and API alike: browsers take the declared content type as it is.
async fn no_sniffing(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}

/// Language: the `lang` cookie, else `Accept-Language`, else Russian.
pub(crate) fn locale(headers: &HeaderMap) -> Locale {
    if let Some(lang) = cookie(headers, "lang").and_then(|v| v.parse().ok()) {
        return lang;
    }
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Locale::Ru, Locale::from_accept_language)
}

/// The client's key for per-client limits: the socket peer (when the server was started
/// with connect info; tests that call the router directly have none), or behind trusted
/// proxies the forwarded address, IPv6 by its prefix.
pub(crate) struct Peer(Option<String>);

impl axum::extract::FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip());
        let header =
            |name: header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        Ok(Peer(state.api.clients().client_key(
            peer,
            header(header::FORWARDED),
            header(header::HeaderName::from_static("x-forwarded-for")),
        )))
    }
}

pub(crate) fn context(headers: &HeaderMap, peer: &Peer) -> RequestContext {
    let mut context = RequestContext::new(locale(headers));
    context.client.clone_from(&peer.0);
    context.user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    context
}

/// The request body with its `Content-Type`, as the API reads it.
pub(crate) fn json<'a>(headers: &'a HeaderMap, body: &'a Bytes) -> api::JsonBody<'a> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    api::JsonBody::new(content_type, body)
}

/// A cookie's value from the `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn respond(answer: ApiResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match answer.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    if let Some(seconds) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// JSON endpoints that need only the body and the request context.
macro_rules! body_route {
    ($name:ident, $method:ident) => {
        async fn $name(
            State(s): State<AppState>,
            peer: Peer,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            respond(api::$method(&s.api, json(&headers, &body), &context(&headers, &peer)).await)
        }
    };
}

body_route!(api_register, register);
body_route!(api_confirm, confirm);
body_route!(api_activate, activate);
body_route!(api_identify, identify);
body_route!(api_login, login);
body_route!(api_request_recovery, request_recovery);
body_route!(api_complete_recovery, complete_recovery);

async fn api_session(State(s): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    respond(api::session(&s.api, authorization(&headers), &context(&headers, &peer)).await)
}

async fn api_select_account(
    State(s): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let context = context(&headers, &peer);
    let body = json(&headers, &body);
    respond(api::select_account(&s.api, authorization(&headers), body, &context).await)
}

async fn api_logout(State(s): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    respond(api::logout(&s.api, authorization(&headers), &context(&headers, &peer)).await)
}

async fn api_add_address(
    State(s): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let context = context(&headers, &peer);
    let body = json(&headers, &body);
    respond(api::add_address(&s.api, authorization(&headers), body, &context).await)
}

async fn api_change_password(
    State(s): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let context = context(&headers, &peer);
    let body = json(&headers, &body);
    respond(api::change_password(&s.api, authorization(&headers), body, &context).await)
}

async fn api_sessions(State(s): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    respond(api::sessions(&s.api, authorization(&headers), &context(&headers, &peer)).await)
}

async fn api_end_session(
    State(s): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let context = context(&headers, &peer);
    respond(api::end_session(&s.api, authorization(&headers), &id, &context).await)
}

async fn api_end_other_sessions(
    State(s): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    let context = context(&headers, &peer);
    respond(api::end_other_sessions(&s.api, authorization(&headers), &context).await)
}

/// The OpenAPI document, generated from the code at start-up.
async fn api_document() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOCUMENT.get_or_init(openapi::document_json).clone();
    ([(header::CONTENT_TYPE, "application/json")], json).into_response()
}

async fn api_not_found(headers: HeaderMap) -> Response {
    respond(api::not_found(locale(&headers)))
}
