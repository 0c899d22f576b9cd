//! The JSON API of docs/contract.md §5, independent of any web framework.
//!
//! Each endpoint is a function taking the raw body and the headers' meaning and returning
//! an [`ApiResponse`]; its `#[utoipa::path]` attribute, beside the code, is what the
//! OpenAPI document ([`crate::openapi`]) is generated from.

use std::net::IpAddr;

use resident_auth::{
    AddressForm, AuthService, Authenticated, Error, Locale, Problem, RegistrationForm,
    RequestContext, UserError,
};

use crate::web::{bearer, Cookies, CsrfKey, Headers};
use secrecy::SecretString;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// What an endpoint answers: the framework turns it into its own response type with
/// [`ApiResponse::headers`] and [`ApiResponse::body_bytes`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body, if any (202 and 204 have none).
    pub body: Option<Value>,
    /// Seconds for a `Retry-After` header (429 answers).
    pub retry_after: Option<u64>,
    /// The `Allow` header of a 405.
    allow: Option<String>,
}

/// A request the API refuses before any operation reads it: the web framework's own
/// refusals, answered with the API's problem JSON like every other error
/// ([`ApiResponse::refusal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// 404 `request.not_found`: a path under the API's prefix that it does not have.
    NotFound,
    /// 405 `request.method_not_allowed`, with `Allow`: the path exists, for these methods.
    MethodNotAllowed {
        /// The methods the path answers, as the `Allow` header lists them (`GET, DELETE`).
        allow: String,
    },
    /// 408 `request.timeout`: the body did not arrive within the body timeout
    /// ([`crate::ConnectionLimits`]).
    TimedOut,
    /// 413 `request.too_large`: the body is longer than [`BODY_LIMIT`] bytes.
    TooLarge,
}

/// The largest request body the API reads, in bytes.
pub const BODY_LIMIT: usize = 64 * 1024;

impl ApiResponse {
    /// Every header of the answer: `Content-Type` when there is a body, `Retry-After`
    /// when given, and [`crate::web::API_HEADERS`].
    #[must_use]
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers: Vec<(&'static str, String)> = crate::web::API_HEADERS
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect();
        if self.body.is_some() {
            headers.push(("content-type", "application/json".to_owned()));
        }
        if let Some(seconds) = self.retry_after {
            headers.push(("retry-after", seconds.to_string()));
        }
        if let Some(allow) = &self.allow {
            headers.push(("allow", allow.clone()));
        }
        headers
    }

    /// The answer to a request refused before any operation read it, in `locale`.
    #[must_use]
    pub fn refusal(refusal: Refusal, locale: Locale) -> Self {
        let ru = locale == Locale::Ru;
        let (status, code, message) = match &refusal {
            Refusal::NotFound => (
                404,
                "request.not_found",
                if ru {
                    "Нет такого адреса API"
                } else {
                    "No such API endpoint"
                },
            ),
            Refusal::MethodNotAllowed { .. } => (
                405,
                "request.method_not_allowed",
                if ru {
                    "Этот адрес API не принимает такой метод"
                } else {
                    "This API endpoint does not take this method"
                },
            ),
            Refusal::TimedOut => (
                408,
                "request.timeout",
                if ru {
                    "Тело запроса не пришло вовремя"
                } else {
                    "The request body did not arrive in time"
                },
            ),
            Refusal::TooLarge => (
                413,
                "request.too_large",
                if ru {
                    "Тело запроса слишком велико"
                } else {
                    "The request body is too large"
                },
            ),
        };
        let mut answer = Self::request_problem(status, code, message.to_owned());
        if let Refusal::MethodNotAllowed { allow } = refusal {
            answer.allow = Some(allow);
        }
        answer
    }

    /// The body as sent (empty when there is none).
    #[must_use]
    pub fn body_bytes(&self) -> Vec<u8> {
        self.body
            .as_ref()
            .map(|body| serde_json::to_vec(body).unwrap_or_default())
            .unwrap_or_default()
    }

    fn status(status: u16) -> Self {
        Self {
            status,
            body: None,
            retry_after: None,
            allow: None,
        }
    }

    /// An answer whose body is one of the documented types, so the body always matches
    /// the schema the document publishes for it.
    pub(crate) fn typed(status: u16, body: &impl Serialize) -> Self {
        Self {
            status,
            // Plain structs of strings: serialisation cannot fail.
            body: Some(serde_json::to_value(body).unwrap_or(Value::Null)),
            retry_after: None,
            allow: None,
        }
    }

    /// 200 with a documented answer type.
    fn ok(body: &impl Serialize) -> Self {
        Self::typed(200, body)
    }

    /// The error answer: `{"errors":[{"field","code","message"}]}` in `locale`.
    #[must_use]
    pub fn from_error(error: &Error, locale: Locale) -> Self {
        let errors: Vec<ErrorItem> = match error {
            Error::Rejected(problems) => problems.iter().map(|p| item(p, locale)).collect(),
            Error::Unavailable(unavailable) => vec![item(unavailable, locale)],
            _ => vec![ErrorItem {
                field: None,
                code: "service.unavailable",
                message: "service unavailable".to_owned(),
            }],
        };
        Self {
            retry_after: error
                .retry_after()
                .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
            ..Self::typed(error.http_status(), &Errors { errors })
        }
    }

    pub(crate) fn request_problem(status: u16, code: &'static str, message: String) -> Self {
        Self::typed(
            status,
            &Errors {
                errors: vec![ErrorItem {
                    field: None,
                    code,
                    message,
                }],
            },
        )
    }

    /// 415: a body that does not say it is JSON.
    fn unsupported_media_type(locale: Locale) -> Self {
        let message = match locale {
            Locale::Ru => "Тело запроса должно быть JSON (Content-Type: application/json)",
            _ => "The request body must be JSON (Content-Type: application/json)",
        };
        Self::request_problem(415, "request.unsupported_media_type", message.to_owned())
    }

    fn malformed(reason: &str, locale: Locale) -> Self {
        let message = match locale {
            Locale::Ru => format!("Некорректный запрос: {reason}"),
            _ => format!("Malformed request: {reason}"),
        };
        Self::request_problem(422, "request.malformed", message)
    }
}

fn item(error: &dyn UserError, locale: Locale) -> ErrorItem {
    ErrorItem {
        field: error.field().map(|f| f.name()),
        code: error.code(),
        message: error.message(locale),
    }
}

/// `POST /api/registrations`: the registration form (journey 1).
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

use responses::{
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

/// The request context of an API call: language, client and browser.
pub type Context = RequestContext;

/// The API over one service, with what every framework's mounting shares: how clients are
/// told apart (trusted proxies), the cookies' names and flags, and the CSRF key.
///
/// ```
/// use resident_auth_http::{api::Api, client::ClientAddressing, web::CsrfKey};
/// # fn make(service: resident_auth::AuthService) {
/// let api = Api::new(service)
///     .with_secure_cookies(true)                       // served over https
///     .with_client_addressing(ClientAddressing::default())
///     .with_csrf_key(CsrfKey::new([7; 32]));           // the same on every instance
/// # let _ = api;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Api {
    service: AuthService,
    clients: crate::client::ClientAddressing,
    cookies: Cookies,
    csrf_key: CsrfKey,
    limits: crate::ConnectionLimits,
}

impl Api {
    /// The API of `service`: clients told apart by their socket address, cookies for plain
    /// http, a random CSRF key.
    #[must_use]
    pub fn new(service: AuthService) -> Self {
        Self {
            service,
            clients: crate::client::ClientAddressing::default(),
            cookies: Cookies::new(false),
            csrf_key: CsrfKey::random(),
            limits: crate::ConnectionLimits::default(),
        }
    }

    /// The connection limits the host serves with: the integrations' routes stop reading
    /// a body after its [`crate::ConnectionLimits::body_timeout`] whatever serves them.
    #[must_use]
    pub fn with_connection_limits(mut self, limits: crate::ConnectionLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The connection limits (to hand to the integration's serving helper).
    #[must_use]
    pub fn connection_limits(&self) -> crate::ConnectionLimits {
        self.limits
    }

    /// Clients told apart as `clients` says (trusted proxies, IPv6 prefix).
    #[must_use]
    pub fn with_client_addressing(mut self, clients: crate::client::ClientAddressing) -> Self {
        self.clients = clients;
        self
    }

    /// Cookies for a portal served over https: `Secure`, `__Host-` names (and HSTS on
    /// pages).
    #[must_use]
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.cookies = Cookies::new(secure);
        self
    }

    /// The key that signs CSRF tokens, shared by every instance of the portal.
    #[must_use]
    pub fn with_csrf_key(mut self, key: CsrfKey) -> Self {
        self.csrf_key = key;
        self
    }

    /// How clients are told apart.
    #[must_use]
    pub fn clients(&self) -> &crate::client::ClientAddressing {
        &self.clients
    }

    /// The cookies' names and flags.
    #[must_use]
    pub fn cookies(&self) -> Cookies {
        self.cookies
    }

    /// The key that signs CSRF tokens.
    #[must_use]
    pub fn csrf_key(&self) -> &CsrfKey {
        &self.csrf_key
    }

    /// The service behind the API (the HTML pages and the host's own handlers use it).
    #[must_use]
    pub fn service(&self) -> &AuthService {
        &self.service
    }

    /// The request context: language ([`crate::web::locale`]), the client's key for
    /// per-client limits (`peer`, or behind trusted proxies the forwarded address), and the
    /// browser.
    pub fn context(&self, headers: &(impl Headers + ?Sized), peer: Option<IpAddr>) -> Context {
        let client = self.clients.client_key(
            peer,
            headers.first("forwarded"),
            headers.first("x-forwarded-for"),
        );
        let mut context = RequestContext::new(crate::web::locale(headers));
        if let Some(client) = client {
            context = context.with_client(client);
        }
        if let Some(agent) = headers.first("user-agent") {
            context = context.with_user_agent(agent);
        }
        context
    }

    /// The signed-in resident of a request to the host's own handlers: the session of an
    /// `Authorization: Bearer` token, else of the session cookie. A request that may change
    /// something (`safe` false: not GET, HEAD or OPTIONS) is taken by its cookie only with
    /// the CSRF token in the [`crate::web::CSRF_HEADER`], so another site cannot make a
    /// resident's browser act.
    ///
    /// # Errors
    /// `session.invalid` (401) without a usable session; `password.change_required` (403)
    /// while a temporary password is in force; `service.unavailable` (503) when storage
    /// fails.
    pub async fn resident(
        &self,
        headers: &(impl Headers + ?Sized),
        safe: bool,
    ) -> Result<Authenticated, Error> {
        let token = match crate::web::bearer(headers.first("authorization")) {
            Some(token) => Some(token),
            None => crate::web::cookie(headers, self.cookies.session()).filter(|_| {
                safe || headers
                    .first(crate::web::CSRF_HEADER)
                    .is_some_and(|submitted| self.csrf_key.check(self.cookies, headers, submitted))
            }),
        };
        let session = self.service.authenticate(token.unwrap_or_default()).await?;
        if session.password_change_required {
            return Err(Problem::PasswordChangeRequired.into());
        }
        Ok(session)
    }
}

/// Reads a JSON body, or answers 422.
/// A request body with the `Content-Type` it came with. The API reads only
/// `application/json` (parameters such as `charset=utf-8` allowed): a body any web page can
/// send from its visitors' browsers without a CORS preflight (`text/plain`, form
/// encodings) is refused with 415 before anything happens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonBody<'a> {
    content_type: Option<&'a str>,
    bytes: &'a [u8],
}

impl<'a> JsonBody<'a> {
    /// The body `bytes`, sent with the `Content-Type` header value `content_type`.
    #[must_use]
    pub fn new(content_type: Option<&'a str>, bytes: &'a [u8]) -> Self {
        Self {
            content_type,
            bytes,
        }
    }

    /// Whether the media type is `application/json`.
    #[must_use]
    pub fn is_json(&self) -> bool {
        self.content_type.is_some_and(|value| {
            value
                .split(';')
                .next()
                .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
        })
    }
}

fn body<T: DeserializeOwned>(body: &JsonBody<'_>, locale: Locale) -> Result<T, ApiResponse> {
    if !body.is_json() {
        return Err(ApiResponse::unsupported_media_type(locale));
    }
    serde_json::from_slice(body.bytes).map_err(|e| {
        // serde's text names the missing field or the type problem, never a value.
        let reason = e.to_string();
        let reason = reason.split(" at line").next().unwrap_or("invalid JSON");
        ApiResponse::malformed(reason, locale)
    })
}

/// Authenticates the bearer token first, so an unauthenticated caller learns nothing
/// from the body's validity; answers 401 otherwise.
macro_rules! try_session {
    ($api:expr, $authorization:expr, $context:expr) => {{
        let token = bearer($authorization).unwrap_or_default();
        match $api.service.authenticate(token).await {
            Ok(session) => (token, session),
            Err(error) => return ApiResponse::from_error(&error, $context.locale),
        }
    }};
}

macro_rules! try_body {
    ($body:expr, $locale:expr) => {
        match body(&$body, $locale) {
            Ok(body) => body,
            Err(response) => return response,
        }
    };
}

pub(crate) mod own_data;

/// 200 with the cabinet's canonical email.
fn email_answer(email: impl std::fmt::Display) -> ApiResponse {
    ApiResponse::ok(&EmailAnswer {
        email: email.to_string(),
    })
}

fn answer<T>(
    result: Result<T, Error>,
    context: &Context,
    ok: impl FnOnce(T) -> ApiResponse,
) -> ApiResponse {
    match result {
        Ok(value) => ok(value),
        Err(error) => ApiResponse::from_error(&error, context.locale),
    }
}

/// Journey 1: register. A confirmation letter goes to the email.
#[utoipa::path(
    post,
    path = "/registrations",
    tag = "registration",
    params(Language),
    request_body = RegistrationRequest,
    responses(
        (status = 202, description = "A confirmation letter was sent"),
        BadInput, Conflict, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn register(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: RegistrationRequest = try_body!(body, context.locale);
    let form = RegistrationForm {
        surname: request.surname,
        account_number: request.account_number,
        email: request.email,
    };
    answer(api.service.register(&form, context).await, context, |()| {
        ApiResponse::status(202)
    })
}

/// Journey 2: confirm the email with the letter's link token.
#[utoipa::path(
    post,
    path = "/registrations/confirm",
    tag = "registration",
    params(Language),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Confirmed; activation is next", body = ActivationTokenAnswer),
        BadInput, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn confirm(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: TokenRequest = try_body!(body, context.locale);
    answer(
        api.service.confirm_email(&request.token).await,
        context,
        |token| {
            ApiResponse::ok(&ActivationTokenAnswer {
                activation_token: token.expose().to_owned(),
            })
        },
    )
}

/// Journey 3: activate with the premises number; the credentials letter is sent.
#[utoipa::path(
    post,
    path = "/registrations/activate",
    tag = "registration",
    params(Language),
    request_body = ActivationRequest,
    responses(
        (status = 200, description = "Activated; login and password were mailed", body = EmailAnswer),
        BadInput, Conflict, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn activate(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: ActivationRequest = try_body!(body, context.locale);
    let result = api
        .service
        .activate(&request.activation_token, &request.premises, context)
        .await;
    answer(result, context, email_answer)
}

/// Journey 4, first screen: the email in canonical form.
#[utoipa::path(
    post,
    path = "/login/identify",
    tag = "login",
    params(Language),
    request_body = EmailRequest,
    responses(
        (status = 200, description = "The email, canonical", body = EmailAnswer),
        BadInput, UnsupportedMediaType
    )
)]
pub(crate) async fn identify(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: EmailRequest = try_body!(body, context.locale);
    answer(api.service.identify(&request.email), context, email_answer)
}

/// Journey 4: log in with email and password.
#[utoipa::path(
    post,
    path = "/login",
    tag = "login",
    params(Language),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A new session", body = SessionTokenAnswer),
        BadInput, Unauthorized, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn login(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: LoginRequest = try_body!(body, context.locale);
    let result = api
        .service
        .login(&request.email, request.password, context)
        .await;
    answer(result, context, |logged_in| {
        ApiResponse::ok(&SessionTokenAnswer {
            session_token: logged_in.session_token.expose().to_owned(),
            cabinet_id: logged_in.cabinet.to_string(),
            password_change_required: logged_in.password_change_required,
        })
    })
}

/// Journey 5: the cabinet behind the session.
#[utoipa::path(
    get,
    path = "/session",
    tag = "session",
    params(Language),
    security(("session" = [])),
    responses(
        (status = 200, description = "The cabinet and its accounts", body = CabinetAnswer),
        Unauthorized, PasswordChangeRequired, Unavailable
    )
)]
pub(crate) async fn session(
    api: &Api,
    authorization: Option<&str>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    answer(api.service.cabinet(&session).await, context, |cabinet| {
        let accounts = cabinet
            .accounts
            .iter()
            .map(|a| AccountAnswer {
                account_number: a.account_number.to_string(),
                address: a.address.clone(),
                premises: a.premises.as_ref().map(ToString::to_string),
            })
            .collect();
        ApiResponse::ok(&CabinetAnswer {
            cabinet_id: cabinet.cabinet.to_string(),
            email: cabinet.email.to_string(),
            accounts,
            active_account: cabinet.active_account.as_ref().map(ToString::to_string),
        })
    })
}

/// Journey 7: switch the session to another account of the cabinet.
#[utoipa::path(
    post,
    path = "/session/active-account",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = SelectAccountRequest,
    responses(
        (status = 200, description = "Switched", body = ActiveAccountAnswer),
        BadInput, Unauthorized, PasswordChangeRequired, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn select_account(
    api: &Api,
    authorization: Option<&str>,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: SelectAccountRequest = try_body!(body, context.locale);
    let result = api
        .service
        .select_account(&session, &request.account_number)
        .await;
    answer(result, context, |()| {
        ApiResponse::ok(&ActiveAccountAnswer {
            active_account: request.account_number.trim().to_owned(),
        })
    })
}

/// Ends the session.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "session",
    params(Language),
    security(("session" = [])),
    responses(
        (status = 204, description = "The session is over"),
        Unauthorized, Unavailable
    )
)]
pub(crate) async fn logout(
    api: &Api,
    authorization: Option<&str>,
    context: &Context,
) -> ApiResponse {
    let (token, _) = try_session!(api, authorization, context);
    answer(api.service.logout(token).await, context, |()| {
        ApiResponse::status(204)
    })
}

/// Journey 6: ask for a recovery link. The answer is the same whether or not the email
/// has a cabinet.
#[utoipa::path(
    post,
    path = "/recovery",
    tag = "recovery",
    params(Language),
    request_body = EmailRequest,
    responses(
        (status = 202, description = "If the email has a cabinet, a recovery letter was sent"),
        BadInput, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn request_recovery(
    api: &Api,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let request: EmailRequest = try_body!(body, context.locale);
    let result = api.service.request_recovery(&request.email, context).await;
    answer(result, context, |()| ApiResponse::status(202))
}

/// Journey 6: follow the recovery link; new credentials are mailed.
#[utoipa::path(
    post,
    path = "/recovery/complete",
    tag = "recovery",
    params(Language),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A new password was mailed", body = EmailAnswer),
        BadInput, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn complete_recovery(
    api: &Api,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let request: TokenRequest = try_body!(body, context.locale);
    let result = api.service.complete_recovery(&request.token, context).await;
    answer(result, context, email_answer)
}

/// Journey 7: add another account to the signed-in cabinet (a confirmation letter goes
/// to the cabinet's email).
#[utoipa::path(
    post,
    path = "/addresses",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = AddressRequest,
    responses(
        (status = 202, description = "A confirmation letter was sent"),
        BadInput, Unauthorized, PasswordChangeRequired, Conflict, Throttled, Unavailable,
        UnsupportedMediaType
    )
)]
pub(crate) async fn add_address(
    api: &Api,
    authorization: Option<&str>,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: AddressRequest = try_body!(body, context.locale);
    let form = AddressForm {
        surname: request.surname,
        account_number: request.account_number,
    };
    let result = api.service.add_address(&session, &form, context).await;
    answer(result, context, |()| ApiResponse::status(202))
}

/// Journey 8: change the password. Every other session ends; this one lives on; the
/// notice "Пароль изменён" is mailed.
#[utoipa::path(
    post,
    path = "/password",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = PasswordChangeRequest,
    responses(
        (status = 204, description = "Changed; every other session ended"),
        BadInput, Unauthorized, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn change_password(
    api: &Api,
    authorization: Option<&str>,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: PasswordChangeRequest = try_body!(body, context.locale);
    let result = api
        .service
        .change_password(
            &session,
            request.current_password,
            request.new_password,
            context,
        )
        .await;
    answer(result, context, |()| ApiResponse::status(204))
}

/// Journey 9: the cabinet's live sessions.
#[utoipa::path(
    get,
    path = "/sessions",
    tag = "session",
    params(Language),
    security(("session" = [])),
    responses(
        (status = 200, description = "The live sessions, the asking one first", body = SessionsAnswer),
        Unauthorized, Unavailable
    )
)]
pub(crate) async fn sessions(
    api: &Api,
    authorization: Option<&str>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    answer(api.service.sessions(&session).await, context, |list| {
        let sessions = list
            .into_iter()
            .map(|s| SessionAnswer {
                id: s.id.to_string(),
                created_at: s.created_at.to_string(),
                last_used: s.last_used.to_string(),
                client: s.client,
                current: s.current,
            })
            .collect();
        ApiResponse::ok(&SessionsAnswer { sessions })
    })
}

/// A session's identity in a path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
// Read only by utoipa: the document's parameters.
#[allow(dead_code)]
pub(crate) struct SessionPath {
    /// The session's `id` from `GET /api/sessions`.
    #[param(example = "0f1e2d3c4b5a69788796a5b4c3d2e1f0")]
    pub id: String,
}

/// Journey 9: end one session of the cabinet (the asking one included: a logout).
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    tag = "session",
    params(SessionPath, Language),
    security(("session" = [])),
    responses(
        (status = 204, description = "The session is over"),
        Unauthorized, SessionNotFound, Unavailable
    )
)]
pub(crate) async fn end_session(
    api: &Api,
    authorization: Option<&str>,
    session_id: &str,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let result = api.service.end_session(&session, session_id).await;
    answer(result, context, |()| ApiResponse::status(204))
}

/// Journey 9: end every session of the cabinet but the asking one.
#[utoipa::path(
    delete,
    path = "/sessions/others",
    tag = "session",
    params(Language),
    security(("session" = [])),
    responses(
        (status = 200, description = "The other sessions are over", body = EndedAnswer),
        Unauthorized, Unavailable
    )
)]
pub(crate) async fn end_other_sessions(
    api: &Api,
    authorization: Option<&str>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    answer(
        api.service.end_other_sessions(&session).await,
        context,
        |ended| ApiResponse::ok(&EndedAnswer { ended }),
    )
}

/// An HTTP method of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `POST`
    Post,
    /// `DELETE`
    Delete,
}

impl Method {
    /// The method's name, upper-case.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }
}

/// One operation of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// `POST /registrations`: journey 1, a confirmation letter.
    Register,
    /// `POST /registrations/confirm`: the confirmation link, an activation token.
    Confirm,
    /// `POST /registrations/activate`: the premises number, the credentials letter.
    Activate,
    /// `POST /login/identify`: the email step of the login.
    Identify,
    /// `POST /login`: email and password, a session token.
    Login,
    /// `GET /session`: the signed-in cabinet.
    Session,
    /// `POST /session/active-account`: another personal account selected.
    SelectAccount,
    /// `POST /logout`: this session ended.
    Logout,
    /// `POST /recovery`: a recovery letter, if the email has a cabinet.
    RequestRecovery,
    /// `POST /recovery/complete`: the recovery link, a new password by mail.
    CompleteRecovery,
    /// `POST /addresses`: one more personal account in the cabinet.
    AddAddress,
    /// `POST /password`: the current password and a new one.
    ChangePassword,
    /// `GET /sessions`: the cabinet's live sessions.
    Sessions,
    /// `DELETE /sessions/{id}`: one session ended.
    EndSession,
    /// `DELETE /sessions/others`: every other session ended.
    EndOtherSessions,
    /// `POST /cabinet/export`: the cabinet's data, after the current password.
    ExportOwnData,
    /// `POST /cabinet/close`: the cabinet erased, after the current password and a
    /// confirmation.
    CloseCabinet,
}

/// A route of the API: where an operation is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path below the API's prefix (`/login`), `{id}` for [`Operation::EndSession`]'s
    /// parameter — the syntax axum and actix-web both read.
    pub path: &'static str,
    /// What it does.
    pub operation: Operation,
}

const fn route(method: Method, path: &'static str, operation: Operation) -> Route {
    Route {
        method,
        path,
        operation,
    }
}

/// Every route of the API, in the order of the journeys; framework adapters mount each
/// under the host's prefix and call [`handle`]. `/sessions/others` comes before
/// `/sessions/{id}` for routers that match in order. The OpenAPI document
/// ([`crate::openapi`], served at [`crate::openapi::DOCUMENT_PATH`]) lists exactly these
/// (a test holds them together).
pub const ROUTES: [Route; 17] = [
    route(Method::Post, "/registrations", Operation::Register),
    route(Method::Post, "/registrations/confirm", Operation::Confirm),
    route(Method::Post, "/registrations/activate", Operation::Activate),
    route(Method::Post, "/login/identify", Operation::Identify),
    route(Method::Post, "/login", Operation::Login),
    route(Method::Get, "/session", Operation::Session),
    route(
        Method::Post,
        "/session/active-account",
        Operation::SelectAccount,
    ),
    route(Method::Post, "/logout", Operation::Logout),
    route(Method::Post, "/recovery", Operation::RequestRecovery),
    route(
        Method::Post,
        "/recovery/complete",
        Operation::CompleteRecovery,
    ),
    route(Method::Post, "/addresses", Operation::AddAddress),
    route(Method::Post, "/password", Operation::ChangePassword),
    route(Method::Get, "/sessions", Operation::Sessions),
    route(
        Method::Delete,
        "/sessions/others",
        Operation::EndOtherSessions,
    ),
    route(Method::Delete, "/sessions/{id}", Operation::EndSession),
    route(Method::Post, "/cabinet/export", Operation::ExportOwnData),
    route(Method::Post, "/cabinet/close", Operation::CloseCabinet),
];

/// What an operation reads of a request besides its headers.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Incoming<'a> {
    /// The socket peer's address (the client, or the nearest proxy).
    pub peer: Option<IpAddr>,
    /// The path's `{id}`, for [`Operation::EndSession`].
    pub id: Option<&'a str>,
    /// The request body.
    pub body: &'a [u8],
}

impl<'a> Incoming<'a> {
    /// A request from `peer` with `body`.
    #[must_use]
    pub fn new(peer: Option<IpAddr>, body: &'a [u8]) -> Self {
        Self {
            peer,
            id: None,
            body,
        }
    }

    /// With the path's `{id}`.
    #[must_use]
    pub fn with_id(mut self, id: &'a str) -> Self {
        self.id = Some(id);
        self
    }
}

/// Answers one request to `operation`: the one function every framework's routes call.
/// Records the request's duration by route, method and status
/// ([`resident_auth::metrics::HTTP_REQUEST_DURATION`]).
pub async fn handle(
    api: &Api,
    operation: Operation,
    headers: &(impl Headers + ?Sized),
    incoming: Incoming<'_>,
) -> ApiResponse {
    let started = std::time::Instant::now();
    let response = dispatch(api, operation, headers, incoming).await;
    if let Some(route) = ROUTES.iter().find(|route| route.operation == operation) {
        resident_auth::metrics::http_request(
            route.path,
            route.method.as_str(),
            response.status,
            started.elapsed(),
        );
    }
    response
}

async fn dispatch(
    api: &Api,
    operation: Operation,
    headers: &(impl Headers + ?Sized),
    incoming: Incoming<'_>,
) -> ApiResponse {
    let context = api.context(headers, incoming.peer);
    let body = JsonBody::new(headers.first("content-type"), incoming.body);
    let authorization = headers.first("authorization");
    match operation {
        Operation::Register => register(api, body, &context).await,
        Operation::Confirm => confirm(api, body, &context).await,
        Operation::Activate => activate(api, body, &context).await,
        Operation::Identify => identify(api, body, &context).await,
        Operation::Login => login(api, body, &context).await,
        Operation::Session => session(api, authorization, &context).await,
        Operation::SelectAccount => select_account(api, authorization, body, &context).await,
        Operation::Logout => logout(api, authorization, &context).await,
        Operation::RequestRecovery => request_recovery(api, body, &context).await,
        Operation::CompleteRecovery => complete_recovery(api, body, &context).await,
        Operation::AddAddress => add_address(api, authorization, body, &context).await,
        Operation::ChangePassword => change_password(api, authorization, body, &context).await,
        Operation::Sessions => sessions(api, authorization, &context).await,
        Operation::EndSession => {
            end_session(
                api,
                authorization,
                incoming.id.unwrap_or_default(),
                &context,
            )
            .await
        }
        Operation::EndOtherSessions => end_other_sessions(api, authorization, &context).await,
        Operation::ExportOwnData => {
            own_data::export_own_data(api, authorization, body, &context).await
        }
        Operation::CloseCabinet => {
            own_data::close_cabinet(api, authorization, body, &context).await
        }
    }
}

/// The answer for a path the API does not have ([`Refusal::NotFound`]).
#[must_use]
pub fn not_found(locale: Locale) -> ApiResponse {
    ApiResponse::refusal(Refusal::NotFound, locale)
}

/// Whether an error is the one a caller must see as "log in again".
#[must_use]
pub fn is_session_problem(error: &Error) -> bool {
    error.is(&Problem::SessionInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_problem_json_with_their_headers() {
        for (refusal, status, code) in [
            (Refusal::NotFound, 404, "request.not_found"),
            (
                Refusal::MethodNotAllowed {
                    allow: "POST".to_owned(),
                },
                405,
                "request.method_not_allowed",
            ),
            (Refusal::TimedOut, 408, "request.timeout"),
            (Refusal::TooLarge, 413, "request.too_large"),
        ] {
            for locale in [Locale::Ru, Locale::En] {
                let answer = ApiResponse::refusal(refusal.clone(), locale);
                assert_eq!(answer.status, status);
                let body: Value = serde_json::from_slice(&answer.body_bytes()).unwrap();
                assert_eq!(body["errors"][0]["code"], code);
                assert!(body["errors"][0]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()));
                let headers = answer.headers();
                assert!(headers.contains(&("content-type", "application/json".to_owned())));
                assert_eq!(
                    headers
                        .iter()
                        .any(|(name, value)| *name == "allow" && value == "POST"),
                    status == 405
                );
            }
        }
    }

    #[test]
    fn errors_become_the_contract_body() {
        let error = Error::Rejected(vec![
            Problem::Surname(resident_auth::errors::SurnameError::Initials),
            Problem::LoginThrottled {
                retry_after: std::time::Duration::from_millis(1500),
            },
        ]);
        let response = ApiResponse::from_error(&error, Locale::Ru);
        assert_eq!(response.status, 422);
        assert_eq!(response.retry_after, Some(2));
        let body = response.body.unwrap();
        assert_eq!(body["errors"][0]["field"], "surname");
        assert_eq!(body["errors"][0]["code"], "surname.initials");
        assert_eq!(
            body["errors"][0]["message"],
            "Фамилия вводится без инициалов"
        );
        assert_eq!(body["errors"][1]["field"], Value::Null);
    }
}
