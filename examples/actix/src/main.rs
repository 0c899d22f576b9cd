//! The JSON API of docs/contract.md §5 on actix-web: `cargo run -p portal-actix`.
//!
//! Same configuration variables and embedded default as `portal-axum`; every endpoint
//! is a route to a function of [`resident_auth_portal::api`], and `/api/openapi.json`
//! serves [`resident_auth_portal::openapi`]'s document.

use std::process::ExitCode;

use actix_web::{
    http::{header, Method, StatusCode},
    web, App, FromRequest, Handler, HttpRequest, HttpResponse, HttpServer, Resource, Responder,
};
use resident_auth::{Locale, RequestContext};
use resident_auth_portal::{
    api::{self, Api, ApiResponse},
    config::{purge_periodically, start},
    openapi,
};

fn context(request: &HttpRequest) -> RequestContext {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let client = request.app_data::<web::Data<Api>>().and_then(|api| {
        api.clients().client_key(
            request.peer_addr().map(|a| a.ip()),
            header("forwarded"),
            header("x-forwarded-for"),
        )
    });
    let mut context = RequestContext::new(
        header("accept-language").map_or(Locale::Ru, Locale::from_accept_language),
    );
    context.client = client;
    context.user_agent = header("user-agent").map(str::to_owned);
    context
}

/// The request body with its `Content-Type`, as the API reads it.
fn json<'a>(request: &'a HttpRequest, body: &'a web::Bytes) -> api::JsonBody<'a> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    api::JsonBody::new(content_type, body)
}

fn authorization(request: &HttpRequest) -> Option<&str> {
    request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn respond(answer: ApiResponse) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::build(status);
    response.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Some(seconds) = answer.retry_after {
        response.insert_header((header::RETRY_AFTER, seconds.to_string()));
    }
    match answer.body {
        Some(body) => response.json(body),
        None => response.finish(),
    }
}

/// Routes whose handler needs only the body and the context.
macro_rules! body_route {
    ($name:ident, $method:ident) => {
        async fn $name(
            api: web::Data<Api>,
            request: HttpRequest,
            body: web::Bytes,
        ) -> HttpResponse {
            respond(api::$method(&api, json(&request, &body), &context(&request)).await)
        }
    };
}

body_route!(register, register);
body_route!(confirm, confirm);
body_route!(activate, activate);
body_route!(identify, identify);
body_route!(login, login);
body_route!(request_recovery, request_recovery);
body_route!(complete_recovery, complete_recovery);

async fn session(api: web::Data<Api>, request: HttpRequest) -> HttpResponse {
    respond(api::session(&api, authorization(&request), &context(&request)).await)
}

async fn select_account(
    api: web::Data<Api>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let body = json(&request, &body);
    respond(api::select_account(&api, authorization(&request), body, &context(&request)).await)
}

async fn logout(api: web::Data<Api>, request: HttpRequest) -> HttpResponse {
    respond(api::logout(&api, authorization(&request), &context(&request)).await)
}

async fn add_address(api: web::Data<Api>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let body = json(&request, &body);
    respond(api::add_address(&api, authorization(&request), body, &context(&request)).await)
}

async fn change_password(
    api: web::Data<Api>,
    request: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let body = json(&request, &body);
    respond(api::change_password(&api, authorization(&request), body, &context(&request)).await)
}

async fn sessions(api: web::Data<Api>, request: HttpRequest) -> HttpResponse {
    respond(api::sessions(&api, authorization(&request), &context(&request)).await)
}

async fn end_session(
    api: web::Data<Api>,
    request: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let context = context(&request);
    respond(api::end_session(&api, authorization(&request), &id, &context).await)
}

async fn end_other_sessions(api: web::Data<Api>, request: HttpRequest) -> HttpResponse {
    respond(api::end_other_sessions(&api, authorization(&request), &context(&request)).await)
}

/// The OpenAPI document, generated from the code at start-up.
async fn openapi_document(document: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.0.clone())
}

/// The OpenAPI document as served.
struct Document(String);

/// One endpoint: `handler` for `method`, and for any other method 405 with `Allow`, as
/// HTTP asks (a plain `route` would fall through to the 404 of unknown paths).
fn endpoint<F, Args>(path: &str, method: Method, handler: F) -> Resource
where
    F: Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: Responder + 'static,
{
    let allow = method.to_string();
    web::resource(path)
        .route(web::method(method).to(handler))
        .default_service(web::to(move || {
            let allow = allow.clone();
            async move {
                HttpResponse::MethodNotAllowed()
                    .insert_header((header::ALLOW, allow))
                    .finish()
            }
        }))
}

async fn not_found(request: HttpRequest) -> HttpResponse {
    respond(api::not_found(context(&request).locale))
}

#[actix_web::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let (config, portal) = match start().await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("start-up: {e}");
            return ExitCode::from(2);
        }
    };
    actix_web::rt::spawn(purge_periodically(
        portal.service.clone(),
        std::time::Duration::from_secs(300),
    ));
    let api = web::Data::new(Api::with_client_addressing(
        portal.service.clone(),
        config.client_addressing.clone(),
    ));
    let document = web::Data::new(Document(openapi::document_json()));
    let server = HttpServer::new(move || {
        App::new()
            // Every answer: browsers take the declared content type as it is.
            .wrap(
                actix_web::middleware::DefaultHeaders::new()
                    .add(("X-Content-Type-Options", "nosniff")),
            )
            .app_data(api.clone())
            .app_data(document.clone())
            .app_data(web::PayloadConfig::new(64 * 1024))
            .service(endpoint("/api/registrations", Method::POST, register))
            .service(endpoint(
                "/api/registrations/confirm",
                Method::POST,
                confirm,
            ))
            .service(endpoint(
                "/api/registrations/activate",
                Method::POST,
                activate,
            ))
            .service(endpoint("/api/login/identify", Method::POST, identify))
            .service(endpoint("/api/login", Method::POST, login))
            .service(endpoint("/api/session", Method::GET, session))
            .service(endpoint(
                "/api/session/active-account",
                Method::POST,
                select_account,
            ))
            .service(endpoint("/api/logout", Method::POST, logout))
            .service(endpoint("/api/recovery", Method::POST, request_recovery))
            .service(endpoint(
                "/api/recovery/complete",
                Method::POST,
                complete_recovery,
            ))
            .service(endpoint("/api/addresses", Method::POST, add_address))
            .service(endpoint("/api/password", Method::POST, change_password))
            .service(endpoint("/api/sessions", Method::GET, sessions))
            .service(endpoint(
                "/api/sessions/others",
                Method::DELETE,
                end_other_sessions,
            ))
            .service(endpoint("/api/sessions/{id}", Method::DELETE, end_session))
            .service(endpoint(
                openapi::DOCUMENT_PATH,
                Method::GET,
                openapi_document,
            ))
            .default_service(web::to(not_found))
    })
    .bind(&config.bind);
    let server = match server {
        Ok(server) => server,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", config.bind);
            return ExitCode::FAILURE;
        }
    };
    portal.announce(
        &server
            .addrs()
            .first()
            .map_or_else(|| config.bind.clone(), ToString::to_string),
    );
    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}
