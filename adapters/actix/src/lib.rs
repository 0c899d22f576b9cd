#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

use std::{sync::Arc, time::Duration};

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use resident_auth::AuthService;
/// resident-auth-http, re-exported whole so that a host depends on this crate alone:
/// what it configures and names ([`http::Api`], [`http::AuthError`],
/// [`http::ConnectionLimits`], …) is under `resident_auth_actix::http`.
pub use resident_auth_http as http;
use resident_auth_http::{
    integration::{Incoming, Refusal, Resource, Response, Surface, BODY_LIMIT},
    AdminApi, Api,
};

mod serve;

pub use serve::{body_deadline, limit_server};

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
    /// ([`resident_auth_http::Pages`]). Without it, when the service's letters still link to
    /// the library's own pages (`{base}/confirm`, `/recover`, `/email/confirm`, `/email/cancel`), the first call warns
    /// (once per process) that those links would answer 404: enable `pages`, or point them
    /// at the host's front end with `AuthServiceBuilder::confirmation_link`, `recovery_link`,
    /// `email_change_link` and `email_change_cancel_link`.
    pub fn configure(&self, prefix: &str) -> impl FnOnce(&mut web::ServiceConfig) + 'static {
        #[cfg(not(feature = "pages"))]
        self.api.warn_if_pages_unserved("resident-auth-actix");
        let api = self.api.clone();
        let prefix = prefix.to_owned();
        move |config| {
            mount(config, api.clone().into_inner(), &prefix);
            #[cfg(feature = "pages")]
            {
                let pages = resident_auth_http::Pages::new(Api::clone(&api));
                mount(config, Arc::new(pages), "");
            }
            config.app_data(api);
        }
    }
}

/// The operators' API under `prefix`, for `App::configure` on a server of its own (never
/// the residents' one), with its OpenAPI document at `{prefix}/openapi.json` and a JSON
/// 404 for any other path.
pub fn configure_admin(
    api: AdminApi,
    prefix: &str,
) -> impl FnOnce(&mut web::ServiceConfig) + 'static {
    let prefix = prefix.to_owned();
    move |config| {
        let api = Arc::new(api);
        mount(config, Arc::clone(&api), &prefix);
        config.default_service(web::to(refusing(&api, Refusal::NotFound)));
    }
}

/// Mounts `surface` under `prefix`: each of its resources answering its methods (any
/// other: 405 with `Allow`), and when it claims a non-empty prefix a 404 for any other path
/// under it. Its body timeout goes into the app data, for [`body_deadline`].
fn mount<T: Surface>(config: &mut web::ServiceConfig, surface: Arc<T>, prefix: &str) {
    let prefix = prefix.trim_end_matches('/');
    for resource in T::resources() {
        let (surface, resource) = (Arc::clone(&surface), Arc::new(resource));
        let path = format!("{prefix}{}", resource.path);
        config.service(web::resource(path).route(web::route().to(
            move |request: HttpRequest, body: web::Payload| {
                let (surface, resource) = (Arc::clone(&surface), Arc::clone(&resource));
                async move { answer(&*surface, &resource, request, body).await }
            },
        )));
    }
    if T::CLAIMS_PREFIX && !prefix.is_empty() {
        let not_found = || web::to(refusing(&surface, Refusal::NotFound));
        config.service(web::resource(format!("{prefix}/{{tail:.*}}")).route(not_found()));
        config.service(web::resource(prefix.to_owned()).route(not_found()));
    }
    config.app_data(serve::BodyTimeout(surface.body_timeout()));
}

/// A handler answering every request with `refusal`.
fn refusing<T: Surface>(
    surface: &Arc<T>,
    refusal: Refusal,
) -> impl Fn(HttpRequest) -> std::future::Ready<Response> + Clone + 'static {
    let surface = Arc::clone(surface);
    move |request: HttpRequest| {
        std::future::ready(surface.refuse(refusal.clone(), request.headers()))
    }
}

/// One request to `resource`: its route by method, its path parameter and body read, then
/// answered.
async fn answer<T: Surface>(
    surface: &T,
    resource: &Resource,
    request: HttpRequest,
    body: web::Payload,
) -> Response {
    let headers = request.headers();
    let Some(route) = resource.route(request.method().as_str()) else {
        return surface.refuse(resource.not_allowed(), headers);
    };
    let body = match read_body(body, surface.body_timeout()).await {
        Ok(body) => body,
        Err(refusal) => return surface.refuse(refusal, headers),
    };
    let peer = request.peer_addr().map(|address| address.ip());
    let mut incoming = Incoming::new(peer)
        .with_path(request.path())
        .with_query(request.query_string())
        .with_body(&body);
    if let Some((_, parameter)) = request.match_info().iter().next() {
        incoming = incoming.with_parameter(parameter);
    }
    surface.answer(&route, headers, incoming).await
}

/// The request body, at most [`BODY_LIMIT`] bytes, arrived within `timeout`.
async fn read_body(payload: web::Payload, timeout: Duration) -> Result<web::Bytes, Refusal> {
    let read = actix_web::rt::time::timeout(timeout, payload.to_bytes_limited(BODY_LIMIT));
    match read.await {
        Ok(Ok(Ok(bytes))) => Ok(bytes),
        Ok(Ok(Err(error))) if serve::timed_out(&error) => Err(Refusal::TimedOut),
        Err(_) => Err(Refusal::TimedOut),
        // Over the limit; or the client went away, when nobody reads the answer.
        Ok(_) => Err(Refusal::TooLarge),
    }
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
pub struct Resident(resident_auth_http::Resident);

impl std::ops::Deref for Resident {
    type Target = resident_auth_http::Resident;

    fn deref(&self) -> &resident_auth_http::Resident {
        &self.0
    }
}

/// The API the app was configured with, or the answer to a host that did not mount it.
fn mounted_api(request: &HttpRequest) -> Result<web::Data<Api>, actix_web::Error> {
    request.app_data::<web::Data<Api>>().cloned().ok_or_else(|| {
        // A host's mistake, not a resident's: logged, answered 500.
        tracing::error!("resident-auth: no Api in the app data; mount it with App::configure(auth.configure(prefix))");
        actix_web::error::ErrorInternalServerError("resident-auth is not mounted in this app")
    })
}

impl FromRequest for Resident {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let (api, safe) = (mounted_api(&request)?, request.method().is_safe());
            Ok(Self(api.resident(request.headers(), safe).await?))
        })
    }
}

/// The signed-in resident, or nobody: empty only when there is no usable session
/// ([`Api::maybe_resident`]); a store outage answers 503 and a required password change
/// 403, as [`Resident`] does.
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
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let (api, safe) = (mounted_api(&request)?, request.method().is_safe());
            let resident = api.maybe_resident(request.headers(), safe).await?;
            Ok(Self(resident.map(Resident)))
        })
    }
}
