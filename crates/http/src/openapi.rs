//! What the JSON APIs' OpenAPI documents share: the bearer scheme, the prefix put before
//! every path, and the answer to `GET {prefix}/openapi.json`. Each document is generated
//! beside its API (`api/document.rs`, `admin_api.rs`).

use utoipa::{
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
    Modify,
};

use crate::integration::{response, Incoming, Response, DOCUMENT_PATH};

/// A bearer security scheme under the name its operations give (`session`, `operator`).
pub(crate) struct BearerScheme(pub(crate) &'static str);

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                self.0,
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
        }
    }
}

/// `document` with every path under `prefix`.
pub(crate) fn under_prefix(
    mut document: utoipa::openapi::OpenApi,
    prefix: &str,
) -> utoipa::openapi::OpenApi {
    let paths = std::mem::take(&mut document.paths.paths);
    document.paths.paths = paths
        .into_iter()
        .map(|(path, item)| (format!("{prefix}{path}"), item))
        .collect();
    document
}

/// The answer to `GET {prefix}`[`DOCUMENT_PATH`]: `document` of the prefix the request's
/// path carries.
pub(crate) fn served(document: fn(&str) -> String, incoming: &Incoming<'_>) -> Response {
    let prefix = incoming
        .path
        .strip_suffix(DOCUMENT_PATH)
        .unwrap_or_default();
    response(
        200,
        [
            ("content-type", "application/json".to_owned()),
            ("x-content-type-options", "nosniff".to_owned()),
        ],
        document(prefix).into(),
    )
}

/// Every (method, path) a document lists, sorted: what the documents' tests compare with
/// the route tables.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn documented_operations(document: &serde_json::Value) -> Vec<(String, String)> {
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
    documented
}
