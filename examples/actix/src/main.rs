//! The reference portal on actix-web, `cargo run -p portal-actix`: a host that mounts
//! resident-auth (JSON API under `/api`, the guide's pages; with `ADMIN_BIND` the operators'
//! API, with `METRICS_BIND` the metrics, each apart), delivers the mail queue, and guards its
//! own `GET /bills`. Same configuration and embedded default as `portal-axum`.
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

use std::process::ExitCode;

use actix_web::{middleware::from_fn, web, App, HttpResponse, HttpServer};
use resident_auth_actix::{
    body_deadline, configure_admin, http::AuthError, limit_server, Resident, ResidentAuth,
};

/// `GET /bills`: the selected personal account and its address; 401 when not signed in.
async fn bills(
    auth: web::Data<ResidentAuth>,
    resident: Resident,
) -> Result<HttpResponse, AuthError> {
    match resident_auth_portal::bills(auth.service(), resident.session()).await {
        Ok(answer) => Ok(HttpResponse::Ok().json(answer)),
        Err(e) => Err(AuthError::new(e, resident.locale())),
    }
}

#[actix_web::main]
async fn main() -> ExitCode {
    let portal = match resident_auth_portal::start().await {
        Ok(portal) => portal,
        Err(code) => return code,
    };
    let Ok(listeners) = portal.listen() else {
        return ExitCode::FAILURE;
    };
    let auth = ResidentAuth::with_api(portal.api());
    let limits = auth.api().connection_limits();
    if let Some((admin, api)) = listeners.admin {
        let app = move || {
            App::new()
                .wrap(from_fn(body_deadline))
                .configure(configure_admin(api.clone(), "/admin"))
        };
        let server = limit_server(HttpServer::new(app), &limits, 1).listen(admin);
        actix_web::rt::spawn(async move { server?.run().await });
    }
    let stop = portal.stop.clone();
    actix_web::rt::spawn(portal.background.run());
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let app = move || {
        App::new()
            .wrap(from_fn(body_deadline))
            .app_data(web::Data::new(auth.clone()))
            .route("/bills", web::get().to(bills))
            .configure(auth.configure("/api"))
    };
    // actix-web stops on Ctrl-C or SIGTERM by itself (graceful); then the files close
    // (the SQLite log emptied).
    let served = match limit_server(HttpServer::new(app), &limits, workers).listen(listeners.portal)
    {
        Ok(server) => server.run().await,
        Err(e) => Err(e),
    };
    stop.close().await;
    served.map_or_else(
        |e| {
            eprintln!("server error: {e}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
}
