//! Fuzzes the mail queue key's parsers: no panic on any text or bytes; a key's base64 text
//! is accepted exactly when its bytes are; a refusal says how to make a key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resident_auth::mail::{InvalidMailQueueKey, MailQueueKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(error) = MailQueueKey::from_base64(text) {
            assert!(error.to_string().contains("openssl rand -base64 32"));
        }
    }
    if let Ok(bytes) = <[u8; 32]>::try_from(data) {
        use base64::Engine as _;
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        let from_bytes = MailQueueKey::from_bytes(&bytes).err();
        let from_text = MailQueueKey::from_base64(&text).err();
        assert_eq!(from_bytes, from_text);
        assert_ne!(from_text, Some(InvalidMailQueueKey::Malformed));
    }
});
