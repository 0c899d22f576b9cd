//! The reference portal. Not built yet: see issue "Reference portal on axum".

fn main() -> std::process::ExitCode {
    eprintln!(
        "portal-axum: not yet — the reference portal lands with its own issue; \
         `scripts/test.sh` runs what exists today."
    );
    std::process::ExitCode::FAILURE
}
