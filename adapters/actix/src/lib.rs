#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use actix_web::{
    dev::Payload,
    http::{
        header::{HeaderMap, HeaderName, HeaderValue},
        Method as HttpMethod, StatusCode,
    },
    web, FromRequest, HttpRequest, HttpResponse, ResponseError,
};
use resident_auth::{AccountNumber, AuthService, Authenticated, CabinetId, Email, Locale};
pub use resident_auth_http::Api;
use resident_auth_http::{
    admin_api::{self, handle_admin, ADMIN_ROUTES},
    api::Method,
    handle, openapi,
    web::Headers,
    ApiResponse, Incoming, Operation, Refusal, ROUTES,
};
/// What a host configures the [`Api`] and the operators' API with, re-exported so that a
/// host depends on this crate alone for them.
pub use resident_auth_http::{
    admin_api::{AdminApi, OperatorTokens},
    client::{Cidr, ClientAddressing},
    web::CsrfKey,
};

#[cfg(feature = "pages")]
mod pages;
mod serve;

pub use resident_auth_http::{ConnectionLimits, BODY_LIMIT};
pub use serve::{limit_server, BodyDeadline};

/// resident-auth mounted in an actix-web application: the [`Api`] (service, cookies, CSRF
/// key, trusted proxies) that the mounted routes and the [`Resident`] extractor share.
/// Clone it into the `HttpServer::new` closure.
#[derive(Debug, Clone)]
pub struct ResidentAuth {
    api: web::Data<Api>,
}

impl ResidentAuth {
    /// The integration of `service`, with [`Api::new`]'s defaults.
    #[must_use]
    pub fn new(service: AuthService) -> Self {
        Self::with_api(Api::new(service))
    }

    /// The integration of an [`Api`] configured by the host.
    #[must_use]
    pub fn with_api(api: Api) -> Self {
        Self {
            api: web::Data::new(api),
        }
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

    /// The API mounted under `prefix` (`"/api"`, or `""` at the root), for
    /// `App::configure`: the routes, the OpenAPI document at `{prefix}/openapi.json`, a JSON
    /// 404 for any other path under a non-empty `prefix`, 405 with `Allow` for a wrong
    /// method, and the [`Api`] as app data for the [`Resident`] extractor.
    ///
    /// With the `pages` feature it mounts the guide's HTML pages at the root too
    /// ([`resident_auth_http::pages`]). Without it, when the service's letters still link to
    /// the library's own `{base}/confirm` or `{base}/recover` page, the first call warns
    /// (once per process) that those links would answer 404: enable `pages`, or point them
    /// at the host's front end with `AuthServiceBuilder::confirmation_link` and
    /// `recovery_link`.
    pub fn configure(&self, prefix: &str) -> impl FnOnce(&mut web::ServiceConfig) + 'static {
        #[cfg(not(feature = "pages"))]
        warn_of_unserved_pages(self.service());
        let prefix = prefix.trim_end_matches('/').to_owned();
        let api = self.api.clone();
        move |config| {
            config.app_data(api);
            for route in ROUTES {
                let operation = route.operation;
                let method = http_method(route.method);
                config.service(endpoint(
                    &format!("{prefix}{}", route.path),
                    method,
                    move |request: HttpRequest, body: web::Payload| {
                        endpoint_handler(request, body, operation)
                    },
                ));
            }
            let document = Arc::new(openapi::document_json(&prefix));
            config.service(endpoint(
                &format!("{prefix}{}", openapi::DOCUMENT_PATH),
                HttpMethod::GET,
                move || {
                    let document = document.to_string();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .insert_header(("x-content-type-options", "nosniff"))
                            .body(document)
                    }
                },
            ));
            if !prefix.is_empty() {
                config.service(web::resource(format!("{prefix}/{{tail:.*}}")).to(not_found));
                config.service(web::resource(prefix.clone()).to(not_found));
            }
            #[cfg(feature = "pages")]
            pages::configure(config);
        }
    }

    /// Purges expired sessions, links and idle throttles every `every`, for the life of
    /// the process (`auth.spawn_purge(Duration::from_secs(300));` inside the actix runtime).
    pub fn spawn_purge(&self, every: Duration) -> actix_web::rt::task::JoinHandle<()> {
        actix_web::rt::spawn(resident_auth_http::purge_periodically(
            self.service().clone(),
            every,
        ))
    }

    /// Delivers the mail queue inside the actix runtime, for the life of the process: at
    /// once when this instance queues a letter, and every `every` besides
    /// ([`resident_auth_http::deliver_periodically`]). Every instance runs one.
    pub fn spawn_delivery(&self, every: Duration) -> actix_web::rt::task::JoinHandle<()> {
        actix_web::rt::spawn(resident_auth_http::deliver_periodically(
            self.service().clone(),
            every,
        ))
    }
}

/// Warns once per process when letters link to pages nobody serves here.
#[cfg(not(feature = "pages"))]
fn warn_of_unserved_pages(service: &AuthService) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let pages = service.config().links.pages_needed();
    if !pages.is_empty() && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!(
            pages = %pages.join(", "),
            "resident-auth: letters link to the library's own pages, which resident-auth-actix \
             does not serve without its `pages` feature: those links would answer 404. Enable \
             `pages`, or point them at your front end \
             (AuthServiceBuilder::confirmation_link / recovery_link, e.g. \
             https://app.example/confirm/{{token}}), or serve those paths yourself"
        );
    }
}

/// `GET /metrics`, for `App::configure`: what `render` returns (a Prometheus exposition,
/// e.g. `metrics_exporter_prometheus::PrometheusHandle::render`).
pub fn configure_metrics(
    render: impl Fn() -> String + Send + Sync + 'static,
) -> impl FnOnce(&mut actix_web::web::ServiceConfig) + Clone {
    let render = std::sync::Arc::new(render);
    move |config: &mut actix_web::web::ServiceConfig| {
        config.route(
            "/metrics",
            actix_web::web::get().to(move || {
                let body = render();
                async move {
                    actix_web::HttpResponse::Ok()
                        .content_type("text/plain; version=0.0.4")
                        .body(body)
                }
            }),
        );
    }
}

/// The operators' API ([`resident_auth_http::admin_api`]) under `prefix`, for
/// `App::configure` on a server of its own (never the residents' one), with its OpenAPI
/// document at `{prefix}/openapi.json`.
pub fn configure_admin(
    api: AdminApi,
    prefix: &str,
) -> impl FnOnce(&mut web::ServiceConfig) + 'static {
    let prefix = prefix.trim_end_matches('/').to_owned();
    move |config| {
        let api = web::Data::new(api);
        config.app_data(api);
        let mut paths: Vec<&'static str> = ADMIN_ROUTES.iter().map(|r| r.path).collect();
        paths.dedup();
        for path in paths {
            let routes: Vec<_> = ADMIN_ROUTES.iter().filter(|r| r.path == path).collect();
            let allow = routes
                .iter()
                .map(|r| r.method.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut resource = web::resource(format!("{prefix}{path}"));
            for route in routes {
                let operation = route.operation;
                let method = http_method(route.method);
                resource = resource.route(web::method(method).to(
                    move |request: HttpRequest, body: web::Payload| async move {
                        let Some(api) = request.app_data::<web::Data<AdminApi>>() else {
                            return not_mounted();
                        };
                        let body = match read_body(body, ADMIN_BODY_TIMEOUT).await {
                            Ok(body) => body,
                            Err(refusal) => {
                                return respond(ApiResponse::refusal(refusal, Locale::En))
                            }
                        };
                        let parameter = request
                            .match_info()
                            .iter()
                            .next()
                            .map(|(_, value)| value.to_owned())
                            .unwrap_or_default();
                        let headers = ActixHeaders(request.headers());
                        respond(handle_admin(api, operation, &headers, &parameter, &body).await)
                    },
                ));
            }
            config.service(
                resource.default_service(web::to(move |request: HttpRequest| {
                    let allow = allow.clone();
                    async move { refuse(allow, &request) }
                })),
            );
        }
        let document = Arc::new(admin_api::admin_document_json(&prefix));
        config.service(endpoint(
            &format!("{prefix}{}", openapi::DOCUMENT_PATH),
            HttpMethod::GET,
            move || {
                let document = document.to_string();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .insert_header(("x-content-type-options", "nosniff"))
                        .body(document)
                }
            },
        ));
        config.default_service(web::to(|| async { respond(admin_api::admin_not_found()) }));
    }
}

/// actix-web's method for a route's.
fn http_method(method: Method) -> HttpMethod {
    match method {
        Method::Get => HttpMethod::GET,
        Method::Delete => HttpMethod::DELETE,
        _ => HttpMethod::POST,
    }
}

/// actix-web's header map as [`Headers`].
struct ActixHeaders<'a>(&'a HeaderMap);

impl Headers for ActixHeaders<'_> {
    fn all<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.0
            .get_all(name)
            .filter_map(|value| value.to_str().ok())
            .collect()
    }
}

/// One resource: `handler` for `method`, and for any other method 405 with `Allow`, as HTTP
/// asks (a plain route would fall through to the app's 404).
fn endpoint<F, Args>(path: &str, method: HttpMethod, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let allow = method.to_string();
    web::resource(path)
        .route(web::method(method).to(handler))
        .default_service(web::to(move |request: HttpRequest| {
            let allow = allow.clone();
            async move { refuse(allow, &request) }
        }))
}

/// 405 for a method the path does not take, as the API's problem JSON with `Allow`.
fn refuse(allow: String, request: &HttpRequest) -> HttpResponse {
    let locale = resident_auth_http::web::locale(&ActixHeaders(request.headers()));
    respond(ApiResponse::refusal(
        Refusal::MethodNotAllowed { allow },
        locale,
    ))
}

/// The operators' API reads its small bodies within this time.
const ADMIN_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The request body, at most [`BODY_LIMIT`] bytes, arrived within `timeout`.
async fn read_body(mut payload: web::Payload, timeout: Duration) -> Result<web::Bytes, Refusal> {
    use futures_util::StreamExt as _;
    let read = async {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|error| match error {
                actix_web::error::PayloadError::Io(io)
                    if io.kind() == std::io::ErrorKind::TimedOut =>
                {
                    Refusal::TimedOut
                }
                _ => Refusal::TooLarge,
            })?;
            if body.len() + chunk.len() > BODY_LIMIT {
                return Err(Refusal::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    actix_web::rt::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(Refusal::TimedOut))
}

async fn endpoint_handler(
    request: HttpRequest,
    body: web::Payload,
    operation: Operation,
) -> HttpResponse {
    let Some(api) = request.app_data::<web::Data<Api>>() else {
        return not_mounted();
    };
    let body = match read_body(body, api.connection_limits().body_timeout()).await {
        Ok(body) => body,
        Err(refusal) => {
            let locale = resident_auth_http::web::locale(&ActixHeaders(request.headers()));
            return respond(ApiResponse::refusal(refusal, locale));
        }
    };
    let mut incoming = Incoming::new(request.peer_addr().map(|a| a.ip()), &body);
    if let Some(id) = request.match_info().get("id") {
        incoming = incoming.with_id(id);
    }
    respond(handle(api, operation, &ActixHeaders(request.headers()), incoming).await)
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    let locale = resident_auth_http::web::locale(&ActixHeaders(request.headers()));
    respond(ApiResponse::refusal(Refusal::NotFound, locale))
}

fn not_mounted() -> HttpResponse {
    // A host's mistake, not a resident's: logged, answered 500.
    tracing::error!("resident-auth: no Api in the app data; mount it with App::configure(auth.configure(prefix))");
    HttpResponse::InternalServerError().finish()
}

/// An answer of the API as an actix-web response.
fn respond(answer: ApiResponse) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    for (name, value) in answer.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.insert_header((HeaderName::from_static(name), value));
        }
    }
    response.body(answer.body_bytes())
}

/// The signed-in resident, for the host's own handlers: the session of the
/// `Authorization: Bearer` token, else of the session cookie (a state-changing request by
/// cookie needs the CSRF token in `X-CSRF-Token`; see [`Api::resident`]).
///
/// Without a usable session the handler is not called: 401 with the API's problem JSON
/// (`session.invalid`); while a temporary password is in force, 403
/// (`password.change_required`). For pages that work both ways take [`MaybeResident`]:
/// actix-web's own `Option<Resident>` turns every refusal into `None` — a store outage or a
/// required password change included — where `MaybeResident` is empty only when nobody is
/// signed in, as `Option<Resident>` is in `resident-auth-axum`.
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

impl FromRequest for Resident {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AuthError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let headers = ActixHeaders(request.headers());
            let locale = resident_auth_http::web::locale(&headers);
            let Some(api) = request.app_data::<web::Data<Api>>() else {
                return Err(AuthError {
                    error: None,
                    locale,
                });
            };
            match api.resident(&headers, request.method().is_safe()).await {
                Ok(session) => Ok(Resident { session, locale }),
                Err(error) => Err(AuthError::new(error, locale)),
            }
        })
    }
}

/// The signed-in resident, or nobody: empty only when there is no usable session
/// (`session.invalid`); a store outage answers 503 and a required password change 403,
/// as [`Resident`] does.
///
/// ```
/// use actix_web::HttpResponse;
/// use resident_auth_actix::MaybeResident;
///
/// async fn home(resident: MaybeResident) -> HttpResponse {
///     match resident.into_inner() {
///         Some(resident) => HttpResponse::Ok().body(format!("hello, {}", resident.email())),
///         None => HttpResponse::Ok().body("please sign in"),
///     }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct MaybeResident(Option<Resident>);

impl MaybeResident {
    /// The resident, if signed in.
    #[must_use]
    pub fn into_inner(self) -> Option<Resident> {
        self.0
    }

    /// The resident, if signed in, by reference.
    #[must_use]
    pub fn as_ref(&self) -> Option<&Resident> {
        self.0.as_ref()
    }
}

impl FromRequest for MaybeResident {
    type Error = AuthError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AuthError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let resident = Resident::from_request(request, payload);
        Box::pin(async move {
            match resident.await {
                Ok(resident) => Ok(MaybeResident(Some(resident))),
                Err(AuthError {
                    error: Some(error), ..
                }) if error.is(&resident_auth::Problem::SessionInvalid) => Ok(MaybeResident(None)),
                Err(error) => Err(error),
            }
        })
    }
}

/// A library error as an answer: the API's problem JSON
/// (`{"errors":[{"field","code","message"}]}`, stable codes, messages in the request's
/// language), its status, and `Retry-After` when the error gives one. Host handlers return
/// `Result<_, AuthError>` and use `?` on the service's results.
#[derive(Debug)]
pub struct AuthError {
    /// `None`: the API was not mounted (a host error, answered 500).
    error: Option<resident_auth::Error>,
    locale: Locale,
}

impl AuthError {
    /// `error`, with messages in `locale`.
    #[must_use]
    pub fn new(error: resident_auth::Error, locale: Locale) -> Self {
        Self {
            error: Some(error),
            locale,
        }
    }

    /// The library's error (`None` when the API was not mounted in the app).
    #[must_use]
    pub fn error(&self) -> Option<&resident_auth::Error> {
        self.error.as_ref()
    }
}

/// Messages in Russian, the portal's default language; [`AuthError::new`] chooses.
impl From<resident_auth::Error> for AuthError {
    fn from(error: resident_auth::Error) -> Self {
        Self::new(error, Locale::Ru)
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error {
            Some(error) => error.fmt(f),
            None => f.write_str("resident-auth is not mounted in this app"),
        }
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        self.error
            .as_ref()
            .and_then(|error| StatusCode::from_u16(error.http_status()).ok())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        match &self.error {
            Some(error) => respond(ApiResponse::from_error(error, self.locale)),
            None => not_mounted(),
        }
    }
}
