//! Argon2id (RFC 9106, version 0x13) with its fill loop compiled for the best instruction
//! set the CPU has, chosen once at run time: the password hashing core of
//! [resident-auth](https://example.org/resident-auth).
//!
//! RustCrypto's `argon2` crate computes the same function; its portable build dispatches
//! only the block compression to AVX2, one call per block, and leaves the fill loop (block
//! copies and XORs, index arithmetic) at the baseline instruction set, which costs about a
//! third of every hash against a `-C target-cpu=native` build. Here the whole fill loop is
//! one function body, `#[inline(always)]` down to the permutation, instantiated once per
//! instruction set ([`Core`]: AVX2 and the baseline; an AVX-512 instance measured no faster
//! than AVX2 and would need Rust 1.89): the compiler vectorises all of it for that set, and
//! the one chosen at start-up runs. The result is checked against RustCrypto's, bit for bit, over
//! many inputs and every core the CPU can run (the tests below); the hash format and
//! parameters are RustCrypto's `Params`, unchanged.
//!
//! The block function and the indexing follow RustCrypto's `argon2` 0.5 (MIT or
//! Apache-2.0, as this crate), which follows the RFC's reference implementation.
//!
//! Unsafe code: calling a `#[target_feature]` function is `unsafe` because running it on a
//! CPU without the feature is undefined behaviour. The one such call is behind the
//! run-time check that the CPU has the feature ([`Core::available`]); there is no other
//! unsafe code.
//!
//! ```
//! use resident_auth_argon2::{hash_into, Block};
//! let params = argon2::Params::new(64, 1, 1, Some(32))?;
//! let mut memory = vec![Block::default(); params.block_count()];
//! let mut tag = [0u8; 32];
//! hash_into(b"password", b"some salt", &params, &mut tag, &mut memory)?;
//! let mut reference = [0u8; 32];
//! argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
//!     .hash_password_into(b"password", b"some salt", &mut reference)?;
//! assert_eq!(tag, reference);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// Indices below are in range by construction (RFC 9106 §3.4: every reference lies inside
// the memory the parameters size); the memory is sized before the fill starts.
#![allow(clippy::indexing_slicing, clippy::cast_possible_truncation)]

use std::sync::OnceLock;

use argon2::Params;
use blake2::{
    digest::{Digest, Update, VariableOutput},
    Blake2b512, Blake2bVar,
};

/// Why [`hash_into`] refused: nothing was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Argon2Error {
    /// `memory` holds fewer than `params.block_count()` blocks.
    #[error("argon2 needs more memory blocks than were given")]
    MemoryTooSmall,
    /// The output is not 4–64 bytes, or the salt not 8–64 bytes.
    #[error("argon2's output must be 4–64 bytes and its salt 8–64 bytes")]
    Lengths,
}

/// Words of a 1 KiB block.
const WORDS: usize = 128;
/// Slices of a pass (synchronisation points).
const SYNC_POINTS: usize = 4;
/// The algorithm's number in the hash input and address blocks (Argon2id).
const ARGON2ID: u32 = 2;
/// The version (0x13, "v=19").
const VERSION: u32 = 0x13;

/// One 1 KiB block of argon2's memory; a hasher keeps `params.block_count()` of them and
/// reuses them for every hash.
#[derive(Clone, Copy)]
#[repr(align(64))]
pub struct Block([u64; WORDS]);

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Block(…)")
    }
}

impl Default for Block {
    fn default() -> Self {
        Self([0; WORDS])
    }
}

/// The instruction set a fill loop was compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Core {
    /// The target's baseline (SSE2 on x86-64, NEON on aarch64).
    Portable,
    /// x86-64 with AVX2.
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Core {
    /// The fastest core this CPU runs, detected once.
    #[must_use]
    pub fn detect() -> Core {
        static CHOSEN: OnceLock<Core> = OnceLock::new();
        *CHOSEN.get_or_init(|| {
            Core::available()
                .into_iter()
                .next_back()
                .unwrap_or(Core::Portable)
        })
    }

    /// Every core this CPU can run, slowest first.
    #[must_use]
    pub fn available() -> Vec<Core> {
        #[allow(unused_mut)]
        let mut cores = vec![Core::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                cores.push(Core::Avx2);
            }
        }
        cores
    }

    /// The name the banner and the metric show.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Core::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Core::Avx2 => "avx2",
        }
    }
}

/// Argon2id of `password` and `salt` with `params` (their memory, passes and lanes; no
/// secret or associated data) into `out`, in `memory` (at least `params.block_count()`
/// blocks), on the detected core.
///
/// # Errors
/// [`Argon2Error`], before any work.
pub fn hash_into(
    password: &[u8],
    salt: &[u8],
    params: &Params,
    out: &mut [u8],
    memory: &mut [Block],
) -> Result<(), Argon2Error> {
    hash_into_on(Core::detect(), password, salt, params, out, memory)
}

/// [`hash_into`] on `core`; a core the CPU does not have ([`Core::available`]) runs the
/// portable one.
///
/// # Errors
/// [`Argon2Error`], before any work.
pub fn hash_into_on(
    core: Core,
    password: &[u8],
    salt: &[u8],
    params: &Params,
    out: &mut [u8],
    memory: &mut [Block],
) -> Result<(), Argon2Error> {
    let memory = memory
        .get_mut(..params.block_count())
        .ok_or(Argon2Error::MemoryTooSmall)?;
    if out.len() < 4 || out.len() > 64 || salt.len() < 8 || salt.len() > 64 {
        return Err(Argon2Error::Lengths);
    }
    let core = if Core::available().contains(&core) {
        core
    } else {
        Core::Portable
    };
    let lanes = params.p_cost() as usize;
    let passes = params.t_cost() as usize;
    let lane_length = memory.len() / lanes;
    let mut h0 = Blake2b512::new();
    for word in [
        params.p_cost(),
        out.len() as u32,
        params.m_cost(),
        params.t_cost(),
        VERSION,
        ARGON2ID,
    ] {
        Digest::update(&mut h0, word.to_le_bytes());
    }
    for input in [password, salt, &[], &[]] {
        Digest::update(&mut h0, (input.len() as u32).to_le_bytes());
        Digest::update(&mut h0, input);
    }
    let h0 = h0.finalize();
    let mut bytes = [0u8; 1024];
    for lane in 0..lanes {
        for column in 0..2u32 {
            hash_long(
                &[&h0, &column.to_le_bytes(), &(lane as u32).to_le_bytes()],
                &mut bytes,
            );
            let block = &mut memory[lane * lane_length + column as usize];
            for (word, chunk) in block.0.iter_mut().zip(bytes.chunks_exact(8)) {
                *word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            }
        }
    }
    match core {
        Core::Portable => fill_portable(memory, lanes, passes),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `core` is one `Core::available` lists: the CPU has AVX2.
        #[allow(unsafe_code)]
        Core::Avx2 => unsafe { fill_avx2(memory, lanes, passes) },
    }
    let mut last = memory[lane_length - 1];
    for lane in 1..lanes {
        let other = &memory[lane * lane_length + lane_length - 1];
        for (word, other) in last.0.iter_mut().zip(other.0.iter()) {
            *word ^= other;
        }
    }
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(last.0.iter()) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    hash_long(&[&bytes], out);
    Ok(())
}

/// H′, the variable-length hash of RFC 9106 §3.3, of the concatenated `inputs`.
fn hash_long(inputs: &[&[u8]], out: &mut [u8]) {
    let length = (out.len() as u32).to_le_bytes();
    if out.len() <= 64 {
        // 1 ≤ length ≤ 64 by the callers: Blake2bVar accepts it.
        if let Ok(mut digest) = Blake2bVar::new(out.len()) {
            Update::update(&mut digest, &length);
            for input in inputs {
                Update::update(&mut digest, input);
            }
            let _ = digest.finalize_variable(out);
        }
        return;
    }
    let mut digest = Blake2b512::new();
    Digest::update(&mut digest, length);
    for input in inputs {
        Digest::update(&mut digest, input);
    }
    let mut last = digest.finalize();
    out[..32].copy_from_slice(&last[..32]);
    let mut written = 32;
    while out.len() - written > 64 {
        last = Blake2b512::digest(last);
        out[written..written + 32].copy_from_slice(&last[..32]);
        written += 32;
    }
    if let Ok(mut digest) = Blake2bVar::new(out.len() - written) {
        Update::update(&mut digest, &last);
        let _ = digest.finalize_variable(&mut out[written..]);
    }
}

fn fill_portable(memory: &mut [Block], lanes: usize, passes: usize) {
    fill(memory, lanes, passes);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
unsafe fn fill_avx2(memory: &mut [Block], lanes: usize, passes: usize) {
    fill(memory, lanes, passes);
}

/// Fills every block after the first two of each lane (RFC 9106 §3.2 steps 5–6, with
/// Argon2id's addressing of §3.4).
#[inline(always)]
fn fill(memory: &mut [Block], lanes: usize, passes: usize) {
    let lane_length = memory.len() / lanes;
    let segment_length = lane_length / SYNC_POINTS;
    let zero = Block::default();
    for pass in 0..passes {
        for slice in 0..SYNC_POINTS {
            let data_independent = pass == 0 && slice < SYNC_POINTS / 2;
            for lane in 0..lanes {
                let mut address = Block::default();
                let mut input = Block::default();
                if data_independent {
                    input.0[..6].copy_from_slice(&[
                        pass as u64,
                        lane as u64,
                        slice as u64,
                        memory.len() as u64,
                        passes as u64,
                        u64::from(ARGON2ID),
                    ]);
                }
                let first = if pass == 0 && slice == 0 {
                    if data_independent {
                        next_addresses(&mut address, &mut input, &zero);
                    }
                    2
                } else {
                    0
                };
                let segment_start = lane * lane_length + slice * segment_length;
                let mut previous = if slice == 0 && first == 0 {
                    segment_start + lane_length - 1
                } else {
                    segment_start + first - 1
                };
                for index in first..segment_length {
                    let current = segment_start + index;
                    let random = if data_independent {
                        let at = index % WORDS;
                        if at == 0 {
                            next_addresses(&mut address, &mut input, &zero);
                        }
                        address.0[at]
                    } else {
                        memory[previous].0[0]
                    };
                    let reference_lane = if pass == 0 && slice == 0 {
                        lane
                    } else {
                        (random >> 32) as usize % lanes
                    };
                    let area = if pass == 0 {
                        if slice == 0 {
                            index - 1
                        } else if reference_lane == lane {
                            slice * segment_length + index - 1
                        } else {
                            slice * segment_length - usize::from(index == 0)
                        }
                    } else if reference_lane == lane {
                        lane_length - segment_length + index - 1
                    } else {
                        lane_length - segment_length - usize::from(index == 0)
                    };
                    let mut map = random & 0xFFFF_FFFF;
                    map = (map * map) >> 32;
                    let relative = area - 1 - ((area as u64 * map) >> 32) as usize;
                    let start = if pass != 0 && slice != SYNC_POINTS - 1 {
                        (slice + 1) * segment_length
                    } else {
                        0
                    };
                    let reference = reference_lane * lane_length + (start + relative) % lane_length;
                    let result = compress(&memory[previous], &memory[reference]);
                    let target = &mut memory[current];
                    if pass == 0 {
                        *target = result;
                    } else {
                        for (word, new) in target.0.iter_mut().zip(result.0.iter()) {
                            *word ^= new;
                        }
                    }
                    previous = current;
                }
            }
        }
    }
}

/// The next block of pseudo-random addresses (data-independent addressing).
#[inline(always)]
fn next_addresses(address: &mut Block, input: &mut Block, zero: &Block) {
    input.0[6] += 1;
    *address = compress(zero, input);
    *address = compress(zero, address);
}

/// BlaMka's mixing of two words: their sum plus twice the product of their low halves.
#[inline(always)]
fn blamka(x: u64, y: u64) -> u64 {
    x.wrapping_add(y)
        .wrapping_add(2u64.wrapping_mul((x & 0xFFFF_FFFF).wrapping_mul(y & 0xFFFF_FFFF)))
}

/// One step of the BlaMka permutation: Blake2b's G with `blamka` in place of the sums.
macro_rules! step {
    ($a:expr, $b:expr, $c:expr, $d:expr) => {
        $a = blamka($a, $b);
        $d = ($d ^ $a).rotate_right(32);
        $c = blamka($c, $d);
        $b = ($b ^ $c).rotate_right(24);
        $a = blamka($a, $b);
        $d = ($d ^ $a).rotate_right(16);
        $c = blamka($c, $d);
        $b = ($b ^ $c).rotate_right(63);
    };
}

/// The permutation P on sixteen words.
macro_rules! permute {
    ($v0:expr, $v1:expr, $v2:expr, $v3:expr, $v4:expr, $v5:expr, $v6:expr, $v7:expr,
     $v8:expr, $v9:expr, $v10:expr, $v11:expr, $v12:expr, $v13:expr, $v14:expr, $v15:expr) => {
        step!($v0, $v4, $v8, $v12);
        step!($v1, $v5, $v9, $v13);
        step!($v2, $v6, $v10, $v14);
        step!($v3, $v7, $v11, $v15);
        step!($v0, $v5, $v10, $v15);
        step!($v1, $v6, $v11, $v12);
        step!($v2, $v7, $v8, $v13);
        step!($v3, $v4, $v9, $v14);
    };
}

/// The compression function G of RFC 9106 §3.5.
#[inline(always)]
fn compress(x: &Block, y: &Block) -> Block {
    let mut r = Block::default();
    for ((r, x), y) in r.0.iter_mut().zip(x.0.iter()).zip(y.0.iter()) {
        *r = x ^ y;
    }
    let mut q = r;
    for c in q.0.chunks_exact_mut(16) {
        permute!(
            c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11], c[12], c[13],
            c[14], c[15]
        );
    }
    for i in 0..8 {
        let b = i * 2;
        let q = &mut q.0;
        permute!(
            q[b],
            q[b + 1],
            q[b + 16],
            q[b + 17],
            q[b + 32],
            q[b + 33],
            q[b + 48],
            q[b + 49],
            q[b + 64],
            q[b + 65],
            q[b + 80],
            q[b + 81],
            q[b + 96],
            q[b + 97],
            q[b + 112],
            q[b + 113]
        );
    }
    for (q, r) in q.0.iter_mut().zip(r.0.iter()) {
        *q ^= r;
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Algorithm, Argon2, Version};
    use rand::{rngs::StdRng, Rng, SeedableRng};

    /// Every core the CPU has gives RustCrypto's result, bit for bit, over passwords and
    /// salts of many lengths and contents, output lengths, and parameters with one and
    /// several lanes, one and several passes, and memory that is and is not a multiple of
    /// the lanes' slices.
    #[test]
    fn every_core_computes_rustcryptos_argon2id_bit_for_bit() {
        let mut random = StdRng::seed_from_u64(0x5eed);
        let shapes = [
            (8, 1, 1),
            (64, 1, 1),
            (64, 2, 1),
            (96, 3, 2),
            (100, 1, 4),
            (256, 2, 3),
            (1024, 3, 1),
            (16, 1, 2),
            (19 * 1024 / 16, 2, 1),
        ];
        let mut cases = 0;
        for (m_cost, t_cost, p_cost) in shapes {
            for _ in 0..6 {
                let password: Vec<u8> =
                    (0..random.gen_range(0..80)).map(|_| random.gen()).collect();
                let salt: Vec<u8> = (0..random.gen_range(8..40)).map(|_| random.gen()).collect();
                let out_len = [4, 16, 32, 33, 64][random.gen_range(0..5)];
                let params = Params::new(m_cost, t_cost, p_cost, Some(out_len)).unwrap();
                let mut expected = vec![0u8; out_len];
                Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
                    .hash_password_into(&password, &salt, &mut expected)
                    .unwrap();
                for core in Core::available() {
                    let mut memory = vec![Block::default(); params.block_count()];
                    let mut out = vec![0u8; out_len];
                    hash_into_on(core, &password, &salt, &params, &mut out, &mut memory).unwrap();
                    assert_eq!(out, expected, "{core:?} m={m_cost} t={t_cost} p={p_cost}");
                    cases += 1;
                }
            }
        }
        assert!(cases >= shapes.len() * 6);
    }

    #[test]
    fn the_chosen_core_is_the_fastest_the_cpu_has_and_is_named() {
        let available = Core::available();
        assert_eq!(available.first(), Some(&Core::Portable));
        assert_eq!(available.last(), Some(&Core::detect()));
        assert!(["portable", "avx2"].contains(&Core::detect().name()));
    }

    #[test]
    fn too_little_memory_or_bad_lengths_are_errors_not_panics() {
        let params = Params::new(64, 1, 1, Some(32)).unwrap();
        let mut out = [0u8; 32];
        let mut small = vec![Block::default(); 10];
        assert!(hash_into(b"pw", b"saltsalt", &params, &mut out, &mut small).is_err());
        let mut memory = vec![Block::default(); 64];
        assert!(hash_into(b"pw", b"short", &params, &mut out, &mut memory).is_err());
        assert!(hash_into(b"pw", b"saltsalt", &params, &mut [0u8; 2], &mut memory).is_err());
    }
}
