//! The reference portal on axum, `cargo run -p portal-axum`: a host that mounts resident-auth
//! (JSON API under `/api`, the guide's pages; with `ADMIN_BIND` the operators' API and with
//! `METRICS_BIND` the metrics apart), delivers the mail queue, and guards its own `GET /bills`. Environment: the
//! examples/README.md.
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

use std::process::ExitCode;

use axum::{extract::State, routing::get, Json, Router};
use resident_auth_axum::{admin_router, http::AuthError, serve, Resident, ResidentAuth};
use tokio::net::TcpListener;

/// `GET /bills`: the selected personal account and its address; 401 when not signed in.
async fn bills(
    State(auth): State<ResidentAuth>,
    resident: Resident,
) -> Result<Json<serde_json::Value>, AuthError> {
    let answer = resident_auth_portal::bills(auth.service(), resident.session()).await;
    answer
        .map(Json)
        .map_err(|e| AuthError::new(e, resident.locale()))
}

#[tokio::main]
async fn main() -> ExitCode {
    let portal = match resident_auth_portal::start().await {
        Ok(portal) => portal,
        Err(code) => return code,
    };
    let listeners = match portal.listen() {
        Ok(listeners) => listeners,
        Err(code) => return code,
    };
    let auth = ResidentAuth::with_api(portal.api());
    let limits = auth.api().connection_limits();
    if let Some((admin, api)) = listeners.admin {
        let (admin, app) = (
            TcpListener::from_std(admin),
            admin_router::<()>(api, "/admin"),
        );
        tokio::spawn(async move { serve(admin?, app, limits).await });
    }
    let Ok(listener) = TcpListener::from_std(listeners.portal) else {
        return ExitCode::FAILURE;
    };
    let stop = portal.stop.clone();
    tokio::spawn(portal.background.run());
    let app = Router::new()
        .route("/bills", get(bills))
        .merge(auth.router("/api"))
        .with_state(auth);
    // Ctrl-C or SIGTERM: stop answering, then close the files (the SQLite log emptied).
    let served = tokio::select! {
        served = serve(listener, app, limits) => served,
        () = resident_auth_portal::stop_requested() => Ok(()),
    };
    stop.close().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}
