//! Token issue (CSPRNG + SHA-256) and token check against the in-memory store.
//!
//! Run: `cargo bench -p resident-auth-benches --bench tokens`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use resident_auth::{
    config::{Argon2Hasher, HashParams},
    memory::{MemoryDirectory, MemoryStore, RecordingMailer},
    ports::Token,
    AuthService,
};
use resident_auth_benches::activated_cabinet;

fn tokens(c: &mut Criterion) {
    c.bench_function("token_issue", |b| {
        b.iter(|| black_box(Token::generate().hash()))
    });
    // One thread: block_on then costs next to nothing, so the figure is the check itself.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mailer = RecordingMailer::new();
    let (service, _background) = AuthService::builder("https://portal.example.org")
        .store(MemoryStore::new())
        .directory(MemoryDirectory::from_csv(&resident_auth_benches::directory(1)).unwrap())
        .mailer(mailer.clone())
        .hasher(Argon2Hasher::new(HashParams::insecure_fast_for_tests()).unwrap())
        .configure(|c| c.delivery.in_request = true)
        .build()
        .unwrap();
    let session = runtime.block_on(async {
        let password = activated_cabinet(&service, &mailer, 0).await;
        let logged_in = service
            .login(
                &resident_auth_benches::email(0),
                password,
                &Default::default(),
            )
            .await
            .unwrap();
        logged_in.session_token.expose().to_owned()
    });
    c.bench_function("token_check_memory", |b| {
        b.iter(|| {
            runtime.block_on(async { black_box(service.authenticate(&session).await.is_ok()) })
        });
    });
}

criterion_group!(benches, tokens);
criterion_main!(benches);
