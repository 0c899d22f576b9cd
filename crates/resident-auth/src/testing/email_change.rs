//! Journey 12 on the store under test: a resident changes the cabinet's email, confirms it
//! from the new mailbox or cancels it from the old one; and the change racing a recovery and
//! a login.

use super::*;

const NEW: &str = "new.address@example.org";
const NEIGHBOUR: &str = "neighbour@example.org";

/// Asking needs the current password and a new address that is nobody's login (the
/// neighbour's is refused without saying whose); both addresses get a letter; nothing
/// changes until the link is followed — then the new address logs in and the old one does
/// not, the session that followed it stays and every other one ends, and both links are
/// spent. The cancel link of a second change ends every session and kills that change's
/// link. Asks are counted per cabinet.
pub async fn journey_resident_changes_the_email<S: Store + Clone + 'static>(store: &S) {
    let j = Journeys::on(store);
    let context = Journeys::context();
    let password = j.register(FLAT, RESIDENT).await;
    j.register(PARKING, NEIGHBOUR).await;
    let this = j.login(RESIDENT, &password).await.unwrap();
    let other = j.login(RESIDENT, &password).await.unwrap();
    let session = j.service.authenticate(&this).await.unwrap();
    let ask = |to: &'static str, password: SecretString| {
        let session = session.clone();
        let context = context.clone();
        let service = j.service.clone();
        async move {
            service
                .request_email_change(&session, to, password, &context)
                .await
        }
    };

    assert_eq!(
        problem(ask(RESIDENT, password.clone()).await),
        Problem::EmailUnchanged
    );
    assert_eq!(
        problem(ask(NEIGHBOUR, password.clone()).await),
        Problem::EmailTaken
    );
    assert_eq!(
        problem(ask(NEW, secret("not the password at all")).await),
        Problem::CurrentPasswordWrong
    );
    assert!(matches!(
        ask("not an address", password.clone()).await,
        Err(Error::Rejected(_))
    ));
    assert_eq!(j.letters(LetterKind::ConfirmEmailChange), 0);
    ask(NEW, password.clone()).await.unwrap();
    assert_eq!(j.letters(LetterKind::EmailChangeRequested), 1);
    let change = j.link(NEW, LetterKind::ConfirmEmailChange);
    let cancel = j.link(RESIDENT, LetterKind::EmailChangeRequested);
    // Nothing changed yet.
    assert_eq!(
        problem(j.login(NEW, &password).await),
        Problem::InvalidCredentials
    );
    j.login(RESIDENT, &password)
        .await
        .expect("the old login works until confirmed");
    assert_eq!(
        problem(
            j.service
                .confirm_email_change("nonsense", None, &context)
                .await
        ),
        Problem::InvalidLink
    );
    assert_eq!(
        problem(
            j.service
                .confirm_email_change(&cancel, None, &context)
                .await
        ),
        Problem::InvalidLink,
        "the cancel link does not confirm"
    );

    let changed = j
        .service
        .confirm_email_change(&change, Some(&session), &context)
        .await
        .unwrap();
    assert_eq!(changed.as_str(), NEW);
    let kept = j
        .service
        .authenticate(&this)
        .await
        .expect("this session stays");
    assert_eq!(kept.email.as_str(), NEW);
    assert_eq!(
        problem(j.service.authenticate(&other).await),
        Problem::SessionInvalid
    );
    assert_eq!(
        problem(j.login(RESIDENT, &password).await),
        Problem::InvalidCredentials
    );
    j.login(NEW, &password).await.expect("the new login works");
    for spent in [
        j.service
            .confirm_email_change(&change, None, &context)
            .await
            .map(|_| ()),
        j.service
            .cancel_email_change(&cancel, &context)
            .await
            .map(|_| ()),
    ] {
        assert_eq!(problem(spent), Problem::InvalidLink);
    }
    assert!(store
        .cabinet(CabinetKey::Email(&email(RESIDENT)))
        .await
        .unwrap()
        .is_none());

    // A second change, cancelled from the address in force ("это был не я").
    let session = kept;
    let again = j.login(NEW, &password).await.unwrap();
    j.service
        .request_email_change(&session, "third@example.org", password.clone(), &context)
        .await
        .unwrap();
    let change = j.link("third@example.org", LetterKind::ConfirmEmailChange);
    let cancel = j.link(NEW, LetterKind::EmailChangeRequested);
    let credentials_before = j.letters(LetterKind::Credentials);
    let login = j
        .service
        .cancel_email_change(&cancel, &context)
        .await
        .unwrap();
    assert_eq!(login.as_str(), NEW, "the address in force stays the login");
    for ended in [&this, &again] {
        assert_eq!(
            problem(j.service.authenticate(ended).await),
            Problem::SessionInvalid,
            "cancelling ends every session"
        );
    }
    assert_eq!(
        problem(
            j.service
                .confirm_email_change(&change, None, &context)
                .await
        ),
        Problem::InvalidLink
    );
    // Whoever asked knew the password: the cancel retired it, and new credentials went
    // to the address in force.
    assert_eq!(
        problem(j.login(NEW, &password).await),
        Problem::InvalidCredentials,
        "the password that asked for the change no longer signs in"
    );
    assert_eq!(j.letters(LetterKind::Credentials), credentials_before + 1);
    let password = j.password(NEW);
    let fresh = j
        .login(NEW, &password)
        .await
        .expect("the mailed password signs in");
    let session = j.service.authenticate(&fresh).await.unwrap();
    assert_eq!(
        problem(j.service.cancel_email_change(&cancel, &context).await),
        Problem::InvalidLink,
        "the cancel link is single-use"
    );

    // Counted per cabinet: the neighbour's address, the wrong password and the two changes
    // took four of the five a day.
    j.service
        .request_email_change(&session, "fifth@example.org", password.clone(), &context)
        .await
        .unwrap();
    assert!(matches!(
        problem(
            j.service
                .request_email_change(&session, "sixth@example.org", password, &context)
                .await
        ),
        Problem::TooManyRequests { .. }
    ));
}

/// A link that would change the email and a recovery link race: exactly one wins. The
/// change kills the recovery link mailed to the old address; a recovery kills the change.
pub async fn journey_email_change_racing_a_recovery_lets_one_win<S: Store + Clone + 'static>(
    store: &S,
) {
    let j = Journeys::on(store);
    let context = Journeys::context();
    let password = j.register(FLAT, RESIDENT).await;
    let token = j.login(RESIDENT, &password).await.unwrap();
    let session = j.service.authenticate(&token).await.unwrap();
    j.service
        .request_email_change(&session, NEW, password.clone(), &context)
        .await
        .unwrap();
    j.service
        .request_recovery(RESIDENT, &context)
        .await
        .unwrap();
    let change = j.link(NEW, LetterKind::ConfirmEmailChange);
    let recovery = j.link(RESIDENT, LetterKind::RecoverPassword);
    let (changed, recovered) = futures::join!(
        j.service.confirm_email_change(&change, None, &context),
        j.service.complete_recovery(&recovery, &context)
    );
    match (changed, recovered) {
        (Ok(_), Err(error)) => {
            assert_eq!(problem(Err::<(), _>(error)), Problem::InvalidLink);
            j.login(NEW, &password).await.expect("the change won");
            assert_eq!(j.letters(LetterKind::Credentials), 1, "no new password");
        }
        (Err(error), Ok(_)) => {
            assert_eq!(problem(Err::<(), _>(error)), Problem::InvalidLink);
            let mailed = j.password(RESIDENT);
            j.login(RESIDENT, &mailed).await.expect("the recovery won");
            assert_eq!(
                problem(j.login(NEW, &mailed).await),
                Problem::InvalidCredentials
            );
        }
        other => panic!("exactly one of the two may win: {other:?}"),
    }
    assert_eq!(
        problem(j.service.authenticate(&token).await),
        Problem::SessionInvalid
    );
}

/// Logins with the old address race the confirmation of the change: a session any of them
/// opened dies with the change, and afterwards only the new address logs in.
pub async fn journey_email_change_racing_logins_keeps_no_old_session<S: Store + Clone + 'static>(
    store: &S,
) {
    let j = Journeys::on(store);
    let context = Journeys::context();
    let password = j.register(FLAT, RESIDENT).await;
    let token = j.login(RESIDENT, &password).await.unwrap();
    let session = j.service.authenticate(&token).await.unwrap();
    j.service
        .request_email_change(&session, NEW, password.clone(), &context)
        .await
        .unwrap();
    let change = j.link(NEW, LetterKind::ConfirmEmailChange);
    let logins = join_all((0..4).map(|_| j.login(RESIDENT, &password)));
    let (opened, changed) = futures::join!(
        logins,
        j.service.confirm_email_change(&change, None, &context)
    );
    changed.expect("the change goes through");
    for opened in opened {
        match opened {
            Ok(token) => assert_eq!(
                problem(j.service.authenticate(&token).await),
                Problem::SessionInvalid
            ),
            Err(error) => assert_eq!(problem(Err::<(), _>(error)), Problem::InvalidCredentials),
        }
    }
    assert_eq!(
        problem(j.login(RESIDENT, &password).await),
        Problem::InvalidCredentials
    );
    let new = j.login(NEW, &password).await.unwrap();
    j.service
        .authenticate(&new)
        .await
        .expect("the new login holds");
}

/// Two cabinets ask for one new address, which neither may take from the other: the first
/// to follow its link gets it, and the other's link is refused as taken
/// (`email_change.email_taken`, without saying whose) and changes nothing.
pub async fn journey_two_cabinets_asking_for_one_address_let_the_first_confirmed_win<
    S: Store + Clone + 'static,
>(
    store: &S,
) {
    let j = Journeys::on(store);
    let context = Journeys::context();
    let mut links = Vec::new();
    for (account, owner) in [(FLAT, RESIDENT), (PARKING, NEIGHBOUR)] {
        let password = j.register(account, owner).await;
        let token = j.login(owner, &password).await.unwrap();
        let session = j.service.authenticate(&token).await.unwrap();
        j.service
            .request_email_change(&session, NEW, password, &context)
            .await
            .unwrap();
        links.push(j.link(NEW, LetterKind::ConfirmEmailChange));
        // The new address's letter cooldown.
        j.advance(MINUTE);
    }
    let changed = j
        .service
        .confirm_email_change(&links[1], None, &context)
        .await
        .unwrap();
    assert_eq!(changed.as_str(), NEW);
    assert_eq!(
        problem(
            j.service
                .confirm_email_change(&links[0], None, &context)
                .await
        ),
        Problem::EmailTaken
    );
    let resident = store
        .cabinet(CabinetKey::Email(&email(RESIDENT)))
        .await
        .unwrap()
        .expect("the resident keeps the address in force");
    let neighbour = store
        .cabinet(CabinetKey::Email(&email(NEW)))
        .await
        .unwrap()
        .expect("the neighbour has the new address");
    assert_ne!(resident.value.id, neighbour.value.id);
}
