//! Prints the OpenAPI document of the JSON API: `cargo run -p resident-auth-portal --example openapi`.

fn main() {
    println!("{}", resident_auth_portal::openapi::document_json());
}
