//! The edges an attacker pushes on: bodies, forwarded addresses, metrics, slow clients,
//! framework refusals, the OpenAPI document.

use super::*;

/// A body any web page can send cross-site without a CORS preflight (`text/plain`, form
/// encodings, none at all) is refused with 415 before anything happens: no letter.
pub async fn only_json_bodies_are_read(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let client = reqwest::Client::new();
    let registration =
        r#"{"surname":"Иванов","account_number":"7800000000001","email":"victim@example.org"}"#;
    for (path, body) in [
        ("/api/registrations", registration),
        ("/api/recovery", r#"{"email":"victim@example.org"}"#),
    ] {
        for content_type in [
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/jsonx"),
            None,
        ] {
            let mut request = client.post(format!("{}{path}", server.base)).body(body);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let (status, answer, _) = read(request.send().await.unwrap()).await;
            assert_eq!(status, 415, "{path} {content_type:?}: {answer}");
            assert_eq!(codes(&answer), ["request.unsupported_media_type"]);
        }
    }
    assert!(server.letters().is_empty(), "no letter for a refused body");
    for path in ["/api/openapi.json", "/api/session"] {
        let response = client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "every answer: {path}"
        );
    }
    // The same body as JSON (with a charset parameter) is read.
    let (status, _, _) = read(
        client
            .post(format!("{}/api/registrations", server.base))
            .header("content-type", "Application/JSON; charset=utf-8")
            .body(registration)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 202);
}

/// Per-client limits key a client by its socket address, and read `X-Forwarded-For` only
/// from a trusted proxy, keying IPv6 clients by their /64: rotating addresses inside one
/// /64 does not get past the registration limit (20 an hour per client), and a forged
/// header from an untrusted peer changes nothing.
pub async fn forwarded_clients_count_only_behind_trusted_proxies(binary: &str) {
    let registration = |server: &Server, client: String| {
        let request = server
            .client
            .post(format!("{}/api/registrations", server.base))
            .header("x-forwarded-for", client)
            .json(&json!({"surname": "Петров", "account_number": "7800000000009", "email": "x@example.org"}));
        async move { read(request.send().await.unwrap()).await.0 }
    };
    let behind_proxy =
        Server::start(binary, &[("TRUSTED_PROXIES", "127.0.0.1/32".to_owned())]).await;
    for n in 1..=20 {
        let status = registration(&behind_proxy, format!("2001:db8:1:1::{n:x}")).await;
        assert_eq!(status, 422, "try {n} counted and answered");
    }
    let status = registration(&behind_proxy, "2001:db8:1:1:ffff::1".to_owned()).await;
    assert_eq!(
        status, 429,
        "another address of the same /64 is the same client"
    );
    let status = registration(&behind_proxy, "2001:db8:1:2::1".to_owned()).await;
    assert_eq!(status, 422, "another /64 is another client");

    let direct = Server::start(binary, &[]).await;
    for n in 1..=20 {
        let status = registration(&direct, format!("198.51.100.{n}")).await;
        assert_eq!(status, 422, "try {n}");
    }
    let status = registration(&direct, "203.0.113.1".to_owned()).await;
    assert_eq!(
        status, 429,
        "a forged X-Forwarded-For from an untrusted peer is ignored"
    );
}

/// Every counter line of a Prometheus exposition (`name{labels} value`), HTTP durations
/// aside (their buckets are timings).
pub(crate) fn counter_lines(exposition: &str) -> std::collections::BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#') && line.contains("_total"))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// What moved between two expositions' counters.
pub(crate) fn counters_moved(before: &str, after: &str) -> Vec<(String, f64)> {
    let before = counter_lines(before);
    counter_lines(after)
        .into_iter()
        .filter_map(|(name, value)| {
            let delta = value - before.get(&name).copied().unwrap_or(0.0);
            (delta != 0.0).then_some((name, delta))
        })
        .collect()
}

/// The metrics are never on the residents' listener: `GET /metrics` there is the API's
/// 404, with or without `METRICS_BIND`. On `METRICS_BIND` they answer Prometheus' text
/// format with the service's metrics, name nobody, and a recovery request moves the same
/// counters for a registered email as for an unknown one (docs/security.md, "enumerator").
pub async fn metrics_are_served_apart_and_tell_no_registration(binary: &str) {
    let plain = Server::start(binary, &[]).await;
    let bind = format!("127.0.0.1:{}", services::free_port());
    let server = Server::start(binary, &[("METRICS_BIND", bind.clone())]).await;
    for portal in [&plain, &server] {
        let on_portal = portal
            .client
            .get(format!("{}/metrics", portal.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            on_portal.status(),
            404,
            "no metrics on the residents' listener"
        );
    }
    let scrape = || async {
        for _ in 0..50 {
            if let Ok(response) = server
                .client
                .get(format!("http://{bind}/metrics"))
                .send()
                .await
            {
                assert_eq!(response.status(), 200);
                return response.text().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no metrics on METRICS_BIND {bind}");
    };
    let password = activate(&server, "7800000000001", RESIDENT, "12").await;
    login(&server, RESIDENT, &password).await;
    let (status, _, _) = server
        .post(
            "/api/login",
            json!({"email": RESIDENT, "password": "wrong"}),
            None,
        )
        .await;
    assert_eq!(status, 401);
    let text = scrape().await;
    for expected in [
        "resident_auth_logins_total{outcome=\"succeeded\"} 1",
        "resident_auth_logins_total{outcome=\"failed\"} 1",
        "resident_auth_letters_queued_total{kind=\"credentials\"} 1",
        "resident_auth_letters_sent_total{kind=\"confirm_email\"} 1",
        "resident_auth_hasher_wait_seconds",
        "resident_auth_hasher_queue_depth",
        "resident_auth_hasher_core{core=\"",
        "resident_auth_http_request_duration_seconds_bucket{",
        "# TYPE resident_auth_http_request_duration_seconds histogram",
        "route=\"/login\"",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    for secret in [RESIDENT, password.as_str()] {
        assert!(
            !text.contains(secret),
            "a metric names a resident or a secret"
        );
    }
    let mut moved = Vec::new();
    for email in [RESIDENT, "nobody@example.org"] {
        let before = scrape().await;
        let (status, _, _) = server
            .post("/api/recovery", json!({"email": email}), None)
            .await;
        assert_eq!(status, 202);
        moved.push(counters_moved(&before, &scrape().await));
    }
    assert!(!moved[0].is_empty(), "a recovery moves the letter counters");
    assert_eq!(
        moved[0], moved[1],
        "a registered email (left) and an unknown one (right) moved different counters"
    );
}

/// A raw connection's fate: what it read before the server closed it, and after how long.
pub(crate) struct Closed {
    answer: String,
    after: Duration,
}

/// Opens a connection to `base` and sends `head` at once, then `trickle` one byte every
/// 500 ms (nothing when it is empty), until the server closes the connection (or
/// `give_up` passes: `None`).
pub(crate) async fn slow_client(
    base: &str,
    head: String,
    trickle: &'static [u8],
    give_up: Duration,
) -> Option<Closed> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let address = base.trim_start_matches("http://").to_owned();
    let started = std::time::Instant::now();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let reading = async {
        let mut answer = Vec::new();
        let _ = reader.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    };
    let writing = async {
        // An empty trickle sends nothing more: the connection just sits there.
        for byte in trickle.iter().cycle() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(&[*byte]).await.is_err() {
                break;
            }
        }
        std::future::pending::<()>().await;
    };
    let closed = tokio::time::timeout(give_up, async {
        tokio::select! {
            answer = reading => answer,
            () = writing => unreachable!(),
        }
    })
    .await
    .ok()?;
    Some(Closed {
        answer: closed,
        after: started.elapsed(),
    })
}

/// Slow clients are cut off (docs/security.md, "slow clients"): with a 2-second head and body
/// timeout and room for eight connections, eight connections that send nothing, trickle
/// their head a byte at a time, or trickle their body are all closed (the body ones with a
/// 408 in the API's problem JSON), and a new client, waiting while they hold every slot,
/// is answered once they are gone. Before, such connections stayed open for good.
pub async fn slow_clients_are_cut_off_and_others_still_answered(binary: &str) {
    let server = Server::start(
        binary,
        &[
            ("HEAD_TIMEOUT_SECS", "2".to_owned()),
            ("BODY_TIMEOUT_SECS", "2".to_owned()),
            ("MAX_CONNECTIONS", "8".to_owned()),
        ],
    )
    .await;
    let give_up = Duration::from_secs(20);
    let host = server.base.trim_start_matches("http://").to_owned();
    let trickled_head = format!("POST /api/login HTTP/1.1\r\nHost: {host}\r\n");
    let trickled_body = format!(
        "POST /api/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: 200\r\n\r\n{{"
    );
    let mut slow = Vec::new();
    for index in 0..8 {
        let (head, trickle): (String, &'static [u8]) = match index % 3 {
            0 => (String::new(), b""),
            1 => (trickled_head.clone(), b"X-Slow: 1\r\n"),
            _ => (trickled_body.clone(), b" "),
        };
        let base = server.base.clone();
        slow.push(tokio::spawn(async move {
            slow_client(&base, head, trickle, give_up)
                .await
                .map(|closed| (index, closed))
        }));
    }
    // Every slot is taken (or about to be): a new client waits for one to free.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let newcomer = std::time::Instant::now();
    let (status, body, _) = server.get("/api/session", None).await;
    assert_eq!(status, 401, "the new client is answered: {body}");
    let waited = newcomer.elapsed();
    for task in slow {
        let (index, closed) = task
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("a slow connection was still open after {give_up:?}"));
        if index % 3 == 2 {
            assert!(
                closed.answer.starts_with("HTTP/1.1 408"),
                "a trickled body is answered 408: {:?}",
                closed.answer
            );
            assert!(
                closed.answer.contains("request.timeout")
                    && closed
                        .answer
                        .to_lowercase()
                        .contains("content-type: application/json"),
                "with the API's problem JSON: {:?}",
                closed.answer
            );
        }
        println!(
            "slow connection {index} closed after {:?} ({} bytes answered)",
            closed.after,
            closed.answer.len()
        );
    }
    println!("the new client was answered after {waited:?}");
}

/// Every refusal of the API, the web framework's own included, is the documented problem
/// JSON: 413 for a body over the limit, 405 (with `Allow`) for a wrong method, 404 for an
/// unknown path under the prefix (the prefix itself too), 422 for malformed JSON. Before,
/// 413 was empty on axum and text on actix, and 405 was empty on both.
pub async fn framework_refusals_are_problem_json(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let check = |response: reqwest::Response, status: u16, code: &'static str| async move {
        assert_eq!(response.status().as_u16(), status, "{code}");
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{code}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], code, "{body}");
        assert!(body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        headers
    };
    let large = format!("{{\"email\":\"{}\"}}", "a".repeat(10 * 1024 * 1024));
    let response = server
        .client
        .post(format!("{}/api/login", server.base))
        .header("content-type", "application/json")
        .body(large)
        .send()
        .await;
    // A server may answer 413 before it has read the whole body and close the connection;
    // then the client may fail to send the rest: the answer, when it came, is checked.
    if let Ok(response) = response {
        check(response, 413, "request.too_large").await;
    }
    let just_over = format!("{{\"email\":\"{}\"}}", "a".repeat(70 * 1024));
    let response = server
        .client
        .post(format!("{}/api/login", server.base))
        .header("content-type", "application/json")
        .body(just_over)
        .send()
        .await
        .unwrap();
    check(response, 413, "request.too_large").await;
    for (method, path, allow) in [
        (reqwest::Method::GET, "/api/login", "POST"),
        (reqwest::Method::PUT, "/api/sessions", "GET"),
        (reqwest::Method::POST, "/api/openapi.json", "GET"),
    ] {
        let response = server
            .client
            .request(method, format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        let headers = check(response, 405, "request.method_not_allowed").await;
        assert_eq!(
            headers.get("allow").and_then(|v| v.to_str().ok()),
            Some(allow),
            "{path}"
        );
    }
    for path in ["/api/no-such-thing", "/api", "/api/"] {
        let response = server
            .client
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        check(response, 404, "request.not_found").await;
    }
    let response = server
        .client
        .post(format!("{}/api/login", server.base))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    check(response, 422, "request.malformed").await;
}

/// The served OpenAPI document: every operation in it is routed (a request with an empty
/// object is answered with one of the statuses documented for it, never 404/405), and it
/// has exactly the operations of docs/contract.md §5.
pub async fn openapi_document_matches_the_routes(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let response = server
        .client
        .get(format!("{}/api/openapi.json", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push(format!("{} {path}", method.to_uppercase()));
            let url = format!("{}{path}", server.base);
            let request = match method.as_str() {
                "get" => server.client.get(url),
                "delete" => server.client.delete(url),
                "post" => server.client.post(url).json(&json!({})),
                other => panic!("unexpected method {other}"),
            };
            let status = request.send().await.unwrap().status();
            let documented = &operation["responses"][status.as_str()];
            assert!(
                documented.is_object(),
                "{method} {path} answered {status}, which the document does not list"
            );
        }
    }
    operations.sort();
    assert_eq!(
        operations,
        [
            "DELETE /api/sessions/others",
            "DELETE /api/sessions/{id}",
            "GET /api/session",
            "GET /api/sessions",
            "POST /api/addresses",
            "POST /api/cabinet/close",
            "POST /api/cabinet/email",
            "POST /api/cabinet/export",
            "POST /api/email/cancel",
            "POST /api/email/confirm",
            "POST /api/login",
            "POST /api/login/identify",
            "POST /api/logout",
            "POST /api/password",
            "POST /api/recovery",
            "POST /api/recovery/complete",
            "POST /api/registrations",
            "POST /api/registrations/activate",
            "POST /api/registrations/confirm",
            "POST /api/session/active-account",
        ]
    );
}
