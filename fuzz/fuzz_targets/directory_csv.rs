//! Fuzzes the billing-directory CSV parser (an operator's file, imported whole): no panic;
//! an accepted file yields records whose account numbers are unique and canonical, and a
//! refused one names lines that exist.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use resident_auth::config::parse_directory_csv;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_directory_csv(text) {
        Ok(records) => {
            let mut seen = HashSet::new();
            for record in &records {
                let number = record.account_number.to_string();
                assert_eq!(number.len(), 13);
                assert!(seen.insert(number), "duplicate account accepted");
                assert_eq!(record.premises.to_string().parse(), Ok(record.premises));
            }
        }
        Err(error) => {
            // The CSV reader ends lines at `\n`, `\r` or both.
            let breaks = text.bytes().filter(|b| matches!(b, b'\n' | b'\r')).count();
            let last_line = u64::try_from(breaks).unwrap_or(u64::MAX).saturating_add(2);
            assert!(!error.errors.is_empty());
            for row in &error.errors {
                assert!(
                    (1..=last_line).contains(&row.line),
                    "line {} of at most {last_line}",
                    row.line
                );
            }
        }
    }
});
