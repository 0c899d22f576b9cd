//! A service on in-memory adapters, a manual clock and fast argon2, plus helpers that act
//! as the resident: read letters, follow links, type what the letters say.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Duration};

use resident_auth::{
    config::{Argon2Hasher, AuthConfig, HashParams, ManualClock, Ports},
    journeys::RegistrationForm,
    letters::{Letter, LetterKind, Links},
    mail::Mailer,
    memory::{
        link_token, mailed_password, register_by_mail, MemoryDirectory, MemoryStore,
        RecordingMailer,
    },
    ports::Store,
    secrecy::{ExposeSecret, SecretString},
    testing::enumeration::CountingHasher,
    AuthService, Email, Locale, RequestContext, Timestamp,
};

pub const DIRECTORY: &str = "account_number,surnames,address,premises\n\
7800000000001,Иванов;Иванова,\"г. Санкт-Петербург, ул. Садовая, д. 1, кв. 12\",12\n\
7800000000002,Иванов,\"г. Санкт-Петербург, ул. Садовая, д. 1, машино-место 123/456П\",123/456П\n\
4700000000003,,\"г. Всеволожск, ул. Ленина, д. 2, пом. 2Н\",2Н\n\
7800000000004,Семёнов,\"г. Санкт-Петербург, Невский пр., д. 5, кв. 7\",7\n";

pub const RESIDENT: &str = "resident@example.org";
/// The password tests choose when they change one (journey 8).
pub const CHOSEN_PASSWORD: &str = "тихий вечер у старой реки";
pub const FLAT: &str = "7800000000001";
pub const PARKING: &str = "7800000000002";

pub struct Harness {
    pub service: AuthService,
    pub store: MemoryStore,
    pub mailer: RecordingMailer,
    pub clock: Arc<ManualClock>,
    pub hasher: CountingHasher<Argon2Hasher>,
}

pub fn fast_hasher() -> Argon2Hasher {
    Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 2).unwrap()
}

pub fn start() -> Timestamp {
    Timestamp::from_millis(1_767_225_600_000)
}

/// The documented defaults, letters linking under a test base URL.
pub fn config() -> AuthConfig {
    let mut config = AuthConfig::new(Links::new("https://portal.example.org"));
    // The tests read each letter right after the step that queued it.
    config.delivery.in_request = true;
    config
}

pub fn harness() -> Harness {
    harness_with(config(), |store, mailer| (store, mailer))
}

/// A harness whose store and mailer the caller may wrap (fault injection).
pub fn harness_with(
    config: AuthConfig,
    wrap: impl FnOnce(Arc<dyn Store>, Arc<dyn Mailer>) -> (Arc<dyn Store>, Arc<dyn Mailer>),
) -> Harness {
    harness_with_hasher(config, fast_hasher(), wrap)
}

/// A harness on `hasher` (e.g. production parameters) instead of the fast test hasher.
pub fn harness_with_hasher(
    config: AuthConfig,
    hasher: Argon2Hasher,
    wrap: impl FnOnce(Arc<dyn Store>, Arc<dyn Mailer>) -> (Arc<dyn Store>, Arc<dyn Mailer>),
) -> Harness {
    let store = MemoryStore::new();
    let mailer = RecordingMailer::new();
    let clock = Arc::new(ManualClock::new(start()));
    let hasher = CountingHasher::new(hasher);
    let (wrapped_store, wrapped_mailer) = wrap(Arc::new(store.clone()), Arc::new(mailer.clone()));
    let ports = Ports::new(
        wrapped_store,
        Arc::new(MemoryDirectory::from_csv(DIRECTORY).unwrap()),
        wrapped_mailer,
        Arc::new(hasher.clone()),
        clock.clone(),
    );
    Harness {
        service: AuthService::new(ports, config),
        store,
        mailer,
        clock,
        hasher,
    }
}

pub fn ru() -> RequestContext {
    RequestContext::new(Locale::Ru)
}

pub fn form(surname: &str, account: &str, email: &str) -> RegistrationForm {
    RegistrationForm {
        surname: surname.into(),
        account_number: account.into(),
        email: email.into(),
    }
}

pub fn email(text: &str) -> Email {
    text.parse().unwrap()
}

pub fn secret(text: &str) -> SecretString {
    SecretString::from(text.to_owned())
}

impl Harness {
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn letters_to(&self, to: &str, kind: LetterKind) -> Vec<Letter> {
        let to = email(to);
        self.mailer
            .letters()
            .into_iter()
            .filter(|l| l.to == to && l.content.kind() == kind)
            .collect()
    }

    /// The token of the latest confirmation (or recovery) letter to `to`.
    pub fn link_token(&self, to: &str, kind: LetterKind) -> String {
        let letter = self
            .mailer
            .last(&email(to), kind)
            .expect("a letter with a link");
        link_token(&letter).expect("the letter has a link")
    }

    /// The password of the latest credentials letter to `to`.
    pub fn mailed_password(&self, to: &str) -> SecretString {
        let letter = self
            .mailer
            .last(&email(to), LetterKind::Credentials)
            .expect("a credentials letter");
        mailed_password(&letter).expect("the letter has a password line")
    }

    /// Journeys 1–2: registers `account` for `to` and follows the confirmation letter;
    /// returns the activation token.
    pub async fn confirmed(&self, surname: &str, account: &str, to: &str) -> String {
        self.service
            .register(&form(surname, account, to), &ru())
            .await
            .unwrap();
        self.service
            .confirm_email(&self.link_token(to, LetterKind::ConfirmEmail))
            .await
            .unwrap()
            .expose()
            .to_owned()
    }

    /// Journeys 1–3 for a new cabinet; returns the mailed password.
    pub async fn register_and_activate(
        &self,
        surname: &str,
        account: &str,
        to: &str,
        premises: &str,
    ) -> SecretString {
        register_by_mail(
            &self.service,
            &self.mailer,
            &form(surname, account, to),
            premises,
            &ru(),
        )
        .await
        .unwrap()
    }

    /// Logs in and returns the session token text.
    pub async fn login(&self, to: &str, password: &SecretString) -> String {
        let logged_in = self
            .service
            .login(to, password.clone(), &ru())
            .await
            .unwrap();
        logged_in.session_token.expose().to_owned()
    }

    /// The session behind a token, as a request would find it.
    pub async fn who(&self, token: &str) -> resident_auth::journeys::SignedIn {
        self.service.authenticate(token).await.unwrap()
    }

    /// Whether the cabinet's current hash verifies one of the passwords mailed to it:
    /// the "no credentials that were never sent" invariant.
    /// Whether the cabinet of `to` holds a password that was mailed to it, or the one the
    /// tests choose when they change it ([`CHOSEN_PASSWORD`]): never one nobody has.
    pub async fn stored_password_was_mailed(&self, to: &str) -> bool {
        use resident_auth::config::{CredentialHasher as _, Verification};
        use resident_auth::{ports::CabinetKey, ports::CabinetStore as _};
        let Some(cabinet) = self
            .store
            .cabinet(CabinetKey::Email(&email(to)))
            .await
            .unwrap()
        else {
            return true;
        };
        let stored = cabinet.value.password_hash;
        let letters = self.letters_to(to, LetterKind::Credentials);
        let mailed = letters
            .iter()
            .map(|letter| mailed_password(letter).unwrap());
        let chosen = std::iter::once(SecretString::from(CHOSEN_PASSWORD.to_owned()));
        for password in mailed.chain(chosen) {
            let verdict = fast_hasher()
                .verify(password, Some(stored.clone()))
                .await
                .unwrap();
            if matches!(verdict, Verification::Match { .. }) {
                return true;
            }
        }
        false
    }
}

pub fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

/// Runs `body` with a `tracing` subscriber that keeps every `warn` and `error` event of
/// this thread; returns what it wrote.
pub async fn warnings_of<F: std::future::Future<Output = ()>>(body: F) -> String {
    let logged = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
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
        body.await;
    }
    let text = String::from_utf8(logged.lock().unwrap().clone()).unwrap();
    text
}

struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
