//! H: one bare argon2id verification (RustCrypto `argon2`, m = 19456 KiB, t = 2, p = 1) on
//! one thread, the mean of N (default 20) after one warm-up. Built twice by
//! `benches/peer/compare.sh` — the default build and `-C target-cpu=native` — and run
//! interleaved with argon2-cffi by `http-compare`.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss, missing_docs)]

use argon2::{
    password_hash::{PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};

fn main() {
    let rounds: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let argon2 = Argon2::default();
    let salt = SaltString::encode_b64(b"benchmark-salt-16").unwrap();
    let stored = argon2
        .hash_password(b"correct horse battery staple", &salt)
        .unwrap()
        .to_string();
    let parsed = argon2::PasswordHash::new(&stored).unwrap();
    argon2
        .verify_password(b"correct horse battery staple", &parsed)
        .unwrap();
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        argon2
            .verify_password(b"correct horse battery staple", &parsed)
            .unwrap();
    }
    let mean = started.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    println!("argon2 verify ms: {mean:.3}");
}
