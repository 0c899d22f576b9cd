//! What every framework needs around the API and the pages: reading headers and cookies,
//! the language of a request, session and CSRF cookies, and the security headers of
//! answers. Framework adapters wrap their header map in [`Headers`] and call these.

use resident_auth::{ports::Token, Locale};

/// Read access to a request's headers, whatever the framework's header map.
///
/// Names are lowercase. Values that are not visible ASCII are skipped, as a browser would
/// never send them for the headers read here.
pub trait Headers {
    /// Every value of the header `name`, in the order received.
    fn all<'a>(&'a self, name: &str) -> Vec<&'a str>;

    /// The first value of the header `name`.
    fn first(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }
}

/// Headers as pairs: for tests, and for hosts that already hold them so.
impl Headers for [(&str, &str)] {
    fn all<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
            .collect()
    }
}

/// The `http` crate's header map: axum, hyper, reqwest and tower use it.
impl Headers for http::HeaderMap {
    fn all<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect()
    }
}

/// actix-web's header map (its `http` types are of another major version).
#[cfg(feature = "actix")]
impl Headers for actix_web::http::header::HeaderMap {
    fn all<'a>(&'a self, name: &str) -> Vec<&'a str> {
        self.get_all(name)
            .filter_map(|value| value.to_str().ok())
            .collect()
    }
}

/// A cookie's value from every `Cookie` header (HTTP/2 may split them).
pub fn cookie<'a>(headers: &'a (impl Headers + ?Sized), name: &str) -> Option<&'a str> {
    headers
        .all("cookie")
        .into_iter()
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The language of a request: the `lang` cookie (set by the pages' language switch), else
/// `Accept-Language`, else Russian.
pub fn locale(headers: &(impl Headers + ?Sized)) -> Locale {
    if let Some(lang) = cookie(headers, LANGUAGE_COOKIE).and_then(|v| v.parse().ok()) {
        return lang;
    }
    headers
        .first("accept-language")
        .map_or(Locale::Ru, Locale::from_accept_language)
}

/// The cookie that keeps the chosen language.
pub const LANGUAGE_COOKIE: &str = "lang";

/// The token of an `Authorization: Bearer …` header value.
#[must_use]
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The header a script sends the CSRF token in, for a state-changing request that
/// authenticates by the session cookie (forms send it as the `csrf` field instead).
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How the portal's cookies are named and flagged.
///
/// Over https (`secure`) the names take the `__Host-` prefix — a cookie no other host or
/// path can set — and the `Secure` flag; every cookie is `HttpOnly; SameSite=Lax;
/// Path=/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    secure: bool,
}

impl Cookies {
    /// Cookies for a portal served over https (`secure`) or plain http.
    #[must_use]
    pub const fn new(secure: bool) -> Self {
        Self { secure }
    }

    /// Whether the portal is served over https.
    #[must_use]
    #[cfg_attr(not(feature = "pages"), allow(dead_code))]
    pub const fn secure(self) -> bool {
        self.secure
    }

    /// The session cookie's name: `__Host-session` over https, `session` otherwise.
    #[must_use]
    pub const fn session(self) -> &'static str {
        if self.secure {
            "__Host-session"
        } else {
            "session"
        }
    }

    /// The CSRF cookie's name: `__Host-csrf` over https, `csrf` otherwise.
    #[must_use]
    pub const fn csrf(self) -> &'static str {
        if self.secure {
            "__Host-csrf"
        } else {
            "csrf"
        }
    }

    /// A `Set-Cookie` value; `max_age` in seconds (`Some(0)` deletes it), `None` for a
    /// cookie that ends with the browser session.
    #[must_use]
    #[cfg_attr(not(feature = "pages"), allow(dead_code))]
    pub fn set_cookie(self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            cookie.push_str("; Secure");
        }
        if let Some(seconds) = max_age {
            cookie.push_str(&format!("; Max-Age={seconds}"));
        }
        cookie
    }
}

/// The key that signs CSRF tokens. Every instance behind one address must hold the same
/// key (a token issued by one is checked by another); [`CsrfKey::random`] suits a single
/// instance.
#[derive(Clone)]
pub struct CsrfKey([u8; 32]);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(…)")
    }
}

impl CsrfKey {
    /// A key from 32 secret bytes (shared by the instances of one portal).
    #[must_use]
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A random key, for a single instance: tokens end with the process.
    #[must_use]
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
        Self(key)
    }

    fn mac(&self, nonce: &str, session: Option<&str>) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        // HMAC accepts a key of any length: the error cannot happen.
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(nonce.as_bytes());
        mac.update(b"|");
        mac.update(session.unwrap_or("").as_bytes());
        mac
    }

    /// A new CSRF token for the session cookie `session` (`None` before login): a random
    /// nonce and an HMAC-SHA-256 of it and the session.
    #[must_use]
    pub fn issue(&self, session: Option<&str>) -> String {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
        use hmac::Mac;
        let nonce = Token::generate();
        let tag = self.mac(nonce.expose(), session).finalize().into_bytes();
        format!("{}.{}", nonce.expose(), URL_SAFE_NO_PAD.encode(tag))
    }

    /// Whether `token` was issued under this key for `session`.
    #[must_use]
    pub fn valid(&self, token: &str, session: Option<&str>) -> bool {
        use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
        use hmac::Mac;
        let Some((nonce, tag)) = token.split_once('.') else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        Token::from_user(nonce).is_some() && self.mac(nonce, session).verify_slice(&tag).is_ok()
    }

    /// The CSRF check of a state-changing request: `submitted` (the form field, or the
    /// [`CSRF_HEADER`]) equals the CSRF cookie, and that token is one this key signed for
    /// the request's session cookie. A token an attacker planted in a cookie is either
    /// unsigned or signed for another session.
    pub(crate) fn check(
        &self,
        cookies: Cookies,
        headers: &(impl Headers + ?Sized),
        submitted: &str,
    ) -> bool {
        use subtle::ConstantTimeEq;
        let session = cookie(headers, cookies.session());
        cookie(headers, cookies.csrf()).is_some_and(|expected| {
            !expected.is_empty()
                && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
                && self.valid(expected, session)
        })
    }
}

/// Headers of every JSON answer: never cached, never sniffed.
pub const API_HEADERS: [(&str, &str); 2] = [
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
];

/// Headers of every HTML page: links carry tokens, so no `Referer` leaves the portal; the
/// portal is never framed; nothing but its own inline style runs; never cached or sniffed.
#[cfg_attr(not(feature = "pages"), allow(dead_code))]
pub const PAGE_HEADERS: [(&str, &str); 5] = [
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
];

/// The HSTS header of pages served over https.
#[cfg_attr(not(feature = "pages"), allow(dead_code))]
pub const HSTS: (&str, &str) = (
    "strict-transport-security",
    "max-age=31536000; includeSubDomains",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer")), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn cookies_from_every_header() {
        let headers = [("Cookie", "a=1; session=s1"), ("cookie", "lang=en")];
        assert_eq!(cookie(&headers[..], "session"), Some("s1"));
        assert_eq!(cookie(&headers[..], "lang"), Some("en"));
        assert_eq!(cookie(&headers[..], "sess"), None);
        assert_eq!(locale(&headers[..]), Locale::En);
        let headers = [("accept-language", "en-US,en;q=0.9"), ("cookie", "lang=ru")];
        assert_eq!(locale(&headers[..]), Locale::Ru, "the cookie wins");
        let headers = [("accept-language", "en-US,en;q=0.9")];
        assert_eq!(locale(&headers[..]), Locale::En);
        assert_eq!(locale(&[][..]), Locale::Ru);
    }

    #[test]
    fn cookie_names_and_flags() {
        let plain = Cookies::new(false);
        assert_eq!(plain.session(), "session");
        assert_eq!(
            plain.set_cookie("session", "t", None),
            "session=t; Path=/; HttpOnly; SameSite=Lax"
        );
        let secure = Cookies::new(true);
        assert_eq!(secure.session(), "__Host-session");
        assert_eq!(secure.csrf(), "__Host-csrf");
        assert_eq!(
            secure.set_cookie("__Host-csrf", "c", Some(0)),
            "__Host-csrf=c; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0"
        );
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_key_and_the_session() {
        let key = CsrfKey::new([7u8; 32]);
        let token = key.issue(Some("s1"));
        assert!(key.valid(&token, Some("s1")));
        assert!(!key.valid(&token, Some("s2")), "another session");
        assert!(!key.valid(&token, None), "no session");
        assert!(
            !CsrfKey::new([8u8; 32]).valid(&token, Some("s1")),
            "another server's key"
        );
        let anonymous = key.issue(None);
        assert!(key.valid(&anonymous, None));
        assert!(!key.valid(&anonymous, Some("s1")));
        let bare = Token::generate();
        for forged in ["", ".", "x.y", bare.expose()] {
            assert!(!key.valid(forged, None), "{forged:?}");
        }
        assert_eq!(format!("{key:?}"), "CsrfKey(…)");
    }

    #[test]
    fn the_csrf_check_wants_the_cookie_the_field_and_the_signature() {
        let key = CsrfKey::new([1u8; 32]);
        let cookies = Cookies::new(false);
        let token = key.issue(Some("s1"));
        let cookie_header = format!("session=s1; csrf={token}");
        let headers = [("cookie", cookie_header.as_str())];
        assert!(key.check(cookies, &headers[..], &token));
        assert!(!key.check(cookies, &headers[..], "other"), "field differs");
        assert!(!key.check(cookies, &headers[..], ""), "no field");
        let planted = format!("session=s2; csrf={token}");
        let headers = [("cookie", planted.as_str())];
        assert!(!key.check(cookies, &headers[..], &token), "another session");
        let headers = [("cookie", "session=s1; csrf=")];
        assert!(!key.check(cookies, &headers[..], ""), "empty cookie");
    }
}
