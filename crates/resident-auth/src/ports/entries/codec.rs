//! The bytes of an entry: each record field by field, numbers little-endian, texts and
//! byte strings behind their length, absent values behind a flag. The first byte names the
//! format, so that a later one can read what an earlier one wrote.

use super::*;

/// The format every entry is written in.
const FORMAT: u8 = 1;

#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Self(vec![FORMAT])
    }

    fn number(&mut self, value: u64) -> &mut Self {
        self.0.extend_from_slice(&value.to_le_bytes());
        self
    }

    fn time(&mut self, value: Timestamp) -> &mut Self {
        self.0.extend_from_slice(&value.as_millis().to_le_bytes());
        self
    }

    fn bytes(&mut self, value: &[u8]) -> &mut Self {
        // Records are small (a letter's sealed text is the largest): lengths fit in a u32.
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&length.to_le_bytes());
        self.0
            .extend_from_slice(value.get(..length as usize).unwrap_or(value));
        self
    }

    fn text(&mut self, value: &str) -> &mut Self {
        self.bytes(value.as_bytes())
    }

    fn maybe<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) -> &mut Self {
        self.0.push(u8::from(value.is_some()));
        if let Some(value) = value {
            write(self, value);
        }
        self
    }
}

struct Reader<'a>(&'a [u8]);

fn corrupt() -> StoreError {
    StoreError::generic("an entry's bytes are not a record of this library")
}

impl<'a> Reader<'a> {
    fn new(body: &'a [u8]) -> Result<Self, StoreError> {
        match body.split_first() {
            Some((&FORMAT, rest)) => Ok(Self(rest)),
            _ => Err(corrupt()),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.0.len() < n {
            return Err(corrupt());
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(taken)
    }

    fn eight(&mut self) -> Result<[u8; 8], StoreError> {
        self.take(8)?.try_into().map_err(|_| corrupt())
    }

    fn number(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.eight()?))
    }

    fn time(&mut self) -> Result<Timestamp, StoreError> {
        Ok(Timestamp::from_millis(i64::from_le_bytes(self.eight()?)))
    }

    fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let length: [u8; 4] = self.take(4)?.try_into().map_err(|_| corrupt())?;
        self.take(u32::from_le_bytes(length) as usize)
    }

    fn text(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt())
    }

    fn parsed<T: std::str::FromStr>(&mut self) -> Result<T, StoreError> {
        self.text()?.parse().map_err(|_| corrupt())
    }

    fn id(&mut self) -> Result<[u8; 16], StoreError> {
        self.bytes()?.try_into().map_err(|_| corrupt())
    }

    fn maybe<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        match self.take(1)? {
            [0] => Ok(None),
            [1] => read(self).map(Some),
            _ => Err(corrupt()),
        }
    }

    /// The record read, if nothing follows it.
    fn end<T>(self, record: T) -> Result<T, StoreError> {
        if self.0.is_empty() {
            Ok(record)
        } else {
            Err(corrupt())
        }
    }
}

pub(super) fn link(link: &Link) -> Vec<u8> {
    let mut w = Writer::new();
    w.text(link.purpose.as_str())
        .text(link.email.as_str())
        .maybe(link.account_number.as_ref(), |w, a| {
            w.text(a.as_ref());
        })
        .maybe(link.cabinet.as_ref(), |w, c| {
            w.bytes(c.as_bytes());
        })
        .maybe(link.credential_version, |w, v| {
            w.number(v);
        })
        .time(link.expires_at)
        .maybe(link.issuing_until, |w, t| {
            w.time(t);
        });
    w.0
}

pub(super) fn read_link(body: &[u8]) -> Result<Link, StoreError> {
    let mut r = Reader::new(body)?;
    let link = Link {
        purpose: LinkPurpose::from_name(r.text()?).ok_or_else(corrupt)?,
        email: r.parsed()?,
        account_number: r.maybe(Reader::parsed)?,
        cabinet: r.maybe(|r| r.id().map(CabinetId::from_bytes))?,
        credential_version: r.maybe(Reader::number)?,
        expires_at: r.time()?,
        issuing_until: r.maybe(Reader::time)?,
    };
    r.end(link)
}

pub(super) fn cabinet(cabinet: &Cabinet) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(cabinet.id.as_bytes())
        .text(cabinet.email.as_str())
        .text(cabinet.password_hash.as_phc())
        .number(cabinet.credential_version)
        .number(cabinet.accounts.len() as u64);
    for account in &cabinet.accounts {
        w.text(account.as_ref());
    }
    w.maybe(cabinet.password_expires_at, |w, t| {
        w.time(t);
    });
    w.0
}

pub(super) fn read_cabinet(body: &[u8]) -> Result<Cabinet, StoreError> {
    let mut r = Reader::new(body)?;
    let id = CabinetId::from_bytes(r.id()?);
    let email = r.parsed()?;
    let password_hash = HashedPassword::from_phc(r.text()?.to_owned());
    let credential_version = r.number()?;
    let accounts = (0..r.number()?)
        .map(|_| r.parsed())
        .collect::<Result<_, _>>()?;
    let cabinet = Cabinet {
        id,
        email,
        password_hash,
        credential_version,
        accounts,
        password_expires_at: r.maybe(Reader::time)?,
    };
    r.end(cabinet)
}

pub(super) fn session(session: &Session) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(session.id.as_bytes())
        .bytes(session.cabinet.as_bytes())
        .number(session.credential_version)
        .maybe(session.active_account.as_ref(), |w, a| {
            w.text(a.as_ref());
        })
        .time(session.created_at)
        .time(session.last_used)
        .time(session.expires_at)
        .maybe(session.client.as_deref(), |w, c| {
            w.text(c);
        });
    w.0
}

pub(super) fn read_session(body: &[u8]) -> Result<Session, StoreError> {
    let mut r = Reader::new(body)?;
    let session = Session {
        id: SessionId::from_bytes(r.id()?),
        cabinet: CabinetId::from_bytes(r.id()?),
        credential_version: r.number()?,
        active_account: r.maybe(Reader::parsed)?,
        created_at: r.time()?,
        last_used: r.time()?,
        expires_at: r.time()?,
        client: r.maybe(|r| r.text().map(str::to_owned))?,
    };
    r.end(session)
}

pub(super) fn letter(letter: &QueuedLetter) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(letter.id.as_bytes())
        .text(letter.to.as_str())
        .maybe(letter.cabinet.as_ref(), |w, c| {
            w.bytes(c.as_bytes());
        })
        .text(letter.kind.as_str())
        .maybe(letter.sealed.as_ref(), |w, s| {
            w.bytes(s.as_bytes());
        })
        .text(letter.status.as_str())
        .number(u64::from(letter.attempts))
        .time(letter.queued_at)
        .time(letter.next_attempt_at)
        .time(letter.give_up_at)
        .maybe(letter.keep_until, |w, t| {
            w.time(t);
        })
        .maybe(letter.last_error.as_deref(), |w, e| {
            w.text(e);
        });
    w.0
}

pub(super) fn read_letter(body: &[u8]) -> Result<QueuedLetter, StoreError> {
    let mut r = Reader::new(body)?;
    let letter = QueuedLetter {
        id: LetterId::from_bytes(r.id()?),
        to: r.parsed()?,
        cabinet: r.maybe(|r| r.id().map(CabinetId::from_bytes))?,
        kind: LetterKind::from_name(r.text()?).ok_or_else(corrupt)?,
        sealed: r.maybe(|r| r.bytes().map(|b| SealedLetter::from_bytes(b.to_vec())))?,
        status: LetterStatus::from_name(r.text()?).ok_or_else(corrupt)?,
        attempts: u32::try_from(r.number()?).map_err(|_| corrupt())?,
        queued_at: r.time()?,
        next_attempt_at: r.time()?,
        give_up_at: r.time()?,
        keep_until: r.maybe(Reader::time)?,
        last_error: r.maybe(|r| r.text().map(str::to_owned))?,
    };
    r.end(letter)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn email(local: &str) -> Email {
        format!("{local}@example.ru").parse().unwrap()
    }

    fn account(n: u8) -> AccountNumber {
        ["7800000000001", "7800000000002", "7812345678903"][usize::from(n % 3)]
            .parse()
            .unwrap()
    }

    fn time(millis: i64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    proptest! {
        #[test]
        fn links_read_back_as_written(
            local in "[a-z]{1,12}", account_n in proptest::option::of(any::<u8>()),
            version in proptest::option::of(any::<u64>()), at in any::<i64>(),
            until in proptest::option::of(any::<i64>()), purpose in 0usize..5,
        ) {
            let purposes = [
                LinkPurpose::Confirmation, LinkPurpose::Activation, LinkPurpose::Recovery,
                LinkPurpose::EmailChange, LinkPurpose::EmailChangeCancel,
            ];
            let link = Link {
                purpose: purposes[purpose],
                email: email(&local),
                account_number: account_n.map(account),
                cabinet: version.map(|_| CabinetId::generate()),
                credential_version: version,
                expires_at: time(at),
                issuing_until: until.map(time),
            };
            prop_assert_eq!(read_link(&super::link(&link)).unwrap(), link);
        }

        #[test]
        fn cabinets_sessions_and_letters_read_back_as_written(
            local in "[a-z]{1,12}", accounts in proptest::collection::vec(any::<u8>(), 0..4),
            phc in ".{0,80}", version in any::<u64>(), at in any::<i64>(),
            client in proptest::option::of(".{0,40}"), sealed in proptest::option::of(
                proptest::collection::vec(any::<u8>(), 0..200)),
            attempts in any::<u32>(), error in proptest::option::of(".{0,40}"),
        ) {
            let cabinet = Cabinet {
                id: CabinetId::generate(),
                email: email(&local),
                password_hash: HashedPassword::from_phc(phc),
                credential_version: version,
                accounts: accounts.iter().copied().map(account).collect(),
                password_expires_at: client.as_ref().map(|_| time(at)),
            };
            prop_assert_eq!(read_cabinet(&super::cabinet(&cabinet)).unwrap(), cabinet.clone());
            let session = Session {
                id: SessionId::generate(),
                cabinet: cabinet.id,
                credential_version: version,
                active_account: accounts.first().copied().map(account),
                created_at: time(at),
                last_used: time(at.wrapping_add(1)),
                expires_at: time(at.wrapping_sub(1)),
                client,
            };
            prop_assert_eq!(read_session(&super::session(&session)).unwrap(), session);
            let letter = QueuedLetter {
                id: LetterId::generate(),
                to: email(&local),
                cabinet: sealed.as_ref().map(|_| cabinet.id),
                kind: LetterKind::ConfirmEmail,
                sealed: sealed.map(SealedLetter::from_bytes),
                status: LetterStatus::Queued,
                attempts,
                queued_at: time(at),
                next_attempt_at: time(at),
                give_up_at: time(at),
                keep_until: error.as_ref().map(|_| time(at)),
                last_error: error,
            };
            prop_assert_eq!(read_letter(&super::letter(&letter)).unwrap(), letter);
        }

        #[test]
        fn any_bytes_are_a_record_or_refused(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            for kind in [EntryKind::Link, EntryKind::Cabinet, EntryKind::Session, EntryKind::Letter] {
                let _ = super::super::check_entry(kind, &body);
            }
        }
    }

    #[test]
    fn a_record_cut_short_or_followed_by_anything_is_refused() {
        let link = Link {
            purpose: LinkPurpose::Recovery,
            email: email("a"),
            account_number: None,
            cabinet: None,
            credential_version: None,
            expires_at: time(5),
            issuing_until: None,
        };
        let body = super::link(&link);
        assert!(read_link(&body[..body.len() - 1]).is_err());
        let mut longer = body.clone();
        longer.push(0);
        assert!(read_link(&longer).is_err());
        let mut other_format = body;
        other_format[0] = 2;
        assert!(read_link(&other_format).is_err());
        assert!(read_cabinet(&[]).is_err());
    }
}
