//! Forwarding every storage method to a wrapped store.

/// Implements the five storage traits and [`Store`] for a wrapper by forwarding every
/// method, the composites included, to the store `$inner(self)` gives, each call passed
/// through `$via(self, call)` (which takes the call's future and answers its result).
/// Every method is listed (`missing_trait_methods` is denied), so a wrapper runs the
/// wrapped store's own statements, never the traits' defaults over them.
macro_rules! forward_store {
    ([$($generics:tt)*] $ty:ty, $inner:path, $via:path) => {
        $crate::ports::forward::forward_links!([$($generics)*] $ty, $inner, $via);
        $crate::ports::forward::forward_cabinets!([$($generics)*] $ty, $inner, $via);
        $crate::ports::forward::forward_letters!([$($generics)*] $ty, $inner, $via);
        $crate::ports::forward::forward_sessions!([$($generics)*] $ty, $inner, $via);
        $crate::ports::forward::forward_counters!([$($generics)*] $ty, $inner, $via);
        $crate::ports::forward::forward_composites!([$($generics)*] $ty, $inner, $via);
    };
}
pub(crate) use forward_store;

/// [`forward_store`]'s part for `LinkStore`.
macro_rules! forward_links {
    ([$($generics:tt)*] $ty:ty, $inner:path, $via:path) => {
#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl<$($generics)*> $crate::ports::LinkStore for $ty {
    async fn link(&self, t: &$crate::secret::TokenHash) -> Result<Option<$crate::ports::Versioned<$crate::ports::Link>>, $crate::ports::StoreError> {
        $via(self, $inner(self).link(t)).await
    }
    async fn swap_link(
        &self,
        t: &$crate::secret::TokenHash,
        e: $crate::ports::Expected,
        n: Option<(&$crate::secret::TokenHash, &$crate::ports::Link)>,
        l: Option<&$crate::mail::QueuedLetter>,
    ) -> Result<bool, $crate::ports::StoreError> {
        $via(self, $inner(self).swap_link(t, e, n, l)).await
    }
    async fn links_about(
        &self,
        email: Option<&$crate::Email>,
        accounts: &[$crate::AccountNumber],
    ) -> Result<Vec<($crate::secret::TokenHash, $crate::ports::Versioned<$crate::ports::Link>)>, $crate::ports::StoreError> {
        $via(self, $inner(self).links_about(email, accounts)).await
    }
    async fn purge_links(&self, now: $crate::clock::Timestamp) -> Result<u64, $crate::ports::StoreError> {
        $via(self, $inner(self).purge_links(now)).await
    }
}
    };
}
pub(crate) use forward_links;

/// [`forward_store`]'s part for `CabinetStore`.
macro_rules! forward_cabinets {
    ([$($generics:tt)*] $ty:ty, $inner:path, $via:path) => {
#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl<$($generics)*> $crate::ports::CabinetStore for $ty {
    async fn cabinet(&self, k: $crate::ports::CabinetKey<'_>) -> Result<Option<$crate::ports::Versioned<$crate::ports::Cabinet>>, $crate::ports::StoreError> {
        $via(self, $inner(self).cabinet(k)).await
    }
    async fn swap_cabinet(
        &self,
        id: &$crate::ids::CabinetId,
        e: $crate::ports::Expected,
        n: Option<&$crate::ports::Cabinet>,
        l: Option<&$crate::mail::QueuedLetter>,
    ) -> Result<$crate::ports::CabinetSwap, $crate::ports::StoreError> {
        $via(self, $inner(self).swap_cabinet(id, e, n, l)).await
    }
}
    };
}
pub(crate) use forward_cabinets;

/// [`forward_store`]'s part for `LetterStore`.
macro_rules! forward_letters {
    ([$($generics:tt)*] $ty:ty, $inner:path, $via:path) => {
#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl<$($generics)*> $crate::ports::LetterStore for $ty {
    async fn claim_letters(
        &self,
        now: $crate::Timestamp,
        until: $crate::Timestamp,
        limit: usize,
    ) -> Result<Vec<$crate::ports::Versioned<$crate::mail::QueuedLetter>>, $crate::ports::StoreError> {
        $via(self, $inner(self).claim_letters(now, until, limit))
            .await
    }
    async fn swap_letter(
        &self,
        id: &$crate::LetterId,
        e: $crate::ports::Expected,
        n: Option<&$crate::mail::QueuedLetter>,
    ) -> Result<bool, $crate::ports::StoreError> {
        $via(self, $inner(self).swap_letter(id, e, n)).await
    }
    async fn letters_about(
        &self,
        email: Option<&$crate::Email>,
        cabinet: Option<&$crate::ids::CabinetId>,
    ) -> Result<Vec<$crate::ports::Versioned<$crate::mail::QueuedLetter>>, $crate::ports::StoreError> {
        $via(self, $inner(self).letters_about(email, cabinet)).await
    }
    async fn purge_letters(&self, now: $crate::clock::Timestamp) -> Result<u64, $crate::ports::StoreError> {
        $via(self, $inner(self).purge_letters(now)).await
    }
}
    };
}
pub(crate) use forward_letters;

/// [`forward_store`]'s part for `SessionStore`.
macro_rules! forward_sessions {
    ([$($generics:tt)*] $ty:ty, $inner:path, $via:path) => {
#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl<$($generics)*> $crate::ports::SessionStore for $ty {
    async fn session(&self, t: &$crate::secret::TokenHash) -> Result<Option<$crate::ports::Versioned<$crate::ports::Session>>, $crate::ports::StoreError> {
        $via(self, $inner(self).session(t)).await
    }
    async fn swap_session(
        &self,
        t: &$crate::secret::TokenHash,
        e: $crate::ports::Expected,
        n: Option<&$crate::ports::Session>,
    ) -> Result<bool, $crate::ports::StoreError> {
        $via(self, $inner(self).swap_session(t, e, n)).await
    }
    async fn cabinet_sessions(
        &self,
        c: &$crate::ids::CabinetId,
    ) -> Result<Vec<($crate::secret::TokenHash, $crate::ports::Versioned<$crate::ports::Session>)>, $crate::ports::StoreError> {
        $via(self, $inner(self).cabinet_sessions(c)).await
    }
    async fn purge_sessions(&self, now: $crate::clock::Timestamp) -> Result<u64, $crate::ports::StoreError> {
        $via(self, $inner(self).purge_sessions(now)).await
    }
}
    };
}
pub(crate) use forward_sessions;

/// [`forward_store`]'s part for `CounterStore`.
macro_rules! forward_counters {
    ([$($generics:tt)*] $ty:ty, $inner:path, $via:path) => {
#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl<$($generics)*> $crate::ports::CounterStore for $ty {
    async fn increment(
        &self,
        k: &$crate::ports::CounterKey,
        now: $crate::clock::Timestamp,
        w: ::std::time::Duration,
    ) -> Result<$crate::ports::Count, $crate::ports::StoreError> {
        $via(self, $inner(self).increment(k, now, w)).await
    }
    async fn reset(&self, k: &$crate::ports::CounterKey) -> Result<(), $crate::ports::StoreError> {
        $via(self, $inner(self).reset(k)).await
    }
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<($crate::ports::CounterKey, $crate::ports::Count)>, $crate::ports::StoreError> {
        $via(self, $inner(self).counters_about(subjects)).await
    }
    async fn purge_counters(&self, now: $crate::clock::Timestamp) -> Result<u64, $crate::ports::StoreError> {
        $via(self, $inner(self).purge_counters(now)).await
    }
}
    };
}
pub(crate) use forward_counters;

/// [`forward_store`]'s part for `Store`.
macro_rules! forward_composites {
    ([$($generics:tt)*] $ty:ty, $inner:path, $via:path) => {
/// Every method is forwarded to the store's own and gated as one call, the composites too:
/// a store that overrides `advance_link` or `increment_all` with statements of its own (a
/// transaction, one round trip) is faulted on those statements, not on defaults it never
/// runs.
#[async_trait::async_trait]
#[deny(clippy::missing_trait_methods)]
impl<$($generics)*> $crate::ports::Store for $ty {
    fn outlives_the_process(&self) -> bool {
        $inner(self).outlives_the_process()
    }
    async fn session_with_cabinet(
        &self,
        token: &$crate::secret::TokenHash,
    ) -> Result<Option<($crate::ports::Versioned<$crate::ports::Session>, $crate::ports::CabinetSnapshot)>, $crate::ports::StoreError> {
        $via(self, $inner(self).session_with_cabinet(token)).await
    }
    async fn advance_link(
        &self,
        token: &$crate::secret::TokenHash,
        purpose: $crate::ports::LinkPurpose,
        now: $crate::clock::Timestamp,
        next_token: &$crate::secret::TokenHash,
        next: $crate::ports::LinkAdvance,
    ) -> Result<Option<$crate::ports::Link>, $crate::ports::StoreError> {
        $via(
            self,
            $inner(self).advance_link(token, purpose, now, next_token, next),
        )
        .await
    }
    async fn increment_all(
        &self,
        keys: &[($crate::ports::CounterKey, ::std::time::Duration)],
        now: $crate::clock::Timestamp,
    ) -> Result<Vec<$crate::ports::Count>, $crate::ports::StoreError> {
        $via(self, $inner(self).increment_all(keys, now)).await
    }
    async fn reset_all(&self, keys: &[$crate::ports::CounterKey]) -> Result<(), $crate::ports::StoreError> {
        $via(self, $inner(self).reset_all(keys)).await
    }
    async fn purge_expired(&self, now: $crate::clock::Timestamp) -> Result<u64, $crate::ports::StoreError> {
        $via(self, $inner(self).purge_expired(now)).await
    }
}
    };
}
pub(crate) use forward_composites;

/// The store behind a smart pointer.
pub(crate) fn deref<W: std::ops::Deref + ?Sized>(wrapper: &W) -> &W::Target {
    wrapper
}

/// A call made as it is.
pub(crate) fn direct<W: ?Sized, F>(_: &W, call: F) -> F {
    call
}

// A store shared or boxed is a store, its own statements and all.
forward_store!([S: super::Store + ?Sized] std::sync::Arc<S>, deref, direct);
forward_store!([S: super::Store + ?Sized] Box<S>, deref, direct);
