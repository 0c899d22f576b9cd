//! Prints the OpenAPI document of the JSON API as the examples mount it (under `/api`):
//! `cargo run -p resident-auth-http --example openapi`.

fn main() {
    println!("{}", resident_auth_http::Api::openapi_json("/api"));
}
