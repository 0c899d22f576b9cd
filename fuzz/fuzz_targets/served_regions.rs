//! Fuzzes the `SERVED_REGIONS` configuration parser and the region check behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resident_auth::{AccountNumber, ServedRegions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(served) = text.parse::<ServedRegions>() {
        let account: AccountNumber = "7800000000001".parse().expect("a valid account number");
        assert_eq!(served.serves(&account), served.check(&account).is_ok());
    }
});
