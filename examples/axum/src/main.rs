//! The reference portal: `cargo run -p portal-axum`.
//!
//! Configuration by environment (the README's "Configuration of the examples"): `BIND`, `BASE_URL`, `REGISTRY_CSV`,
//! `SERVED_REGIONS`, `OUTBOX_DIR`, `DATABASE_URL`, `SMTP_URL`. With none set it runs on
//! the embedded default: in-memory store, bundled demo directory, letters in `./outbox`.

use std::{net::SocketAddr, process::ExitCode};

use portal_axum::{router, AppState};
use resident_auth_portal::config::{purge_periodically, start};

#[tokio::main]
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
    let listener = match tokio::net::TcpListener::bind(&config.bind).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", config.bind);
            return ExitCode::FAILURE;
        }
    };
    portal.announce(
        &listener
            .local_addr()
            .map_or_else(|_| config.bind.clone(), |a| a.to_string()),
    );
    tokio::spawn(purge_periodically(
        portal.service.clone(),
        std::time::Duration::from_secs(300),
    ));
    let app = router(AppState::with_client_addressing(
        portal.service,
        config.secure_cookies(),
        config.client_addressing.clone(),
    ));
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}
