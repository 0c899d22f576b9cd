//! The data page (journeys 10 and 11) through its forms.

use super::*;

/// Journeys 10 and 11 through the pages: the data page downloads the cabinet's data as a
/// JSON attachment after the current password, refuses to close without the checkbox, and
/// closes the cabinet with it — clearing the session cookie.
pub async fn the_data_page_downloads_the_data_and_closes_the_cabinet(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    let client = client();
    let token = csrf_with_session(&server, &client, "none").await;
    let response = log_in(&server, &client, "none", &token, &password).await;
    let session = cookie_value(&set_cookie(&response, "session").unwrap()).to_owned();
    let csrf = csrf_with_session(&server, &client, &session).await;
    let cookies = format!("csrf={csrf}; session={session}");
    let page = client
        .get(format!("{}/cabinet/data", server.base))
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
    let response = post(
        "/cabinet/data/export",
        vec![
            ("csrf", csrf.clone()),
            ("current_password", "wrong".to_owned()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = post(
        "/cabinet/data/export",
        vec![
            ("csrf", csrf.clone()),
            ("current_password", password.clone()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let data = response.text().await.unwrap();
    assert!(
        data.contains(RESIDENT) && !data.contains(&password),
        "{data}"
    );
    let response = post(
        "/cabinet/close",
        vec![("csrf", csrf.clone()), ("close_password", password.clone())],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("Подтвердите"));
    let response = post(
        "/cabinet/close",
        vec![
            ("csrf", csrf.clone()),
            ("close_password", password.clone()),
            ("confirm", "yes".to_owned()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cleared = set_cookie(&response, "session").expect("the session cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(server.newest("Личный кабинет закрыт").contains("закрыт"));
    let response = client
        .get(format!("{}/cabinet", server.base))
        .header(header::COOKIE, &cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::LOCATION], "/");
}
