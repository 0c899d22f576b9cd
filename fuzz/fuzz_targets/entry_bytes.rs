//! Fuzzes the entries' codec (`resident_auth::ports::Encoded`): the first byte picks the kind,
//! the rest is read as that record's entry. Bytes that are not a record are refused, never a
//! panic; a record read must read back the same after it is written again
//! (`resident_auth::testing::check_entry`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use resident_auth::ports::EntryKind;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let kind = match kind % 4 {
        0 => EntryKind::Link,
        1 => EntryKind::Cabinet,
        2 => EntryKind::Session,
        _ => EntryKind::Letter,
    };
    let _ = resident_auth::testing::check_entry(kind, body);
});
