//! The shared checks of the guide's HTML pages, and the browser walk with axe-core, against
//! this example's binary (api-suite's `pages` and `browser`).

api_suite::pages_tests!(env!("CARGO_BIN_EXE_portal-axum"));
