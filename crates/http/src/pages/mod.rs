//! The guide's screens as server-rendered HTML pages with CSRF-protected forms, whatever the
//! web framework: login (email first), registration, the letter's confirmation link,
//! activation with the premises number, the cabinet with its account switch, adding an
//! address, recovery, password change and sessions.
//!
//! [`Pages`] is a [`Surface`] mounted at the site's root, where the letters' default links
//! point; the integrations' `pages` features mount it beside the API.
//!
//! Every text that reaches a page is escaped: templates take it only as an argument of
//! `html!`, which escapes whatever is not already markup.

use std::collections::HashMap;

use http::{header, HeaderValue, StatusCode};
use resident_auth::{
    errors::{Explain, Field},
    Error, Locale, RequestContext,
};
use serde::de::DeserializeOwned;

use crate::{
    api::Api,
    integration::{
        operations, Headers, Incoming, Method, Refusal, Response, Route, Surface, Target,
    },
    web,
};
use html::{alert, html, page, t, Html};

mod cabinet;
mod email_change;
mod html;
mod journeys;
mod own_data;
mod settings;

/// The answer to a page request: status, headers (cookies, security headers, `Location`)
/// and the HTML.
type PageResponse = http::Response<String>;

operations! {
/// A screen of the guide.
pub(crate) enum Screen {
    LoginPage,
    Identify,
    Login,
    RegisterPage,
    Register,
    ConfirmPage,
    Confirm,
    Activate,
    Cabinet,
    SelectAccount,
    AddPage,
    Add,
    Logout,
    RecoverPage,
    Recover,
    RecoverComplete,
    Language,
    PasswordPage,
    ChangePassword,
    SessionsPage,
    EndSession,
    EndOtherSessions,
    DataPage,
    ExportData,
    CloseCabinet,
    EmailPage,
    RequestEmailChange,
    ConfirmEmailChangePage,
    ConfirmEmailChange,
    CancelEmailChangePage,
    CancelEmailChange,
}
}

const fn route(method: Method, path: &'static str, screen: Screen) -> Route {
    Route::new(method, path, Target::Operation(screen.index()))
}

/// Every page route. Paths that take both methods appear twice, once per method.
const ROUTES: [Route; 31] = [
    route(Method::Get, "/", Screen::LoginPage),
    route(Method::Post, "/login/identify", Screen::Identify),
    route(Method::Post, "/login", Screen::Login),
    route(Method::Get, "/register", Screen::RegisterPage),
    route(Method::Post, "/register", Screen::Register),
    route(Method::Get, "/confirm", Screen::ConfirmPage),
    route(Method::Post, "/confirm", Screen::Confirm),
    route(Method::Post, "/activate", Screen::Activate),
    route(Method::Get, "/cabinet", Screen::Cabinet),
    route(Method::Post, "/cabinet/select", Screen::SelectAccount),
    route(Method::Get, "/cabinet/add", Screen::AddPage),
    route(Method::Post, "/cabinet/add", Screen::Add),
    route(Method::Post, "/logout", Screen::Logout),
    route(Method::Get, "/recover", Screen::RecoverPage),
    route(Method::Post, "/recover", Screen::Recover),
    route(Method::Post, "/recover/complete", Screen::RecoverComplete),
    route(Method::Get, "/lang/{lang}", Screen::Language),
    route(Method::Get, "/password", Screen::PasswordPage),
    route(Method::Post, "/password", Screen::ChangePassword),
    route(Method::Get, "/sessions", Screen::SessionsPage),
    route(Method::Post, "/sessions/end", Screen::EndSession),
    route(
        Method::Post,
        "/sessions/end-others",
        Screen::EndOtherSessions,
    ),
    route(Method::Get, "/cabinet/data", Screen::DataPage),
    route(Method::Post, "/cabinet/data/export", Screen::ExportData),
    route(Method::Post, "/cabinet/close", Screen::CloseCabinet),
    route(Method::Get, "/cabinet/email", Screen::EmailPage),
    route(Method::Post, "/cabinet/email", Screen::RequestEmailChange),
    route(
        Method::Get,
        "/email/confirm",
        Screen::ConfirmEmailChangePage,
    ),
    route(Method::Post, "/email/confirm", Screen::ConfirmEmailChange),
    route(Method::Get, "/email/cancel", Screen::CancelEmailChangePage),
    route(Method::Post, "/email/cancel", Screen::CancelEmailChange),
];

/// One request as the screens see it.
struct Request<'a> {
    api: &'a Api,
    headers: &'a (dyn Headers + Sync),
    incoming: Incoming<'a>,
}

impl Request<'_> {
    fn session_cookie(&self) -> Option<&str> {
        web::cookie(self.headers, self.api.cookies().session())
    }

    /// The request context of a form: language, client (for per-client limits), browser.
    fn context(&self) -> RequestContext {
        self.api.context(self.headers, self.incoming.peer)
    }

    fn query<T: DeserializeOwned + Default>(&self) -> T {
        serde_urlencoded::from_str(self.incoming.query).unwrap_or_default()
    }

    /// The form of a POST, its CSRF field checked ([`web::CsrfKey::check`]: the field equals
    /// the cookie, and the token is one this server signed for the request's session); else
    /// the answer to give.
    // The error is the request's whole answer, returned once: boxing it buys nothing.
    #[allow(clippy::result_large_err)]
    fn form<T: DeserializeOwned + Csrf>(&self) -> Result<(T, PageRequest), PageResponse> {
        let visit = PageRequest::new(self.api, self.headers);
        let is_form = self.headers.first("content-type").is_some_and(|value| {
            value.split(';').next().is_some_and(|media| {
                media
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
        let form: Option<T> = is_form
            .then(|| serde_urlencoded::from_bytes(self.incoming.body).ok())
            .flatten();
        match form {
            Some(form)
                if self
                    .api
                    .csrf_key()
                    .check(self.api.cookies(), self.headers, form.csrf()) =>
            {
                Ok((form, visit))
            }
            Some(_) => Err(expired_form(visit)),
            None => Err(unreadable_form(visit)),
        }
    }
}

/// A form with its CSRF field.
trait Csrf {
    fn csrf(&self) -> &str;
}

macro_rules! forms {
    ($($(#[$meta:meta])* struct $name:ident { $($field:ident: $kind:ty),* $(,)? })*) => {$(
        $(#[$meta])*
        #[derive(serde::Deserialize)]
        struct $name {
            csrf: String,
            $($field: $kind),*
        }

        impl $crate::pages::Csrf for $name {
            fn csrf(&self) -> &str {
                &self.csrf
            }
        }
    )*};
}
pub(crate) use forms;

forms! {
    /// A form with nothing but its CSRF field (log out, end the other sessions).
    struct CsrfOnly {}
}

/// The guide's screens as server-rendered HTML pages, a [`Surface`] mounted at the site's
/// root.
#[derive(Debug, Clone)]
pub struct Pages {
    api: Api,
}

impl Pages {
    /// The pages over `api` (the same one the JSON API is mounted with).
    #[must_use]
    pub fn new(api: Api) -> Self {
        Self { api }
    }
}

impl Surface for Pages {
    const ROUTES: &'static [Route] = &ROUTES;
    const CLAIMS_PREFIX: bool = false;
    const DOCUMENTED: bool = false;

    fn body_timeout(&self) -> std::time::Duration {
        self.api.connection_limits().body_timeout()
    }

    async fn answer<'a>(
        &'a self,
        route: &'a Route,
        headers: &'a (dyn Headers + Sync),
        incoming: Incoming<'a>,
    ) -> Response {
        let Some(screen) = Screen::of(route) else {
            return self.refuse(Refusal::NotFound, headers);
        };
        let page = handle(&self.api, screen, headers, incoming).await;
        Response::from_http(page.map(bytes::Bytes::from))
    }

    fn refuse(&self, refusal: Refusal, headers: &(dyn Headers + Sync)) -> Response {
        Response::from_http(refused(&self.api, headers, &refusal).map(bytes::Bytes::from))
    }
}

/// Answers one page request.
async fn handle(
    api: &Api,
    screen: Screen,
    headers: &(dyn Headers + Sync),
    incoming: Incoming<'_>,
) -> PageResponse {
    let request = Request {
        api,
        headers,
        incoming,
    };
    let request = &request;
    match screen {
        Screen::LoginPage => journeys::login_page(request).await,
        Screen::Identify => journeys::identify(request),
        Screen::Login => journeys::login(request).await,
        Screen::RegisterPage => journeys::register_page(request),
        Screen::Register => journeys::register(request).await,
        Screen::ConfirmPage => journeys::confirm_page(request),
        Screen::Confirm => journeys::confirm(request).await,
        Screen::Activate => journeys::activate(request).await,
        Screen::RecoverPage => journeys::recover_page(request),
        Screen::Recover => journeys::recover(request).await,
        Screen::RecoverComplete => journeys::recover_complete(request).await,
        Screen::Cabinet => cabinet::cabinet(request).await,
        Screen::SelectAccount => cabinet::select(request).await,
        Screen::AddPage => cabinet::add_page(request).await,
        Screen::Add => cabinet::add(request).await,
        Screen::Logout => cabinet::logout(request).await,
        Screen::Language => set_language(request),
        Screen::PasswordPage => settings::password_page(request).await,
        Screen::ChangePassword => settings::change_password(request).await,
        Screen::SessionsPage => settings::sessions_page(request).await,
        Screen::EndSession => settings::end_session(request).await,
        Screen::EndOtherSessions => settings::end_other_sessions(request).await,
        Screen::DataPage => own_data::data(request).await,
        Screen::ExportData => own_data::export(request).await,
        Screen::CloseCabinet => own_data::close(request).await,
        Screen::EmailPage => email_change::email_page(request).await,
        Screen::RequestEmailChange => email_change::request_change(request).await,
        Screen::ConfirmEmailChangePage => email_change::confirm_page(request),
        Screen::ConfirmEmailChange => email_change::confirm(request).await,
        Screen::CancelEmailChangePage => email_change::cancel_page(request),
        Screen::CancelEmailChange => email_change::cancel(request).await,
    }
}

/// The answer to a page request refused before it was read: 413 for a body over
/// [`crate::BODY_LIMIT`], 408 for one that did not arrive within the body timeout, 405 for
/// a method the path does not take, else 404.
fn refused(api: &Api, headers: &(dyn Headers + Sync), refusal: &Refusal) -> PageResponse {
    let visit = PageRequest::new(api, headers);
    let (status, title) = match refusal {
        Refusal::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            visit.t("Форма слишком велика", "The form is too large"),
        ),
        Refusal::TimedOut => (
            StatusCode::REQUEST_TIMEOUT,
            visit.t("Форма не дошла", "The form did not arrive"),
        ),
        Refusal::MethodNotAllowed { .. } => (
            StatusCode::METHOD_NOT_ALLOWED,
            visit.t("Страница не найдена", "Page not found"),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            visit.t("Страница не найдена", "Page not found"),
        ),
    };
    let body = html!(
        "<h1>{title}</h1><p><a href=\"/\">{home}</a></p>",
        title = title,
        home = visit.t("На главную", "Home"),
    );
    let mut page = visit.html(status, title, Html::empty(), body, "/");
    if let Refusal::MethodNotAllowed { allow } = refusal {
        if let Ok(allow) = HeaderValue::from_str(allow) {
            page.headers_mut().insert(header::ALLOW, allow);
        }
    }
    page
}

/// One request's view: language, CSRF token (new or from the cookie), cookies to set.
struct PageRequest {
    locale: Locale,
    csrf: String,
    set_cookies: Vec<String>,
    cookies: web::Cookies,
}

impl PageRequest {
    fn new(api: &Api, headers: &(dyn Headers + Sync)) -> Self {
        let cookies = api.cookies();
        let mut set_cookies = Vec::new();
        let session = web::cookie(headers, cookies.session());
        let csrf = match web::cookie(headers, cookies.csrf())
            .filter(|v| api.csrf_key().valid(v, session))
        {
            Some(existing) => existing.to_owned(),
            None => {
                let token = api.csrf_key().issue(session);
                set_cookies.push(cookies.set_cookie(cookies.csrf(), &token, None));
                token
            }
        };
        Self {
            locale: web::locale(headers),
            csrf,
            set_cookies,
            cookies,
        }
    }

    fn html(
        self,
        status: StatusCode,
        title: &str,
        header_extra: Html,
        body: Html,
        path: &str,
    ) -> PageResponse {
        let page = page(self.locale, title, header_extra, body, path).into_string();
        let mut response = http::Response::new(page);
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        self.finish(response)
    }

    fn redirect(self, to: &'static str) -> PageResponse {
        let mut response = http::Response::new(String::new());
        *response.status_mut() = StatusCode::SEE_OTHER;
        response
            .headers_mut()
            .insert(header::LOCATION, HeaderValue::from_static(to));
        self.finish(response)
    }

    fn finish(self, mut response: PageResponse) -> PageResponse {
        let headers = response.headers_mut();
        for value in self.set_cookies {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(header::SET_COOKIE, value);
            }
        }
        let secure = self.cookies.secure().then_some(web::HSTS);
        for (name, value) in web::PAGE_HEADERS.into_iter().chain(secure) {
            headers.insert(
                header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        response
    }

    /// Sets the session cookie (no `Max-Age`: it ends with the browser; the server's idle
    /// and absolute expiry still hold).
    fn sign_in(&mut self, token: &str) {
        let cookie = self.cookies.set_cookie(self.cookies.session(), token, None);
        self.set_cookies.push(cookie);
    }

    fn t(&self, ru: &'static str, en: &'static str) -> &'static str {
        t(self.locale, ru, en)
    }
}

/// The session cookie cleared, and the way to the login page.
fn to_login(mut visit: PageRequest) -> PageResponse {
    let cookie = visit
        .cookies
        .set_cookie(visit.cookies.session(), "", Some(0));
    visit.set_cookies.push(cookie);
    visit.redirect("/")
}

fn expired_form(visit: PageRequest) -> PageResponse {
    let title = visit.t("Форма устарела", "The form has expired");
    let body = html!(
        "<h1>{title}</h1><p>{text}</p><p><a href=\"/\">{home}</a></p>",
        title = title,
        text = visit.t(
            "Обновите страницу и отправьте форму ещё раз.",
            "Reload the page and send the form again."
        ),
        home = visit.t("На главную", "Home"),
    );
    visit.html(StatusCode::FORBIDDEN, title, Html::empty(), body, "/")
}

fn unreadable_form(visit: PageRequest) -> PageResponse {
    let title = visit.t("Форма не прочитана", "The form could not be read");
    let body = html!(
        "<h1>{title}</h1><p>{text}</p><p><a href=\"/\">{home}</a></p>",
        title = title,
        text = visit.t(
            "Отправьте форму со страницы портала ещё раз.",
            "Send the form again from the portal's page."
        ),
        home = visit.t("На главную", "Home"),
    );
    visit.html(
        StatusCode::UNPROCESSABLE_ENTITY,
        title,
        Html::empty(),
        body,
        "/",
    )
}

/// Field errors by field, and the rest for an alert.
fn split_problems(error: &Error, locale: Locale) -> (HashMap<Field, String>, Vec<String>) {
    let mut fields = HashMap::new();
    let mut general = Vec::new();
    match error {
        Error::Rejected(problems) => {
            for problem in problems {
                match problem.field() {
                    Some(field) if field != Field::Token => {
                        fields
                            .entry(field)
                            .or_insert_with(|| problem.message(locale));
                    }
                    _ => general.push(problem.message(locale)),
                }
            }
        }
        Error::Unavailable(unavailable) => general.push(unavailable.message(locale)),
        _ => general.push(t(locale, "Ошибка", "Error").to_owned()),
    }
    (fields, general)
}

fn status_of(error: &Error) -> StatusCode {
    StatusCode::from_u16(crate::api::status(error)).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

/// A page that says what went wrong, with nothing to fill in.
fn problem_page(
    visit: PageRequest,
    title: &'static str,
    error: &Error,
    path: &str,
) -> PageResponse {
    let (_, general) = split_problems(error, visit.locale);
    let body = html!(
        "<h1>{title}</h1>{alert}",
        title = title,
        alert = alert(&general)
    );
    visit.html(status_of(error), title, Html::empty(), body, path)
}

// ---- Language switch --------------------------------------------------------------------

#[derive(Debug, Default, serde::Deserialize)]
struct Back {
    back: Option<String>,
}

fn set_language(request: &Request<'_>) -> PageResponse {
    let mut visit = PageRequest::new(request.api, request.headers);
    let back: Back = request.query();
    if let Some(locale) = request
        .incoming
        .parameter
        .and_then(|lang| lang.parse::<Locale>().ok())
    {
        let cookie =
            visit
                .cookies
                .set_cookie(web::LANGUAGE_COOKIE, locale.code(), Some(365 * 24 * 3600));
        visit.set_cookies.push(cookie);
    }
    visit.redirect(back_target(back.back.as_deref()))
}

/// The pages a language switch may return to: exactly these paths, nothing else (no
/// query, no other host, no characters a browser would read differently). Anything else
/// goes to `/`: no open redirect.
const BACK_TARGETS: [&str; 8] = [
    "/",
    "/register",
    "/cabinet",
    "/cabinet/add",
    "/cabinet/data",
    "/recover",
    "/password",
    "/sessions",
];

fn back_target(back: Option<&str>) -> &'static str {
    back.and_then(|back| BACK_TARGETS.iter().find(|target| **target == back))
        .copied()
        .unwrap_or("/")
}

#[cfg(test)]
mod tests {
    use super::{back_target, Method, ROUTES};

    #[test]
    fn only_known_pages_are_followed_back() {
        for good in super::BACK_TARGETS {
            assert_eq!(back_target(Some(good)), good);
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.path() == good && r.method() == Method::Get),
                "{good} is a page"
            );
        }
        for bad in [
            "/\t/evil.example",
            "/\r\n/evil.example",
            "//evil.example",
            "/\\evil.example",
            "\\evil.example",
            "https://evil.example/",
            "/cabinet?x=1",
            "/cabinet/../",
            " /cabinet",
            "/Cabinet",
            "",
        ] {
            assert_eq!(back_target(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(back_target(None), "/");
    }

    #[test]
    fn every_route_is_listed_once() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in ROUTES.iter().skip(i + 1) {
                assert!(
                    !(a.method() == b.method() && a.path() == b.path()),
                    "{} {} twice",
                    a.method().as_str(),
                    a.path()
                );
            }
        }
    }
}
