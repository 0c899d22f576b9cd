//! The guide's pages ([`resident_auth_http::pages`]) mounted at the root.

use actix_web::{
    http::{
        header::{HeaderName, HeaderValue},
        StatusCode,
    },
    web, HttpRequest, HttpResponse,
};
use resident_auth_http::{
    pages::{self, PageRequest, PageResponse, PageRoute, ROUTES},
    Api,
};

use crate::{http_method, not_mounted, read_body, ActixHeaders};

/// Every page route, each path with its methods.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = ROUTES.iter().map(|route| route.path).collect();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        let mut resource = web::resource(path);
        for route in ROUTES.iter().filter(|route| route.path == path) {
            let route = *route;
            resource = resource
                .route(web::method(http_method(route.method)).to(
                    move |request: HttpRequest, body: web::Payload| page(request, body, route),
                ));
        }
        config.service(resource);
    }
}

async fn page(request: HttpRequest, body: web::Payload, route: PageRoute) -> HttpResponse {
    let Some(api) = request.app_data::<web::Data<Api>>() else {
        return not_mounted();
    };
    let headers = ActixHeaders(request.headers());
    let body = match read_body(body, api.connection_limits().body_timeout()).await {
        Ok(body) => body,
        Err(refusal) => return respond(pages::refused(api, &headers, &refusal)),
    };
    let mut incoming = PageRequest::new(request.peer_addr().map(|a| a.ip()))
        .with_query(request.query_string())
        .with_body(&body);
    if let Some(parameter) = request.match_info().iter().next().map(|(_, value)| value) {
        incoming = incoming.with_parameter(parameter);
    }
    respond(pages::handle(api, &route, &headers, incoming).await)
}

/// A page as an actix-web response.
fn respond(page: PageResponse) -> HttpResponse {
    let (parts, body) = page.into_parts();
    let status = StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            response.append_header((name, value));
        }
    }
    response.body(body)
}
