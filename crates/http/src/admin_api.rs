//! The operators' JSON API (docs/operating.md): the admin facade
//! ([`resident_auth::admin`]) over HTTP, mounted apart from the residents' API (its own
//! prefix, in the examples its own listener), every call authenticated by an operator
//! token from configuration — kept as SHA-256 digests, never as tokens — and every change
//! audited under the operator's name.

use std::{fmt, sync::Arc};

use resident_auth::{
    admin::{Admin, AdminError, Lookup, Operator},
    ports::Token,
    AccountNumber, Error, Locale,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::{
    api::{ApiResponse, ErrorItem, Errors},
    integration::{
        operations, Headers, Incoming, Method, Refusal, Response, Route, Surface, Target,
    },
    openapi::{under_prefix, BearerScheme},
};

/// The operators allowed in, each by the SHA-256 of their token.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OperatorTokens {
    entries: Vec<(Operator, [u8; 32])>,
}

impl fmt::Debug for OperatorTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperatorTokens")
            .field("operators", &self.entries.len())
            .finish()
    }
}

/// The configuration is not `name=<64 hex digits>[,name=…]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("operator tokens are `name=<SHA-256 of the token, 64 hex digits>`, comma-separated: {0}")]
pub struct InvalidOperatorTokens(String);

impl OperatorTokens {
    /// Parses `name=<sha256 hex>,name2=<sha256 hex>` (what `ADMIN_OPERATORS` holds).
    ///
    /// # Errors
    /// [`InvalidOperatorTokens`] naming the entry that cannot be read.
    pub fn parse(config: &str) -> Result<Self, InvalidOperatorTokens> {
        let mut entries = Vec::new();
        for entry in config.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let invalid = || InvalidOperatorTokens(entry.chars().take(40).collect());
            let (name, digest) = entry.rsplit_once('=').ok_or_else(invalid)?;
            let operator: Operator = name.parse().map_err(|_| invalid())?;
            let digest = digest.trim();
            if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid());
            }
            let mut bytes = [0u8; 32];
            for (i, byte) in bytes.iter_mut().enumerate() {
                let pair = digest.get(2 * i..2 * i + 2).ok_or_else(invalid)?;
                *byte = u8::from_str_radix(pair, 16).map_err(|_| invalid())?;
            }
            entries.push((operator, bytes));
        }
        Ok(Self { entries })
    }

    /// A new operator token and the line that admits it (`name=<sha256 hex>`): give the
    /// token to the operator, put the line in the configuration.
    #[must_use]
    pub fn issue(name: &Operator) -> (String, String) {
        let token = Token::generate().expose().to_owned();
        let line = format!("{name}={}", hex(&Sha256::digest(token.as_bytes())));
        (token, line)
    }

    /// Whether no operator is configured (the API then admits nobody).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The operator whose token this is; every entry is compared, in constant time.
    #[must_use]
    pub fn operator(&self, token: &str) -> Option<&Operator> {
        let digest = Sha256::digest(token.as_bytes());
        let mut found = None;
        for (operator, expected) in &self.entries {
            if bool::from(expected.ct_eq(digest.as_slice())) {
                found = Some(operator);
            }
        }
        found
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The operators' API over one admin facade.
#[derive(Debug, Clone)]
pub struct AdminApi {
    admin: Admin,
    tokens: Arc<OperatorTokens>,
}

impl AdminApi {
    /// The API of `admin`, admitting the operators of `tokens`.
    #[must_use]
    pub fn new(admin: Admin, tokens: OperatorTokens) -> Self {
        Self {
            admin,
            tokens: Arc::new(tokens),
        }
    }
}

operations! {
/// One operation of the operators' API.
pub(crate) enum AdminOperation {
    /// `GET /cabinets/{lookup}`: everything about a cabinet or a registration under way.
    Find,
    /// `POST /cabinets/{lookup}/resend`: the pending confirmation again, with a new link.
    Resend,
    /// `POST /cabinets/{lookup}/unlock`: throttles, cooldowns and premises attempts cleared.
    Unlock,
    /// `POST /cabinets/{lookup}/end-sessions`: every session of the cabinet ended.
    EndSessions,
    /// `DELETE /cabinets/{lookup}`: the cabinet and everything naming it erased.
    Erase,
    /// `GET /cabinets/{lookup}/export`: the cabinet's data, without secrets.
    Export,
    /// `POST /accounts/{account}/unlink`: a personal account out of its cabinet.
    Unlink,
}
}

const fn admin_route(method: Method, path: &'static str, operation: AdminOperation) -> Route {
    Route::new(method, path, Target::Operation(operation.index()))
}

/// Every route of the operators' API. Two share `/cabinets/{lookup}` (GET finds, DELETE
/// erases): one resource with both methods.
pub(crate) const ADMIN_ROUTES: [Route; 7] = [
    admin_route(Method::Get, "/cabinets/{lookup}", AdminOperation::Find),
    admin_route(Method::Delete, "/cabinets/{lookup}", AdminOperation::Erase),
    admin_route(
        Method::Post,
        "/cabinets/{lookup}/resend",
        AdminOperation::Resend,
    ),
    admin_route(
        Method::Post,
        "/cabinets/{lookup}/unlock",
        AdminOperation::Unlock,
    ),
    admin_route(
        Method::Post,
        "/cabinets/{lookup}/end-sessions",
        AdminOperation::EndSessions,
    ),
    admin_route(
        Method::Get,
        "/cabinets/{lookup}/export",
        AdminOperation::Export,
    ),
    admin_route(
        Method::Post,
        "/accounts/{account}/unlink",
        AdminOperation::Unlink,
    ),
];

/// An email or a 13-digit personal account number in a path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
// Read only by utoipa: the document's parameters.
#[allow(dead_code)]
pub(crate) struct LookupPath {
    /// `resident@example.org` or `7800000000001`.
    #[param(example = "7800000000001")]
    pub lookup: String,
}

/// A personal account number in a path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
// Read only by utoipa: the document's parameters.
#[allow(dead_code)]
pub(crate) struct AccountPath {
    /// 13 digits.
    #[param(example = "7800000000001")]
    pub account: String,
}

/// `POST /accounts/{account}/unlink`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct UnlinkRequest {
    /// Unlinking the cabinet's last account erases the whole cabinet (otherwise refused).
    #[serde(default)]
    pub erase: bool,
}

/// The answer of an operation that changes something: what it changed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Changed {
    /// How many records changed (letters sent, counters cleared, sessions ended, records
    /// erased).
    pub changed: u64,
}

/// A JSON object (the operation's report).
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct Document(serde_json::Value);

/// An error answer in the residents' API's shape (`{"errors":[{"field","code","message"}]}`,
/// `field` null): `admin.unauthorized`, `admin.not_found`, `admin.refused`,
/// `admin.malformed`, `request.not_found`, `service.unavailable`.
fn problem(status: u16, code: &'static str, message: impl Into<String>) -> ApiResponse {
    ApiResponse::request_problem(status, code, message.into())
}

fn from_admin_error(error: AdminError) -> ApiResponse {
    match error {
        AdminError::NotFound => problem(404, "admin.not_found", "nothing matches"),
        AdminError::Refused(reason) => problem(409, "admin.refused", reason.to_string()),
        AdminError::Service(Error::Unavailable(_)) => problem(
            503,
            "service.unavailable",
            "storage or mail is unavailable; retry",
        ),
        other => problem(503, "service.unavailable", other.to_string()),
    }
}

/// The operators' API reads its small bodies within this time.
const ADMIN_BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The operators' API as a surface: mounted under its prefix on a listener of its own,
/// never the residents' one.
impl Surface for AdminApi {
    const ROUTES: &'static [Route] = &ADMIN_ROUTES;
    const CLAIMS_PREFIX: bool = true;
    const DOCUMENTED: bool = true;

    fn body_timeout(&self) -> std::time::Duration {
        ADMIN_BODY_TIMEOUT
    }

    async fn answer<'a>(
        &'a self,
        route: &'a Route,
        headers: &'a (dyn Headers + Sync),
        incoming: Incoming<'a>,
    ) -> Response {
        let operation = match (route.target, AdminOperation::of(route)) {
            (_, Some(operation)) => operation,
            (Target::Document, None) => {
                return crate::openapi::served(admin_document_json, &incoming)
            }
            (Target::Operation(_), None) => return admin_not_found().into_response(),
        };
        handle_admin(
            self,
            operation,
            headers,
            incoming.parameter.unwrap_or_default(),
            incoming.body,
        )
        .await
        .into_response()
    }

    fn refuse(&self, refusal: Refusal, _: &(dyn Headers + Sync)) -> Response {
        match refusal {
            Refusal::NotFound => admin_not_found(),
            refusal => ApiResponse::refusal(refusal, Locale::En),
        }
        .into_response()
    }
}

/// Answers one request to the operators' API: the operator token first (401 without a
/// valid one, before anything else is read), then the path parameter, then the operation.
async fn handle_admin(
    api: &AdminApi,
    operation: AdminOperation,
    headers: &(dyn Headers + Sync),
    parameter: &str,
    body: &[u8],
) -> ApiResponse {
    let Some(operator) = crate::web::bearer(headers.first("authorization"))
        .and_then(|token| api.tokens.operator(token))
        .cloned()
    else {
        return problem(401, "admin.unauthorized", "an operator token is required");
    };
    let admin = &api.admin;
    if operation == AdminOperation::Unlink {
        let account: AccountNumber = match parameter.parse() {
            Ok(account) => account,
            Err(e) => return problem(422, "admin.malformed", format!("{parameter:?}: {e}")),
        };
        let request: UnlinkRequest = if body.iter().all(u8::is_ascii_whitespace) {
            UnlinkRequest { erase: false }
        } else {
            match serde_json::from_slice(body) {
                Ok(request) => request,
                Err(e) => return problem(422, "admin.malformed", e.to_string()),
            }
        };
        return unlink(admin, &operator, &account, request.erase).await;
    }
    let lookup: Lookup = match parameter.parse() {
        Ok(lookup) => lookup,
        Err(e) => return problem(422, "admin.malformed", e.to_string()),
    };
    let operator = &operator;
    match operation {
        AdminOperation::Find => find(admin, operator, &lookup).await,
        AdminOperation::Resend => resend(admin, operator, &lookup).await,
        AdminOperation::Unlock => unlock(admin, operator, &lookup).await,
        AdminOperation::EndSessions => end_sessions(admin, operator, &lookup).await,
        AdminOperation::Erase => erase(admin, operator, &lookup).await,
        AdminOperation::Export => export(admin, operator, &lookup).await,
        AdminOperation::Unlink => problem(404, "admin.not_found", "no such operation"),
    }
}

/// 200 with how many records changed.
fn changed(n: u64) -> ApiResponse {
    ApiResponse::typed(200, &Changed { changed: n })
}

/// 200 with a report.
fn document(value: &dyn erased::Serialize) -> ApiResponse {
    ApiResponse::typed(200, &erased::Json(value))
}

/// The answer of an operation's result.
fn answer(result: Result<ApiResponse, AdminError>) -> ApiResponse {
    result.unwrap_or_else(from_admin_error)
}

/// Serialising any report through one function.
mod erased {
    pub trait Serialize {
        fn value(&self) -> serde_json::Value;
    }

    impl<T: serde::Serialize> Serialize for T {
        fn value(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }
    }

    pub struct Json<'a>(pub &'a dyn Serialize);

    impl serde::Serialize for Json<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            self.0.value().serialize(serializer)
        }
    }
}

/// The answer for a path the operators' API does not have.
fn admin_not_found() -> ApiResponse {
    problem(404, "request.not_found", "no such operators' API endpoint")
}

// ---- The operations, with their OpenAPI attributes ------------------------------------

/// Everything about a cabinet or a registration under way.
#[utoipa::path(get, path = "/cabinets/{lookup}", tag = "operators", params(LookupPath),
    security(("operator" = [])),
    responses((status = 200, description = "The cabinet, pending registrations and locks", body = Document),
        (status = 401, description = "No valid operator token", body = Errors),
        (status = 404, description = "Nothing matches", body = Errors),
        (status = 422, description = "Not an email or a personal account number", body = Errors)))]
async fn find(admin: &Admin, operator: &Operator, lookup: &Lookup) -> ApiResponse {
    answer(admin.find_as(lookup, operator).await.map(|r| document(&r)))
}

/// Erases the cabinet and everything naming its email and accounts.
#[utoipa::path(delete, path = "/cabinets/{lookup}", tag = "operators", params(LookupPath),
    security(("operator" = [])),
    responses((status = 200, description = "What was erased", body = Document),
        (status = 401, description = "No valid operator token", body = Errors),
        (status = 404, description = "Nothing matches", body = Errors),
        (status = 409, description = "The cabinet changed meanwhile", body = Errors),
        (status = 422, description = "Not an email or a personal account number", body = Errors)))]
async fn erase(admin: &Admin, operator: &Operator, lookup: &Lookup) -> ApiResponse {
    answer(admin.erase(lookup, operator).await.map(|e| document(&e)))
}

/// Sends the pending confirmation again with a new link.
#[utoipa::path(post, path = "/cabinets/{lookup}/resend", tag = "operators", params(LookupPath),
    security(("operator" = [])),
    responses((status = 200, description = "Sent", body = Changed),
        (status = 401, description = "No valid operator token", body = Errors),
        (status = 404, description = "No pending confirmation", body = Errors),
        (status = 409, description = "The link changed meanwhile", body = Errors),
        (status = 422, description = "Not an email or a personal account number", body = Errors),
        (status = 503, description = "Mail or storage unavailable", body = Errors)))]
async fn resend(admin: &Admin, operator: &Operator, lookup: &Lookup) -> ApiResponse {
    answer(
        admin
            .resend_confirmation(lookup, operator)
            .await
            .map(|_| changed(1)),
    )
}

/// Clears throttles, cooldowns and premises attempts.
#[utoipa::path(post, path = "/cabinets/{lookup}/unlock", tag = "operators", params(LookupPath),
    security(("operator" = [])),
    responses((status = 200, description = "Counters cleared", body = Changed),
        (status = 401, description = "No valid operator token", body = Errors),
        (status = 404, description = "Nothing matches", body = Errors),
        (status = 422, description = "Not an email or a personal account number", body = Errors)))]
async fn unlock(admin: &Admin, operator: &Operator, lookup: &Lookup) -> ApiResponse {
    answer(admin.clear_locks(lookup, operator).await.map(changed))
}

/// Ends every session of the cabinet.
#[utoipa::path(post, path = "/cabinets/{lookup}/end-sessions", tag = "operators", params(LookupPath),
    security(("operator" = [])),
    responses((status = 200, description = "Sessions ended", body = Changed),
        (status = 401, description = "No valid operator token", body = Errors),
        (status = 404, description = "No cabinet", body = Errors),
        (status = 422, description = "Not an email or a personal account number", body = Errors)))]
async fn end_sessions(admin: &Admin, operator: &Operator, lookup: &Lookup) -> ApiResponse {
    answer(admin.end_sessions(lookup, operator).await.map(changed))
}

/// The cabinet's data, without secrets.
#[utoipa::path(get, path = "/cabinets/{lookup}/export", tag = "operators", params(LookupPath),
    security(("operator" = [])),
    responses((status = 200, description = "The cabinet's data", body = Document),
        (status = 401, description = "No valid operator token", body = Errors),
        (status = 404, description = "No cabinet", body = Errors),
        (status = 422, description = "Not an email or a personal account number", body = Errors)))]
async fn export(admin: &Admin, operator: &Operator, lookup: &Lookup) -> ApiResponse {
    answer(admin.export(lookup, operator).await.map(|e| document(&e)))
}

/// Takes a personal account out of its cabinet (the last one only with `erase`).
#[utoipa::path(post, path = "/accounts/{account}/unlink", tag = "operators", params(AccountPath),
    security(("operator" = [])), request_body(content = UnlinkRequest, description = "Optional; `{\"erase\": false}` when absent"),
    responses((status = 200, description = "Unlinked, or the cabinet erased", body = Document),
        (status = 401, description = "No valid operator token", body = Errors),
        (status = 404, description = "No cabinet holds the account", body = Errors),
        (status = 409, description = "The cabinet's last account without erase", body = Errors),
        (status = 422, description = "Not a personal account number, or a malformed body", body = Errors),
        (status = 503, description = "Storage unavailable", body = Errors)))]
async fn unlink(
    admin: &Admin,
    operator: &Operator,
    account: &AccountNumber,
    erase: bool,
) -> ApiResponse {
    answer(match admin.unlink(account, erase, operator).await {
        Ok(Some(erased)) => Ok(document(&erased)),
        Ok(None) => Ok(changed(1)),
        Err(error) => Err(error),
    })
}

/// The operators' tokens.
const OPERATOR_SCHEME: BearerScheme = BearerScheme("operator");

#[derive(OpenApi)]
#[openapi(
    info(
        title = "resident-auth operators' API",
        description = "What the settlement center's staff do when a resident calls. Every \
            call needs an operator token (`Authorization: Bearer`); every change is audited."
    ),
    paths(find, erase, resend, unlock, end_sessions, export, unlink),
    components(schemas(Errors, ErrorItem, Changed, Document, UnlinkRequest)),
    modifiers(&OPERATOR_SCHEME),
    tags((name = "operators", description = "Find, resend, unlock, end sessions, unlink, erase, export"))
)]
struct AdminDocument;

/// The operators' API document, its paths under `prefix`.
pub(crate) fn admin_document_json(prefix: &str) -> String {
    under_prefix(AdminDocument::openapi(), prefix)
        .to_pretty_json()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_tokens_are_kept_as_digests_and_compared_whole() {
        let maria: Operator = "maria".parse().unwrap();
        let (token, line) = OperatorTokens::issue(&maria);
        assert!(
            !line.contains(&token),
            "the configuration never holds the token"
        );
        let tokens = OperatorTokens::parse(&format!(" {line} ,ivan={}", "ab".repeat(32))).unwrap();
        assert_eq!(tokens.operator(&token), Some(&maria));
        assert_eq!(tokens.operator(&format!("{token}x")), None);
        assert_eq!(tokens.operator(""), None);
        for bad in [
            "maria",
            "maria=abc",
            &format!("={}", "ab".repeat(32)),
            &format!("m={}", "zz".repeat(32)),
        ] {
            assert!(OperatorTokens::parse(bad).is_err(), "{bad}");
        }
        assert!(OperatorTokens::parse("").unwrap().is_empty());
        assert_eq!(format!("{tokens:?}"), "OperatorTokens { operators: 2 }");
    }

    #[test]
    fn the_document_lists_exactly_the_routes() {
        let document: serde_json::Value =
            serde_json::from_str(&admin_document_json("/admin")).unwrap();
        let documented = crate::openapi::documented_operations(&document);
        let mut routes: Vec<(String, String)> = ADMIN_ROUTES
            .iter()
            .map(|r| {
                (
                    r.method().as_str().to_lowercase(),
                    format!("/admin{}", r.path()),
                )
            })
            .collect();
        routes.sort();
        assert_eq!(documented, routes);
    }
}
