//! Opaque, stable identities: of a cabinet (what a host joins its own tables on) and of a
//! session (what a resident sees in the list of their sessions; never the session token).

use std::{fmt, str::FromStr};

use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};

/// Bytes of an identity (128 bits from the OS CSPRNG).
const ID_BYTES: usize = 16;
/// Characters of an identity's text form (lower-case hex).
const ID_CHARS: usize = 2 * ID_BYTES;

macro_rules! opaque_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; ID_BYTES]);

        impl $name {
            #[doc = concat!("A fresh random ", $what, " identity.")]
            #[must_use]
            pub fn generate() -> Self {
                let mut bytes = [0u8; ID_BYTES];
                OsRng.fill_bytes(&mut bytes);
                Self(bytes)
            }

            #[doc = concat!("The ", $what, " identity with these bytes (as a store keeps them).")]
            #[must_use]
            pub const fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
                Self(bytes)
            }

            /// The identity's bytes.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; ID_BYTES] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                for byte in self.0 {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(text: &str) -> Result<Self, InvalidId> {
                if text.len() != ID_CHARS {
                    return Err(InvalidId);
                }
                let mut bytes = [0u8; ID_BYTES];
                for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
                    let pair = std::str::from_utf8(pair).map_err(|_| InvalidId)?;
                    if !pair.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                        return Err(InvalidId);
                    }
                    *byte = u8::from_str_radix(pair, 16).map_err(|_| InvalidId)?;
                }
                Ok(Self(bytes))
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

opaque_id!(
    /// A cabinet's identity: opaque, stable for the cabinet's life, never the email, so a
    /// host can key its own tables on it and the email can change. Text form: 32 lower-case
    /// hex digits.
    ///
    /// ```
    /// use resident_auth::CabinetId;
    /// let id = CabinetId::generate();
    /// assert_eq!(id.to_string().parse::<CabinetId>(), Ok(id));
    /// assert!("not-an-id".parse::<CabinetId>().is_err());
    /// ```
    CabinetId,
    "cabinet"
);

opaque_id!(
    /// A session's public identity, shown in the list of a resident's sessions and used to
    /// end one. It is not the session token and grants nothing.
    SessionId,
    "session"
);

opaque_id!(
    /// A queued letter's identity: what operators and the delivery worker name it by.
    LetterId,
    "letter"
);

/// The text is not 32 lower-case hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("identity must be 32 lower-case hex digits")]
pub struct InvalidId;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_rejects_everything_else() {
        let id = CabinetId::from_bytes([0xab; ID_BYTES]);
        assert_eq!(id.to_string(), "ab".repeat(ID_BYTES));
        assert_eq!(id.to_string().parse::<CabinetId>(), Ok(id));
        for bad in [
            "",
            "AB".repeat(16).as_str(),
            "+b".repeat(16).as_str(),
            "ab".repeat(15).as_str(),
            "ж".repeat(16).as_str(),
        ] {
            assert_eq!(bad.parse::<CabinetId>(), Err(InvalidId), "{bad:?}");
        }
    }

    #[test]
    fn generated_identities_differ() {
        assert_ne!(SessionId::generate(), SessionId::generate());
    }

    #[test]
    fn serde_uses_the_text_form() {
        let id = CabinetId::from_bytes([1; ID_BYTES]);
        let json = serde_json::to_string(&id).unwrap_or_default();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<CabinetId>(&json).ok(), Some(id));
    }
}
