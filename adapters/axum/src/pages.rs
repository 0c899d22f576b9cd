//! The guide's pages ([`resident_auth_http::pages`]) mounted at the root.

use axum::{
    extract::{FromRequestParts, RawPathParams, Request, State},
    response::{IntoResponse, Response},
    routing::MethodRouter,
    Router,
};
use resident_auth_http::pages::{self, PageRequest, PageRoute, ROUTES};

use crate::{filter, peer, read_body, ResidentAuth};

/// Every page route, each path with its methods.
pub(crate) fn routes() -> Router<ResidentAuth> {
    let mut router = Router::new();
    let mut paths: Vec<&'static str> = ROUTES.iter().map(|route| route.path).collect();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        let mut methods = MethodRouter::new();
        for route in ROUTES.iter().filter(|route| route.path == path) {
            let route = *route;
            methods = methods.on(
                filter(route.method),
                move |state: State<ResidentAuth>, request: Request| page(state, route, request),
            );
        }
        router = router.route(path, methods);
    }
    router
}

async fn page(State(auth): State<ResidentAuth>, route: PageRoute, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let parameter = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|params| params.iter().next().map(|(_, value)| value.to_owned()));
    let bytes = match read_body(body, auth.api().connection_limits().body_timeout()).await {
        Ok(bytes) => bytes,
        Err(refusal) => {
            return pages::refused(auth.api(), &parts.headers, &refusal).into_response()
        }
    };
    let mut incoming = PageRequest::new(peer(&parts))
        .with_query(parts.uri.query().unwrap_or_default())
        .with_body(&bytes);
    if let Some(parameter) = &parameter {
        incoming = incoming.with_parameter(parameter);
    }
    pages::handle(auth.api(), &route, &parts.headers, incoming)
        .await
        .into_response()
}
