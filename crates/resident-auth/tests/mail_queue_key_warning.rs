//! A store that outlives the process with the default random mail queue key would make dead
//! letters after a restart: the builder says so (a `warn` event), and only then.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use resident_auth::{
    memory::{MemoryDirectory, MemoryStore, RecordingMailer},
    ports::SplitStore,
    ports::Store,
    AuthService, MailQueueKey, MailQueueKeys,
};

/// In-memory parts put together as a `SplitStore`, which (like a database store) does not
/// say it dies with the process.
fn lasting() -> impl Store + 'static {
    SplitStore::new(MemoryStore::new(), MemoryStore::new(), MemoryStore::new())
}

/// Builds a service on `store` (with `keys`, if given) and returns what it logged.
fn warnings(store: impl Store + 'static, keys: Option<MailQueueKeys>) -> String {
    let logged = Arc::new(Mutex::new(Vec::<u8>::new()));
    let writer = {
        let logged = Arc::clone(&logged);
        move || Capture(Arc::clone(&logged))
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(writer)
        .with_max_level(tracing::Level::WARN)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut builder = AuthService::builder("https://portal.example.org")
            .store(store)
            .directory(MemoryDirectory::default())
            .mailer(RecordingMailer::new())
            .hasher(
                resident_auth::Argon2Hasher::with_workers(
                    resident_auth::HashParams::insecure_fast_for_tests(),
                    1,
                )
                .unwrap(),
            );
        if let Some(keys) = keys {
            builder = builder.mail_queue_keys(keys);
        }
        builder.build().unwrap();
    });
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

#[test]
fn a_lasting_store_with_a_random_queue_key_is_warned_about() {
    let warned = warnings(lasting(), None);
    assert!(
        warned.contains("mail queue key is random") && warned.contains("openssl rand"),
        "{warned}"
    );
    let key = MailQueueKey::from_base64("W+GnW7ovu4+pLcpFJ0PaV7gPF+26mTSjS/eVsQfLjUM=").unwrap();
    assert_eq!(
        warnings(lasting(), Some(MailQueueKeys::new(key))),
        "",
        "a key of the host's own"
    );
    assert_eq!(
        warnings(MemoryStore::new(), None),
        "",
        "a queue that dies with the process"
    );
}
