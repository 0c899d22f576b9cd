//! The JSON API on actix-web, `cargo run -p portal-actix`: a host application that mounts
//! resident-auth under `/api` and guards its own endpoint with the `Resident` extractor.
//! Same configuration variables and embedded default as `portal-axum`.

use std::{process::ExitCode, time::Duration};

use actix_web::{web, App, HttpResponse, HttpServer};
use resident_auth_actix::{AuthError, Resident, ResidentAuth};

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
    let Ok(listener) = portal.listen() else {
        return ExitCode::FAILURE;
    };
    let auth = ResidentAuth::with_api(portal.api());
    auth.spawn_purge(Duration::from_secs(300));
    let app = move || {
        App::new()
            .app_data(web::Data::new(auth.clone()))
            .route("/bills", web::get().to(bills))
            .configure(auth.configure("/api"))
    };
    let served = match HttpServer::new(app).listen(listener) {
        Ok(server) => server.run().await,
        Err(e) => Err(e),
    };
    served.map_or_else(
        |e| {
            eprintln!("server error: {e}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
}
