#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

#[cfg(feature = "pages")]
mod pages;
mod serve;

pub use resident_auth_http::ConnectionLimits;
pub use serve::serve;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{
        ConnectInfo, FromRef, FromRequestParts, OptionalFromRequestParts, RawPathParams, Request,
        State,
    },
    http::{request::Parts, HeaderMap, HeaderName, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get, on, MethodFilter, MethodRouter},
    Router,
};
use resident_auth::{AccountNumber, AuthService, Authenticated, CabinetId, Email, Locale, Problem};
pub use resident_auth_http::Api;
use resident_auth_http::{
    admin_api::{self, handle_admin, ADMIN_ROUTES},
    api::Method,
    handle, openapi, web, ApiResponse, Incoming, Refusal, ROUTES,
};
/// What a host configures the [`Api`] and the operators' API with, re-exported so that a
/// host depends on this crate alone for them.
pub use resident_auth_http::{
    admin_api::{AdminApi, OperatorTokens},
    client::{Cidr, ClientAddressing},
    web::CsrfKey,
};

pub use resident_auth_http::BODY_LIMIT;

/// resident-auth mounted in an axum application: the [`Api`] (service, cookies, CSRF key,
/// trusted proxies) that the mounted routes and the [`Resident`] extractor share.
///
/// It is the router's state, or part of it: a host with a state of its own implements
/// `FromRef<HostState> for ResidentAuth` (or derives `FromRef`).
#[derive(Debug, Clone)]
pub struct ResidentAuth {
    api: Arc<Api>,
}

impl ResidentAuth {
    /// The integration of `service`, with [`Api::new`]'s defaults (cookies for plain http,
    /// a random CSRF key, clients told apart by their socket address).
    #[must_use]
    pub fn new(service: AuthService) -> Self {
        Self::with_api(Api::new(service))
    }

    /// The integration of an [`Api`] configured by the host.
    #[must_use]
    pub fn with_api(api: Api) -> Self {
        Self { api: Arc::new(api) }
    }

    /// The API and its settings.
    #[must_use]
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The service, for the host's own handlers.
    #[must_use]
    pub fn service(&self) -> &AuthService {
        self.api.service()
    }

    /// The routes to merge into the host's router: the JSON API under `prefix` (`"/api"`,
    /// or `""` for the root), its OpenAPI document at `{prefix}/openapi.json`, a JSON 404
    /// for any other path under `prefix`, and with the `pages` feature the HTML pages at
    /// the root. Every answer carries `X-Content-Type-Options: nosniff`.
    ///
    /// Without the `pages` feature, when the service's letters still link to the library's
    /// own `{base}/confirm` or `{base}/recover` page, it warns (once per process) that those
    /// links would answer 404: enable `pages`, or point them at the host's front end with
    /// `AuthServiceBuilder::confirmation_link` and `recovery_link`.
    ///
    /// The client's address for per-client limits comes from
    /// `into_make_service_with_connect_info::<SocketAddr>()`; without it every client
    /// shares one key.
    pub fn router<S>(&self, prefix: &str) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let prefix = prefix.trim_end_matches('/');
        let mut router = Router::new();
        for route in ROUTES {
            let operation = route.operation;
            router = router.route(
                &format!("{prefix}{}", route.path),
                on(
                    filter(route.method),
                    move |state: State<Self>, request: Request| endpoint(state, operation, request),
                )
                .fallback(move |headers: HeaderMap| async move {
                    refuse(route.method.as_str(), &headers)
                }),
            );
        }
        let document = Arc::new(openapi::document_json(prefix));
        router = router
            .route(
                &format!("{prefix}{}", openapi::DOCUMENT_PATH),
                get(move || async move {
                    ([("content-type", "application/json")], document.to_string()).into_response()
                })
                .fallback(|headers: HeaderMap| async move { refuse("GET", &headers) }),
            )
            .route(&format!("{prefix}/{{*rest}}"), any(not_found))
            .route(&format!("{prefix}/"), any(not_found));
        if !prefix.is_empty() {
            router = router.route(prefix, any(not_found));
        }
        #[cfg(feature = "pages")]
        {
            router = router.merge(pages::routes());
        }
        #[cfg(not(feature = "pages"))]
        warn_of_unserved_pages(self.service());
        router
            .layer(axum::middleware::map_response(no_sniffing))
            .with_state(self.clone())
    }

    /// Purges expired sessions, links and idle throttles every `every` on the current
    /// tokio runtime, for the life of the process (`auth.spawn_purge(Duration::from_secs(300));`).
    pub fn spawn_purge(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(resident_auth_http::purge_periodically(
            self.service().clone(),
            every,
        ))
    }

    /// Delivers the mail queue on the current tokio runtime, for the life of the process:
    /// at once when this instance queues a letter, and every `every` besides
    /// ([`resident_auth_http::deliver_periodically`]). Every instance runs one.
    pub fn spawn_delivery(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(resident_auth_http::deliver_periodically(
            self.service().clone(),
            every,
        ))
    }
}

/// Warns once per process when letters link to pages this router does not serve.
#[cfg(not(feature = "pages"))]
fn warn_of_unserved_pages(service: &AuthService) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let pages = service.config().links.pages_needed();
    if !pages.is_empty() && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            pages = %pages.join(", "),
            "resident-auth: letters link to the library's own pages, which this router does \
             not serve (resident-auth-axum without its `pages` feature): those links would \
             answer 404. Enable `pages`, or point them at your front end \
             (AuthServiceBuilder::confirmation_link / recovery_link)"
        );
    }
}

/// `GET /metrics`: what `render` returns (a Prometheus exposition, e.g.
/// `metrics_exporter_prometheus::PrometheusHandle::render`), as `text/plain; version=0.0.4`.
pub fn metrics_router<S>(render: impl Fn() -> String + Send + Sync + 'static) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let render = Arc::new(render);
    Router::new().route(
        "/metrics",
        get(move || {
            let render = Arc::clone(&render);
            async move { ([("content-type", "text/plain; version=0.0.4")], render()) }
        }),
    )
}

/// Serves `app` on `listener` (a listener of its own: the operators' API, the metrics) on
/// the current tokio runtime, for the life of the process, within the default
/// [`ConnectionLimits`] ([`serve`]).
pub fn serve_apart(listener: std::net::TcpListener, app: Router) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let served = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => serve(listener, app, ConnectionLimits::default()).await,
            Err(error) => Err(error),
        };
        if let Err(error) = served {
            tracing::error!(%error, "a listener apart stopped");
        }
    })
}

/// The operators' API ([`resident_auth_http::admin_api`]) under `prefix`, with its OpenAPI
/// document at `{prefix}/openapi.json`: mount it on a listener of its own, never on the
/// residents' one.
pub fn admin_router<S>(api: AdminApi, prefix: &str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let prefix = prefix.trim_end_matches('/');
    let mut router: Router<AdminApi> = Router::new();
    let mut paths: Vec<&'static str> = ADMIN_ROUTES.iter().map(|route| route.path).collect();
    paths.dedup();
    for path in paths {
        let routes = ADMIN_ROUTES.iter().filter(|route| route.path == path);
        let allow = routes
            .clone()
            .map(|route| route.method.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut methods = MethodRouter::new();
        for route in routes {
            let operation = route.operation;
            methods = methods.on(
                filter(route.method),
                move |State(api): State<AdminApi>, request: Request| async move {
                    let (mut parts, body) = request.into_parts();
                    let parameter = RawPathParams::from_request_parts(&mut parts, &())
                        .await
                        .ok()
                        .and_then(|params| params.iter().next().map(|(_, value)| value.to_owned()))
                        .unwrap_or_default();
                    let bytes = match read_body(body, ADMIN_BODY_TIMEOUT).await {
                        Ok(bytes) => bytes,
                        Err(refusal) => return respond(ApiResponse::refusal(refusal, Locale::En)),
                    };
                    respond(handle_admin(&api, operation, &parts.headers, &parameter, &bytes).await)
                },
            );
        }
        router = router.route(
            &format!("{prefix}{path}"),
            methods.fallback(move |headers: HeaderMap| async move { refuse(&allow, &headers) }),
        );
    }
    let document = Arc::new(admin_api::admin_document_json(prefix));
    router
        .route(
            &format!("{prefix}{}", openapi::DOCUMENT_PATH),
            get(move || async move {
                ([("content-type", "application/json")], document.to_string()).into_response()
            })
            .fallback(|headers: HeaderMap| async move { refuse("GET", &headers) }),
        )
        .fallback(|| async { respond(admin_api::admin_not_found()) })
        .layer(axum::middleware::map_response(no_sniffing))
        .with_state(api)
}

/// axum's filter for a route's method.
fn filter(method: Method) -> MethodFilter {
    match method {
        Method::Get => MethodFilter::GET,
        Method::Delete => MethodFilter::DELETE,
        _ => MethodFilter::POST,
    }
}

/// Every answer of the mounted routes: browsers take the declared content type as it is.
async fn no_sniffing(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn peer(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

async fn endpoint(
    State(auth): State<ResidentAuth>,
    operation: resident_auth_http::Operation,
    request: Request,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let id = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|params| {
            params
                .iter()
                .find(|(name, _)| *name == "id")
                .map(|(_, value)| value.to_owned())
        });
    let bytes = match read_body(body, auth.api.connection_limits().body_timeout()).await {
        Ok(bytes) => bytes,
        Err(refusal) => {
            return respond(ApiResponse::refusal(refusal, web::locale(&parts.headers)));
        }
    };
    let mut incoming = Incoming::new(peer(&parts), &bytes);
    if let Some(id) = &id {
        incoming = incoming.with_id(id);
    }
    respond(handle(&auth.api, operation, &parts.headers, incoming).await)
}

async fn not_found(headers: HeaderMap) -> Response {
    respond(ApiResponse::refusal(
        Refusal::NotFound,
        web::locale(&headers),
    ))
}

/// 405 for a method the path does not take, as the API's problem JSON with `Allow`.
fn refuse(allow: &str, headers: &HeaderMap) -> Response {
    respond(ApiResponse::refusal(
        Refusal::MethodNotAllowed {
            allow: allow.to_owned(),
        },
        web::locale(headers),
    ))
}

/// The operators' API reads its small bodies within this time.
const ADMIN_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The request body, at most [`BODY_LIMIT`] bytes, arrived within `timeout`.
async fn read_body(body: Body, timeout: Duration) -> Result<axum::body::Bytes, Refusal> {
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, BODY_LIMIT)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Err(_) => Err(Refusal::TimedOut),
        Ok(Err(error)) if serve::timed_out(&error) => Err(Refusal::TimedOut),
        // Over the limit; or the client went away, when nobody reads the answer.
        Ok(Err(_)) => Err(Refusal::TooLarge),
    }
}

/// An answer of the API as an axum response.
fn respond(answer: ApiResponse) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(answer.body_bytes()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in answer.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    response
}

/// The signed-in resident, for the host's own handlers: the session of the
/// `Authorization: Bearer` token, else of the session cookie (a state-changing request by
/// cookie needs the CSRF token in `X-CSRF-Token`; see [`Api::resident`]).
///
/// Without a usable session the handler is not called: the answer is 401 with the API's
/// problem JSON (`session.invalid`); while a temporary password is in force, 403
/// (`password.change_required`). `Option<Resident>` serves pages that work both ways: `None`
/// when nobody is signed in.
///
/// ```
/// use axum::{routing::get, Json, Router};
/// use resident_auth_axum::{Resident, ResidentAuth};
///
/// async fn whoami(resident: Resident) -> Json<String> {
///     Json(resident.email().to_string())
/// }
///
/// fn app(auth: ResidentAuth) -> Router {
///     Router::new().route("/whoami", get(whoami)).merge(auth.router("/api")).with_state(auth)
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Resident {
    session: Authenticated,
    locale: Locale,
}

impl Resident {
    /// The cabinet: the opaque, stable identity to join the host's tables on.
    #[must_use]
    pub fn cabinet(&self) -> CabinetId {
        self.session.cabinet
    }

    /// The cabinet's email.
    #[must_use]
    pub fn email(&self) -> &Email {
        &self.session.email
    }

    /// The personal account the resident has selected.
    #[must_use]
    pub fn active_account(&self) -> Option<AccountNumber> {
        self.session.active_account
    }

    /// The authenticated session, for the service's operations.
    #[must_use]
    pub fn session(&self) -> &Authenticated {
        &self.session
    }

    /// The request's language (for [`AuthError::new`]).
    #[must_use]
    pub fn locale(&self) -> Locale {
        self.locale
    }
}

async fn resident_of(parts: &Parts, auth: &ResidentAuth) -> Result<Resident, AuthError> {
    let locale = web::locale(&parts.headers);
    match auth
        .api
        .resident(&parts.headers, parts.method.is_safe())
        .await
    {
        Ok(session) => Ok(Resident { session, locale }),
        Err(error) => Err(AuthError::new(error, locale)),
    }
}

impl<S> FromRequestParts<S> for Resident
where
    ResidentAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        resident_of(parts, &ResidentAuth::from_ref(state)).await
    }
}

impl<S> OptionalFromRequestParts<S> for Resident
where
    ResidentAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, AuthError> {
        match resident_of(parts, &ResidentAuth::from_ref(state)).await {
            Ok(resident) => Ok(Some(resident)),
            Err(error) if error.error.is(&Problem::SessionInvalid) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// A library error as an answer: the API's problem JSON
/// (`{"errors":[{"field","code","message"}]}`, stable codes, messages in the request's
/// language), its status, and `Retry-After` when the error gives one. Host handlers return
/// `Result<_, AuthError>` and use `?` on the service's results.
#[derive(Debug)]
pub struct AuthError {
    error: resident_auth::Error,
    locale: Locale,
}

impl AuthError {
    /// `error`, with messages in `locale`.
    #[must_use]
    pub fn new(error: resident_auth::Error, locale: Locale) -> Self {
        Self { error, locale }
    }

    /// The library's error.
    #[must_use]
    pub fn error(&self) -> &resident_auth::Error {
        &self.error
    }
}

/// Messages in Russian, the portal's default language; [`AuthError::new`] chooses.
impl From<resident_auth::Error> for AuthError {
    fn from(error: resident_auth::Error) -> Self {
        Self::new(error, Locale::Ru)
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        respond(ApiResponse::from_error(&self.error, self.locale))
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for AuthError {}
