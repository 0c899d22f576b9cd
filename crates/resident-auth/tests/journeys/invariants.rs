//! The invariants: single use, no secret in `Debug`, fresh sessions, purging.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_double_consume_of_one_token_lets_exactly_one_win() {
    let h = harness();
    h.service
        .register(&form("Иванов", FLAT, RESIDENT), &ru())
        .await
        .unwrap();
    let confirmation = h.link_token(RESIDENT, LetterKind::ConfirmEmail);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let service = h.service.clone();
            let token = confirmation.clone();
            tokio::spawn(async move { service.confirm_email(&token).await })
        })
        .collect();
    let mut activations = Vec::new();
    for task in tasks {
        if let Ok(token) = task.await.unwrap() {
            activations.push(token);
        }
    }
    assert_eq!(activations.len(), 1);

    // The same for the activation itself: one credentials letter, one password.
    let activation = activations.pop().unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let service = h.service.clone();
            let token = activation.expose().to_owned();
            tokio::spawn(async move {
                service
                    .activate(&token, "12", &RequestContext::default())
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap().is_ok());
    }
    assert_eq!(wins, 1);
    assert_eq!(h.letters_to(RESIDENT, LetterKind::Credentials).len(), 1);
    assert!(h.stored_password_was_mailed(RESIDENT).await);
}

#[tokio::test]
async fn no_secret_appears_in_debug_output() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let logged_in = h
        .service
        .login(RESIDENT, password.clone(), &ru())
        .await
        .unwrap();
    let token = logged_in.session_token.expose().to_owned();
    let error = h
        .service
        .login(RESIDENT, secret("wrong-password-xyz"), &ru())
        .await
        .unwrap_err();
    let letters = h.mailer.letters();
    let debug = format!(
        "{logged_in:?} {error:?} {error} {letters:?} {:?} {password:?}",
        h.service
    );
    assert!(!debug.contains(expose(&password)));
    assert!(!debug.contains(&token));
    assert!(!debug.contains("wrong-password-xyz"));
    for letter in &letters {
        if let Some(link_token) = resident_auth::memory::link_token(letter) {
            assert!(!debug.contains(&link_token));
        }
    }
}

#[tokio::test]
async fn each_login_issues_a_fresh_session_token_and_leaves_others_alone() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let first = h.login(RESIDENT, &password).await;
    let second = h.login(RESIDENT, &password).await;
    assert_ne!(
        first, second,
        "no token is ever reused: a session cannot be fixed in advance"
    );
    h.service.logout(&first).await.unwrap();
    assert!(h.service.authenticate(&first).await.is_err());
    h.service.authenticate(&second).await.unwrap();
}

#[tokio::test]
async fn purging_keeps_live_sessions_and_drops_dead_ones() {
    let h = harness();
    let password = h
        .register_and_activate("Иванов", FLAT, RESIDENT, "12")
        .await;
    let old = h.login(RESIDENT, &password).await;
    h.advance(25 * MINUTE);
    let fresh = h.login(RESIDENT, &password).await;
    h.advance(10 * MINUTE);
    assert_eq!(
        h.service.purge_expired().await.unwrap(),
        1,
        "the idle session (the registration's counters ended with its activation)"
    );
    h.service.authenticate(&fresh).await.unwrap();
    assert!(h.service.authenticate(&old).await.is_err());
}
