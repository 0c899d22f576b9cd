//! Generated secrets: link and session tokens, passwords, and password hashes.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use rand::{rngs::OsRng, Rng, RngCore};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Bytes of entropy in a token (256 bits).
const TOKEN_BYTES: usize = 32;
/// Characters of a token's URL-safe base64 form.
const TOKEN_CHARS: usize = 43;

/// An opaque token for a link or a session: 256 bits from the OS CSPRNG, URL-safe base64.
///
/// Only its [`TokenHash`] is ever stored. `Debug` shows nothing of it.
#[derive(Clone)]
pub struct Token(SecretString);

impl Token {
    /// A fresh token from the operating system's CSPRNG.
    #[must_use]
    pub fn generate() -> Self {
        let mut bytes = [0u8; TOKEN_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Token(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Reads a token a user brought back (from a link, a cookie, a header). Anything that
    /// is not 43 URL-safe base64 characters cannot be one of ours, so `None` saves the
    /// store a lookup.
    #[must_use]
    pub fn from_user(text: &str) -> Option<Self> {
        let text = text.trim();
        let well_formed = text.len() == TOKEN_CHARS
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| Token(SecretString::from(text.to_owned())))
    }

    /// The token's text, for a link or a response body.
    #[must_use]
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The hash the store keeps in place of the token.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.expose_secret().as_bytes()).into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// SHA-256 of a token: what stores keep and look up. A plain hash suffices because tokens
/// carry 256 bits of entropy; no one can guess a preimage.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The raw digest, for storage.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Rebuilds a hash read back from storage.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, ..] = self.0;
        write!(f, "TokenHash({a:02x}{b:02x}{c:02x}{d:02x}…)")
    }
}

/// Password alphabet without look-alikes (0/O, 1/l/I): 56 characters, 5.8 bits each.
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
/// Characters in a generated password: 16 × log2(56) ≈ 92.9 bits of entropy.
pub const GENERATED_PASSWORD_CHARS: usize = 16;

/// A new password for a cabinet: 16 characters from the OS CSPRNG over an alphabet with no
/// ambiguous characters (≈ 93 bits). It exists only inside `secrecy` types.
#[must_use]
pub fn generate_password() -> SecretString {
    let mut rng = OsRng;
    let password: String = (0..GENERATED_PASSWORD_CHARS)
        .map(|_| {
            let index = rng.gen_range(0..PASSWORD_ALPHABET.len());
            char::from(PASSWORD_ALPHABET.get(index).copied().unwrap_or(b'x'))
        })
        .collect();
    SecretString::from(password)
}

/// An argon2id hash in PHC string format (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
///
/// Not a secret in itself, but an offline guessing target: `Debug` redacts it and it has
/// no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct HashedPassword(String);

impl HashedPassword {
    /// Wraps a PHC string read from storage. It is checked when a password is verified.
    #[must_use]
    pub fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for storage.
    #[must_use]
    pub fn as_phc(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for HashedPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashedPassword([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_url_safe_and_hashed() {
        let token = Token::generate();
        assert_eq!(token.expose().len(), TOKEN_CHARS);
        assert!(Token::from_user(token.expose()).is_some());
        assert_eq!(
            Token::from_user(token.expose()).unwrap().hash(),
            token.hash()
        );
        assert_ne!(Token::generate().hash(), token.hash());
        assert!(!format!("{token:?}").contains(token.expose()));
        assert!(Token::from_user("short").is_none());
        assert!(Token::from_user(&"+".repeat(TOKEN_CHARS)).is_none());
    }

    #[test]
    fn generated_passwords_avoid_ambiguous_characters() {
        for _ in 0..200 {
            let password = generate_password();
            let text = password.expose_secret();
            assert_eq!(text.chars().count(), GENERATED_PASSWORD_CHARS);
            assert!(!text.contains(['0', 'O', '1', 'l', 'I']));
        }
        let bits = GENERATED_PASSWORD_CHARS as f64 * (PASSWORD_ALPHABET.len() as f64).log2();
        assert!(bits >= 64.0, "{bits}");
        let password = generate_password();
        assert!(!format!("{password:?}").contains(password.expose_secret()));
    }

    #[test]
    fn debug_redacts_password_hashes() {
        let hash = HashedPassword::from_phc("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
        assert_eq!(format!("{hash:?}"), "HashedPassword([redacted])");
    }
}

#[cfg(test)]
mod trait_forms {
    use super::*;

    /// What stores keep, and what `Debug` shows (mutation testing found them unchecked).
    #[test]
    fn token_hashes_round_trip_and_debug_shows_a_prefix_only() {
        let token = Token::generate();
        assert_eq!(format!("{token:?}"), "Token([redacted])");
        let hash = token.hash();
        let digest: [u8; 32] = Sha256::digest(token.expose().as_bytes()).into();
        assert_eq!(hash.as_bytes(), &digest);
        assert_eq!(TokenHash::from_bytes(*hash.as_bytes()), hash);
        let shown = format!("{hash:?}");
        let prefix: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        assert_eq!(shown, format!("TokenHash({prefix}…)"));
    }
}
