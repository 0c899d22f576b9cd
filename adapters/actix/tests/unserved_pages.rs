//! Letters that link to pages nobody serves: without its `pages` feature the actix
//! integration serves no pages, so mounting the API warns when the links still point at the
//! library's own `/confirm` and `/recover`, once per process, and not when the host points
//! them at its own front end.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// With `pages` (as in the workspace-wide test run) the pages are served and nothing is
// warned: the test command runs this file once more for the crate alone, without it.
#![cfg(not(feature = "pages"))]

use std::sync::{Arc, Mutex};

use actix_web::{test, App};
use resident_auth::{
    config::{Argon2Hasher, HashParams},
    memory::{MemoryDirectory, MemoryStore, RecordingMailer},
    AuthService,
};
use resident_auth_actix::ResidentAuth;

fn service(templates: bool) -> AuthService {
    let mut builder = AuthService::builder("https://portal.example.org")
        .store(MemoryStore::new())
        .directory(MemoryDirectory::default())
        .mailer(RecordingMailer::new())
        .hasher(Argon2Hasher::new(HashParams::insecure_fast_for_tests()).unwrap());
    if templates {
        builder = builder
            .confirmation_link("https://app.example.org/confirm/{token}".parse().unwrap())
            .recovery_link("https://app.example.org/reset/{token}".parse().unwrap())
            .email_change_link("https://app.example.org/email/{token}".parse().unwrap())
            .email_change_cancel_link(
                "https://app.example.org/email/{token}/cancel"
                    .parse()
                    .unwrap(),
            );
    }
    builder.build().unwrap().0
}

/// What `mount` logged at `warn` and above.
async fn warnings_of_mounting(auth: &ResidentAuth) -> String {
    let logged = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let logged = Arc::clone(&logged);
        move || Capture(Arc::clone(&logged))
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::WARN)
        .finish();
    {
        let _guard = tracing::subscriber::set_default(subscriber);
        let _app = test::init_service(App::new().configure(auth.configure("/api"))).await;
    }
    let text = String::from_utf8(logged.lock().unwrap().clone()).unwrap();
    text
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn mounting_warns_once_when_letters_link_to_pages_nobody_serves() {
    let own_front_end = ResidentAuth::new(service(true));
    assert_eq!(warnings_of_mounting(&own_front_end).await, "");
    let default_links = ResidentAuth::new(service(false));
    let warned = warnings_of_mounting(&default_links).await;
    assert!(
        warned.contains("https://portal.example.org/confirm, https://portal.example.org/recover")
            && warned.contains("confirmation_link"),
        "{warned}"
    );
    assert_eq!(
        warnings_of_mounting(&default_links).await,
        "",
        "once per process"
    );
}
