//! Password hashing: argon2id on a pool of dedicated worker threads.
//!
//! Hashing costs ~10 ms of CPU and ~19 MiB of memory per call. Running it on an async
//! worker stalls every other request on that worker; running it on an unbounded blocking
//! pool lets 50 concurrent logins allocate 50 × 19 MiB and thrash. So the pool has one
//! thread per core, each owning its argon2 memory for life, and callers wait on a channel.

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc, Arc, Mutex,
    },
    thread,
    time::Instant,
};

use argon2::{Algorithm, Params};
use async_trait::async_trait;
use base64::{engine::general_purpose::STANDARD_NO_PAD, Engine as _};
use rand::{rngs::OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use argon2::Block;

use crate::secret::{generate_password, HashedPassword};

#[cfg(feature = "testing")]
mod counting;
mod worker;
#[cfg(feature = "testing")]
pub use counting::CountingHasher;
use worker::hash_with_memory;
#[cfg(test)]
use worker::MAX_STORED_M_COST;

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password is right. `rehash` asks the caller to store a fresh hash because the
    /// stored one used other parameters than the configured ones.
    Match {
        /// The stored hash's parameters differ from the configured ones.
        rehash: bool,
    },
    /// The password is wrong (or there was no cabinet: see [`CredentialHasher::verify`]).
    Mismatch,
}

/// Hashing failed for a reason other than a wrong password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HashError {
    /// The stored hash is not an argon2 PHC string this library can check.
    #[error("stored password hash is malformed")]
    MalformedHash,
    /// Argon2 refused its inputs (parameters out of range); the source says why.
    #[error("argon2 failed")]
    Argon2(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The worker pool has shut down.
    #[error("password hashing workers are gone")]
    WorkersGone,
    /// The queue of hashing jobs is full: the request is refused at once rather than
    /// queued without bound (memory stays flat however many requests arrive).
    #[error("password hashing is busy")]
    Busy,
}

impl HashError {
    /// How long a caller refused with [`HashError::Busy`] should wait.
    pub const BUSY_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);
}

/// The port through which the service hashes and verifies passwords, off the caller's
/// async executor.
#[async_trait]
pub trait CredentialHasher: Send + Sync {
    /// Hashes a new password with the configured parameters and a fresh salt.
    ///
    /// # Errors
    /// [`HashError`] if the hashing workers are gone or argon2 rejects the parameters.
    async fn hash(&self, password: SecretString) -> Result<HashedPassword, HashError>;

    /// Verifies `password` against `stored`. With `stored = None` (no such cabinet) it
    /// does the same argon2 work against a dummy hash and reports a mismatch, so an
    /// unknown email costs exactly what a wrong password costs.
    ///
    /// # Errors
    /// [`HashError`] if the stored hash is malformed or the workers are gone.
    async fn verify(
        &self,
        password: SecretString,
        stored: Option<HashedPassword>,
    ) -> Result<Verification, HashError>;
}

/// Argon2id parameters. The default is OWASP's minimum: m = 19456 KiB, t = 2, p = 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Iterations.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            m_cost: 19_456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

impl HashParams {
    /// Memory `m_cost` KiB, `t_cost` iterations, `p_cost` lanes.
    ///
    /// ```
    /// use resident_auth::config::HashParams;
    /// assert_eq!(HashParams::new(19_456, 2, 1)?, HashParams::default());
    /// assert!(HashParams::new(0, 2, 1).is_err());
    /// # Ok::<(), resident_auth::config::HashError>(())
    /// ```
    ///
    /// # Errors
    /// [`HashError::Argon2`] if argon2 refuses the parameters.
    pub fn new(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, HashError> {
        let params = Self {
            m_cost,
            t_cost,
            p_cost,
        };
        params.argon2_params()?;
        Ok(params)
    }

    /// Cheap parameters for tests only: they make hashing fast and offer no protection.
    #[cfg(any(test, feature = "testing"))]
    #[must_use]
    pub const fn insecure_fast_for_tests() -> Self {
        Self {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    fn argon2_params(self) -> Result<Params, HashError> {
        Params::new(self.m_cost, self.t_cost, self.p_cost, Some(HASH_LEN))
            .map_err(|error| HashError::Argon2(Box::new(error)))
    }
}

const HASH_LEN: usize = 32;
const SALT_LEN: usize = 16;

enum Job {
    Hash {
        password: SecretString,
        reply: tokio::sync::oneshot::Sender<Result<HashedPassword, HashError>>,
    },
    Verify {
        password: SecretString,
        stored: Option<HashedPassword>,
        reply: tokio::sync::oneshot::Sender<Result<Verification, HashError>>,
    },
}

/// The argon2 work a hasher pool has done: what a test compares to prove that two code
/// paths cost the same, without relying on time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HashWork {
    /// Argon2 computations (hashes and verifications, dummy ones included).
    pub runs: u64,
    /// 1 KiB memory blocks filled, summed over passes: memory cost × time cost per run.
    pub block_passes: u64,
}

impl HashWork {
    /// The work done between `earlier` and `self`.
    #[must_use]
    pub fn since(self, earlier: HashWork) -> HashWork {
        HashWork {
            runs: self.runs.saturating_sub(earlier.runs),
            block_passes: self.block_passes.saturating_sub(earlier.block_passes),
        }
    }
}

/// The pool's shared work counters, advanced where argon2 actually runs.
#[derive(Debug, Default)]
struct WorkMeter {
    runs: AtomicU64,
    block_passes: AtomicU64,
    /// Jobs submitted and not yet taken by a worker (the queue depth metric).
    waiting: AtomicUsize,
}

impl WorkMeter {
    fn record(&self, params: &Params) {
        let passes = (params.block_count() as u64).saturating_mul(u64::from(params.t_cost()));
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.block_passes.fetch_add(passes, Ordering::Relaxed);
    }
}

/// Argon2id on a fixed pool of worker threads, each reusing its own memory blocks.
///
/// Works under any async runtime (tokio, actix): callers await a oneshot channel.
#[derive(Clone)]
pub struct Argon2Hasher {
    jobs: mpsc::SyncSender<(Instant, Job)>,
    workers: usize,
    queue: usize,
    params: HashParams,
    work: Arc<WorkMeter>,
}

impl std::fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("workers", &self.workers)
            .field("params", &self.params)
            .finish()
    }
}

/// One worker's state: its parameters, its memory, and the dummy hash for unknown users.
struct Worker {
    params: HashParams,
    memory: Vec<Block>,
    dummy: HashedPassword,
    work: Arc<WorkMeter>,
}

impl Argon2Hasher {
    /// A pool with one worker per available core.
    ///
    /// # Errors
    /// [`HashError::Argon2`] if argon2 rejects `params`.
    pub fn new(params: HashParams) -> Result<Self, HashError> {
        let cores = thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::with_workers(params, cores)
    }

    /// A pool with `workers` threads (at least one): the most hashes that run at once,
    /// and room for [`Self::QUEUE_PER_WORKER`] waiting jobs per worker.
    ///
    /// # Errors
    /// [`HashError::Argon2`] if argon2 rejects `params`.
    pub fn with_workers(params: HashParams, workers: usize) -> Result<Self, HashError> {
        let workers = workers.max(1);
        Self::with_queue(params, workers, workers * Self::QUEUE_PER_WORKER)
    }

    /// Waiting jobs per worker by default: at ~15–20 ms a job, a full queue is about a
    /// second of work, the most a login should wait for its turn.
    pub const QUEUE_PER_WORKER: usize = 64;

    /// A pool with `workers` threads and room for `queue` waiting jobs; a job that finds
    /// the queue full fails at once with [`HashError::Busy`].
    ///
    /// # Errors
    /// [`HashError::Argon2`] if argon2 rejects `params`.
    pub fn with_queue(params: HashParams, workers: usize, queue: usize) -> Result<Self, HashError> {
        let argon2_params = params.argon2_params()?;
        let workers = workers.max(1);
        // The dummy hash is made once, with the same parameters as real ones, so a
        // verification against it costs the same.
        let mut memory = vec![Block::default(); argon2_params.block_count()];
        // The dummy's own computation is not counted: the meter starts at the first request.
        let dummy = hash_with_memory(
            &generate_password(),
            params,
            &mut memory,
            &WorkMeter::default(),
        )?;
        let work = Arc::new(WorkMeter::default());
        let (jobs, receiver) = mpsc::sync_channel::<(Instant, Job)>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            let mut worker = Worker {
                params,
                memory: if index == 0 {
                    std::mem::take(&mut memory)
                } else {
                    vec![Block::default(); argon2_params.block_count()]
                },
                dummy: dummy.clone(),
                work: Arc::clone(&work),
            };
            thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || loop {
                    let job = match receiver.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok((queued_at, job)) => {
                            let waiting = worker.work.waiting.fetch_sub(1, Ordering::Relaxed);
                            crate::events::metrics::hasher_queue(waiting.saturating_sub(1));
                            crate::events::metrics::hasher_wait(queued_at.elapsed());
                            worker.run(job);
                        }
                        Err(_) => return,
                    }
                })
                .map_err(|_| HashError::WorkersGone)?;
        }
        Ok(Self {
            jobs,
            workers,
            queue,
            params,
            work,
        })
    }

    /// The argon2 work this pool has done since it started.
    #[must_use]
    pub fn work(&self) -> HashWork {
        HashWork {
            runs: self.work.runs.load(Ordering::Relaxed),
            block_passes: self.work.block_passes.load(Ordering::Relaxed),
        }
    }

    /// The instruction set argon2's compression runs on here: `avx2` when the CPU has it
    /// (RustCrypto's `argon2` chooses it at run time), else `portable` (the build's
    /// baseline). Every hash and verification — the dummy one for unknown emails too —
    /// runs on it.
    #[must_use]
    pub fn core() -> &'static str {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        if std::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
        "portable"
    }

    /// The parameters new hashes use.
    #[must_use]
    pub fn params(&self) -> HashParams {
        self.params
    }

    /// How many hashes can run at once.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// How many jobs may wait for a worker.
    #[must_use]
    pub fn queue(&self) -> usize {
        self.queue
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        let waiting = self.work.waiting.fetch_add(1, Ordering::Relaxed);
        match self.jobs.try_send((Instant::now(), job)) {
            Ok(()) => {
                crate::events::metrics::hasher_queue(waiting.saturating_add(1));
                Ok(())
            }
            Err(error) => {
                self.work.waiting.fetch_sub(1, Ordering::Relaxed);
                Err(match error {
                    mpsc::TrySendError::Full(_) => HashError::Busy,
                    mpsc::TrySendError::Disconnected(_) => HashError::WorkersGone,
                })
            }
        }
    }
}

#[async_trait]
impl CredentialHasher for Argon2Hasher {
    async fn hash(&self, password: SecretString) -> Result<HashedPassword, HashError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Hash { password, reply })?;
        answer.await.map_err(|_| HashError::WorkersGone)?
    }

    async fn verify(
        &self,
        password: SecretString,
        stored: Option<HashedPassword>,
    ) -> Result<Verification, HashError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(Job::Verify {
            password,
            stored,
            reply,
        })?;
        answer.await.map_err(|_| HashError::WorkersGone)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::{Argon2, Version};

    /// A worker's memory holds nothing of the last password once the job is done: the
    /// blocks argon2 filled are wiped (they were left as they were before, 19 MiB per
    /// worker derived from the last password).
    #[test]
    fn a_workers_memory_is_wiped_after_each_job() {
        let params = HashParams::insecure_fast_for_tests();
        let mut memory = Vec::new();
        let work = WorkMeter::default();
        let password = SecretString::from("correct horse battery staple".to_owned());
        let hash = hash_with_memory(&password, params, &mut memory, &work).unwrap();
        assert!(
            !memory.is_empty(),
            "the worker keeps its memory for the next job"
        );
        let wiped = |memory: &[Block]| {
            memory
                .iter()
                .all(|block| AsRef::<[u64]>::as_ref(block).iter().all(|word| *word == 0))
        };
        assert!(wiped(&memory), "after hashing");
        let verified =
            worker::verify_with_memory(&password, &hash, params, &mut memory, &work).unwrap();
        assert_eq!(verified, Verification::Match { rehash: false });
        assert!(wiped(&memory), "after verifying");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once_instead_of_growing() {
        let hasher = Argon2Hasher::with_queue(HashParams::default(), 1, 2).unwrap();
        let before = hasher.work();
        // Far more concurrent verifications than one worker and two places hold.
        let started = std::time::Instant::now();
        let results = futures::future::join_all(
            (0..40).map(|_| hasher.verify(SecretString::from("x".to_owned()), None)),
        )
        .await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(HashError::Busy)))
            .count();
        let done = results.iter().filter(|r| r.is_ok()).count();
        assert!(busy >= 37, "{busy} refused, {done} done");
        assert_eq!(busy + done, 40);
        // Only what was admitted ran: the refused ones cost no argon2 work.
        assert_eq!(hasher.work().since(before).runs, done as u64);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        // Room again once the queue drained.
        assert!(hasher
            .verify(SecretString::from("x".to_owned()), None)
            .await
            .is_ok());
    }

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[tokio::test]
    async fn an_unknown_cabinet_costs_the_same_argon2_work_as_a_wrong_password() {
        let params = HashParams {
            m_cost: 256,
            t_cost: 3,
            p_cost: 1,
        };
        let hasher = Argon2Hasher::with_workers(params, 1).unwrap();
        assert_eq!(hasher.work(), HashWork::default());
        let stored = hasher.hash(secret("right")).await.unwrap();
        let after_hash = hasher.work();
        assert_eq!(
            after_hash,
            HashWork {
                runs: 1,
                block_passes: 256 * 3
            }
        );

        hasher.verify(secret("wrong"), Some(stored)).await.unwrap();
        let wrong = hasher.work().since(after_hash);
        let before_unknown = hasher.work();
        hasher.verify(secret("wrong"), None).await.unwrap();
        let unknown = hasher.work().since(before_unknown);
        assert_eq!(wrong, unknown);
        assert_eq!(
            unknown,
            HashWork {
                runs: 1,
                block_passes: 256 * 3
            }
        );
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_does_no_argon2_work() {
        let hasher = Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 1).unwrap();
        let bogus = HashedPassword::from_phc("$argon2id$v=19$m=64,t=1,p=1$bm90$".to_owned());
        assert!(hasher.verify(secret("x"), Some(bogus)).await.is_err());
        assert_eq!(hasher.work().runs, 0);
    }

    #[tokio::test]
    async fn hashes_verify_and_reject() {
        let hasher = Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 2).unwrap();
        let hash = hasher.hash(secret("correct horse")).await.unwrap();
        assert!(hash.as_phc().starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(
            hasher
                .verify(secret("correct horse"), Some(hash.clone()))
                .await
                .unwrap(),
            Verification::Match { rehash: false }
        );
        assert_eq!(
            hasher
                .verify(secret("wrong"), Some(hash.clone()))
                .await
                .unwrap(),
            Verification::Mismatch
        );
        assert_eq!(
            hasher.verify(secret("correct horse"), None).await.unwrap(),
            Verification::Mismatch
        );
    }

    #[tokio::test]
    async fn interoperates_with_the_argon2_crate_and_asks_for_rehash() {
        use argon2::password_hash::PasswordHasher as _;
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let params = Params::new(128, 1, 1, None).unwrap();
        let foreign = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_with_salt(b"pw", &salt)
            .unwrap()
            .to_string();
        let hasher = Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 1).unwrap();
        let stored = HashedPassword::from_phc(foreign);
        assert_eq!(
            hasher
                .verify(secret("pw"), Some(stored.clone()))
                .await
                .unwrap(),
            Verification::Match { rehash: true }
        );
        assert_eq!(
            hasher.verify(secret("px"), Some(stored)).await.unwrap(),
            Verification::Mismatch
        );

        // Our own hashes verify with the argon2 crate's reference verifier.
        use argon2::password_hash::PasswordVerifier as _;
        let ours = hasher.hash(secret("pw")).await.unwrap();
        let parsed = argon2::PasswordHash::new(ours.as_phc()).unwrap();
        assert!(Argon2::default().verify_password(b"pw", &parsed).is_ok());
    }

    #[tokio::test]
    async fn malformed_or_foreign_hashes_are_errors_not_panics() {
        let hasher = Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 1).unwrap();
        for bad in [
            "",
            "plain",
            "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ",
        ] {
            let result = hasher
                .verify(secret("pw"), Some(HashedPassword::from_phc(bad.into())))
                .await;
            assert!(
                matches!(result, Err(HashError::MalformedHash)),
                "{bad}: {result:?}"
            );
        }
    }

    #[test]
    fn the_pool_reports_its_shape_and_debug_names_no_secret() {
        let params = HashParams::new(64, 1, 1).unwrap();
        let pool = Argon2Hasher::with_workers(params, 3).unwrap();
        assert_eq!(pool.params(), params);
        assert_eq!(pool.workers(), 3);
        assert_eq!(pool.queue(), 3 * Argon2Hasher::QUEUE_PER_WORKER);
        let pool = Argon2Hasher::with_queue(params, 0, 5).unwrap();
        assert_eq!(
            (pool.workers(), pool.queue()),
            (1, 5),
            "at least one worker"
        );
        let debug = format!("{pool:?}");
        assert!(debug.starts_with("Argon2Hasher {"), "{debug}");
        assert!(
            debug.contains("workers: 1") && debug.contains("m_cost"),
            "{debug}"
        );
    }

    /// The cap on a stored hash's memory cost is inclusive: 1 GiB is verified (a wrong
    /// password, after the full argon2 work), one block more is refused unread.
    #[tokio::test]
    async fn a_stored_memory_cost_of_exactly_the_cap_is_verified() {
        let hasher = Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 1).unwrap();
        let at_cap = format!(
            "$argon2id$v=19$m={MAX_STORED_M_COST},t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
        );
        let result = hasher
            .verify(secret("pw"), Some(HashedPassword::from_phc(at_cap)))
            .await;
        assert!(matches!(result, Ok(Verification::Mismatch)), "{result:?}");
        let over = format!(
            "$argon2id$v=19$m={},t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            MAX_STORED_M_COST + 1
        );
        let result = hasher
            .verify(secret("pw"), Some(HashedPassword::from_phc(over)))
            .await;
        assert!(
            matches!(result, Err(HashError::MalformedHash)),
            "{result:?}"
        );
    }
}
