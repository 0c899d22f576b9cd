//! docs/security.md's promise "no row without a test", checked: every row of the requirements
//! table names an existing file, and every test it names as `file` :: `name` is a function
//! of that file. Renaming or deleting a test without updating the table fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The backticked spans of `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

fn defines(source: &str, name: &str) -> bool {
    source
        .match_indices(&format!("fn {name}"))
        .any(|(at, found)| {
            source[at + found.len()..]
                .chars()
                .next()
                .is_some_and(|c| !(c.is_alphanumeric() || c == '_'))
        })
}

#[test]
fn every_requirement_row_names_tests_that_exist() {
    let security = std::fs::read_to_string(root().join("docs/security.md")).unwrap();
    let start = security
        .find("## Requirements")
        .expect("the requirements section");
    let section = &security[start..];
    let section = &section[..section[3..]
        .find("\n## ")
        .map_or(section.len(), |end| end + 3)];
    let rows: Vec<&str> = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| requirement"))
        .collect();
    assert!(rows.len() >= 25, "the table has {} rows", rows.len());
    let mut named = 0;
    for row in rows {
        let tests = row.trim_end_matches('|').rsplit(" | ").next().unwrap();
        let files: Vec<&str> = backticked(tests)
            .into_iter()
            .filter(|span| span.contains('/') || span.ends_with(".toml"))
            .collect();
        assert!(!files.is_empty(), "a row without a test: {row}");
        for file in &files {
            assert!(root().join(file).exists(), "{file} does not exist: {row}");
        }
        for segment in tests.split(';').filter(|s| s.contains(" :: ")) {
            let (file, names) = segment.split_once(" :: ").unwrap();
            let file = backticked(file).pop().expect("a backticked file before ::");
            let source = std::fs::read_to_string(root().join(file)).unwrap();
            // After `::` every backticked span that is not a path is a test name.
            let identifiers = backticked(names)
                .into_iter()
                .filter(|span| !span.contains('/') && !span.contains('.'));
            for name in identifiers {
                assert!(defines(&source, name), "{file} has no fn {name}");
                named += 1;
            }
        }
    }
    assert!(named >= 40, "only {named} tests named");
}

/// The statuses the status check leaves to library tests name tests that exist.
#[test]
fn statuses_reached_elsewhere_name_tests_that_exist() {
    for (status, file, name) in api_suite::REACHED_ELSEWHERE {
        let source = std::fs::read_to_string(root().join(file))
            .unwrap_or_else(|e| panic!("{status}: {file}: {e}"));
        assert!(defines(&source, name), "{status}: no fn {name} in {file}");
    }
}
