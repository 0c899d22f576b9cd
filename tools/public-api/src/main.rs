//! `public-api-check <rustdoc.json> <snapshot.txt>`: renders the crate's public API with
//! cargo-public-api's library (every item with its signature: a changed parameter, return
//! type, field type, bound or trait impl changes a line) and compares it with the reviewed
//! snapshot. Exit 0 when equal; 1 with the difference, when not; 2 when rustdoc's JSON is
//! of a format this check cannot read (never a silent pass). With `UPDATE_PUBLIC_API=1`
//! it writes the snapshot instead. Run by `scripts/test.sh`.
#![forbid(unsafe_code)]

use std::{collections::BTreeSet, path::PathBuf, process::ExitCode};

/// The rustdoc JSON format that the pinned public-api release reads.
const READS_FORMAT: u64 = 57;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [json, snapshot] = args.as_slice() else {
        eprintln!("usage: public-api-check <rustdoc.json> <snapshot.txt>");
        return ExitCode::from(2);
    };
    match check(json, snapshot) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

fn check(json: &PathBuf, snapshot: &PathBuf) -> Result<ExitCode, String> {
    let text = std::fs::read_to_string(json).map_err(|e| format!("{}: {e}", json.display()))?;
    let format = serde_json::from_str::<serde_json::Value>(&text)
        .map_err(|e| format!("{}: {e}", json.display()))?
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    if format != Some(READS_FORMAT) {
        return Err(format!(
            "{}: rustdoc JSON format {format:?}, but public-api-check reads format \
             {READS_FORMAT}: move tools/public-api to the public-api release that reads the \
             new format (its CHANGELOG names it), then review the snapshots",
            json.display()
        ));
    }
    // Blanket impls (`impl<T> From<T> for T` on every type) are the standard library's, not
    // ours; auto traits (Send, Sync, Unpin) stay: losing one breaks hosts.
    let api = public_api::Builder::from_rustdoc_json(json)
        .omit_blanket_impls(true)
        .build()
        .map_err(|e| format!("{}: {e}", json.display()))?;
    let rendered = api.to_string();
    if std::env::var_os("UPDATE_PUBLIC_API").is_some_and(|v| v == "1") {
        std::fs::write(snapshot, &rendered).map_err(|e| format!("{}: {e}", snapshot.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let reviewed = std::fs::read_to_string(snapshot).unwrap_or_default();
    if reviewed == rendered {
        println!(
            "{}: {} public items, as reviewed",
            snapshot.display(),
            rendered.lines().count()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (now, before): (BTreeSet<&str>, BTreeSet<&str>) =
        (rendered.lines().collect(), reviewed.lines().collect());
    for gone in before.difference(&now) {
        println!("- {gone}");
    }
    for new in now.difference(&before) {
        println!("+ {new}");
    }
    println!(
        "the public API differs from {} (lines above: - reviewed, + now): review it, then run \
         UPDATE_PUBLIC_API=1 scripts/test.sh and commit the snapshot",
        snapshot.display()
    );
    Ok(ExitCode::FAILURE)
}
