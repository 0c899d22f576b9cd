//! The API's request and answer bodies and its documented error answers, as the OpenAPI
//! document names them.

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RegistrationRequest {
    /// Surname without initials, as registered on the account.
    #[schema(example = "Иванов")]
    pub surname: String,
    /// The 13-digit personal account number; spaces and hyphens are ignored.
    #[schema(example = "7800000000001")]
    pub account_number: String,
    /// The email that becomes the login.
    #[schema(example = "resident@example.org")]
    pub email: String,
}

/// `POST /api/addresses`: another account for the signed-in cabinet (journey 7).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct AddressRequest {
    /// Surname without initials, as registered on the account.
    #[schema(example = "Иванов")]
    pub surname: String,
    /// The 13-digit personal account number to add.
    #[schema(example = "7800000000002")]
    pub account_number: String,
}

/// A link token from a letter (confirmation or recovery).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct TokenRequest {
    /// The `token` query parameter of the letter's link.
    #[schema(example = "q2dFm0yJm5Hc0fSxQ5pR8sW1vZ3bN6tK7uE4aL9cXyA")]
    pub token: String,
}

/// `POST /api/registrations/activate` (journey 3).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ActivationRequest {
    /// The token from the confirmation step.
    pub activation_token: String,
    /// The premises number: `12`, `123П`, `123/456П`, `2Н`.
    #[schema(example = "12")]
    pub premises: String,
}

/// An email, for identification and recovery.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct EmailRequest {
    /// The email as typed.
    #[schema(example = "resident@example.org")]
    pub email: String,
}

/// `POST /api/login` (journey 4).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct LoginRequest {
    /// The cabinet's email.
    #[schema(example = "resident@example.org")]
    pub email: String,
    /// The password from the letter.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// `POST /api/password` (journey 8).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PasswordChangeRequest {
    /// The password in force (from the letter, or chosen earlier).
    #[schema(value_type = String, format = Password)]
    pub current_password: SecretString,
    /// The new password: 15 to 256 characters, any Unicode; not a common password, not
    /// containing the email's local part.
    #[schema(value_type = String, format = Password)]
    pub new_password: SecretString,
}

/// `POST /api/session/active-account`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct SelectAccountRequest {
    /// One of the cabinet's account numbers.
    #[schema(example = "7800000000001")]
    pub account_number: String,
}

/// The answer to a confirmation: the token that activation needs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActivationTokenAnswer {
    /// Pass it to `POST /api/registrations/activate`.
    pub activation_token: String,
}

/// An answer naming a cabinet by its canonical email.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EmailAnswer {
    /// Trimmed, lowercase, Unicode domain.
    #[schema(example = "resident@example.org")]
    pub email: String,
}

/// A successful login.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionTokenAnswer {
    /// The bearer token for the session's requests.
    pub session_token: String,
    /// The cabinet's opaque, stable identity (32 hex digits), never the email.
    pub cabinet_id: String,
    /// The mailed password is temporary: `POST /api/password` before anything else.
    pub password_change_required: bool,
}

/// One session of the cabinet.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionAnswer {
    /// The session's public identity (32 hex digits), not its token.
    #[schema(example = "0f1e2d3c4b5a69788796a5b4c3d2e1f0")]
    pub id: String,
    /// Login time, RFC 3339 (UTC).
    #[schema(example = "2026-11-27T09:15:00Z")]
    pub created_at: String,
    /// Last use, RFC 3339 (UTC), to within a minute.
    #[schema(example = "2026-11-27T09:41:00Z")]
    pub last_used: String,
    /// Browser, system and client address at login, when known.
    #[schema(example = "Firefox on Linux, 203.0.113.7", required = true)]
    pub client: Option<String>,
    /// Whether this is the session that asked.
    pub current: bool,
}

/// The cabinet's live sessions, the asking one first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionsAnswer {
    /// Live sessions: the asking one first, then the most recently used.
    pub sessions: Vec<SessionAnswer>,
}

/// How many sessions ended.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndedAnswer {
    /// Live sessions ended.
    pub ended: u64,
}

/// One account of a cabinet.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountAnswer {
    /// 13 digits.
    #[schema(example = "7800000000001")]
    pub account_number: String,
    /// The address from the directory (empty if the directory no longer has it).
    pub address: String,
    /// The premises in canonical form, if the directory has it.
    #[schema(example = "12", required = true)]
    pub premises: Option<String>,
}

/// The cabinet behind a session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CabinetAnswer {
    /// The cabinet's opaque, stable identity (32 hex digits), never the email.
    pub cabinet_id: String,
    /// The cabinet's email.
    pub email: String,
    /// Linked accounts, in the order they were added.
    pub accounts: Vec<AccountAnswer>,
    /// The selected account.
    #[schema(required = true)]
    pub active_account: Option<String>,
}

/// The answer to an account switch.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ActiveAccountAnswer {
    /// The account now selected.
    pub active_account: String,
}

/// One problem with a request.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorItem {
    /// The form field it concerns (`surname`, `account_number`, `email`, `premises`,
    /// `password`, `current_password`, `new_password`, `session_id`), or null for the
    /// request as a whole.
    #[schema(example = "premises", required = true)]
    pub field: Option<&'static str>,
    /// Stable code, e.g. `premises.unknown_letter`.
    #[schema(example = "premises.unknown_letter")]
    pub code: &'static str,
    /// Message for the resident, in the request's language.
    pub message: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Errors {
    /// Every problem found, in form order.
    pub errors: Vec<ErrorItem>,
}

/// The error answers the API documents, one reusable response each.
pub(crate) mod responses {
    use utoipa::IntoResponses;

    use super::Errors;

    /// The input is malformed or rejected; `errors` says why, field by field.
    #[derive(IntoResponses)]
    #[response(status = 422)]
    pub struct BadInput(#[allow(dead_code)] Errors);

    /// Wrong credentials, or a missing, unknown or expired session.
    #[derive(IntoResponses)]
    #[response(status = 401)]
    pub struct Unauthorized(#[allow(dead_code)] Errors);

    /// Already registered or linked: recover the password instead.
    #[derive(IntoResponses)]
    #[response(status = 409)]
    pub struct Conflict(#[allow(dead_code)] Errors);

    /// Too many attempts; retry after the `Retry-After` seconds.
    #[derive(IntoResponses)]
    #[response(
        status = 429,
        headers(("Retry-After" = u64, description = "Seconds until the next attempt may succeed"))
    )]
    pub struct Throttled(#[allow(dead_code)] Errors);

    /// Mail or storage is unavailable, or password hashing is busy; the request may be
    /// retried as it is (after `Retry-After` seconds when given).
    #[derive(IntoResponses)]
    #[response(
        status = 503,
        headers(("Retry-After" = u64, description = "Seconds to wait, when known"))
    )]
    pub struct Unavailable(#[allow(dead_code)] Errors);

    /// The body is not `application/json`.
    #[derive(IntoResponses)]
    #[response(status = 415)]
    pub struct UnsupportedMediaType(#[allow(dead_code)] Errors);

    /// The mailed password is temporary: choose a password (`POST /api/password`) first.
    #[derive(IntoResponses)]
    #[response(status = 403)]
    pub struct PasswordChangeRequired(#[allow(dead_code)] Errors);

    /// No live session of this cabinet has that identity.
    #[derive(IntoResponses)]
    #[response(status = 404)]
    pub struct SessionNotFound(#[allow(dead_code)] Errors);
}

pub(crate) use responses::{
    BadInput, Conflict, PasswordChangeRequired, SessionNotFound, Throttled, Unauthorized,
    Unavailable, UnsupportedMediaType,
};

/// The language of messages: `Accept-Language` (Russian by default).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Header)]
// Read only by utoipa: the document's parameters.
#[allow(dead_code)]
pub(crate) struct Language {
    /// `ru` or `en`, with the usual quality values; Russian when absent or unknown.
    #[param(rename = "Accept-Language", value_type = String, required = false, example = "en")]
    pub accept_language: Option<String>,
}
