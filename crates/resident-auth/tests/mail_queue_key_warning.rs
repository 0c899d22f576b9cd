//! A store that outlives the process with the default random mail queue key would make dead
//! letters after a restart: the builder says so (a `warn` event), and only then.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use resident_auth::{
    mail::{MailQueueKey, MailQueueKeys},
    memory::{MemoryDirectory, MemoryStore, RecordingMailer},
    ports::{SplitStore, Store},
    AuthService,
};

/// In-memory parts put together as a `SplitStore`, which (like a database store) does not
/// say it dies with the process.
fn lasting() -> impl Store + 'static {
    SplitStore::new(MemoryStore::new(), MemoryStore::new(), MemoryStore::new())
}

/// Builds a service on `store` (with `keys`, if given) and returns what it logged.
async fn warnings(store: impl Store + 'static, keys: Option<MailQueueKeys>) -> String {
    common::warnings_of(async {
        let mut builder = AuthService::builder("https://portal.example.org")
            .store(store)
            .directory(MemoryDirectory::default())
            .mailer(RecordingMailer::new())
            .hasher(common::fast_hasher());
        if let Some(keys) = keys {
            builder = builder.mail_queue_keys(keys);
        }
        let (_service, _background) = builder.build().unwrap();
    })
    .await
}

#[tokio::test]
async fn a_lasting_store_with_a_random_queue_key_is_warned_about() {
    let warned = warnings(lasting(), None).await;
    assert!(
        warned.contains("mail queue key is random") && warned.contains("openssl rand"),
        "{warned}"
    );
    let key = MailQueueKey::from_base64("W+GnW7ovu4+pLcpFJ0PaV7gPF+26mTSjS/eVsQfLjUM=").unwrap();
    assert_eq!(
        warnings(lasting(), Some(MailQueueKeys::new(key))).await,
        "",
        "a key of the host's own"
    );
    assert_eq!(
        warnings(MemoryStore::new(), None).await,
        "",
        "a queue that dies with the process"
    );
}
