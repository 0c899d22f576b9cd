//! `serve` cuts off a body that does not arrive within the body timeout on the host's own
//! routes too, not only on the API's (whose reads time out by themselves): a handler reading
//! a trickled body sees the read fail, where without the deadline it would get it whole.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::{body::Body, routing::post, Router};
use resident_auth_axum::{http::ConnectionLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The host's own route: reads the body whole and says how that went.
async fn read_whole(body: Body) -> String {
    match axum::body::to_bytes(body, 1024).await {
        Ok(bytes) => format!("read {} bytes", bytes.len()),
        Err(error) => format!("failed: {error}"),
    }
}

#[tokio::test]
async fn a_trickled_body_fails_on_the_hosts_own_route() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let limits = ConnectionLimits::default().with_body_timeout(Duration::from_millis(300));
    let app = Router::new().route("/upload", post(read_whole));
    tokio::spawn(serve(listener, app, limits));

    // 40 bytes announced, one every 100 ms: 4 s whole, far past the 300 ms deadline.
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {address}\r\nContent-Length: 40\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let trickle = async {
        for _ in 0..40 {
            if stream.write_all(b"x").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        stream
    };
    let mut stream = tokio::time::timeout(Duration::from_secs(30), trickle)
        .await
        .expect("the trickle ends");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_string(&mut answer))
        .await
        .expect("an answer within 30 s")
        .ok();
    assert!(
        answer.contains("failed:") && answer.contains("body timeout"),
        "the handler's read failed at the deadline: {answer:?}"
    );
}
