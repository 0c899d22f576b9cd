//! A host that forgets the delivery worker would never send a letter: the first letter
//! queued without any delivery round in the process is warned about, once; a process that
//! delivers hears nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{form, harness_with, ru, RESIDENT};

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

/// Registers two residents on a service whose letters wait for the worker, after
/// `deliver_first` delivery rounds; returns the warnings logged.
async fn warnings(deliver_first: bool) -> String {
    let logged = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let logged = Arc::clone(&logged);
        move || Capture(Arc::clone(&logged))
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut config = common::config();
    config.delivery.in_request = false;
    let h = harness_with(config, |store, mailer| (store, mailer));
    if deliver_first {
        h.service.deliver_due().await.unwrap();
    }
    for (account, email) in [
        (common::FLAT, RESIDENT),
        (common::PARKING, "other@example.org"),
    ] {
        h.service
            .register(&form("Иванов", account, email), &ru())
            .await
            .unwrap();
    }
    let text = String::from_utf8(logged.lock().unwrap().clone()).unwrap();
    text
}

#[tokio::test]
async fn a_letter_queued_with_no_delivery_in_the_process_is_warned_about_once() {
    let warned = warnings(false).await;
    assert_eq!(
        warned.matches("no delivery round has run").count(),
        1,
        "{warned}"
    );
    assert!(warned.contains("spawn_delivery"), "{warned}");
    assert_eq!(warnings(true).await, "", "a delivering process");
}
