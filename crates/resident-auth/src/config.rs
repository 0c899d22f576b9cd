//! What a host sets up besides storage and mail: the service's builder and configuration,
//! its limits and the regions it serves, the password hasher, the clock, and the billing
//! directory (docs/contract.md §6).

use async_trait::async_trait;

use crate::{ports::StoreError, AccountNumber, Premises};

pub use crate::account_number::{Region, ServedRegions};
pub use crate::clock::{Clock, ManualClock, SystemClock};
#[cfg(feature = "directory-csv")]
#[cfg_attr(docsrs, doc(cfg(feature = "directory-csv")))]
pub use crate::directory::parse_directory_csv;
pub use crate::hasher::{
    Argon2Hasher, CredentialHasher, HashError, HashParams, HashWork, Verification,
};
pub use crate::service::{AuthConfig, AuthServiceBuilder, BuildError, Limit, Ports};
pub use crate::surname::surname_matching_key;

/// One entry of the billing directory (the settlement center's registry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRecord {
    /// The personal account number.
    pub account_number: AccountNumber,
    /// The address, as shown to the resident.
    pub address: String,
    /// The premises the account belongs to; activation must name it.
    pub premises: Premises,
    /// Surnames of the people registered on the account; empty means "not checked".
    pub surnames: Vec<String>,
}

/// The billing directory: who lives where, by personal account number.
#[async_trait]
pub trait AccountDirectory: Send + Sync {
    /// The record for `account`, or `None` if the directory has no such account.
    ///
    /// # Errors
    /// [`StoreError`] if the directory cannot be read.
    async fn lookup(&self, account: &AccountNumber) -> Result<Option<DirectoryRecord>, StoreError>;
}
