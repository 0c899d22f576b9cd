//! The PostgreSQL adapter under concurrency, across service instances, and at rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod at_rest_and_directory;
#[path = "../common/mod.rs"]
mod common;
mod dropped_connections;
mod schema_and_concurrency;

use std::{sync::Arc, time::Duration};

use common::{fresh_database, pool};
use resident_auth::{
    config::{Argon2Hasher, AuthConfig, HashParams, ManualClock, Ports},
    errors::{Problem, Unavailable},
    journeys::RegistrationForm,
    letters::{LetterKind, Links},
    memory::{link_token, mailed_password, RecordingMailer},
    ports::{Expected, Link, LinkPurpose, LinkStore, Token},
    secrecy::{ExposeSecret, SecretString},
    AuthService, Error, ErrorKind, Locale, RequestContext, Timestamp,
};
use resident_auth_postgres::{
    import_directory, migrate, ImportError, PgDirectory, PgPool, PgStore,
};

const DIRECTORY: &str = "account_number,surnames,address,premises\n\
7800000000001,Иванов,\"г. Санкт-Петербург, ул. Садовая, д. 1, кв. 12\",12\n\
7800000000002,Иванов,\"г. Санкт-Петербург, ул. Садовая, д. 1, м/м 123/456П\",123/456П\n\
7800000000003,Иванов,\"г. Санкт-Петербург, ул. Садовая, д. 1, кв. 3\",3\n";
const RESIDENT: &str = "resident@example.org";

fn ctx() -> RequestContext {
    RequestContext::new(Locale::Ru)
}

fn start() -> Timestamp {
    Timestamp::from_millis(1_767_225_600_000)
}

struct Instance {
    service: AuthService,
    mailer: RecordingMailer,
}

/// One service instance with its own pool on the shared database.
async fn instance(url: &str, clock: Arc<ManualClock>, mailer: RecordingMailer) -> Instance {
    let pool = pool(url, 10).await;
    let service = AuthService::new(
        Ports::new(
            Arc::new(PgStore::new(pool.clone())),
            Arc::new(PgDirectory::new(pool)),
            Arc::new(mailer.clone()),
            Arc::new(Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 2).unwrap()),
            clock,
        ),
        {
            let mut config = AuthConfig::new(Links::new("https://portal.example.org"));
            config.delivery.in_request = true;
            config
        },
    );
    Instance { service, mailer }
}

async fn database_with_directory() -> (String, PgPool) {
    let url = fresh_database().await;
    let pool = pool(&url, 5).await;
    import_directory(&pool, DIRECTORY).await.unwrap();
    (url, pool)
}

fn form(account: &str) -> RegistrationForm {
    RegistrationForm {
        surname: "Иванов".into(),
        account_number: account.into(),
        email: RESIDENT.into(),
    }
}
