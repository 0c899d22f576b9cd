//! Shared set-up of the benchmarks: a directory of many accounts, and cabinets taken
//! through registration and activation the way a resident would.
#![allow(clippy::missing_panics_doc, clippy::unwrap_used, clippy::expect_used)]

use resident_auth::{
    memory::{register_by_mail, RecordingMailer},
    secrecy::SecretString,
    AuthService, RegistrationForm, RequestContext,
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
