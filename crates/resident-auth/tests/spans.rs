//! Every service operation runs in a `tracing` span (`resident_auth.<operation>`), and
//! nothing a span or event records — fields, errors, messages — holds a token, a link or
//! a password, over all the journeys, their error paths and the operators' operations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use resident_auth::{
    admin::Lookup,
    journeys::AddressForm,
    letters::LetterKind,
    memory::{link_token, mailed_password},
};
use tracing::{
    field::{Field, Visit},
    span::{Attributes, Record},
    Event, Id, Subscriber,
};
use tracing_subscriber::{layer::Context, prelude::*, registry::LookupSpan, Layer};

/// Every span name, and every field value recorded anywhere, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<(Vec<String>, Vec<String>)>>);

struct Fields<'a>(&'a mut Vec<String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
    fn on_new_span(&self, attributes: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
        let mut captured = self.0.lock().unwrap();
        captured.0.push(attributes.metadata().name().to_owned());
        attributes.record(&mut Fields(&mut captured.1));
    }

    fn on_record(&self, _: &Id, values: &Record<'_>, _: Context<'_, S>) {
        values.record(&mut Fields(&mut self.0.lock().unwrap().1));
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut captured = self.0.lock().unwrap();
        captured.1.push(event.metadata().name().to_owned());
        event.record(&mut Fields(&mut captured.1));
    }
}

#[tokio::test(flavor = "current_thread")]
async fn spans_cover_every_operation_and_hold_no_secret() {
    let captured = Captured::default();
    let _guard = tracing_subscriber::registry()
        .with(captured.clone())
        .set_default();
    let h = harness();
    let mut secrets: Vec<String> = vec![CHOSEN_PASSWORD.to_owned()];
    // Journeys 1–5.
    let activation = h.confirmed("Иванов", FLAT, RESIDENT).await;
    secrets.push(activation.clone());
    let _ = h.service.activate(&activation, "99", &ru()).await;
    h.service.activate(&activation, "12", &ru()).await.unwrap();
    let password = h.mailed_password(RESIDENT);
    let _ = h
        .service
        .login(RESIDENT, secret("wrong-password"), &ru())
        .await;
    secrets.push("wrong-password".to_owned());
    let token = h.login(RESIDENT, &password).await;
    let who = h.who(&token).await;
    h.service.cabinet(&who).await.unwrap();
    // Journey 7: another account, switched to.
    let add = AddressForm {
        surname: "Иванов".into(),
        account_number: PARKING.into(),
    };
    h.service.add_address(&who, &add, &ru()).await.unwrap();
    let second = h
        .service
        .confirm_email(&h.link_token(RESIDENT, LetterKind::ConfirmEmail))
        .await
        .unwrap();
    secrets.push(second.expose().to_owned());
    h.service
        .activate(second.expose(), "123/456П", &ru())
        .await
        .unwrap();
    let password = h.mailed_password(RESIDENT);
    let token = h.login(RESIDENT, &password).await;
    let who = h.who(&token).await;
    h.service.select_account(&who, PARKING).await.unwrap();
    // Journeys 8 and 9.
    h.service
        .change_password(&who, password, secret(CHOSEN_PASSWORD), &ru())
        .await
        .unwrap();
    let who = h.who(&token).await;
    h.service.sessions(&who).await.unwrap();
    h.service.end_other_sessions(&who).await.unwrap();
    // Journey 6.
    h.service.request_recovery(RESIDENT, &ru()).await.unwrap();
    let recovery = h.link_token(RESIDENT, LetterKind::RecoverPassword);
    h.service.complete_recovery(&recovery, &ru()).await.unwrap();
    let _ = h.service.complete_recovery(&recovery, &ru()).await;
    h.service.logout(&token).await.unwrap();
    let _ = h.service.authenticate(&token).await;
    secrets.push(token);
    h.service.purge_expired().await.unwrap();
    h.service.deliver_due().await.unwrap();
    // The operators'.
    let admin = h.service.admin();
    let operator = "maria".parse().unwrap();
    admin.find(&Lookup::Email(email(RESIDENT))).await.unwrap();
    admin
        .export(&Lookup::Email(email(RESIDENT)), &operator)
        .await
        .unwrap();
    // Every token and password any letter carried.
    for letter in h.mailer.letters() {
        secrets.extend(link_token(&letter));
        secrets.extend(mailed_password(&letter).map(|p| expose(&p).to_owned()));
    }
    let (names, fields) = captured.0.lock().unwrap().clone();
    for operation in [
        "register",
        "confirm_email",
        "activate",
        "login",
        "authenticate",
        "cabinet",
        "add_address",
        "select_account",
        "change_password",
        "sessions",
        "end_other_sessions",
        "request_recovery",
        "complete_recovery",
        "logout",
        "purge_expired",
        "deliver_due",
        "find",
        "export",
    ] {
        let name = format!("resident_auth.{operation}");
        assert!(names.contains(&name), "no span {name}: {names:?}");
    }
    assert!(
        fields
            .iter()
            .any(|f| f.contains("login.invalid_credentials")),
        "errors are recorded, by code: {fields:?}"
    );
    // The residents' events go to the log too (the default sink), each by kind, and never
    // name the resident's email.
    for kind in [
        "registered",
        "confirmed",
        "activated",
        "activation_failed",
        "login_succeeded",
        "login_failed",
        "account_added",
        "account_selected",
        "password_changed",
        "session_ended",
        "recovery_requested",
        "recovery_completed",
    ] {
        assert!(
            fields.iter().any(|f| f == &format!("event={kind:?}")),
            "no {kind} event"
        );
    }
    assert!(
        !fields.iter().any(|f| f.contains(RESIDENT)),
        "a span or event names the resident's email"
    );
    assert!(secrets.len() >= 10, "{}", secrets.len());
    for secret in &secrets {
        assert!(secret.len() >= 12, "{secret}");
        for field in &fields {
            assert!(!field.contains(secret.as_str()), "{field:?} holds a secret");
        }
    }
}
