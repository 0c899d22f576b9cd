//! H: one bare argon2id verification (m = 19456 KiB, t = 2, p = 1) on one thread, the mean
//! of N (default 20) after one warm-up.
//!
//! `argon2-h [N] [way]`: `way` is `pool` (the default: RustCrypto's `argon2` in memory kept
//! and wiped between runs, as a hashing worker of resident-auth does) or `allocating`
//! (`PasswordVerifier::verify_password`, which allocates its memory per run). A package of
//! its own (argon2 and nothing else), so that it builds in seconds for each instruction set:
//! `benches/argon2-h/builds.sh` times the default, `x86-64-v3` and `native` builds
//! interleaved; `benches/peer/compare.sh` runs the default and native ones beside
//! argon2-cffi through `http-compare`. Prints `argon2 verify ms (<way>): <ms>`.
#![allow(clippy::unwrap_used, clippy::cast_precision_loss, missing_docs)]

use argon2::{
    password_hash::{PasswordHasher, PasswordVerifier},
    Algorithm, Argon2, Block, Version,
};
use secrecy::zeroize::Zeroize;

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: u32 = args.next().and_then(|n| n.parse().ok()).unwrap_or(20);
    let way = args.next().unwrap_or_else(|| "pool".to_owned());
    let argon2 = Argon2::default();
    let stored = argon2
        .hash_password_with_salt(b"correct horse battery staple", b"benchmark-salt-16")
        .unwrap()
        .to_string();
    let parsed = argon2::PasswordHash::new(&stored).unwrap();
    let expected = parsed.hash.unwrap();
    let salt_bytes = parsed.salt.as_ref().unwrap();
    let params = argon2::Params::default();
    let mut memory = vec![Block::default(); params.block_count()];
    let pooled = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut verify = || match way.as_str() {
        "allocating" => argon2
            .verify_password(b"correct horse battery staple", &parsed)
            .unwrap(),
        "pool" => {
            let mut out = [0u8; 32];
            pooled
                .hash_password_into_with_memory(
                    b"correct horse battery staple",
                    salt_bytes,
                    &mut out,
                    &mut memory,
                )
                .unwrap();
            memory.iter_mut().for_each(Zeroize::zeroize);
            assert_eq!(&out[..], expected.as_bytes());
        }
        other => panic!("no way {other:?}: pool or allocating"),
    };
    verify();
    let started = std::time::Instant::now();
    for _ in 0..rounds {
        verify();
    }
    let mean = started.elapsed().as_secs_f64() * 1000.0 / f64::from(rounds);
    println!("argon2 verify ms ({way}): {mean:.3}");
}
