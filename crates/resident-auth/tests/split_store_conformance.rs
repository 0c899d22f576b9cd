//! How little a new backend needs: maps behind mutexes — links, cabinets and letters in one
//! (a letter is queued in the same step as the write that needs it), sessions and counters
//! each in their own — with the required methods and nothing else (no indexes, no
//! policy, purging by a scan), put together by `SplitStore` as a host putting sessions and
//! counters in another backend than registrations would. It passes the whole conformance
//! suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use resident_auth::{
    mail::{LetterId, LetterStatus, QueuedLetter},
    ports::{
        Cabinet, CabinetKey, CabinetStore, CabinetSwap, Count, CounterKey, CounterStore, Expected,
        LetterStore, Link, LinkStore, Session, SessionStore, SplitStore, StoreError, TokenHash,
        Version, Versioned,
    },
    AccountNumber, CabinetId, Email, Timestamp,
};

type Map<K, V> = Arc<Mutex<HashMap<K, Versioned<V>>>>;

/// Writes `next` under `key` if the record there meets `expected`; the new version is
/// the old one's next.
fn swap<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, Versioned<V>>,
    key: K,
    expected: Expected,
    next: Option<V>,
) -> bool {
    let current = map.get(&key).map(|r| r.version);
    if !expected.admits(current) {
        return false;
    }
    match next {
        Some(value) => {
            let version = current.map_or(Version::FIRST, Version::next);
            map.insert(key, Versioned { value, version });
        }
        None => {
            map.remove(&key);
        }
    }
    true
}

/// Links, cabinets and the mail queue: one backend, since a letter is queued in the same
/// atomic step as the link or cabinet write that needs it.
#[derive(Default)]
struct RecordMaps {
    links: HashMap<TokenHash, Versioned<Link>>,
    cabinets: HashMap<CabinetId, Versioned<Cabinet>>,
    letters: HashMap<LetterId, Versioned<QueuedLetter>>,
}

impl RecordMaps {
    fn queue(&mut self, letter: Option<&QueuedLetter>) {
        if let Some(letter) = letter {
            let value = letter.clone();
            self.letters.insert(
                letter.id,
                Versioned {
                    value,
                    version: Version::FIRST,
                },
            );
        }
    }
}

#[derive(Clone, Default)]
struct Records(Arc<Mutex<RecordMaps>>);

#[async_trait]
impl LinkStore for Records {
    async fn link(&self, token: &TokenHash) -> Result<Option<Versioned<Link>>, StoreError> {
        Ok(self.0.lock().unwrap().links.get(token).cloned())
    }
    async fn swap_link(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<(&TokenHash, &Link)>,
        letter: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        let mut maps = self.0.lock().unwrap();
        let map = &mut maps.links;
        let current = map.get(token).map(|r| r.version);
        let moved_onto_another = next.is_some_and(|(t, _)| t != token && map.contains_key(t));
        if !expected.admits(current) || moved_onto_another {
            return Ok(false);
        }
        map.remove(token);
        if let Some((t, link)) = next {
            let version = current.map_or(Version::FIRST, Version::next);
            map.insert(
                *t,
                Versioned {
                    value: link.clone(),
                    version,
                },
            );
        }
        maps.queue(letter);
        Ok(true)
    }
    async fn purge_links(&self, now: Timestamp) -> Result<u64, StoreError> {
        let map = &mut self.0.lock().unwrap().links;
        let before = map.len();
        map.retain(|_, l| l.value.expires_at > now);
        Ok((before - map.len()) as u64)
    }
    async fn links_about(
        &self,
        email: Option<&Email>,
        accounts: &[AccountNumber],
    ) -> Result<Vec<(TokenHash, Versioned<Link>)>, StoreError> {
        let maps = self.0.lock().unwrap();
        let about = |link: &Link| {
            Some(&link.email) == email || link.account_number.is_some_and(|a| accounts.contains(&a))
        };
        Ok(maps
            .links
            .iter()
            .filter(|(_, link)| about(&link.value))
            .map(|(token, link)| (*token, link.clone()))
            .collect())
    }
}

#[async_trait]
impl CabinetStore for Records {
    async fn cabinet(&self, key: CabinetKey<'_>) -> Result<Option<Versioned<Cabinet>>, StoreError> {
        let maps = self.0.lock().unwrap();
        Ok(maps
            .cabinets
            .values()
            .find(|c| match key {
                CabinetKey::Id(id) => c.value.id == *id,
                CabinetKey::Email(email) => c.value.email == *email,
                CabinetKey::Account(account) => c.value.accounts.contains(account),
                _ => false,
            })
            .cloned())
    }
    async fn swap_cabinet(
        &self,
        id: &CabinetId,
        expected: Expected,
        next: Option<&Cabinet>,
        letter: Option<&QueuedLetter>,
    ) -> Result<CabinetSwap, StoreError> {
        let mut maps = self.0.lock().unwrap();
        let map = &mut maps.cabinets;
        if let Some(next) = next {
            let taken = map.values().any(|other| {
                other.value.id != *id
                    && (other.value.email == next.email
                        || next
                            .accounts
                            .iter()
                            .any(|a| other.value.accounts.contains(a)))
            });
            if taken && expected.admits(map.get(id).map(|c| c.version)) {
                return Ok(CabinetSwap::Taken);
            }
        }
        Ok(if swap(map, *id, expected, next.cloned()) {
            maps.queue(letter);
            CabinetSwap::Written
        } else {
            CabinetSwap::Conflict
        })
    }
}

#[async_trait]
impl LetterStore for Records {
    async fn purge_letters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let map = &mut self.0.lock().unwrap().letters;
        let before = map.len();
        map.retain(|_, l| l.value.keep_until.is_none_or(|until| until > now));
        Ok((before - map.len()) as u64)
    }
    async fn claim_letters(
        &self,
        now: Timestamp,
        claim_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let mut maps = self.0.lock().unwrap();
        let mut due: Vec<_> = maps
            .letters
            .values_mut()
            .filter(|l| l.value.status == LetterStatus::Queued && l.value.next_attempt_at <= now)
            .collect();
        due.sort_by_key(|l| l.value.next_attempt_at);
        Ok(due
            .into_iter()
            .take(limit)
            .map(|l| {
                l.value.next_attempt_at = claim_until;
                l.version = l.version.next();
                l.clone()
            })
            .collect())
    }
    async fn swap_letter(
        &self,
        id: &LetterId,
        expected: Expected,
        next: Option<&QueuedLetter>,
    ) -> Result<bool, StoreError> {
        let letters = &mut self.0.lock().unwrap().letters;
        Ok(swap(letters, *id, expected, next.cloned()))
    }
    async fn letters_about(
        &self,
        email: Option<&Email>,
        cabinet: Option<&CabinetId>,
    ) -> Result<Vec<Versioned<QueuedLetter>>, StoreError> {
        let maps = self.0.lock().unwrap();
        Ok(maps
            .letters
            .values()
            .filter(|l| {
                Some(&l.value.to) == email
                    || (cabinet.is_some() && l.value.cabinet.as_ref() == cabinet)
            })
            .cloned()
            .collect())
    }
}

#[derive(Clone, Default)]
struct Sessions(Map<TokenHash, Session>);

#[async_trait]
impl SessionStore for Sessions {
    async fn session(&self, token: &TokenHash) -> Result<Option<Versioned<Session>>, StoreError> {
        Ok(self.0.lock().unwrap().get(token).cloned())
    }
    async fn swap_session(
        &self,
        token: &TokenHash,
        expected: Expected,
        next: Option<&Session>,
    ) -> Result<bool, StoreError> {
        Ok(swap(
            &mut self.0.lock().unwrap(),
            *token,
            expected,
            next.cloned(),
        ))
    }
    async fn cabinet_sessions(
        &self,
        cabinet: &CabinetId,
    ) -> Result<Vec<(TokenHash, Versioned<Session>)>, StoreError> {
        let map = self.0.lock().unwrap();
        let mine = map.iter().filter(|(_, s)| s.value.cabinet == *cabinet);
        Ok(mine.map(|(t, s)| (*t, s.clone())).collect())
    }
    async fn purge_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut map = self.0.lock().unwrap();
        let before = map.len();
        map.retain(|_, s| s.value.expires_at > now);
        Ok((before - map.len()) as u64)
    }
}

#[derive(Clone, Default)]
struct Counters(Arc<Mutex<HashMap<CounterKey, Count>>>);

#[async_trait]
impl CounterStore for Counters {
    async fn increment(
        &self,
        key: &CounterKey,
        now: Timestamp,
        window: Duration,
    ) -> Result<Count, StoreError> {
        let mut map = self.0.lock().unwrap();
        let count = map.entry(key.clone()).or_insert(Count {
            count: 0,
            window_ends: now,
        });
        if count.window_ends <= now {
            *count = Count {
                count: 0,
                window_ends: now.plus(window),
            };
        }
        count.count += 1;
        Ok(*count)
    }
    async fn reset(&self, key: &CounterKey) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
    async fn purge_counters(&self, now: Timestamp) -> Result<u64, StoreError> {
        let mut map = self.0.lock().unwrap();
        let before = map.len();
        map.retain(|_, c| c.window_ends > now);
        Ok((before - map.len()) as u64)
    }
    async fn counters_about(
        &self,
        subjects: &[String],
    ) -> Result<Vec<(CounterKey, Count)>, StoreError> {
        let map = self.0.lock().unwrap();
        Ok(map
            .iter()
            .filter(|(key, _)| subjects.iter().any(|s| s == key.subject()))
            .map(|(key, count)| (key.clone(), *count))
            .collect())
    }
}

resident_auth::testing::store_conformance_tests!(async {
    SplitStore::new(Records::default(), Sessions::default(), Counters::default())
});
