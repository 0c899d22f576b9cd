//! How a session's client is summarised for the list of sessions.

use crate::RequestContext;

/// The client as the list of sessions shows it, at most 64 characters: the browser and
/// system read off the `User-Agent`, and the client address.
pub(super) fn client_summary(context: &RequestContext) -> Option<String> {
    let software = context.user_agent.as_deref().map(user_agent_summary);
    let summary = match (software, context.client.as_deref()) {
        (Some(software), Some(client)) => format!("{software}, {client}"),
        (Some(software), None) => software,
        (None, Some(client)) => client.to_owned(),
        (None, None) => return None,
    };
    Some(summary.chars().take(64).collect())
}

/// "Firefox on Linux", from a `User-Agent` value; the first product token for clients
/// that are not browsers ("curl").
fn user_agent_summary(user_agent: &str) -> String {
    const BROWSERS: [(&str, &str); 7] = [
        ("YaBrowser/", "Yandex Browser"),
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
    ];
    const SYSTEMS: [(&str, &str); 6] = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ];
    let browser = BROWSERS
        .iter()
        .find(|(mark, _)| user_agent.contains(mark))
        .map(|(_, name)| *name);
    let system = SYSTEMS
        .iter()
        .find(|(mark, _)| user_agent.contains(mark))
        .map(|(_, name)| *name);
    let product = || {
        let first = user_agent.split(['/', ' ']).next().unwrap_or_default();
        first
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(24)
            .collect::<String>()
    };
    match (browser, system) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_owned(),
        (None, _) => product(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Locale;

    #[test]
    fn user_agents_are_summarised() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
        assert_eq!(user_agent_summary(firefox), "Firefox on Linux");
        let chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
        assert_eq!(user_agent_summary(chrome), "Chrome on Windows");
        let yandex =
            "Mozilla/5.0 (Linux; Android 13) Chrome/120.0 YaBrowser/24.1 Mobile Safari/537.36";
        assert_eq!(user_agent_summary(yandex), "Yandex Browser on Android");
        assert_eq!(user_agent_summary("curl/8.5.0"), "curl");
        assert_eq!(user_agent_summary("\u{7}evil\r\nheader"), "evilheader");
        let context = RequestContext::new(Locale::Ru)
            .with_client("2001:db8:1:2::/64")
            .with_user_agent(firefox);
        assert_eq!(
            client_summary(&context).as_deref(),
            Some("Firefox on Linux, 2001:db8:1:2::/64")
        );
        let long = RequestContext::new(Locale::Ru).with_user_agent("x".repeat(200));
        assert_eq!(client_summary(&long).map(|s| s.chars().count()), Some(24));
        assert_eq!(client_summary(&RequestContext::new(Locale::Ru)), None);
    }
}
