//! Changing the email (journey 12) through the pages: the signed-in form and the two
//! letters' landing pages.

use super::*;

/// Journey 12 through the pages: the form refuses a wrong password and an address that is
/// another cabinet's; a right one mails both letters; the new address's link only shows a
/// button, and pressing it in the signed-in browser changes the login and keeps that
/// session; a second change is cancelled from the old address's link, which ends the
/// session and clears nothing else.
pub async fn the_email_pages_change_confirm_and_cancel(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    activate(
        &server,
        "7800000000002",
        "neighbour@example.org",
        "123/456П",
    )
    .await;
    let client = client();
    let token = csrf_with_session(&server, &client, "none").await;
    let response = log_in(&server, &client, "none", &token, &password).await;
    let session = cookie_value(&set_cookie(&response, "session").unwrap()).to_owned();
    let csrf = csrf_with_session(&server, &client, &session).await;
    let cookies = format!("csrf={csrf}; session={session}");
    let cabinet = client
        .get(format!("{}/cabinet", server.base))
        .header(header::COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    assert!(cabinet
        .text()
        .await
        .unwrap()
        .contains("href=\"/cabinet/email\""));
    let page = client
        .get(format!("{}/cabinet/email", server.base))
        .header(header::COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        client
            .post(format!("{}{path}", server.base))
            .header(header::COOKIE, &cookies)
            .form(&form)
            .send()
    };
    let change = |email: &str, current: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("email", email.to_owned()),
            ("current_password", current.to_owned()),
        ]
    };
    let response = post("/cabinet/email", change("moved@example.org", "wrong"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = post("/cabinet/email", change("neighbour@example.org", &password))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let text = response.text().await.unwrap();
    assert!(text.contains("другой личный кабинет"), "{text}");
    let response = post("/cabinet/email", change("moved@example.org", &password))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("moved@example.org"));

    // The link's page only shows a button.
    let link = server.link_token("Подтверждение нового e-mail");
    for _ in 0..2 {
        let page = client
            .get(format!("{}/email/confirm?token={link}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains(&link));
    }
    let response = post(
        "/email/confirm",
        vec![("csrf", csrf.clone()), ("token", link)],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("moved@example.org") && text.contains("href=\"/cabinet\""),
        "the session that followed the link stays: {text}"
    );
    let still = client
        .get(format!("{}/cabinet", server.base))
        .header(header::COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), StatusCode::OK);
    assert!(still.text().await.unwrap().contains("moved@example.org"));

    // A second change, cancelled from the address in force.
    let response = post("/cabinet/email", change("third@example.org", &password))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cancel = server.link_token("Смена e-mail");
    assert!(server
        .newest("Смена e-mail")
        .contains(&format!("/email/cancel?token={cancel}")));
    let page = client
        .get(format!("{}/email/cancel?token={cancel}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let response = post(
        "/email/cancel",
        vec![("csrf", csrf.clone()), ("token", cancel.clone())],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = set_cookie(&response, "session").expect("the session cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let gone = client
        .get(format!("{}/cabinet", server.base))
        .header(header::COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.headers()[header::LOCATION], "/", "every session ended");
    let confirm = server.link_token("Подтверждение нового e-mail");
    let response = post(
        "/email/confirm",
        vec![("csrf", csrf.clone()), ("token", confirm)],
    )
    .await
    .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the cancelled change's link is dead"
    );
}
