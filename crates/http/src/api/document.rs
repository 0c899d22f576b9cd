//! The residents' API's OpenAPI document, generated from the endpoint functions'
//! attributes and the request and answer types beside the endpoints; served at
//! [`DOCUMENT_PATH`](crate::integration::DOCUMENT_PATH) under the API's prefix, its paths
//! carrying that prefix.

use utoipa::OpenApi;

use super::*;
use crate::openapi::{under_prefix, BearerScheme};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "resident-auth portal API",
        description = "Registration, activation by premises, login, recovery and several \
            accounts per cabinet for a residents' utility-billing portal (docs/contract.md §5). \
            Error answers carry `{\"errors\":[{\"field\",\"code\",\"message\"}]}`, messages \
            in the `Accept-Language` locale (Russian by default)."
    ),
    paths(
        register,
        confirm,
        activate,
        identify,
        login,
        session,
        select_account,
        logout,
        request_recovery,
        complete_recovery,
        add_address,
        change_password,
        own_data::export_own_data,
        own_data::close_cabinet,
        email_change::request_email_change,
        email_change::confirm_email_change,
        email_change::cancel_email_change,
        sessions,
        end_session,
        end_other_sessions,
    ),
    // The error responses are reusable `IntoResponses` types, whose body schema the
    // paths only reference: list it here so the references resolve.
    components(schemas(Errors, ErrorItem)),
    modifiers(&SESSION_SCHEME),
    tags(
        (name = "registration", description = "Journeys 1–3: register, confirm the email, activate"),
        (name = "login", description = "Journey 4"),
        (name = "session", description = "Journeys 5, 7, 8 and 9: the cabinet, its accounts, the password, the sessions, logout"),
        (name = "recovery", description = "Journey 6: password recovery by link"),
    )
)]
struct Document;

/// The residents' session tokens.
const SESSION_SCHEME: BearerScheme = BearerScheme("session");

/// The document of the API mounted under `prefix` (`"/api"`, or `""` at the root): every
/// path of the API's routes ([`crate::Surface::resources`]) is `prefix` followed by the route's path.
#[must_use]
pub(crate) fn document(prefix: &str) -> utoipa::openapi::OpenApi {
    under_prefix(Document::openapi(), prefix)
}

/// The document as JSON, as served.
#[must_use]
pub(crate) fn document_json(prefix: &str) -> String {
    // The document is built from static attributes: serialising it cannot fail.
    document(prefix).to_pretty_json().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::Value;

    use super::*;

    /// The operations of docs/contract.md §5 as mounted under `/api`, each with
    /// its success status; the method and path come from the route table.
    fn operations() -> Vec<(String, String, &'static str)> {
        ROUTES
            .iter()
            .map(|route| {
                let operation = Operation::of(route).expect("the API's own routes");
                let success = match operation {
                    Operation::Register
                    | Operation::AddAddress
                    | Operation::RequestRecovery
                    | Operation::RequestEmailChange => "202",
                    Operation::Logout
                    | Operation::ChangePassword
                    | Operation::EndSession
                    | Operation::CloseCabinet
                    | Operation::CancelEmailChange => "204",
                    _ => "200",
                };
                (
                    route.method().as_str().to_lowercase(),
                    format!("/api{}", route.path()),
                    success,
                )
            })
            .collect()
    }

    fn json() -> Value {
        serde_json::from_str(&document_json("/api")).unwrap()
    }

    #[test]
    fn the_prefix_is_the_hosts_choice() {
        let root: Value = serde_json::from_str(&document_json("")).unwrap();
        assert!(root["paths"]["/login"].is_object());
        let nested: Value = serde_json::from_str(&document_json("/auth/v1")).unwrap();
        assert!(nested["paths"]["/auth/v1/sessions/{id}"]["delete"].is_object());
        let paths: std::collections::BTreeSet<_> = ROUTES.iter().map(|r| r.path()).collect();
        assert_eq!(nested["paths"].as_object().unwrap().len(), paths.len());
    }

    #[test]
    fn the_document_has_exactly_the_operations_of_the_spec() {
        let document = json();
        let documented = crate::openapi::documented_operations(&document);
        let mut expected: Vec<(String, String)> =
            operations().into_iter().map(|(m, p, _)| (m, p)).collect();
        expected.sort();
        assert_eq!(
            documented, expected,
            "the route table and the document agree"
        );
        for (method, path, success) in operations() {
            let (method, path) = (method.as_str(), path.as_str());
            let responses = &document["paths"][path][method]["responses"];
            assert!(responses[success].is_object(), "{method} {path} {success}");
            let without_input = method == "get" || method == "delete" || path == "/api/logout";
            assert!(responses["422"].is_object() || without_input);
        }
    }

    #[test]
    fn session_endpoints_require_the_bearer_scheme_and_others_do_not() {
        let document = json();
        assert_eq!(
            document["components"]["securitySchemes"]["session"]["scheme"],
            "bearer"
        );
        for (method, path, _) in operations() {
            let (method, path) = (method.as_str(), path.as_str());
            let operation = &document["paths"][path][method];
            let secured = operation["security"].is_array();
            let expected = path.starts_with("/api/session")
                || path == "/api/logout"
                || path == "/api/addresses"
                || path == "/api/password"
                || path.starts_with("/api/cabinet/");
            assert_eq!(secured, expected, "{method} {path}");
            if secured {
                assert!(operation["responses"]["401"].is_object(), "{path}");
            }
        }
    }

    #[test]
    fn throttled_answers_document_retry_after() {
        let document = json();
        let login = &document["paths"]["/api/login"]["post"]["responses"]["429"];
        assert!(login["headers"]["Retry-After"].is_object());
        let errors = &document["components"]["schemas"]["Errors"];
        assert_eq!(errors["required"], serde_json::json!(["errors"]));
    }

    /// Every `$ref` in the document points at a schema the document has.
    #[test]
    fn every_reference_resolves() {
        fn walk(value: &Value, found: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        found.push(target.clone());
                    }
                    map.values().for_each(|v| walk(v, found));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
                _ => {}
            }
        }
        let document = json();
        let mut references = Vec::new();
        walk(&document, &mut references);
        assert!(references.len() > 20);
        for reference in references {
            let name = reference.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                document["components"]["schemas"][name].is_object(),
                "{reference} dangles"
            );
        }
    }
}
