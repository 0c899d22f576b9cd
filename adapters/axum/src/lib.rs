#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

mod serve;

pub use serve::serve;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::{
        ConnectInfo, FromRef, FromRequestParts, OptionalFromRequestParts, RawPathParams, Request,
    },
    http::{request::Parts, HeaderMap},
    response::{IntoResponse, Response},
    routing::any,
    Router,
};
use resident_auth::AuthService;
/// resident-auth-http, re-exported whole so that a host depends on this crate alone:
/// what it configures and names ([`http::Api`], [`http::AuthError`],
/// [`http::ConnectionLimits`], …) is under `resident_auth_axum::http`.
pub use resident_auth_http as http;
use resident_auth_http::{
    integration::{Incoming, Refusal, Resource, Surface, BODY_LIMIT},
    AdminApi, Api, AuthError,
};

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
    /// own pages (`{base}/confirm`, `/recover`, `/email/confirm`, `/email/cancel`), it warns (once per process) that those
    /// links would answer 404: enable `pages`, or point them at the host's front end with
    /// `AuthServiceBuilder::confirmation_link`, `recovery_link`, `email_change_link` and
    /// `email_change_cancel_link`.
    ///
    /// The client's address for per-client limits comes from
    /// `into_make_service_with_connect_info::<SocketAddr>()`; without it every client
    /// shares one key.
    pub fn router<S>(&self, prefix: &str) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        #[cfg_attr(not(feature = "pages"), allow(unused_mut))]
        let mut router = mount(Arc::clone(&self.api), prefix);
        #[cfg(feature = "pages")]
        {
            let pages = resident_auth_http::Pages::new(Api::clone(&self.api));
            router = router.merge(mount(Arc::new(pages), ""));
        }
        #[cfg(not(feature = "pages"))]
        self.api.warn_if_pages_unserved("resident-auth-axum");
        router.with_state(())
    }
}

/// The operators' API under `prefix`, with its OpenAPI document at
/// `{prefix}/openapi.json` and a JSON 404 for any other path: mount it on a listener of
/// its own, never on the residents' one.
pub fn admin_router<S>(api: AdminApi, prefix: &str) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let api = Arc::new(api);
    let refusing = Arc::clone(&api);
    mount(api, prefix)
        .fallback(
            move |headers: HeaderMap| async move { refusing.refuse(Refusal::NotFound, &headers) },
        )
        .with_state(())
}

/// Mounts `surface` under `prefix`: each of its resources answering its methods (any
/// other: 405 with `Allow`), and when it claims the prefix a 404 for any other path under it.
fn mount<T: Surface>(surface: Arc<T>, prefix: &str) -> Router {
    let prefix = prefix.trim_end_matches('/');
    let mut router = Router::new();
    for resource in T::resources() {
        let (surface, resource) = (Arc::clone(&surface), Arc::new(resource));
        let path = format!("{prefix}{}", resource.path);
        router = router.route(
            &path,
            any(move |request: Request| async move { answer(&*surface, &resource, request).await }),
        );
    }
    if T::CLAIMS_PREFIX {
        let not_found = || {
            let surface = Arc::clone(&surface);
            any(
                move |headers: HeaderMap| async move { surface.refuse(Refusal::NotFound, &headers) },
            )
        };
        router = router
            .route(&format!("{prefix}/{{*rest}}"), not_found())
            .route(&format!("{prefix}/"), not_found());
        if !prefix.is_empty() {
            router = router.route(prefix, not_found());
        }
    }
    router
}

/// One request to `resource`: its route by method, its path parameter and body read, then
/// answered.
async fn answer<T: Surface>(surface: &T, resource: &Resource, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(route) = resource.route(parts.method.as_str()) else {
        return surface
            .refuse(resource.not_allowed(), &parts.headers)
            .into_response();
    };
    let parameter = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|params| params.iter().next().map(|(_, value)| value.to_owned()));
    let bytes = match read_body(body, surface.body_timeout()).await {
        Ok(bytes) => bytes,
        Err(refusal) => return surface.refuse(refusal, &parts.headers).into_response(),
    };
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let mut incoming = Incoming::new(peer)
        .with_path(parts.uri.path())
        .with_query(parts.uri.query().unwrap_or_default())
        .with_body(&bytes);
    if let Some(parameter) = &parameter {
        incoming = incoming.with_parameter(parameter);
    }
    surface
        .answer(&route, &parts.headers, incoming)
        .await
        .into_response()
}

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
pub struct Resident(resident_auth_http::Resident);

impl std::ops::Deref for Resident {
    type Target = resident_auth_http::Resident;

    fn deref(&self) -> &resident_auth_http::Resident {
        &self.0
    }
}

impl<S> FromRequestParts<S> for Resident
where
    ResidentAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        let auth = ResidentAuth::from_ref(state);
        let safe = parts.method.is_safe();
        auth.api.resident(&parts.headers, safe).await.map(Self)
    }
}

/// `None` only when nobody is signed in ([`Api::maybe_resident`]).
impl<S> OptionalFromRequestParts<S> for Resident
where
    ResidentAuth: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, AuthError> {
        let auth = ResidentAuth::from_ref(state);
        let safe = parts.method.is_safe();
        let resident = auth.api.maybe_resident(&parts.headers, safe).await?;
        Ok(resident.map(Self))
    }
}
