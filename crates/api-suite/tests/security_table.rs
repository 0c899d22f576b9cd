//! docs/security.md's promise "no row without a test", checked: every row of the requirements
//! table names an existing file, and every test it names as `file` :: `name` is a function
//! of that file's module (`x.rs` and the files under `x/`). Renaming or deleting a test
//! without updating the table fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The source of the module `file` names: the file, and for `x.rs` every file under `x/`
/// (for a crate root, `lib.rs` or `main.rs`, every file beside it).
fn module_source(file: &str) -> String {
    let path = root().join(file);
    let mut source = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let root_file = path
        .file_name()
        .is_some_and(|n| n == "lib.rs" || n == "main.rs" || n == "mod.rs");
    let dir = if root_file {
        path.parent().unwrap().to_owned()
    } else {
        path.with_extension("")
    };
    let mut dirs = vec![dir];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let entry = entry.unwrap().path();
            if entry.is_dir() {
                dirs.push(entry);
            } else if entry.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(entry).unwrap());
            }
        }
    }
    source
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
            let source = module_source(file);
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
        let source = module_source(file);
        assert!(defines(&source, name), "{status}: no fn {name} in {file}");
    }
}
