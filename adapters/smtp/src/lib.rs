//! Mail for [`resident_auth`]: the [`Mailer`](resident_auth::mail::Mailer) port over SMTP, and an
//! outbox that writes each letter as an RFC 5322 `.eml` file (the embedded default).
//!
//! | mailer | sends to | use |
//! |---|---|---|
//! | [`SmtpMailer`] | an SMTP server: plain, STARTTLS or implicit TLS, optional AUTH | production |
//! | [`OutboxMailer`] | one `.eml` file per letter in a folder | development, demos |
//!
//! Both send exactly what [`build_message`] makes of a [`Letter`](resident_auth::letters::Letter):
//! multipart text + HTML, UTF-8, subject encoded per RFC 2047, the recipient's domain in
//! its ASCII (punycode) form.
//!
//! ```
//! use resident_auth_smtp::SmtpConfig;
//! let config: SmtpConfig = "smtp://user:secret@mail.example.org:587?tls=starttls".parse()?;
//! assert_eq!(config.port, 587);
//! assert!(!format!("{config:?}").contains("secret"));
//! # Ok::<(), resident_auth_smtp::SmtpConfigError>(())
//! ```
#![forbid(unsafe_code)]
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

mod message;
mod outbox;
mod smtp;

pub use message::{build_message, default_sender};
pub use outbox::{OutboxLetter, OutboxMailer, OutboxReadError};
pub use smtp::{Security, SmtpConfig, SmtpConfigError, SmtpMailer};

/// The crate's README, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
