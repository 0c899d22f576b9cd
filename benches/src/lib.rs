//! Shared set-up of the benchmarks: a directory of many accounts, and cabinets taken
//! through registration and activation the way a resident would.
#![allow(
    clippy::missing_panics_doc,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use resident_auth::{
    config::{AccountDirectory, Argon2Hasher, AuthConfig, HashParams, Ports, SystemClock},
    journeys::RegistrationForm,
    letters::LetterKind,
    memory::{link_token, mailed_password, register_by_mail, RecordingMailer},
    ports::Store,
    secrecy::SecretString,
    AuthService, Email, RequestContext,
};

/// A directory CSV of `n` accounts: `78000000000{i}`, surname Иванов, premises `i + 1`.
#[must_use]
pub fn directory(n: usize) -> String {
    let mut csv = String::from("account_number,surnames,address,premises\n");
    for i in 0..n {
        csv.push_str(&format!(
            "{},Иванов,\"ул. Садовая, д. 1, кв. {}\",{}\n",
            account(i),
            i + 1,
            i + 1
        ));
    }
    csv
}

/// The account number of resident `i`.
#[must_use]
pub fn account(i: usize) -> String {
    format!("78{i:011}")
}

/// The email of resident `i`.
#[must_use]
pub fn email(i: usize) -> String {
    format!("resident{i}@example.org")
}

/// Registers, confirms and activates resident `i`; returns the mailed password.
pub async fn activated_cabinet(
    service: &AuthService,
    mailer: &RecordingMailer,
    i: usize,
) -> SecretString {
    let form = RegistrationForm {
        surname: "Иванов".into(),
        account_number: account(i),
        email: email(i),
    };
    register_by_mail(
        service,
        mailer,
        &form,
        &(i + 1).to_string(),
        &RequestContext::default(),
    )
    .await
    .unwrap()
}

/// The `p`-quantile (0–1) of `samples`, nearest rank.
#[must_use]
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index.min(samples.len() - 1)]
}

/// `DATABASE_URL` when set; else a throwaway cluster on 127.0.0.1 with
/// `pg_stat_statements`, stopped when this process ends.
#[must_use]
pub fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        api_suite::services::throwaway_cluster(
            "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all",
        )
    })
}

/// Statements executed since the last [`reset_stats`] (round trips), if
/// `pg_stat_statements` is there.
pub async fn round_trips(pool: &sqlx::PgPool) -> Option<i64> {
    sqlx::query_scalar::<_, Option<i64>>(
        "SELECT sum(calls)::bigint FROM pg_stat_statements
          WHERE query NOT ILIKE '%pg_stat_statements%'
            AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(pool)
    .await
    .ok()
    .flatten()
}

/// Resets `pg_stat_statements`; whether it is there.
pub async fn reset_stats(pool: &sqlx::PgPool) -> bool {
    sqlx::query("SELECT pg_stat_statements_reset()")
        .execute(pool)
        .await
        .is_ok()
}

/// The journey steps every PostgreSQL benchmark times, in order.
pub const STEPS: [&str; 9] = [
    "register",
    "confirm",
    "activate",
    "login",
    "session",
    "select account",
    "logout",
    "request recovery",
    "complete recovery",
];

/// Walks residents through every step of the guide on one store and directory, timing
/// each step; optionally counting one pass's round trips.
pub struct JourneySteps {
    service: AuthService,
    mailer: RecordingMailer,
    times: Vec<Vec<Duration>>,
    trips: Vec<Option<i64>>,
}

impl JourneySteps {
    /// A service on `store` and `directory` (production argon2) with `config`.
    #[must_use]
    pub fn new(
        store: Arc<dyn Store>,
        directory: Arc<dyn AccountDirectory>,
        config: AuthConfig,
    ) -> Self {
        Self::with_hash_params(store, directory, config, HashParams::default())
    }

    /// As [`JourneySteps::new`], hashing with `params`.
    #[must_use]
    pub fn with_hash_params(
        store: Arc<dyn Store>,
        directory: Arc<dyn AccountDirectory>,
        config: AuthConfig,
        params: HashParams,
    ) -> Self {
        let mailer = RecordingMailer::new();
        let service = AuthService::new(
            Ports::new(
                store,
                directory,
                Arc::new(mailer.clone()),
                Arc::new(Argon2Hasher::new(params).unwrap()),
                Arc::new(SystemClock),
            ),
            config,
        );
        Self {
            service,
            mailer,
            times: vec![Vec::new(); STEPS.len()],
            trips: vec![None; STEPS.len()],
        }
    }

    /// Resident `i` (its account must be in the directory with premises `i + 1`) through
    /// every step; with `pool`, this pass's round trips replace the recorded ones.
    pub async fn walk(&mut self, i: usize, pool: Option<&sqlx::PgPool>) {
        let context = RequestContext::default();
        let to: Email = email(i).parse().unwrap();
        let (service, mailer) = (&self.service, &self.mailer);
        let mut step = 0;
        let mut trips = Vec::new();
        let mut times = Vec::new();
        macro_rules! timed {
            ($e:expr) => {{
                if let Some(pool) = pool {
                    reset_stats(pool).await;
                }
                let start = Instant::now();
                let value = $e;
                times.push((step, start.elapsed()));
                if let Some(pool) = pool {
                    trips.push((step, round_trips(pool).await));
                }
                #[allow(unused_assignments)]
                {
                    step += 1;
                }
                value
            }};
        }
        let form = RegistrationForm {
            surname: "Иванов".into(),
            account_number: account(i),
            email: email(i),
        };
        timed!(service.register(&form, &context).await.unwrap());
        let link = link_token(&mailer.last(&to, LetterKind::ConfirmEmail).unwrap()).unwrap();
        let activation = timed!(service.confirm_email(&link).await.unwrap());
        timed!(service
            .activate(activation.expose(), &(i + 1).to_string(), &context)
            .await
            .unwrap());
        let password =
            mailed_password(&mailer.last(&to, LetterKind::Credentials).unwrap()).unwrap();
        let session = timed!(service.login(&email(i), password, &context).await.unwrap());
        let token = session.session_token.expose().to_owned();
        timed!({
            let session = service.authenticate(&token).await.unwrap();
            service.cabinet(&session).await.unwrap()
        });
        timed!({
            let session = service.authenticate(&token).await.unwrap();
            service.select_account(&session, &account(i)).await.unwrap()
        });
        timed!(service.logout(&token).await.unwrap());
        timed!(service.request_recovery(&email(i), &context).await.unwrap());
        let link = link_token(&mailer.last(&to, LetterKind::RecoverPassword).unwrap()).unwrap();
        timed!(service.complete_recovery(&link, &context).await.unwrap());
        for (index, elapsed) in times {
            self.times[index].push(elapsed);
        }
        for (index, count) in trips {
            self.trips[index] = count;
        }
    }

    /// Logs resident `i` in with the newest password mailed to it; the session token.
    pub async fn open_session(&self, i: usize) -> String {
        let to: Email = email(i).parse().unwrap();
        let password =
            mailed_password(&self.mailer.last(&to, LetterKind::Credentials).unwrap()).unwrap();
        let logged_in = self
            .service
            .login(&email(i), password, &RequestContext::default())
            .await
            .unwrap();
        logged_in.session_token.expose().to_owned()
    }

    /// One session check (what every signed-in request does).
    pub async fn check(&self, session_token: &str) {
        self.service.authenticate(session_token).await.unwrap();
    }

    /// Per step: name, p50, p99 and round trips of the last counted pass.
    pub fn summary(&mut self) -> Vec<(&'static str, Duration, Duration, Option<i64>)> {
        STEPS
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let samples = &mut self.times[index];
                (
                    *name,
                    percentile(samples, 0.5),
                    percentile(samples, 0.99),
                    self.trips[index],
                )
            })
            .collect()
    }
}
