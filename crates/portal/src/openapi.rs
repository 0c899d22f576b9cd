//! The OpenAPI document of the JSON API, generated from the endpoint functions'
//! attributes and the request and answer types in [`crate::api`]; both examples serve it
//! at [`DOCUMENT_PATH`].

use utoipa::{
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
    Modify, OpenApi,
};

use crate::api;

/// Where the examples serve the document.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";

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
        api::register,
        api::confirm,
        api::activate,
        api::identify,
        api::login,
        api::session,
        api::select_account,
        api::logout,
        api::request_recovery,
        api::complete_recovery,
        api::add_address,
        api::change_password,
        api::sessions,
        api::end_session,
        api::end_other_sessions,
    ),
    // The error responses are reusable `IntoResponses` types, whose body schema the
    // paths only reference: list it here so the references resolve.
    components(schemas(api::Errors, api::ErrorItem)),
    modifiers(&SessionSecurity),
    tags(
        (name = "registration", description = "Journeys 1–3: register, confirm the email, activate"),
        (name = "login", description = "Journey 4"),
        (name = "session", description = "Journeys 5, 7, 8 and 9: the cabinet, its accounts, the password, the sessions, logout"),
        (name = "recovery", description = "Journey 6: password recovery by link"),
    )
)]
struct Document;

/// The bearer scheme the session endpoints name.
struct SessionSecurity;

impl Modify for SessionSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "session",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// The document.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    Document::openapi()
}

/// The document as JSON, as served.
#[must_use]
pub fn document_json() -> String {
    // The document is built from static attributes: serialising it cannot fail.
    document().to_pretty_json().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use serde_json::Value;

    use super::*;

    /// The fifteen operations of docs/contract.md §5, each with its success status.
    const OPERATIONS: [(&str, &str, &str); 15] = [
        ("post", "/api/registrations", "202"),
        ("post", "/api/registrations/confirm", "200"),
        ("post", "/api/registrations/activate", "200"),
        ("post", "/api/login/identify", "200"),
        ("post", "/api/login", "200"),
        ("get", "/api/session", "200"),
        ("post", "/api/session/active-account", "200"),
        ("post", "/api/logout", "204"),
        ("post", "/api/recovery", "202"),
        ("post", "/api/recovery/complete", "200"),
        ("post", "/api/addresses", "202"),
        ("post", "/api/password", "204"),
        ("get", "/api/sessions", "200"),
        ("delete", "/api/sessions/{id}", "204"),
        ("delete", "/api/sessions/others", "200"),
    ];

    fn json() -> Value {
        serde_json::from_str(&document_json()).unwrap()
    }

    #[test]
    fn the_document_has_exactly_the_operations_of_the_spec() {
        let document = json();
        let mut documented: Vec<(String, String)> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(move |method| (method.clone(), path.clone()))
            })
            .collect();
        documented.sort();
        let mut expected: Vec<(String, String)> = OPERATIONS
            .iter()
            .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        expected.sort();
        assert_eq!(documented, expected);
        for (method, path, success) in OPERATIONS {
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
        for (method, path, _) in OPERATIONS {
            let operation = &document["paths"][path][method];
            let secured = operation["security"].is_array();
            let expected = path.starts_with("/api/session")
                || path == "/api/logout"
                || path == "/api/addresses"
                || path == "/api/password";
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
