//! The reference portal on axum, `cargo run -p portal-axum`: a host application that mounts
//! resident-auth (the JSON API under `/api`, the guide's pages at the root) and guards its
//! own endpoint with the `Resident` extractor. Configuration by environment: the README's
//! "Configuration of the examples"; with none set, the embedded default (in-memory store,
//! bundled demo directory, letters in `./outbox`).

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use axum::{extract::State, routing::get, Json, Router};
use resident_auth_axum::{AuthError, Resident, ResidentAuth};

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
    let listener = match portal.listen().map(tokio::net::TcpListener::from_std) {
        Ok(Ok(listener)) => listener,
        Ok(Err(_)) | Err(_) => return ExitCode::FAILURE,
    };
    let auth = ResidentAuth::with_api(portal.api());
    auth.spawn_purge(Duration::from_secs(300));
    let app = Router::new()
        .route("/bills", get(bills))
        .merge(auth.router("/api"))
        .with_state(auth);
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    served.map_or_else(
        |e| {
            eprintln!("server error: {e}");
            ExitCode::FAILURE
        },
        |()| ExitCode::SUCCESS,
    )
}
