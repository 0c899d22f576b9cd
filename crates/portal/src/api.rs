//! The JSON API of SPEC §6, independent of any web framework.

use resident_auth::{
    AddressForm, AuthService, Error, Locale, Problem, RegistrationForm, RequestContext, UserError,
};
use secrecy::SecretString;
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};

/// What an endpoint answers: the framework turns it into its own response type.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body, if any (202 and 204 have none).
    pub body: Option<Value>,
    /// Seconds for a `Retry-After` header (429 answers).
    pub retry_after: Option<u64>,
}

impl ApiResponse {
    fn status(status: u16) -> Self {
        Self {
            status,
            body: None,
            retry_after: None,
        }
    }

    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            retry_after: None,
        }
    }

    /// The error answer: `{"errors":[{"field","code","message"}]}` in `locale`.
    #[must_use]
    pub fn from_error(error: &Error, locale: Locale) -> Self {
        let errors: Vec<Value> = match error {
            Error::Rejected(problems) => problems.iter().map(|p| item(p, locale)).collect(),
            Error::Unavailable(unavailable) => vec![item(unavailable, locale)],
            _ => vec![
                json!({"field": null, "code": "service.unavailable", "message": "service unavailable"}),
            ],
        };
        Self {
            status: error.http_status(),
            body: Some(json!({ "errors": errors })),
            retry_after: error
                .retry_after()
                .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
        }
    }

    fn malformed(reason: &str, locale: Locale) -> Self {
        let message = match locale {
            Locale::Ru => format!("Некорректный запрос: {reason}"),
            Locale::En => format!("Malformed request: {reason}"),
        };
        Self::json(
            422,
            json!({"errors": [{"field": null, "code": "request.malformed", "message": message}]}),
        )
    }
}

fn item(error: &dyn UserError, locale: Locale) -> Value {
    json!({
        "field": error.field().map(|f| f.name()),
        "code": error.code(),
        "message": error.message(locale),
    })
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(Deserialize)]
struct ActivateBody {
    activation_token: String,
    premises: String,
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: SecretString,
}

#[derive(Deserialize)]
struct AccountBody {
    account_number: String,
}

/// The request context of an API call: language and client address.
pub type Context = RequestContext;

/// The API over one service.
#[derive(Debug, Clone)]
pub struct Api {
    service: AuthService,
}

/// Reads a JSON body, or answers 422.
fn body<T: DeserializeOwned>(bytes: &[u8], locale: Locale) -> Result<T, ApiResponse> {
    serde_json::from_slice(bytes).map_err(|e| {
        // serde's text names the missing field or the type problem, never a value.
        let reason = e.to_string();
        let reason = reason.split(" at line").next().unwrap_or("invalid JSON");
        ApiResponse::malformed(reason, locale)
    })
}

/// The token of an `Authorization: Bearer …` header value.
#[must_use]
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Authenticates the bearer token first, so an unauthenticated caller learns nothing
/// from the body's validity; answers 401 otherwise.
macro_rules! try_session {
    ($api:expr, $authorization:expr, $context:expr) => {{
        let token = bearer($authorization).unwrap_or_default();
        if let Err(error) = $api.service.authenticate(token).await {
            return ApiResponse::from_error(&error, $context.locale);
        }
        token
    }};
}

macro_rules! try_body {
    ($bytes:expr, $locale:expr) => {
        match body($bytes, $locale) {
            Ok(body) => body,
            Err(response) => return response,
        }
    };
}

impl Api {
    /// The API of `service`.
    #[must_use]
    pub fn new(service: AuthService) -> Self {
        Self { service }
    }

    /// The service behind the API (the HTML pages use it directly).
    #[must_use]
    pub fn service(&self) -> &AuthService {
        &self.service
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

    /// `POST /api/registrations` → 202.
    pub async fn register(&self, bytes: &[u8], context: &Context) -> ApiResponse {
        let form: RegistrationForm = try_body!(bytes, context.locale);
        Self::answer(self.service.register(&form, context).await, context, |()| {
            ApiResponse::status(202)
        })
    }

    /// `POST /api/registrations/confirm` → 200 `{"activation_token"}`.
    pub async fn confirm(&self, bytes: &[u8], context: &Context) -> ApiResponse {
        let request: TokenBody = try_body!(bytes, context.locale);
        Self::answer(
            self.service.confirm_email(&request.token).await,
            context,
            |token| ApiResponse::json(200, json!({ "activation_token": token.expose() })),
        )
    }

    /// `POST /api/registrations/activate` → 200.
    pub async fn activate(&self, bytes: &[u8], context: &Context) -> ApiResponse {
        let request: ActivateBody = try_body!(bytes, context.locale);
        let result = self
            .service
            .activate(&request.activation_token, &request.premises, context)
            .await;
        Self::answer(result, context, |email| {
            ApiResponse::json(200, json!({ "email": email }))
        })
    }

    /// `POST /api/login/identify` → 200 `{"email": canonical}`.
    pub async fn identify(&self, bytes: &[u8], context: &Context) -> ApiResponse {
        let request: EmailBody = try_body!(bytes, context.locale);
        Self::answer(self.service.identify(&request.email), context, |email| {
            ApiResponse::json(200, json!({ "email": email }))
        })
    }

    /// `POST /api/login` → 200 `{"session_token"}`.
    pub async fn login(&self, bytes: &[u8], context: &Context) -> ApiResponse {
        let request: LoginBody = try_body!(bytes, context.locale);
        let result = self
            .service
            .login(&request.email, request.password, context)
            .await;
        Self::answer(result, context, |logged_in| {
            ApiResponse::json(
                200,
                json!({ "session_token": logged_in.session_token.expose() }),
            )
        })
    }

    /// `GET /api/session` (bearer) → 200 `{"email","accounts":[…],"active_account"}`.
    pub async fn session(&self, authorization: Option<&str>, context: &Context) -> ApiResponse {
        let token = bearer(authorization).unwrap_or_default();
        Self::answer(self.service.cabinet(token).await, context, |cabinet| {
            let accounts: Vec<Value> = cabinet
                .accounts
                .iter()
                .map(|a| {
                    json!({
                        "account_number": a.account_number,
                        "address": a.address,
                        "premises": a.premises,
                    })
                })
                .collect();
            ApiResponse::json(
                200,
                json!({ "email": cabinet.email, "accounts": accounts, "active_account": cabinet.active_account }),
            )
        })
    }

    /// `POST /api/session/active-account` (bearer) `{"account_number"}` → 200.
    pub async fn select_account(
        &self,
        authorization: Option<&str>,
        bytes: &[u8],
        context: &Context,
    ) -> ApiResponse {
        let token = try_session!(self, authorization, context);
        let request: AccountBody = try_body!(bytes, context.locale);
        let result = self
            .service
            .select_account(token, &request.account_number)
            .await;
        Self::answer(result, context, |()| {
            ApiResponse::json(
                200,
                json!({ "active_account": request.account_number.trim() }),
            )
        })
    }

    /// `POST /api/logout` (bearer) → 204.
    pub async fn logout(&self, authorization: Option<&str>, context: &Context) -> ApiResponse {
        let token = try_session!(self, authorization, context);
        Self::answer(self.service.logout(token).await, context, |()| {
            ApiResponse::status(204)
        })
    }

    /// `POST /api/recovery` `{"email"}` → 202, registered or not.
    pub async fn request_recovery(&self, bytes: &[u8], context: &Context) -> ApiResponse {
        let request: EmailBody = try_body!(bytes, context.locale);
        let result = self.service.request_recovery(&request.email, context).await;
        Self::answer(result, context, |()| ApiResponse::status(202))
    }

    /// `POST /api/recovery/complete` `{"token"}` → 200.
    pub async fn complete_recovery(&self, bytes: &[u8], context: &Context) -> ApiResponse {
        let request: TokenBody = try_body!(bytes, context.locale);
        let result = self
            .service
            .complete_recovery(&request.token, context)
            .await;
        Self::answer(result, context, |email| {
            ApiResponse::json(200, json!({ "email": email }))
        })
    }

    /// `POST /api/addresses` (bearer) `{"surname","account_number"}` → 202.
    pub async fn add_address(
        &self,
        authorization: Option<&str>,
        bytes: &[u8],
        context: &Context,
    ) -> ApiResponse {
        let token = try_session!(self, authorization, context);
        let form: AddressForm = try_body!(bytes, context.locale);
        let result = self.service.add_address(token, &form, context).await;
        Self::answer(result, context, |()| ApiResponse::status(202))
    }
}

/// The answer for a path the API does not have.
#[must_use]
pub fn not_found(locale: Locale) -> ApiResponse {
    let message = match locale {
        Locale::Ru => "Нет такого адреса API",
        Locale::En => "No such API endpoint",
    };
    ApiResponse::json(
        404,
        json!({"errors": [{"field": null, "code": "request.not_found", "message": message}]}),
    )
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
    fn bearer_tokens() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn errors_become_the_contract_body() {
        let error = Error::Rejected(vec![
            Problem::Surname(resident_auth::SurnameError::Initials),
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
