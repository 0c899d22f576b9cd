//! Journeys 10 and 11 on the store under test: a resident downloads the cabinet's data
//! and closes the cabinet.

use secrecy::SecretString;

use super::{problem, secret, Journeys, FLAT, PARKING, RESIDENT};
use crate::{errors::Problem, journeys::RegistrationForm, letters::LetterKind, ports::Store};

/// The address a change under way would move the cabinet to.
const NEW_ADDRESS: &str = "new-address@example.org";

/// "Download my data" and "close my cabinet": both need the current password (a wrong one
/// is refused and counted like a login try); the export holds the cabinet, both accounts
/// and the sessions, and no secret; closing needs the explicit confirmation, ends every
/// session, erases the cabinet, mails "Личный кабинет закрыт" — and both accounts can be
/// registered again, by anyone who knows them. On a store without the operators' optional
/// listing primitives both steps refuse ("unavailable") and nothing is erased.
pub async fn journey_resident_downloads_the_data_and_closes_the_cabinet<
    S: Store + Clone + 'static,
>(
    store: &S,
) {
    let j = Journeys::on(store);
    j.register(FLAT, RESIDENT).await;
    let context = Journeys::context();
    let first = j.login(RESIDENT, &j.password(RESIDENT)).await.unwrap();
    let session = j.service.authenticate(&first).await.unwrap();
    j.service
        .add_address(
            &session,
            &crate::journeys::AddressForm {
                surname: "Иванов".into(),
                account_number: PARKING.into(),
            },
            &context,
        )
        .await
        .unwrap();
    let token = j.link(RESIDENT, LetterKind::ConfirmEmail);
    let activation = j.service.confirm_email(&token).await.unwrap();
    j.service
        .activate(activation.expose(), "123/456П", &context)
        .await
        .unwrap();
    let password = j.password(RESIDENT);
    let this = j.login(RESIDENT, &password).await.unwrap();
    let other = j.login(RESIDENT, &password).await.unwrap();
    let session = j.service.authenticate(&this).await.unwrap();

    let wrong = secret("not the password at all");
    assert_eq!(
        problem(
            j.service
                .export_own_data(&session, wrong.clone(), &context)
                .await
        ),
        Problem::CurrentPasswordWrong
    );
    // A change of address under way: the new address is the resident's data too.
    j.service
        .request_email_change(&session, NEW_ADDRESS, password.clone(), &context)
        .await
        .unwrap();
    let export = j
        .service
        .export_own_data(&session, password.clone(), &context)
        .await
        .unwrap();
    assert_eq!(export.cabinet.email, RESIDENT);
    assert_eq!(export.cabinet.accounts.len(), 2);
    assert_eq!(export.cabinet.sessions, 2, "two live sessions");
    assert_eq!(
        export.sessions.len(),
        2,
        "the live sessions, not the one that ended when the parking place was added"
    );
    assert!(
        export
            .pending
            .iter()
            .any(|p| p.purpose == "email_change" && p.email == NEW_ADDRESS),
        "the pending new address is exported: {:?}",
        export.pending
    );
    let text = format!("{export:?}");
    assert!(!text.contains(secrecy::ExposeSecret::expose_secret(&password)));
    assert!(!text.contains(&this) && !text.contains("argon2"), "{text}");

    assert_eq!(
        problem(
            j.service
                .close_cabinet(&session, password.clone(), false, &context)
                .await
        ),
        Problem::ClosingNotConfirmed
    );
    assert_eq!(
        problem(
            j.service
                .close_cabinet(&session, wrong, true, &context)
                .await
        ),
        Problem::CurrentPasswordWrong
    );
    j.service
        .authenticate(&other)
        .await
        .expect("nothing closed yet");
    j.service
        .close_cabinet(&session, password.clone(), true, &context)
        .await
        .unwrap();
    assert_eq!(j.letters(LetterKind::CabinetClosed), 1);
    // Once sent, even the farewell's record (its recipient) is gone; so is the pending
    // change to the new address, with its letter.
    for address in [RESIDENT, NEW_ADDRESS] {
        let address = super::email(address);
        assert_eq!(
            store
                .letters_about(Some(&address), None)
                .await
                .unwrap()
                .len(),
            0,
            "no letter to {address} on record"
        );
        assert_eq!(
            store.links_about(Some(&address), &[]).await.unwrap().len(),
            0,
            "no link for {address} on record"
        );
    }
    for token in [&this, &other] {
        assert_eq!(
            problem(j.service.authenticate(token).await),
            Problem::SessionInvalid
        );
    }
    assert_eq!(
        problem(j.login(RESIDENT, &password).await),
        Problem::InvalidCredentials
    );
    // The accounts are free again: each can start a cabinet of its own.
    let again: SecretString = j.register(FLAT, RESIDENT).await;
    j.login(RESIDENT, &again).await.expect("a new cabinet");
    j.service
        .register(
            &RegistrationForm {
                surname: "Иванов".into(),
                account_number: PARKING.into(),
                email: "neighbour@example.org".into(),
            },
            &context,
        )
        .await
        .expect("the second account is free too");
}
