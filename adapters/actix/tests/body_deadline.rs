//! `body_deadline` cuts off a body that does not arrive within the body timeout on the
//! host's own routes too, not only on the API's (whose reads time out by themselves): a
//! handler reading a trickled body sees the read fail, where without the middleware it would
//! get it whole. The timeout is the mounted surfaces' own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read, Write},
    time::Duration,
};

use actix_web::{middleware::from_fn, web, App, HttpServer};
use futures_util::StreamExt as _;
use resident_auth::{
    memory::{MemoryDirectory, MemoryStore, RecordingMailer},
    AuthService,
};
use resident_auth_actix::{
    body_deadline,
    http::{Api, ConnectionLimits},
    ResidentAuth,
};

/// The host's own route: reads the body whole and says how that went.
async fn read_whole(mut body: web::Payload) -> String {
    let mut read = 0;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(chunk) => read += chunk.len(),
            Err(error) => return format!("failed: {error}"),
        }
    }
    format!("read {read} bytes")
}

#[actix_web::test]
async fn a_trickled_body_fails_on_the_hosts_own_route() {
    let (service, _background) = AuthService::builder("http://127.0.0.1")
        .store(MemoryStore::new())
        .directory(MemoryDirectory::from_csv("account_number,surnames,address,premises\n").unwrap())
        .mailer(RecordingMailer::new())
        .build()
        .unwrap();
    let limits = ConnectionLimits::default().with_body_timeout(Duration::from_millis(300));
    let auth = ResidentAuth::with_api(Api::new(service).with_connection_limits(limits));
    let app = move || {
        App::new()
            .wrap(from_fn(body_deadline))
            .configure(auth.configure("/api"))
            .route("/upload", web::post().to(read_whole))
    };
    let server = HttpServer::new(app).workers(1).bind("127.0.0.1:0").unwrap();
    let address = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    // 40 bytes announced, one every 100 ms: 4 s whole, far past the 300 ms deadline. A
    // blocking client on a thread of its own, so the server's runtime keeps serving.
    let client = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: {address}\r\nContent-Length: 40\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).unwrap();
        for _ in 0..40 {
            if stream.write_all(b"x").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).ok();
        String::from_utf8_lossy(&answer).into_owned()
    });
    let answer = actix_web::rt::task::spawn_blocking(move || client.join().unwrap())
        .await
        .unwrap();
    handle.stop(false).await;
    assert!(
        answer.contains("failed:") && answer.contains("body timeout"),
        "the handler's read failed at the deadline: {answer:?}"
    );
}
