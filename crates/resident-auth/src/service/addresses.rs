//! The addresses a cabinet's page shows, kept in memory for
//! [`AuthConfig::addresses_kept_for`](crate::config::AuthConfig::addresses_kept_for): a session
//! check that shows the cabinet reads the directory once per account in that time, not
//! once per request. Only display reads them: registration and activation (surnames,
//! premises) always read the directory itself.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
};

use crate::{clock::Timestamp, AccountNumber, Premises};

/// At most this many accounts are kept; a full cache starts again empty.
const MOST_KEPT: usize = 100_000;

/// An account's address and premises (`None`: not in the directory).
pub(crate) type Address = Option<(String, Premises)>;

/// Addresses by account, each with when it stops being used.
#[derive(Default)]
pub(crate) struct AddressCache {
    entries: Mutex<HashMap<AccountNumber, (Timestamp, Address)>>,
}

impl AddressCache {
    /// The address kept for `account`, if it is kept beyond `now`.
    pub(crate) fn get(&self, account: &AccountNumber, now: Timestamp) -> Option<Address> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(account)
            .filter(|(until, _)| now < *until)
            .map(|(_, address)| address.clone())
    }

    /// Keeps `address` for `account` until `until`.
    pub(crate) fn put(&self, account: AccountNumber, until: Timestamp, address: Address) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MOST_KEPT && !entries.contains_key(&account) {
            entries.clear();
        }
        entries.insert(account, (until, address));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u64) -> AccountNumber {
        format!("78{n:011}").parse().unwrap()
    }

    #[test]
    fn kept_until_their_time_and_never_beyond_the_bound() {
        let cache = AddressCache::default();
        let t = Timestamp::from_millis(1_000);
        let address = Some(("ул. Садовая, д. 1".to_owned(), "12".parse().unwrap()));
        cache.put(
            account(1),
            t.plus(std::time::Duration::from_secs(60)),
            address.clone(),
        );
        assert_eq!(cache.get(&account(1), t), Some(address));
        assert_eq!(
            cache.get(&account(1), t.plus(std::time::Duration::from_secs(60))),
            None
        );
        assert_eq!(cache.get(&account(2), t), None);
        for n in 0..=MOST_KEPT as u64 {
            cache.put(account(n), t.plus(std::time::Duration::from_secs(1)), None);
        }
        assert!(cache.entries.lock().unwrap().len() <= MOST_KEPT);
    }
}
