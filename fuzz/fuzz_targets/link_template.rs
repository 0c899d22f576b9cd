//! Fuzzes the link template parser: no panic on any text; a template that parses holds its
//! placeholder once, after the host, and prints back to text that parses to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resident_auth::letters::LinkTemplate;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(template) = text.parse::<LinkTemplate>() {
        let printed = template.to_string();
        assert_eq!(printed.matches("{token}").count(), 1);
        assert!(printed.starts_with("https://") || printed.starts_with("http://"));
        // After the host: something of a path, query or fragment precedes the token.
        let (before, _) = printed.split_once("{token}").unwrap_or_default();
        let (_, after_scheme) = before.split_once("://").unwrap_or_default();
        assert!(after_scheme.contains(['/', '?', '#']));
        assert_eq!(printed.parse::<LinkTemplate>(), Ok(template));
    }
});
