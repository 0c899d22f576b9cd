//! The operators' API: tokens, its own listener, its operations on PostgreSQL.

use super::*;

/// An operator's token and the `ADMIN_*` variables that admit it on a listener of its own.
pub(crate) fn operator_variables() -> (String, Vec<(&'static str, String)>) {
    let operator = "maria".parse().unwrap();
    let (token, line) = resident_auth_http::OperatorTokens::issue(&operator);
    let variables = vec![
        ("ADMIN_BIND", "127.0.0.1:0".to_owned()),
        ("ADMIN_OPERATORS", line),
    ];
    (token, variables)
}

/// The operators' API (docs/operating.md): only on its own listener, only with an
/// operator token; find, unlock, end sessions, export, unlink (refused for the last
/// account), erase, each answering as documented.
pub async fn the_operators_api_needs_a_token_and_stays_apart(binary: &str) {
    let (token, variables) = operator_variables();
    operators_api_on(&Server::start(binary, &variables).await, &token).await;
}

/// The same on the real services: PostgreSQL (its audit table checked) and SMTP.
pub async fn the_operators_api_on_postgres_and_smtp(binary: &str) {
    let (token, variables) = operator_variables();
    let server = Server::start_on_services(binary, &variables).await;
    operators_api_on(&server, &token).await;
    let pool = sqlx::PgPool::connect(server.database.as_deref().unwrap())
        .await
        .unwrap();
    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT operator, action FROM resident_auth.audit ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let actions: Vec<&str> = actions
        .iter()
        .map(|(operator, action)| {
            assert_eq!(operator, "maria");
            action.as_str()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "find",
            "resend_confirmation",
            "find",
            "clear_locks",
            "export",
            "end_sessions",
            "erase",
            "find"
        ],
        "every lookup and every change, in order"
    );
}

pub(crate) async fn operators_api_on(server: &Server, token: &str) {
    let token = token.to_owned();
    let admin = server
        .admin
        .clone()
        .expect("the example announces the admin listener");
    let call = |method: reqwest::Method, path: &str, bearer: Option<&str>| {
        let mut request = server
            .client
            .request(method, format!("{admin}/admin{path}"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        async move { read(request.send().await.unwrap()).await }
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    for bearer in [None, Some("not-a-token"), Some(token.get(1..).unwrap())] {
        let (status, body, _) = call(get.clone(), &format!("/cabinets/{RESIDENT}"), bearer).await;
        assert_eq!(
            (status.as_u16(), codes(&body)),
            (401, vec!["admin.unauthorized".to_owned()])
        );
    }
    let operator_token = token.clone();
    let token = Some(token.as_str());
    let (status, _, _) = call(get.clone(), "/cabinets/780000000000", token).await;
    assert_eq!(status, 422, "a 12-digit account");
    let (status, _, _) = call(get.clone(), &format!("/cabinets/{RESIDENT}"), token).await;
    assert_eq!(status, 404);
    // "The letter never came": a pending registration's letter again, past the cooldown.
    let petrova = json!({"surname": "Петрова", "account_number": "7800000000003", "email": "petrova@example.org"});
    assert_eq!(
        server.post("/api/registrations", petrova, None).await.0,
        202
    );
    let before = server.letters().len();
    let (status, sent, _) = call(post.clone(), "/cabinets/7800000000003/resend", token).await;
    assert_eq!((status.as_u16(), &sent["changed"]), (200, &json!(1)));
    let arrived = wait_for_letters(server, before + 1).await;
    assert!(arrived, "the resent confirmation letter arrived");
    let password = activate(server, "7800000000001", RESIDENT, "12").await;
    let session = login(server, RESIDENT, &password).await;
    let (status, found, _) = call(get.clone(), "/cabinets/7800000000001", token).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["cabinet"]["email"], RESIDENT);
    assert_eq!(found["cabinet"]["sessions"], 1);
    let (status, _, _) = call(post.clone(), &format!("/cabinets/{RESIDENT}/unlock"), token).await;
    assert_eq!(status, 200);
    let (status, export, _) =
        call(get.clone(), &format!("/cabinets/{RESIDENT}/export"), token).await;
    assert_eq!(
        (status.as_u16(), &export["cabinet"]["email"]),
        (200, &json!(RESIDENT))
    );
    let (status, ended, _) = call(
        post.clone(),
        &format!("/cabinets/{RESIDENT}/end-sessions"),
        token,
    )
    .await;
    assert_eq!((status.as_u16(), &ended["changed"]), (200, &json!(1)));
    assert_eq!(server.get("/api/session", Some(&session)).await.0, 401);
    let (status, body, _) = call(post.clone(), "/accounts/7800000000001/unlink", token).await;
    assert_eq!(
        (status.as_u16(), codes(&body)),
        (409, vec!["admin.refused".to_owned()])
    );
    let (status, erased, _) = call(
        reqwest::Method::DELETE,
        &format!("/cabinets/{RESIDENT}"),
        token,
    )
    .await;
    assert_eq!((status.as_u16(), &erased["cabinets"]), (200, &json!(1)));
    let (status, _, _) = call(get.clone(), &format!("/cabinets/{RESIDENT}"), token).await;
    assert_eq!(status, 404, "erased");
    // Not on the residents' listener, whatever the path.
    for path in [
        format!("/admin/cabinets/{RESIDENT}"),
        format!("/api/admin/cabinets/{RESIDENT}"),
    ] {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .bearer_auth(&operator_token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // And the erased account registers again.
    activate(server, "7800000000001", RESIDENT, "12").await;
}

/// Waits (bounded) until `count` letters have arrived.
pub(crate) async fn wait_for_letters(server: &Server, count: usize) -> bool {
    for _ in 0..100 {
        if server.letters().len() >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// schemathesis against the operators' API document, with an operator's token.
pub async fn schemathesis_on_the_operators_api(binary: &str) {
    let (token, variables) = operator_variables();
    let server = Server::start(binary, &variables).await;
    activate(&server, "7800000000001", RESIDENT, "12").await;
    let admin = server.admin.clone().unwrap();
    schemathesis(&format!("{admin}/admin/openapi.json"), &token, &[]).await;
}
