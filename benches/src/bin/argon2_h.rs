//! H: one bare argon2id verification (m = 19456 KiB, t = 2, p = 1) on one thread, the mean
//! of N (default 20) after one warm-up.
//!
//! `argon2-h [N] [core]`: `core` is the hashing core resident-auth runs
//! (`resident_auth_argon2`: `detected`, the default, or `portable`, `avx2`), or
//! `rustcrypto` for RustCrypto's `argon2` 0.5 (the reference). Built twice by
//! `benches/peer/compare.sh` — the default build and `-C target-cpu=native` — and run
//! interleaved with argon2-cffi by `http-compare`. Prints `argon2 verify ms (<core>): <ms>`.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss, missing_docs)]

use argon2::{
    password_hash::{PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use resident_auth_argon2::{hash_into_on, Block, Core};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let which = args.next().unwrap_or_else(|| "detected".to_owned());
    let argon2 = Argon2::default();
    let salt = SaltString::encode_b64(b"benchmark-salt-16").unwrap();
    let stored = argon2
        .hash_password(b"correct horse battery staple", &salt)
        .unwrap()
        .to_string();
    let parsed = argon2::PasswordHash::new(&stored).unwrap();
    let expected = parsed.hash.unwrap();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = parsed.salt.unwrap().decode_b64(&mut salt_bytes).unwrap();
    let params = argon2::Params::default();
    let mut memory = vec![Block::default(); params.block_count()];
    let core = match which.as_str() {
        "detected" => Some(Core::detect()),
        "rustcrypto" => None,
        name => Some(
            Core::available()
                .into_iter()
                .find(|core| core.name() == name)
                .unwrap_or_else(|| panic!("this CPU has no {name} core")),
        ),
    };
    let mut verify = || match core {
        None => argon2
            .verify_password(b"correct horse battery staple", &parsed)
            .unwrap(),
        Some(core) => {
            let mut out = [0u8; 32];
            hash_into_on(
                core,
                b"correct horse battery staple",
                salt_bytes,
                &params,
                &mut out,
                &mut memory,
            )
            .unwrap();
            assert_eq!(&out[..], expected.as_bytes());
        }
    };
    verify();
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        verify();
    }
    let mean = started.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    let name = core.map_or("rustcrypto", Core::name);
    println!("argon2 verify ms ({name}): {mean:.3}");
}
