//! [`CountingHasher`]: a hasher that counts the argon2 work it runs, for the enumeration
//! probe.

use super::*;

/// Counts argon2 runs, for tests that must prove an unknown email costs the same work as
/// a wrong password without relying on timing.
#[derive(Debug, Clone)]
pub struct CountingHasher<H> {
    inner: H,
    runs: Arc<std::sync::atomic::AtomicUsize>,
}

impl<H> CountingHasher<H> {
    /// Wraps a hasher.
    pub fn new(inner: H) -> Self {
        Self {
            inner,
            runs: Arc::default(),
        }
    }

    /// How many hashes and verifications ran so far.
    #[must_use]
    pub fn runs(&self) -> usize {
        self.runs.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl<H: CredentialHasher> CredentialHasher for CountingHasher<H> {
    async fn hash(&self, password: SecretString) -> Result<HashedPassword, HashError> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.hash(password).await
    }

    async fn verify(
        &self,
        password: SecretString,
        stored: Option<HashedPassword>,
    ) -> Result<Verification, HashError> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.verify(password, stored).await
    }
}
