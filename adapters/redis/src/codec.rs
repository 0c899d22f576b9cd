//! How sessions, snapshots and identifiers are written to Redis hashes and read back, and
//! what a Redis failure is to the service.

use std::{
    collections::HashMap,
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use resident_auth::{
    ports::{CabinetSnapshot, Session, SnapshotRead, StoreError, Version, Versioned},
    AccountNumber, CabinetId, Email, SessionId, Timestamp,
};

use crate::GRACE;

/// A Redis failure as the store's: retryable when the connection or the server failed.
pub(crate) fn failure(error: redis::RedisError) -> StoreError {
    if error.is_connection_refusal() {
        StoreError::unreachable(error)
    } else if error.is_io_error() || error.is_timeout() || error.is_connection_dropped() {
        StoreError::unavailable(error)
    } else {
        StoreError::generic(error)
    }
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

pub(crate) fn unhex<const N: usize>(text: &str) -> Result<[u8; N], StoreError> {
    let mut out = [0u8; N];
    if text.len() != N * 2 || !text.is_ascii() {
        return Err(corrupt("an identifier"));
    }
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = text
            .get(i * 2..i * 2 + 2)
            .ok_or_else(|| corrupt("an identifier"))?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| corrupt("an identifier"))?;
    }
    Ok(out)
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::generic(format!("unexpected value in Redis: {what}"))
}

/// When Redis may forget a record that dies at `expires`: never before the grace after
/// now, whatever clock the service runs on.
pub(crate) fn keep_until(expires: Timestamp) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let grace = i64::try_from(GRACE.as_millis()).unwrap_or(0);
    expires.as_millis().max(now).saturating_add(grace)
}

pub(crate) fn session_fields(session: &Session) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", hex(session.id.as_bytes())),
        ("cab", hex(session.cabinet.as_bytes())),
        ("cv", session.credential_version.to_string()),
        ("ca", session.created_at.as_millis().to_string()),
        ("lu", session.last_used.as_millis().to_string()),
        ("ea", session.expires_at.as_millis().to_string()),
    ];
    if let Some(account) = &session.active_account {
        fields.push(("acc", account.as_str().to_owned()));
    }
    if let Some(client) = &session.client {
        fields.push(("cl", client.clone()));
    }
    fields
}

pub(crate) fn session_from(
    fields: &HashMap<String, String>,
) -> Result<Option<Versioned<Session>>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }
    let text = |name: &str| fields.get(name).ok_or_else(|| corrupt(name));
    let number =
        |name: &str| -> Result<i64, StoreError> { text(name)?.parse().map_err(|_| corrupt(name)) };
    let version: u64 = text("v")?.parse().map_err(|_| corrupt("v"))?;
    let session = Session {
        id: SessionId::from_bytes(unhex(text("id")?)?),
        cabinet: CabinetId::from_bytes(unhex(text("cab")?)?),
        credential_version: text("cv")?.parse().map_err(|_| corrupt("cv"))?,
        active_account: fields
            .get("acc")
            .map(|a| a.parse::<AccountNumber>().map_err(|_| corrupt("acc")))
            .transpose()?,
        created_at: Timestamp::from_millis(number("ca")?),
        last_used: Timestamp::from_millis(number("lu")?),
        expires_at: Timestamp::from_millis(number("ea")?),
        client: fields.get("cl").cloned(),
    };
    Ok(Some(Versioned {
        value: session,
        version: Version::new(version),
    }))
}

pub(crate) fn snapshot_fields(snapshot: &CabinetSnapshot) -> Vec<(&'static str, String)> {
    let accounts: Vec<&str> = snapshot
        .accounts
        .iter()
        .map(AccountNumber::as_str)
        .collect();
    vec![
        ("em", snapshot.email.to_string()),
        ("cv", snapshot.credential_version.to_string()),
        ("acc", accounts.join(",")),
        (
            "pe",
            snapshot
                .password_expires_at
                .map_or_else(String::new, |at| at.as_millis().to_string()),
        ),
    ]
}

/// The fields of a cabinet's snapshot hash as read: its generation, then the snapshot.
pub(crate) const SNAPSHOT_FIELDS: [&str; 5] = ["g", "em", "cv", "acc", "pe"];

/// A snapshot from [`SNAPSHOT_FIELDS`] as `HMGET` answered them.
pub(crate) fn snapshot_from(
    cabinet: &CabinetId,
    fields: [Option<String>; 5],
) -> Result<SnapshotRead, StoreError> {
    let [generation, email, credential_version, accounts, expires] = fields;
    let generation = generation
        .map(|g| g.parse::<u64>().map_err(|_| corrupt("g")))
        .transpose()?
        .unwrap_or(0);
    let (Some(email), Some(credential_version), Some(accounts), Some(expires)) =
        (email, credential_version, accounts, expires)
    else {
        return Ok(SnapshotRead::Missing { generation });
    };
    Ok(SnapshotRead::Found(CabinetSnapshot {
        id: *cabinet,
        email: email.parse::<Email>().map_err(|_| corrupt("em"))?,
        credential_version: credential_version.parse().map_err(|_| corrupt("cv"))?,
        accounts: accounts
            .split(',')
            .filter(|a| !a.is_empty())
            .map(|a| a.parse::<AccountNumber>().map_err(|_| corrupt("acc")))
            .collect::<Result<_, _>>()?,
        password_expires_at: match expires.as_str() {
            "" => None,
            at => Some(Timestamp::from_millis(
                at.parse().map_err(|_| corrupt("pe"))?,
            )),
        },
    }))
}

/// `text` matching itself only in a `SCAN MATCH` glob.
pub(crate) fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::{glob_escape, hex, unhex};

    #[test]
    fn globs_match_only_themselves() {
        assert_eq!(
            glob_escape("a*b?[c]^-d\\e.f"),
            "a\\*b\\?\\[c\\]\\^\\-d\\\\e.f"
        );
        assert_eq!(glob_escape("resident@example.org"), "resident@example.org");
    }

    #[test]
    fn identifiers_round_trip_through_hex() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff, 0x10, 0xab, 0xcd];
        assert_eq!(unhex::<8>(&hex(&bytes)).unwrap(), bytes);
        assert!(unhex::<8>("zz").is_err());
        assert!(unhex::<1>("zz").is_err());
        assert!(unhex::<1>("é").is_err());
    }
}
