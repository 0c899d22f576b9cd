//! The JSON API of docs/contract.md §5, independent of any web framework.
//!
//! Each endpoint is a function taking the raw body and the headers' meaning and returning
//! an [`ApiResponse`]; its `#[utoipa::path]` attribute, beside the code, is what the
//! OpenAPI document ([`document`]) is generated from.

use std::net::IpAddr;

use resident_auth::{
    errors::Explain,
    journeys::{AddressForm, RegistrationForm},
    AuthService, Error, ErrorKind, Locale, RequestContext,
};

use crate::{
    integration::{
        operations, Headers, Incoming, Method, Refusal, Response, Route, Surface, Target,
    },
    web::{bearer, Cookies, CsrfKey},
};
use bytes::Bytes;
use serde::{de::DeserializeOwned, Serialize};
use std::time::Duration;
use utoipa::IntoParams;

/// What an endpoint answers, turned into an [`http::Response`] once
/// ([`ApiResponse::into_response`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiResponse {
    /// HTTP status.
    pub(crate) status: u16,
    /// The JSON body, serialised, if any (202 and 204 have none).
    pub(crate) body: Option<Bytes>,
    /// Seconds for a `Retry-After` header (429 answers).
    pub(crate) retry_after: Option<u64>,
    /// The `Allow` header of a 405.
    allow: Option<String>,
}

impl ApiResponse {
    /// Every header of the answer: `Content-Type` when there is a body, `Retry-After`
    /// when given, and [`crate::web::API_HEADERS`].
    fn headers(&self) -> Vec<(&'static str, String)> {
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
    pub(crate) fn refusal(refusal: Refusal, locale: Locale) -> Self {
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

    /// The answer as sent.
    pub(crate) fn into_response(self) -> Response {
        let headers = self.headers();
        crate::integration::response(self.status, headers, self.body.unwrap_or_default())
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
            body: Some(serde_json::to_vec(body).unwrap_or_default().into()),
            retry_after: None,
            allow: None,
        }
    }

    /// 200 with a documented answer type.
    fn ok(body: &impl Serialize) -> Self {
        Self::typed(200, body)
    }

    /// The error answer: `{"errors":[{"field","code","message"}]}` in `locale`.
    pub(crate) fn from_error(error: &Error, locale: Locale) -> Self {
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
            ..Self::typed(status(error), &Errors { errors })
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

/// The HTTP status of a library error (docs/contract.md §5): its kind's.
pub(crate) fn status(error: &Error) -> u16 {
    match error.kind() {
        ErrorKind::Conflict => 409,
        ErrorKind::Throttled => 429,
        ErrorKind::Unauthenticated => 401,
        ErrorKind::Forbidden => 403,
        ErrorKind::NotFound => 404,
        ErrorKind::Unavailable => 503,
        _ => 422,
    }
}

fn item(error: &dyn Explain, locale: Locale) -> ErrorItem {
    ErrorItem {
        field: error.field().map(|f| f.name()),
        code: error.code(),
        message: error.message(locale),
    }
}

/// `POST /api/registrations`: the registration form (journey 1).
mod document;
mod schema;
pub(crate) use schema::*;

/// The request context of an API call: language, client and browser.
pub(crate) type Context = RequestContext;

/// The API over one service, with what every framework's mounting shares: how clients are
/// told apart (trusted proxies), the cookies' names and flags, and the CSRF key.
///
/// ```
/// use resident_auth_http::{Api, ClientAddressing, CsrfKey};
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
    /// The API's OpenAPI document as JSON, its paths under `prefix` (`"/api"`, or `""` at
    /// the root): what it serves at `{prefix}`[`DOCUMENT_PATH`](crate::integration::DOCUMENT_PATH).
    ///
    /// ```
    /// let document = resident_auth_http::Api::openapi_json("/api");
    /// assert!(document.contains("\"/api/login\""));
    /// ```
    #[must_use]
    pub fn openapi_json(prefix: &str) -> String {
        document::document_json(prefix)
    }

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
    pub(crate) fn cookies(&self) -> Cookies {
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

    /// The request context: language (the `lang` cookie, else `Accept-Language`), the client's key for
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

pub(crate) mod email_change;
mod journeys;
pub(crate) mod own_data;
pub(crate) use journeys::*;

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

operations! {
/// One operation of the API.
pub(crate) enum Operation {
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
    /// `POST /cabinet/email`: a change of the cabinet's email asked for, after the current
    /// password.
    RequestEmailChange,
    /// `POST /email/confirm`: the link to the new address, the email changed.
    ConfirmEmailChange,
    /// `POST /email/cancel`: the link to the old address, the change cancelled.
    CancelEmailChange,
}
}

const fn route(method: Method, path: &'static str, operation: Operation) -> Route {
    Route::new(method, path, Target::Operation(operation.index()))
}

/// Every route of the API, in the order of the journeys. `/sessions/others` comes before
/// `/sessions/{id}` for routers that match in order. The OpenAPI document
/// ([`document`], served at [`crate::integration::DOCUMENT_PATH`]) lists exactly these
/// (a test holds them together).
pub(crate) const ROUTES: [Route; 20] = [
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
    route(
        Method::Post,
        "/cabinet/email",
        Operation::RequestEmailChange,
    ),
    route(
        Method::Post,
        "/email/confirm",
        Operation::ConfirmEmailChange,
    ),
    route(Method::Post, "/email/cancel", Operation::CancelEmailChange),
];

/// Answers one request to the API's `operation`, mounted at `route`. Records the
/// request's duration by route, method and status
/// ([`resident_auth::events::metrics::HTTP_REQUEST_DURATION`]).
async fn handle(
    api: &Api,
    route: &Route,
    operation: Operation,
    headers: &(dyn Headers + Sync),
    incoming: Incoming<'_>,
) -> Response {
    let started = std::time::Instant::now();
    let response = dispatch(api, operation, headers, incoming).await;
    resident_auth::events::metrics::http_request(
        route.path(),
        route.method().as_str(),
        response.status,
        started.elapsed(),
    );
    response.into_response()
}

/// The residents' JSON API as a surface: mounted under the host's prefix (`/api`).
impl Surface for Api {
    const ROUTES: &'static [Route] = &ROUTES;
    const CLAIMS_PREFIX: bool = true;
    const DOCUMENTED: bool = true;

    fn body_timeout(&self) -> Duration {
        self.limits.body_timeout()
    }

    async fn answer<'a>(
        &'a self,
        route: &'a Route,
        headers: &'a (dyn Headers + Sync),
        incoming: Incoming<'a>,
    ) -> Response {
        match (route.target, Operation::of(route)) {
            (_, Some(operation)) => handle(self, route, operation, headers, incoming).await,
            (Target::Document, None) => crate::openapi::served(document::document_json, &incoming),
            (Target::Operation(_), None) => {
                ApiResponse::refusal(Refusal::NotFound, crate::web::locale(headers)).into_response()
            }
        }
    }

    fn refuse(&self, refusal: Refusal, headers: &(dyn Headers + Sync)) -> Response {
        ApiResponse::refusal(refusal, crate::web::locale(headers)).into_response()
    }
}

async fn dispatch(
    api: &Api,
    operation: Operation,
    headers: &(dyn Headers + Sync),
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
                incoming.parameter.unwrap_or_default(),
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
        Operation::RequestEmailChange => {
            email_change::request_email_change(api, authorization, body, &context).await
        }
        Operation::ConfirmEmailChange => {
            email_change::confirm_email_change(api, authorization, body, &context).await
        }
        Operation::CancelEmailChange => {
            email_change::cancel_email_change(api, body, &context).await
        }
    }
}

#[cfg(test)]
mod tests;
