//! The contract in `docs/contract.md` names every error code the code can produce: a code
//! added without its row fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

const CONTRACT: &str = include_str!("../../../docs/contract.md");

/// Every `.rs` file under `dir`, subdirectories included.
fn sources(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// Every `=> "family.name"` match arm of the crate's sources: how codes are published.
fn published_codes() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut codes = Vec::new();
    for path in sources(&dir) {
        let text = std::fs::read_to_string(path).unwrap();
        for piece in text.split("=> \"").skip(1) {
            let code: String = piece.chars().take_while(|c| *c != '"').collect();
            let mut parts = code.split('.');
            let well_formed = matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
                if !a.is_empty() && !b.is_empty()
                    && code.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.'));
            if well_formed {
                codes.push(code);
            }
        }
    }
    codes.sort();
    codes.dedup();
    codes
}

#[test]
fn every_published_code_is_in_the_contract() {
    let codes = published_codes();
    assert!(codes.len() >= 35, "the scan finds the codes: {codes:?}");
    for code in &codes {
        assert!(
            CONTRACT.contains(&format!("`{code}`")),
            "docs/contract.md §4 does not name {code}"
        );
    }
}

/// The README's embedding snippet is the axum integration's doctest, word for word: what a
/// newcomer copies is what the test command compiles. Both integrations' snippets stay
/// short.
#[test]
fn the_readme_embedding_snippets_are_the_compiled_ones() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for (crate_readme, heading, in_readme) in [
        ("adapters/axum/README.md", "## Embed in your axum app", true),
        (
            "adapters/actix/README.md",
            "## Embed in your actix-web app",
            false,
        ),
    ] {
        // The code of the first rust block after the heading, without its fence line
        // (`no_run` in the crate's README, `ignore` in the workspace's).
        let snippet = |text: &str| -> String {
            let from = text.find(heading).expect(heading);
            let rest = text.get(from..).unwrap();
            let start = rest.find("```rust,").expect("a rust block");
            let block = rest.get(start..).unwrap();
            let body = block.get(block.find('\n').unwrap() + 1..).unwrap();
            let end = body.find("\n```\n").expect("the block's end");
            body.get(..end).unwrap().to_owned()
        };
        let compiled = snippet(&std::fs::read_to_string(root.join(crate_readme)).unwrap());
        if in_readme {
            assert_eq!(snippet(&readme), compiled, "{heading}");
        }
        let host_lines = compiled
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count();
        assert!(
            host_lines < 30,
            "{heading}: {host_lines} lines of host code"
        );
    }
}
