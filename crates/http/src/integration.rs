//! What a framework integration names, and nothing else: one way to mount every part of
//! resident-auth on any web framework. Hosts do not name these; resident-auth-axum and
//! resident-auth-actix do.
//!
//! Each part — the residents' JSON API ([`crate::Api`]), the operators' API
//! ([`crate::AdminApi`]) and the guide's pages (`Pages`, feature `pages`) — is a
//! [`Surface`]: its routes grouped by path, one function that answers a matched route with
//! an [`http::Response`], and one that answers a request refused before it was read (a body
//! too large or too slow, a method the path does not take). A framework adapter mounts any
//! surface with one generic function; resident-auth-axum and resident-auth-actix each have
//! exactly one.

use std::{future::Future, net::IpAddr, time::Duration};

use bytes::Bytes;

pub use crate::web::Headers;

/// A request refused before any operation reads it: the web framework's own refusals,
/// answered by each part in its own form (the APIs' problem JSON, the pages' HTML)
/// ([`Surface::refuse`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// 404 `request.not_found`: a path under the API's prefix that it does not have.
    NotFound,
    /// 405 `request.method_not_allowed`, with `Allow`: the path exists, for these methods.
    MethodNotAllowed {
        /// The methods the path answers, as the `Allow` header lists them (`GET, DELETE`).
        allow: String,
    },
    /// 408 `request.timeout`: the body did not arrive within the body timeout
    /// ([`crate::ConnectionLimits`]).
    TimedOut,
    /// 413 `request.too_large`: the body is longer than [`BODY_LIMIT`] bytes.
    TooLarge,
}

/// The largest request body a part reads, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Where a JSON API serves its OpenAPI document, below its prefix (`/api/openapi.json` in
/// the examples).
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// An answer ready to send: status, headers and body, serialised once. It is an
/// `axum` response and an actix-web `Responder` as it is (features `axum`, `actix`), and
/// an [`http::Response`] for any other framework ([`Response::into_http`]).
#[derive(Debug)]
pub struct Response(http::Response<Bytes>);

impl Response {
    /// The status.
    #[must_use]
    pub fn status(&self) -> http::StatusCode {
        self.0.status()
    }

    /// The headers.
    #[must_use]
    pub fn headers(&self) -> &http::HeaderMap {
        self.0.headers()
    }

    /// The answer as the `http` crate's type.
    #[must_use]
    pub fn into_http(self) -> http::Response<Bytes> {
        self.0
    }

    #[cfg(feature = "pages")]
    pub(crate) fn from_http(response: http::Response<Bytes>) -> Self {
        Self(response)
    }

    /// The answer as actix-web's type (whose `http` types are of another major version).
    #[cfg(feature = "actix")]
    pub(crate) fn into_actix(self) -> actix_web::HttpResponse {
        use actix_web::http::{header, StatusCode};
        let (parts, body) = self.0.into_parts();
        let status = StatusCode::from_u16(parts.status.as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = actix_web::HttpResponse::build(status);
        for (name, value) in &parts.headers {
            if let (Ok(name), Ok(value)) = (
                header::HeaderName::from_bytes(name.as_str().as_bytes()),
                header::HeaderValue::from_bytes(value.as_bytes()),
            ) {
                response.append_header((name, value));
            }
        }
        response.body(body)
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for Response {
    fn into_response(self) -> axum_core::response::Response {
        self.0.map(axum_core::body::Body::from)
    }
}

#[cfg(feature = "actix")]
impl actix_web::Responder for Response {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _: &actix_web::HttpRequest) -> actix_web::HttpResponse {
        self.into_actix()
    }
}

/// An HTTP method a route answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name, upper-case.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

/// What a route does: one of its part's operations (by index, see [`operations!`]), or the
/// part's OpenAPI document ([`Surface::DOCUMENTED`]). The parts sit above this module: it
/// names none of their types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Operation(u8),
    Document,
}

/// A part's operations: a fieldless enum whose variants its routes carry ([`Target`]),
/// with `index` (what a route keeps) and `of` (the operation a route asks for; `None` for
/// the document or another part's route).
macro_rules! operations {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$variant_meta:meta])* $variant:ident,)*
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)*
        }

        impl $name {
            const ALL: &'static [Self] = &[$(Self::$variant,)*];

            #[allow(clippy::cast_possible_truncation, reason = "fewer than 256 operations")]
            const fn index(self) -> u8 {
                self as u8
            }

            fn of(route: &$crate::integration::Route) -> Option<Self> {
                match route.target {
                    $crate::integration::Target::Operation(index) => {
                        Self::ALL.get(usize::from(index)).copied()
                    }
                    $crate::integration::Target::Document => None,
                }
            }
        }
    };
}
pub(crate) use operations;

/// A route of a surface: a method and a path below the surface's prefix. A path has at
/// most one parameter, written `{name}` — the syntax axum and actix-web both read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    method: Method,
    path: &'static str,
    pub(crate) target: Target,
}

impl Route {
    pub(crate) const fn new(method: Method, path: &'static str, target: Target) -> Self {
        Self {
            method,
            path,
            target,
        }
    }

    /// The method.
    #[must_use]
    pub const fn method(&self) -> Method {
        self.method
    }

    /// The path below the surface's prefix (`/login`, `/sessions/{id}`).
    #[must_use]
    pub const fn path(&self) -> &'static str {
        self.path
    }
}

/// Every route at one path: what a router mounts as one handler for every method, which
/// picks the route by method ([`Resource::route`]) and refuses any other method before
/// reading the body ([`Resource::not_allowed`]: 405 with this `Allow`), alike in every
/// framework.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resource {
    /// The path below the surface's prefix.
    pub path: &'static str,
    /// Its routes, one per method.
    pub routes: Vec<Route>,
    /// The `Allow` header of a 405 (`GET, DELETE`).
    pub allow: String,
}

impl Resource {
    /// The route answering `method` (an upper-case method name; `HEAD` is answered as
    /// `GET`), or `None` for a method the path does not take.
    #[must_use]
    pub fn route(&self, method: &str) -> Option<Route> {
        let method = if method == "HEAD" { "GET" } else { method };
        self.routes
            .iter()
            .find(|route| route.method.as_str() == method)
            .copied()
    }

    /// The refusal of a method the path does not take: 405 with this `Allow`.
    #[must_use]
    pub fn not_allowed(&self) -> Refusal {
        Refusal::MethodNotAllowed {
            allow: self.allow.clone(),
        }
    }
}

/// What a route reads of a request besides its headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Incoming<'a> {
    pub(crate) peer: Option<IpAddr>,
    pub(crate) path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) parameter: Option<&'a str>,
    pub(crate) body: &'a [u8],
}

impl<'a> Incoming<'a> {
    /// A request from `peer`: the socket's address (the client, or the nearest proxy).
    #[must_use]
    pub fn new(peer: Option<IpAddr>) -> Self {
        Self {
            peer,
            ..Self::default()
        }
    }

    /// With the URL's path (the prefix included): what the OpenAPI document's paths are
    /// written under.
    #[must_use]
    pub fn with_path(mut self, path: &'a str) -> Self {
        self.path = path;
        self
    }

    /// With the URL's query string (without the `?`).
    #[must_use]
    pub fn with_query(mut self, query: &'a str) -> Self {
        self.query = query;
        self
    }

    /// With the value of the path's parameter.
    #[must_use]
    pub fn with_parameter(mut self, parameter: &'a str) -> Self {
        self.parameter = Some(parameter);
        self
    }

    /// With the request body, read whole within [`BODY_LIMIT`] bytes and
    /// [`Surface::body_timeout`].
    #[must_use]
    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }
}

/// A part of resident-auth that a web framework mounts under a prefix.
pub trait Surface: Send + Sync + 'static {
    /// Every route, in the order to mount them (for routers that match in order, a literal
    /// path comes before a parameter at the same place).
    const ROUTES: &'static [Route];

    /// Whether every other path under the prefix is this surface's too, answered with
    /// [`Refusal::NotFound`] (the JSON APIs), or the host's (the pages, at the root).
    const CLAIMS_PREFIX: bool;

    /// Whether the surface serves its OpenAPI document at
    /// `{prefix}`[`DOCUMENT_PATH`] (the JSON APIs), its paths under that
    /// prefix: a resource of its own in [`Surface::resources`].
    const DOCUMENTED: bool;

    /// [`Surface::ROUTES`] grouped by path, in the order of their first route, then the
    /// OpenAPI document's (`GET`) if [`Surface::DOCUMENTED`]: everything a router mounts.
    #[must_use]
    fn resources() -> Vec<Resource> {
        const DOCUMENT: Route = Route::new(Method::Get, DOCUMENT_PATH, Target::Document);
        let mut resources: Vec<Resource> = Vec::new();
        let document = Self::DOCUMENTED.then_some(&DOCUMENT);
        for route in Self::ROUTES.iter().chain(document) {
            match resources.iter_mut().find(|r| r.path == route.path) {
                Some(resource) => {
                    resource.routes.push(*route);
                    resource.allow = format!("{}, {}", resource.allow, route.method.as_str());
                }
                None => resources.push(Resource {
                    path: route.path,
                    routes: vec![*route],
                    allow: route.method.as_str().to_owned(),
                }),
            }
        }
        resources
    }

    /// The longest a request's body may take to arrive after its head.
    fn body_timeout(&self) -> Duration;

    /// Answers one request to `route`, one of [`Surface::resources`]' routes.
    fn answer<'a>(
        &'a self,
        route: &'a Route,
        headers: &'a (dyn Headers + Sync),
        incoming: Incoming<'a>,
    ) -> impl Future<Output = Response> + Send + 'a;

    /// The answer to a request refused before [`Surface::answer`] read it.
    fn refuse(&self, refusal: Refusal, headers: &(dyn Headers + Sync)) -> Response;
}

/// An answer with `status`, `headers` and `body`. Header values that are not valid are
/// skipped (the crate's own are constants or numbers).
pub(crate) fn response(
    status: u16,
    headers: impl IntoIterator<Item = (&'static str, String)>,
    body: Bytes,
) -> Response {
    let mut response = http::Response::new(body);
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let Ok(value) = http::HeaderValue::try_from(value) {
            response
                .headers_mut()
                .append(http::HeaderName::from_static(name), value);
        }
    }
    Response(response)
}
