//! The API's unit tests.

use super::*;
use resident_auth::errors::Problem;
use serde_json::Value;

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
            let body: Value = serde_json::from_slice(answer.body.as_deref().unwrap()).unwrap();
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
    let body: Value = serde_json::from_slice(&response.body.unwrap()).unwrap();
    assert_eq!(body["errors"][0]["field"], "surname");
    assert_eq!(body["errors"][0]["code"], "surname.initials");
    assert_eq!(
        body["errors"][0]["message"],
        "Фамилия вводится без инициалов"
    );
    assert_eq!(body["errors"][1]["field"], Value::Null);
}
