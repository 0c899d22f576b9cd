//! The billing directory's CSV format (docs/contract.md §5): `account_number,surnames,address,premises`,
//! UTF-8 with a header row, surnames separated by `;`.
//!
//! Parsing is pure and all-or-nothing: every bad row is reported with its line number,
//! and a file with any bad row yields no records.

use std::{collections::HashSet, fmt};

use crate::{config::DirectoryRecord, errors::Explain as _, AccountNumber, Premises, Surname};

/// One bad row of a directory CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRowError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// What is wrong, in English.
    pub reason: String,
}

/// A directory CSV that cannot be loaded, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DirectoryCsvError {
    /// The problems, in file order.
    pub errors: Vec<DirectoryRowError>,
}

impl fmt::Display for DirectoryCsvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the directory CSV has {} bad row(s)", self.errors.len())?;
        for error in self.errors.iter().take(20) {
            write!(f, "; line {}: {}", error.line, error.reason)?;
        }
        Ok(())
    }
}

const COLUMNS: [&str; 4] = ["account_number", "surnames", "address", "premises"];

/// Parses a directory CSV.
///
/// ```
/// use resident_auth::config::parse_directory_csv;
/// let csv = "account_number,surnames,address,premises\n\
///            7800000000001,Иванов;Иванова,\"Санкт-Петербург, ул. Садовая, д. 1, кв. 12\",12\n";
/// let records = parse_directory_csv(csv)?;
/// assert_eq!(records[0].surnames, ["Иванов", "Иванова"]);
/// assert_eq!(records[0].premises.to_string(), "12");
/// # Ok::<(), resident_auth::errors::DirectoryCsvError>(())
/// ```
///
/// # Errors
/// [`DirectoryCsvError`] listing every bad row (bad header, bad field, duplicate account).
pub fn parse_directory_csv(text: &str) -> Result<Vec<DirectoryRecord>, DirectoryCsvError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    let header_error = |reason: String| DirectoryCsvError {
        errors: vec![DirectoryRowError { line: 1, reason }],
    };
    let headers = reader
        .headers()
        .map_err(|e| header_error(format!("unreadable header: {e}")))?
        .clone();
    let mut positions = [0usize; 4];
    for (slot, column) in positions.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == column)
            .ok_or_else(|| header_error(format!("missing column {column:?}")))?;
    }
    let [account_at, surnames_at, address_at, premises_at] = positions;
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    for row in reader.records() {
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                errors.push(DirectoryRowError {
                    line,
                    reason: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = row.position().map_or(0, csv::Position::line);
        let field = |at: usize| row.get(at).unwrap_or("");
        let mut fail = |reason: String| errors.push(DirectoryRowError { line, reason });
        let account = match field(account_at).parse::<AccountNumber>() {
            Ok(account) => Some(account),
            Err(e) => {
                fail(format!("account_number: {} ({})", e, e.code()));
                None
            }
        };
        let premises = match field(premises_at).parse::<Premises>() {
            Ok(premises) => Some(premises),
            Err(e) => {
                fail(format!("premises: {} ({})", e, e.code()));
                None
            }
        };
        let surnames = surnames(field(surnames_at), &mut fail);
        let address = field(address_at).to_owned();
        if address.is_empty() {
            fail("address: empty".to_owned());
        }
        if let Some(account) = account {
            if !seen.insert(account) {
                fail(format!("account_number: {account} appears twice"));
            }
            if let Some(premises) = premises {
                records.push(DirectoryRecord {
                    account_number: account,
                    address,
                    premises,
                    surnames,
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(records)
    } else {
        Err(DirectoryCsvError { errors })
    }
}

/// The `surnames` column: `;`-separated surnames, each parsed; each refusal told to `fail`.
fn surnames(column: &str, fail: &mut impl FnMut(String)) -> Vec<String> {
    let mut surnames = Vec::new();
    for surname in column.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        match surname.parse::<Surname>() {
            Ok(s) => surnames.push(s.as_str().to_owned()),
            Err(e) => fail(format!("surnames: {surname:?}: {} ({})", e, e.code())),
        }
    }
    surnames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let csv = "account_number,surnames,address,premises\n\
                   7800000000001,Иванов,\"СПб, ул. Садовая, 1\",12\n\
                   78000000001,Петров,Адрес,12\n\
                   7800000000003,Сидоров И.И.,Адрес,12А\n\
                   7800000000001,Иванов,Адрес,5\n";
        let error = parse_directory_csv(csv).unwrap_err();
        let lines: Vec<u64> = error.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 4, 5], "{error}");
        assert!(error.errors[0]
            .reason
            .contains("account_number.wrong_length"));
    }

    #[test]
    fn columns_may_come_in_any_order_and_surnames_may_be_empty() {
        let csv = "premises,address,account_number,surnames\n2Н,Офис,4700000000001,\n";
        let records = parse_directory_csv(csv).unwrap();
        assert!(records[0].surnames.is_empty());
        assert_eq!(records[0].premises.to_string(), "2Н");
    }

    #[test]
    fn a_missing_column_is_a_header_error() {
        let error = parse_directory_csv("account_number,address,premises\n").unwrap_err();
        assert_eq!(error.errors[0].line, 1);
    }
}
