//! The resident's own settings: password change, sessions, temporary passwords, their data
//! and closing the cabinet.

use super::*;

pub(crate) const CHOSEN: &str = "тихий вечер у старой реки";

/// Journeys 8 and 9 over HTTP: the list of sessions, a password change that keeps only
/// the asking session and mails the notice, ending one session by its id and all others.
pub async fn password_change_and_sessions(binary: &str) {
    password_change_and_sessions_on(&Server::start(binary, &[]).await).await;
}

pub(crate) async fn password_change_and_sessions_on(server: &Server) {
    let password = activate(server, "7800000000001", RESIDENT, "12").await;
    let this = login(server, RESIDENT, &password).await;
    let other = login(server, RESIDENT, &password).await;
    let (status, body, _) = server.get("/api/sessions", Some(&this)).await;
    assert_eq!(status, 200, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["current"], false);
    let other_id = sessions[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(other_id.len(), 32);
    assert!(sessions[0]["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(!body.to_string().contains(&other), "ids are not tokens");

    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    for (body, code) in [
        (change(&password, "short"), "password.too_short"),
        (
            change(&password, "resident-1987-07-12-x"),
            "password.contains_email",
        ),
        (change(&password, "passwordpassword"), "password.common"),
        (
            change("wrong current password", CHOSEN),
            "password.current_wrong",
        ),
    ] {
        let (status, answer, _) = server.post("/api/password", body, Some(&this)).await;
        assert_eq!(
            (status.as_u16(), codes(&answer)),
            (422, vec![code.to_owned()])
        );
    }
    let (status, _, _) = server
        .post("/api/password", change(&password, CHOSEN), None)
        .await;
    assert_eq!(status, 401);
    let (status, body, _) = server
        .post("/api/password", change(&password, CHOSEN), Some(&this))
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(server.get("/api/session", Some(&this)).await.0, 200);
    assert_eq!(server.get("/api/session", Some(&other)).await.0, 401);
    assert!(server
        .letters()
        .iter()
        .any(|(subject, _)| subject == "Пароль изменён"));
    let (status, _, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": password}),
            None,
        )
        .await;
    assert_eq!(status, 401, "the old password is dead");

    let second = login(server, RESIDENT, CHOSEN).await;
    let third = login(server, RESIDENT, CHOSEN).await;
    let (_, body, _) = server.get("/api/sessions", Some(&second)).await;
    let second_id = body["sessions"][0]["id"].as_str().unwrap().to_owned();
    let (status, _, _) = server
        .delete(&format!("/api/sessions/{second_id}"), Some(&this))
        .await;
    assert_eq!(status, 204);
    assert_eq!(server.get("/api/session", Some(&second)).await.0, 401);
    let (status, body, _) = server
        .delete(&format!("/api/sessions/{second_id}"), Some(&this))
        .await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (404, vec!["session.not_found".to_owned()])
    );
    let (status, body, _) = server.delete("/api/sessions/others", Some(&this)).await;
    assert_eq!((status.as_u16(), body), (200, json!({"ended": 1})));
    assert_eq!(server.get("/api/session", Some(&third)).await.0, 401);
    assert_eq!(server.get("/api/session", Some(&this)).await.0, 200);
    for path in ["/api/sessions/others", &format!("/api/sessions/{other_id}")] {
        assert_eq!(server.delete(path, None).await.0, 401);
    }
    assert_eq!(server.get("/api/sessions", None).await.0, 401);
}

/// With `TEMPORARY_PASSWORD_HOURS`, the mailed password opens only the password change
/// (403 `password.change_required` elsewhere) until the resident chooses one.
pub async fn temporary_passwords_must_be_changed(binary: &str) {
    let server = Server::start(binary, &[("TEMPORARY_PASSWORD_HOURS", "24".to_owned())]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    assert!(server
        .newest("Данные для входа")
        .contains("временный пароль"));
    let (status, body, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": password}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["password_change_required"], true);
    let session = body["session_token"].as_str().unwrap().to_owned();
    let (status, body, _) = server.get("/api/session", Some(&session)).await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (403, vec!["password.change_required".to_owned()])
    );
    for (path, request) in [
        (
            "/api/session/active-account",
            json!({"account_number": "7800000000001"}),
        ),
        (
            "/api/addresses",
            json!({"surname": "Иванов", "account_number": "7800000000002"}),
        ),
    ] {
        assert_eq!(
            server.post(path, request, Some(&session)).await.0,
            403,
            "{path}"
        );
    }
    let (status, _, _) = server
        .post(
            "/api/password",
            json!({"current_password": password, "new_password": CHOSEN}),
            Some(&session),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(server.get("/api/session", Some(&session)).await.0, 200);
    let (_, body, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": CHOSEN}),
            None,
        )
        .await;
    assert_eq!(body["password_change_required"], false);
}

/// Journeys 10 and 11 over the API: the data comes back after the current password,
/// without a secret; closing needs `"confirm": true`, mails "Личный кабинет закрыт", ends
/// the session, and the account can be registered again.
pub async fn residents_download_their_data_and_close_the_cabinet(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let session = login(&server, RESIDENT, &password).await;
    let me = Some(session.as_str());
    // A session that ended, and a change of address under way: the download lists the
    // live sessions only (as `GET /api/sessions` does) and the new address (before: the
    // ended session listed, the new address left out).
    let ended = login(&server, RESIDENT, &password).await;
    let (status, _, _) = server.post("/api/logout", json!({}), Some(&ended)).await;
    assert!(status.is_success(), "{status}");
    ask_email_change(&server, &session, "moving@example.org", &password).await;
    let (_, listed, _) = server.get("/api/sessions", me).await;
    let (status, body, _) = server
        .post(
            "/api/cabinet/export",
            json!({"current_password": "wrong"}),
            me,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "password.current_wrong");
    let (status, body, _) = server
        .post(
            "/api/cabinet/export",
            json!({"current_password": password}),
            me,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cabinet"]["email"], RESIDENT);
    assert_eq!(
        body["cabinet"]["accounts"][0]["account_number"],
        "7800000000001"
    );
    let live = listed["sessions"].as_array().unwrap().len();
    assert_eq!(body["sessions"].as_array().unwrap().len(), live, "{body}");
    assert_eq!(body["cabinet"]["sessions"], live, "{body}");
    assert!(
        body["pending"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["purpose"] == "email_change" && p["email"] == "moving@example.org"),
        "{body}"
    );
    let text = body.to_string();
    assert!(
        !text.contains(&password) && !text.contains(&session),
        "{text}"
    );
    let (status, body, _) = server
        .post(
            "/api/cabinet/close",
            json!({"current_password": password, "confirm": false}),
            me,
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["code"], "cabinet.close_not_confirmed");
    close_cabinet(&server, &session, &password).await;
    let (status, _, _) = server.get("/api/session", me).await;
    assert_eq!(status, 401, "the session ended with the cabinet");
    let (status, body) = register(&server, "7800000000001", RESIDENT).await;
    assert_eq!(status, 202, "the account is free again: {body}");
}
