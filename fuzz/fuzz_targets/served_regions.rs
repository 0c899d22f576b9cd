//! Fuzzes the `SERVED_REGIONS` configuration parser and the region check behind it,
//! against an independent reading of the text: empty or `*` serves all; otherwise a comma
//! list whose every item, trimmed, is exactly two ASCII digits.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use resident_auth::{config::ServedRegions, AccountNumber};

/// `None`: the text is refused. `Some(None)`: every region. `Some(Some(set))`: these.
fn reference(text: &str) -> Option<Option<BTreeSet<u8>>> {
    let text = text.trim();
    if text.is_empty() || text == "*" {
        return Some(None);
    }
    let mut regions = BTreeSet::new();
    for item in text.split(',') {
        match item.trim().as_bytes() {
            [a @ b'0'..=b'9', b @ b'0'..=b'9'] => {
                regions.insert((a - b'0') * 10 + (b - b'0'));
            }
            _ => return None,
        }
    }
    Some(Some(regions))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let expected = reference(text);
    let parsed = text.parse::<ServedRegions>();
    assert_eq!(parsed.is_ok(), expected.is_some(), "{text:?}");
    let (Ok(served), Some(expected)) = (parsed, expected) else {
        return;
    };
    for region in 0u8..100 {
        let account: AccountNumber = format!("{region:02}00000000001")
            .parse()
            .expect("a valid account number");
        let serves = expected.as_ref().map_or(true, |set| set.contains(&region));
        assert_eq!(
            served.serves(&account),
            serves,
            "{text:?} region {region:02}"
        );
        assert_eq!(served.check(&account).is_ok(), serves);
    }
});
