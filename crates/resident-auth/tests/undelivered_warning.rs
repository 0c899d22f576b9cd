//! A host that forgets the delivery worker would never send a letter: the first letter
//! queued without any delivery round in the process is warned about, once; a process that
//! delivers hears nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{form, harness_with, ru, warnings_of, RESIDENT};

/// Registers two residents on a service whose letters wait for the worker, after a
/// delivery round when `deliver_first`; returns the warnings logged.
async fn warnings(deliver_first: bool) -> String {
    warnings_of(async {
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
    })
    .await
}

#[tokio::test]
async fn a_letter_queued_with_no_delivery_in_the_process_is_warned_about_once() {
    let warned = warnings(false).await;
    assert_eq!(
        warned.matches("no delivery round has run").count(),
        1,
        "{warned}"
    );
    assert!(warned.contains("background.run()"), "{warned}");
    assert_eq!(warnings(true).await, "", "a delivering process");
}
