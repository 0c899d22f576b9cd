//! The parts as the integrations see them: their resources and refusals.

use crate::{
    integration::{Method, Refusal, Surface},
    AdminApi, Api,
};

fn allow_of<S: Surface>(path: &str) -> Option<String> {
    S::resources()
        .into_iter()
        .find(|resource| resource.path == path)
        .map(|resource| resource.allow)
}

#[test]
fn resources_group_each_path_with_its_methods_in_route_order() {
    assert_eq!(
        allow_of::<AdminApi>("/cabinets/{lookup}").as_deref(),
        Some("GET, DELETE")
    );
    assert_eq!(allow_of::<Api>("/login").as_deref(), Some("POST"));
    let paths: Vec<&str> = Api::resources().iter().map(|r| r.path).collect();
    let others = paths.iter().position(|p| *p == "/sessions/others");
    let one = paths.iter().position(|p| *p == "/sessions/{id}");
    assert!(
        others < one,
        "a literal path before the parameter: {paths:?}"
    );
    for resource in Api::resources().iter().chain(&AdminApi::resources()) {
        assert_eq!(
            resource.routes.len(),
            resource.allow.split(", ").count(),
            "{resource:?}"
        );
    }
}

#[test]
fn a_resource_picks_its_route_by_method_and_refuses_the_others() {
    let resources = AdminApi::resources();
    let cabinet = resources
        .iter()
        .find(|resource| resource.path == "/cabinets/{lookup}")
        .unwrap();
    assert_eq!(cabinet.route("GET").map(|r| r.method()), Some(Method::Get));
    assert_eq!(cabinet.route("HEAD").map(|r| r.method()), Some(Method::Get));
    assert_eq!(
        cabinet.route("DELETE").map(|r| r.method()),
        Some(Method::Delete)
    );
    assert_eq!(cabinet.route("POST"), None);
    assert_eq!(
        cabinet.route("get"),
        None,
        "method names are case-sensitive"
    );
    assert_eq!(
        cabinet.not_allowed(),
        Refusal::MethodNotAllowed {
            allow: "GET, DELETE".to_owned()
        }
    );
}
