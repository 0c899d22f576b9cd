//! The guide's screens as server-rendered pages, with CSRF-protected forms.

use std::collections::HashMap;

use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Form, Router,
};
use resident_auth::{
    errors::Field, secrecy::SecretString, AddressForm, Error, Locale, Problem, RegistrationForm,
    UserError,
};
use serde::Deserialize;

use html::{alert, csrf_field, escape, hidden, page, t, Input};
use resident_auth::RequestContext;
use resident_auth_http::web;

/// The pages' state is the integration itself.
type AppState = crate::ResidentAuth;

mod html;

impl crate::ResidentAuth {
    fn session_cookie(&self) -> &'static str {
        self.api().cookies().session()
    }

    fn csrf_cookie(&self) -> &'static str {
        self.api().cookies().csrf()
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    web::cookie(headers, name)
}

fn locale(headers: &HeaderMap) -> Locale {
    web::locale(headers)
}

/// The request context of a form: language, client (for per-client limits) and browser.
struct Peer(RequestContext);

impl axum::extract::FromRequestParts<AppState> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            state.api().context(&parts.headers, crate::peer(parts)),
        ))
    }
}

fn context(_headers: &HeaderMap, peer: &Peer) -> RequestContext {
    peer.0.clone()
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(login_page))
        .route("/login/identify", post(identify))
        .route("/login", post(login))
        .route("/register", get(register_page).post(register))
        .route("/confirm", get(confirm_page).post(confirm))
        .route("/activate", post(activate))
        .route("/cabinet", get(cabinet))
        .route("/cabinet/select", post(select))
        .route("/cabinet/add", get(add_page).post(add))
        .route("/logout", post(logout))
        .route("/recover", get(recover_page).post(recover))
        .route("/recover/complete", post(recover_complete))
        .route("/lang/{lang}", get(set_lang))
        .merge(settings::routes())
}

/// One request's view: language, CSRF token (new or from the cookie), cookies to set.
struct Visit {
    locale: Locale,
    csrf: String,
    set_cookies: Vec<String>,
    secure: bool,
    session_cookie: &'static str,
}

impl Visit {
    fn new(state: &AppState, headers: &HeaderMap) -> Self {
        let secure = state.api().cookies().secure();
        let mut set_cookies = Vec::new();
        let session = cookie(headers, state.session_cookie());
        let csrf = match cookie(headers, state.csrf_cookie())
            .filter(|v| state.api().csrf_key().valid(v, session))
        {
            Some(existing) => existing.to_owned(),
            None => {
                let token = state.api().csrf_key().issue(session);
                set_cookies.push(cookie_header(state.csrf_cookie(), &token, secure, None));
                token
            }
        };
        Self {
            locale: locale(headers),
            csrf,
            set_cookies,
            secure,
            session_cookie: state.session_cookie(),
        }
    }

    fn html(
        self,
        status: StatusCode,
        title: &str,
        header_extra: &str,
        body: &str,
        path: &str,
    ) -> Response {
        let page = page(self.locale, title, header_extra, body, path);
        let mut response = (status, axum::response::Html(page)).into_response();
        self.finish(&mut response);
        response
    }

    fn redirect(self, to: &str) -> Response {
        let mut response =
            (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response();
        self.finish(&mut response);
        response
    }

    fn finish(self, response: &mut Response) {
        let headers = response.headers_mut();
        for value in self.set_cookies {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(header::SET_COOKIE, value);
            }
        }
        let secure = self.secure.then_some(web::HSTS);
        for (name, value) in web::PAGE_HEADERS.into_iter().chain(secure) {
            headers.insert(
                header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
    }

    fn t(&self, ru: &'static str, en: &'static str) -> &'static str {
        t(self.locale, ru, en)
    }
}

fn cookie_header(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    web::Cookies::new(secure).set_cookie(name, value, max_age)
}

/// The CSRF check of every form ([`web::CsrfKey::check`]): the field equals the cookie,
/// and the token is one this server signed for the request's session.
fn csrf_ok(state: &AppState, headers: &HeaderMap, submitted: &str) -> bool {
    state
        .api()
        .csrf_key()
        .check(state.api().cookies(), headers, submitted)
}

fn forbidden(visit: Visit) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/\">{}</a></p>",
        visit.t("Форма устарела", "The form has expired"),
        visit.t(
            "Обновите страницу и отправьте форму ещё раз.",
            "Reload the page and send the form again."
        ),
        visit.t("На главную", "Home"),
    );
    let title = visit.t("Форма устарела", "The form has expired");
    visit.html(StatusCode::FORBIDDEN, title, "", &body, "/")
}

macro_rules! check_csrf {
    ($state:expr, $headers:expr, $form:expr) => {{
        let visit = Visit::new(&$state, &$headers);
        if !csrf_ok(&$state, &$headers, &$form.csrf) {
            return forbidden(visit);
        }
        visit
    }};
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
    StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

// The settings pages use the helpers above (and `check_csrf!`, defined before this line).
mod settings;

// ---- Login (journey 4) -----------------------------------------------------------------

fn login_email_step(
    visit: Visit,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let body = format!(
        "<h1>{title}</h1><form method=\"post\" action=\"/login/identify\" novalidate>{csrf}{input}\
         <button type=\"submit\">{next}</button></form>\
         <div class=\"links\"><a href=\"/register\">{register}</a><a href=\"/recover\">{forgot}</a></div>",
        title = visit.t("Вход в личный кабинет", "Log in"),
        csrf = csrf_field(&visit.csrf),
        input = Input {
            name: "email",
            label: visit.t("Электронная почта", "Email"),
            kind: "email",
            value: email,
            hint: Some(visit.t("Без пробелов, например ivanov@example.org", "No spaces, e.g. ivanov@example.org")),
            error,
            autocomplete: "username",
            autofocus: true,
        }
        .render(),
        next = visit.t("Продолжить →", "Continue →"),
        register = visit.t("Создайте аккаунт", "Create an account"),
        forgot = visit.t("Забыли пароль", "Forgot password"),
    );
    let title = visit.t("Вход", "Log in");
    visit.html(status, title, "", &body, "/")
}

fn login_password_step(
    visit: Visit,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let body = format!(
        "<h1>{title}</h1><p>{email_label}: <strong>{email}</strong></p>\
         <form method=\"post\" action=\"/login\" novalidate>{csrf}{email_field}{input}\
         <button type=\"submit\">{login}</button></form>\
         <div class=\"links\"><a href=\"/\">{other}</a><a href=\"/recover\">{forgot}</a></div>",
        title = visit.t("Вход в личный кабинет", "Log in"),
        email_label = visit.t("Электронная почта", "Email"),
        email = escape(email),
        csrf = csrf_field(&visit.csrf),
        email_field = hidden("email", email),
        input = Input {
            name: "password",
            label: visit.t("Пароль", "Password"),
            kind: "password",
            value: "",
            hint: Some(visit.t(
                "Пароль из письма «Данные для входа»",
                "The password from the \u{201c}Your login details\u{201d} letter"
            )),
            error,
            autocomplete: "current-password",
            autofocus: true,
        }
        .render(),
        login = visit.t("Войти", "Log in"),
        other = visit.t("Другой адрес", "Another email"),
        forgot = visit.t("Забыли пароль", "Forgot password"),
    );
    let title = visit.t("Вход", "Log in");
    visit.html(status, title, "", &body, "/")
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let visit = Visit::new(&state, &headers);
    if let Some(session) = cookie(&headers, state.session_cookie()) {
        if state.service().authenticate(session).await.is_ok() {
            return visit.redirect("/cabinet");
        }
    }
    login_email_step(visit, "", None, StatusCode::OK)
}

#[derive(Deserialize)]
struct IdentifyForm {
    csrf: String,
    email: String,
}

async fn identify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<IdentifyForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    match state.service().identify(&form.email) {
        Ok(email) => login_password_step(visit, email.as_str(), None, StatusCode::OK),
        Err(error) => {
            let message = error.problems().first().map(|p| p.message(visit.locale));
            login_email_step(
                visit,
                &form.email,
                message,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
        }
    }
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    email: String,
    password: SecretString,
}

async fn login(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let mut visit = check_csrf!(state, headers, form);
    let context = context(&headers, &peer);
    match state
        .service()
        .login(&form.email, form.password, &context)
        .await
    {
        Ok(logged_in) => {
            // A session the browser still holds ends on the server: one login, one session.
            if let Some(old) = cookie(&headers, state.session_cookie()) {
                let _ = state.service().logout(old).await;
            }
            // A fresh token at every login: no session fixation. No Max-Age: the cookie
            // ends with the browser; the server's idle and absolute expiry still hold.
            visit.set_cookies.push(cookie_header(
                visit.session_cookie,
                logged_in.session_token.expose(),
                visit.secure,
                None,
            ));
            if logged_in.password_change_required {
                visit.redirect("/password")
            } else {
                visit.redirect("/cabinet")
            }
        }
        Err(error) => {
            let (_, general) = split_problems(&error, visit.locale);
            let status = status_of(&error);
            login_password_step(visit, &form.email, general.into_iter().next(), status)
        }
    }
}

// ---- Registration (journeys 1–3) --------------------------------------------------------

fn register_form(
    visit: Visit,
    form: &RegistrationForm,
    error: Option<&Error>,
    status: StatusCode,
) -> Response {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1>{alert}<form method=\"post\" action=\"/register\" novalidate>{csrf}{surname}{account}{email}\
         <button type=\"submit\">{submit}</button></form>\
         <div class=\"links\"><a href=\"/\">{have}</a></div>",
        title = visit.t("Регистрация", "Registration"),
        alert = alert(&general),
        csrf = csrf_field(&visit.csrf),
        surname = Input {
            name: "surname",
            label: visit.t("Фамилия", "Surname"),
            kind: "text",
            value: &form.surname,
            hint: Some(visit.t("Фамилия вводится без инициалов", "Enter the surname without initials")),
            error: fields.remove(&Field::Surname),
            autocomplete: "family-name",
            autofocus: true,
        }
        .render(),
        account = Input {
            name: "account_number",
            label: visit.t("Номер лицевого счёта", "Personal account number"),
            kind: "text",
            value: &form.account_number,
            hint: Some(visit.t(
                "13 цифр; первые две обычно совпадают с кодом вашего региона",
                "13 digits; the first two are usually your region code",
            )),
            error: fields.remove(&Field::AccountNumber),
            autocomplete: "off",
            autofocus: false,
        }
        .render(),
        email = Input {
            name: "email",
            label: visit.t("Электронная почта", "Email"),
            kind: "email",
            value: &form.email,
            hint: Some(visit.t("Строчными буквами, без пробелов", "Lowercase, no spaces")),
            error: fields.remove(&Field::Email),
            autocomplete: "email",
            autofocus: false,
        }
        .render(),
        submit = visit.t("Регистрация", "Register"),
        have = visit.t("Уже есть аккаунт? Войти", "Have an account? Log in"),
    );
    let title = visit.t("Регистрация", "Registration");
    visit.html(status, title, "", &body, "/register")
}

async fn register_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    register_form(
        Visit::new(&state, &headers),
        &RegistrationForm::default(),
        None,
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct RegisterForm {
    csrf: String,
    surname: String,
    account_number: String,
    email: String,
}

fn letter_sent(visit: Visit, email: &str) -> Response {
    let body = format!(
        "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{sent} <strong>{email}</strong>.</p></div><p>{next}</p>",
        title = visit.t("Письмо отправлено", "Letter sent"),
        sent = visit.t("Мы отправили письмо «Подтверждение e-mail» на адрес", "We sent the \u{201c}Email confirmation\u{201d} letter to"),
        email = escape(email),
        next = visit.t(
            "Откройте его и нажмите зелёную кнопку «Подтвердить электронный адрес». Письмо придёт от no_reply@example.org.",
            "Open it and press the green button \u{201c}Confirm email address\u{201d}. It comes from no_reply@example.org.",
        ),
    );
    let title = visit.t("Письмо отправлено", "Letter sent");
    visit.html(StatusCode::OK, title, "", &body, "/")
}

async fn register(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<RegisterForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let registration = RegistrationForm {
        surname: form.surname,
        account_number: form.account_number,
        email: form.email,
    };
    let context = context(&headers, &peer);
    match state.service().register(&registration, &context).await {
        Ok(()) => {
            let email = state
                .service()
                .identify(&registration.email)
                .map(|e| e.to_string())
                .unwrap_or_default();
            letter_sent(visit, &email)
        }
        Err(error) => {
            let status = status_of(&error);
            register_form(visit, &registration, Some(&error), status)
        }
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

fn link_problem(visit: Visit, error: &Error) -> Response {
    let (_, general) = split_problems(error, visit.locale);
    let body = format!(
        "<h1>{title}</h1>{alert}<p><a href=\"/register\">{again}</a> · <a href=\"/recover\">{recover}</a></p>",
        title = visit.t("Ссылка не работает", "The link does not work"),
        alert = alert(&general),
        again = visit.t("Зарегистрироваться снова", "Register again"),
        recover = visit.t("Восстановить пароль", "Recover the password"),
    );
    let title = visit.t("Ссылка не работает", "The link does not work");
    visit.html(status_of(error), title, "", &body, "/")
}

async fn confirm_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let visit = Visit::new(&state, &headers);
    // Following the link only shows a button: mail scanners that prefetch links must not
    // consume the token.
    let body = format!(
        "<h1>{title}</h1><p>{text}</p><form method=\"post\" action=\"/confirm\">{csrf}{token}\
         <button type=\"submit\" class=\"confirm\">{button}</button></form>",
        title = visit.t("Подтверждение электронного адреса", "Email confirmation"),
        text = visit.t(
            "Нажмите кнопку, чтобы подтвердить адрес и перейти к активации.",
            "Press the button to confirm the address and go on to activation."
        ),
        csrf = csrf_field(&visit.csrf),
        token = hidden("token", query.token.as_deref().unwrap_or_default()),
        button = visit.t("Подтвердить электронный адрес", "Confirm email address"),
    );
    let title = visit.t("Подтверждение", "Confirmation");
    visit.html(StatusCode::OK, title, "", &body, "/")
}

#[derive(Deserialize)]
struct ConfirmForm {
    csrf: String,
    token: String,
}

fn premises_form(
    visit: Visit,
    activation_token: &str,
    premises: &str,
    error: Option<&Error>,
    status: StatusCode,
) -> Response {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1><p>{text}</p>{alert}<form method=\"post\" action=\"/activate\" novalidate>{csrf}{token}{input}\
         <button type=\"submit\">{submit}</button></form>",
        title = visit.t("Активация аккаунта", "Account activation"),
        text = visit.t("Адрес подтверждён. Введите номер помещения, к которому относится лицевой счёт.", "The address is confirmed. Enter the number of the premises the account belongs to."),
        alert = alert(&general),
        csrf = csrf_field(&visit.csrf),
        token = hidden("activation_token", activation_token),
        input = Input {
            name: "premises",
            label: visit.t("Номер помещения", "Premises number"),
            kind: "text",
            value: premises,
            hint: Some(visit.t(
                "Квартира — целое число (12). Парковочное место — номер и русская буква П без пробела (123П, 123/456П). Нежилое или коммерческое помещение — номер и Н (2Н).",
                "A flat: a number (12). A parking place: the number and the Cyrillic letter П with no space (123П, 123/456П). Non-residential premises: the number and Н (2Н).",
            )),
            error: fields.remove(&Field::Premises),
            autocomplete: "off",
            autofocus: true,
        }
        .render(),
        submit = visit.t("Активировать", "Activate"),
    );
    let title = visit.t("Активация", "Activation");
    visit.html(status, title, "", &body, "/")
}

async fn confirm(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    match state.service().confirm_email(&form.token).await {
        Ok(activation) => premises_form(visit, activation.expose(), "", None, StatusCode::OK),
        Err(error) => link_problem(visit, &error),
    }
}

#[derive(Deserialize)]
struct ActivateForm {
    csrf: String,
    activation_token: String,
    premises: String,
}

async fn activate(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<ActivateForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let context = context(&headers, &peer);
    match state
        .service()
        .activate(&form.activation_token, &form.premises, &context)
        .await
    {
        Ok(email) => {
            let body = format!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text} <strong>{email}</strong>.</p></div>\
                 <p><a class=\"button\" href=\"/\">{login}</a></p>",
                title = visit.t("Аккаунт активирован", "Account activated"),
                text = visit.t("Логин и пароль отправлены в письме «Данные для входа» на адрес", "Your login and password were sent in the \u{201c}Your login details\u{201d} letter to"),
                email = escape(email.as_str()),
                login = visit.t("Перейти ко входу", "Go to log in"),
            );
            let title = visit.t("Аккаунт активирован", "Account activated");
            visit.html(StatusCode::OK, title, "", &body, "/")
        }
        Err(error) if error.is(&Problem::InvalidLink) => link_problem(visit, &error),
        Err(error) => {
            let status = status_of(&error);
            premises_form(
                visit,
                &form.activation_token,
                &form.premises,
                Some(&error),
                status,
            )
        }
    }
}

// ---- Cabinet (journeys 5 and 7) -------------------------------------------------------

fn to_login(mut visit: Visit) -> Response {
    visit.set_cookies.push(cookie_header(
        visit.session_cookie,
        "",
        visit.secure,
        Some(0),
    ));
    visit.redirect("/")
}

async fn cabinet(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let visit = Visit::new(&state, &headers);
    let Some(token) = cookie(&headers, state.session_cookie()) else {
        return visit.redirect("/");
    };
    let Ok(session) = state.service().authenticate(token).await else {
        return to_login(visit);
    };
    let cabinet = match state.service().cabinet(&session).await {
        Ok(cabinet) => cabinet,
        Err(error) if error.is(&Problem::PasswordChangeRequired) => {
            return visit.redirect("/password")
        }
        Err(_) => return to_login(visit),
    };
    let active = cabinet
        .accounts
        .iter()
        .find(|a| Some(a.account_number) == cabinet.active_account)
        .or_else(|| cabinet.accounts.first());
    let items: String = cabinet
        .accounts
        .iter()
        .map(|account| {
            let current = Some(account.account_number) == active.map(|a| a.account_number);
            format!(
                "<li><form method=\"post\" action=\"/cabinet/select\">{csrf}{number}\
                 <button type=\"submit\" aria-current=\"{current}\">{address}</button></form></li>",
                csrf = csrf_field(&visit.csrf),
                number = hidden("account_number", account.account_number.as_str()),
                address = escape(&account.address),
            )
        })
        .collect();
    let menu = format!(
        "<details class=\"addresses\"><summary>{selected}</summary><ul>{items}\
         <li><a href=\"/cabinet/add\">{add}</a></li></ul></details>",
        selected = escape(active.map_or("—", |a| a.address.as_str())),
        add = visit.t("Добавить адрес", "Add an address"),
    );
    let details = active.map_or_else(String::new, |account| {
        format!(
            "<dl><dt>{number_label}</dt><dd>{number}</dd><dt>{address_label}</dt><dd>{address}</dd>\
             <dt>{premises_label}</dt><dd>{premises}</dd><dt>{email_label}</dt><dd>{email}</dd></dl>",
            number_label = visit.t("Лицевой счёт", "Personal account"),
            number = account.account_number,
            address_label = visit.t("Адрес", "Address"),
            address = escape(&account.address),
            premises_label = visit.t("Помещение", "Premises"),
            premises = account.premises.map(|p| p.to_string()).unwrap_or_default(),
            email_label = visit.t("Электронная почта", "Email"),
            email = escape(cabinet.email.as_str()),
        )
    });
    let body = format!(
        "<h1>{title}</h1>{details}<p class=\"hint\">{switch}</p>\
         <div class=\"links\"><a href=\"/password\">{password}</a><a href=\"/sessions\">{sessions}</a></div>\
         <form method=\"post\" action=\"/logout\">{csrf}<button type=\"submit\" class=\"secondary\">{logout}</button></form>",
        title = visit.t("Личный кабинет", "Your cabinet"),
        password = visit.t("Сменить пароль", "Change the password"),
        sessions = visit.t("Сеансы", "Sessions"),
        switch = visit.t("Чтобы переключить лицевой счёт или добавить адрес, нажмите на адрес вверху страницы.", "To switch accounts or add an address, press the address at the top of the page."),
        csrf = csrf_field(&visit.csrf),
        logout = visit.t("Выйти", "Log out"),
    );
    let title = visit.t("Личный кабинет", "Your cabinet");
    visit.html(StatusCode::OK, title, &menu, &body, "/cabinet")
}

#[derive(Deserialize)]
struct SelectForm {
    csrf: String,
    account_number: String,
}

async fn select(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SelectForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let token = cookie(&headers, state.session_cookie()).unwrap_or_default();
    let session = match state.service().authenticate(token).await {
        Ok(session) => session,
        Err(_) => return to_login(visit),
    };
    match state
        .service()
        .select_account(&session, &form.account_number)
        .await
    {
        Err(error) if error.is(&Problem::SessionInvalid) => to_login(visit),
        _ => visit.redirect("/cabinet"),
    }
}

fn add_form(
    visit: Visit,
    form: &AddressForm,
    error: Option<&Error>,
    status: StatusCode,
) -> Response {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1>{alert}<form method=\"post\" action=\"/cabinet/add\" novalidate>{csrf}{surname}{account}\
         <button type=\"submit\">{submit}</button></form><div class=\"links\"><a href=\"/cabinet\">{back}</a></div>",
        title = visit.t("Добавление нового адреса", "Add a new address"),
        alert = alert(&general),
        csrf = csrf_field(&visit.csrf),
        surname = Input {
            name: "surname",
            label: visit.t("Фамилия", "Surname"),
            kind: "text",
            value: &form.surname,
            hint: Some(visit.t("Фамилия вводится без инициалов", "Enter the surname without initials")),
            error: fields.remove(&Field::Surname),
            autocomplete: "family-name",
            autofocus: true,
        }
        .render(),
        account = Input {
            name: "account_number",
            label: visit.t("Номер лицевого счёта", "Personal account number"),
            kind: "text",
            value: &form.account_number,
            hint: Some(visit.t("13 цифр", "13 digits")),
            error: fields.remove(&Field::AccountNumber),
            autocomplete: "off",
            autofocus: false,
        }
        .render(),
        submit = visit.t("Добавить", "Add"),
        back = visit.t("← В кабинет", "← Back to the cabinet"),
    );
    let title = visit.t("Добавление адреса", "Add an address");
    visit.html(status, title, "", &body, "/cabinet/add")
}

async fn add_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let visit = Visit::new(&state, &headers);
    let session = cookie(&headers, state.session_cookie()).unwrap_or_default();
    if state.service().authenticate(session).await.is_err() {
        return to_login(visit);
    }
    add_form(visit, &AddressForm::default(), None, StatusCode::OK)
}

#[derive(Deserialize)]
struct AddForm {
    csrf: String,
    surname: String,
    account_number: String,
}

async fn add(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<AddForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let token = cookie(&headers, state.session_cookie()).unwrap_or_default();
    let session = match state.service().authenticate(token).await {
        Ok(session) => session,
        Err(_) => return to_login(visit),
    };
    let address = AddressForm {
        surname: form.surname,
        account_number: form.account_number,
    };
    let context = context(&headers, &peer);
    match state
        .service()
        .add_address(&session, &address, &context)
        .await
    {
        Ok(()) => letter_sent(visit, session.email.as_str()),
        Err(error) if error.is(&Problem::SessionInvalid) => to_login(visit),
        Err(error) => {
            let status = status_of(&error);
            add_form(visit, &address, Some(&error), status)
        }
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    if let Some(session) = cookie(&headers, state.session_cookie()) {
        let _ = state.service().logout(session).await;
    }
    to_login(visit)
}

// ---- Recovery (journey 6) --------------------------------------------------------------

fn recover_form(visit: Visit, email: &str, error: Option<&Error>, status: StatusCode) -> Response {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let body = format!(
        "<h1>{title}</h1>{alert}<form method=\"post\" action=\"/recover\" novalidate>{csrf}{input}\
         <button type=\"submit\">{submit}</button></form><div class=\"links\"><a href=\"/\">{back}</a></div>",
        title = visit.t("Восстановление пароля", "Password recovery"),
        alert = alert(&general),
        csrf = csrf_field(&visit.csrf),
        input = Input {
            name: "email",
            label: visit.t("Электронная почта", "Email"),
            kind: "email",
            value: email,
            hint: Some(visit.t("Адрес, указанный при регистрации", "The address you registered with")),
            error: fields.remove(&Field::Email),
            autocomplete: "username",
            autofocus: true,
        }
        .render(),
        submit = visit.t("Восстановить", "Recover"),
        back = visit.t("← Ко входу", "← Back to log in"),
    );
    let title = visit.t("Восстановление пароля", "Password recovery");
    visit.html(status, title, "", &body, "/recover")
}

async fn recover_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let visit = Visit::new(&state, &headers);
    let Some(token) = query.token else {
        return recover_form(visit, "", None, StatusCode::OK);
    };
    let body = format!(
        "<h1>{title}</h1><p>{text}</p><form method=\"post\" action=\"/recover/complete\">{csrf}{token}\
         <button type=\"submit\" class=\"confirm\">{button}</button></form>",
        title = visit.t("Восстановление пароля", "Password recovery"),
        text = visit.t("Нажмите кнопку: новый пароль придёт в письме «Данные для входа», прежний перестанет действовать.", "Press the button: a new password comes in the \u{201c}Your login details\u{201d} letter and the old one stops working."),
        csrf = csrf_field(&visit.csrf),
        token = hidden("token", &token),
        button = visit.t("Получить новый пароль", "Get a new password"),
    );
    let title = visit.t("Восстановление пароля", "Password recovery");
    visit.html(StatusCode::OK, title, "", &body, "/")
}

#[derive(Deserialize)]
struct RecoverForm {
    csrf: String,
    email: String,
}

async fn recover(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<RecoverForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let context = context(&headers, &peer);
    match state
        .service()
        .request_recovery(&form.email, &context)
        .await
    {
        Ok(()) => {
            let body = format!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text}</p></div><p><a href=\"/\">{back}</a></p>",
                title = visit.t("Проверьте почту", "Check your mail"),
                text = visit.t(
                    "Если этот адрес зарегистрирован, на него отправлено письмо «Восстановление пароля». Перейдите по ссылке из письма.",
                    "If this address is registered, a \u{201c}Password recovery\u{201d} letter was sent to it. Follow its link.",
                ),
                back = visit.t("← Ко входу", "← Back to log in"),
            );
            let title = visit.t("Проверьте почту", "Check your mail");
            visit.html(StatusCode::OK, title, "", &body, "/")
        }
        Err(error) => {
            let status = status_of(&error);
            recover_form(visit, &form.email, Some(&error), status)
        }
    }
}

async fn recover_complete(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let context = context(&headers, &peer);
    match state
        .service()
        .complete_recovery(&form.token, &context)
        .await
    {
        Ok(email) => {
            let body = format!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text} <strong>{email}</strong>.</p></div>\
                 <p><a class=\"button\" href=\"/\">{login}</a></p>",
                title = visit.t("Новый пароль отправлен", "New password sent"),
                text = visit.t("Новые логин и пароль отправлены в письме «Данные для входа» на адрес", "Your new login details were sent to"),
                email = escape(email.as_str()),
                login = visit.t("Перейти ко входу", "Go to log in"),
            );
            let title = visit.t("Новый пароль отправлен", "New password sent");
            visit.html(StatusCode::OK, title, "", &body, "/")
        }
        Err(error) => link_problem(visit, &error),
    }
}

// ---- Language switch --------------------------------------------------------------------

#[derive(Deserialize)]
struct Back {
    back: Option<String>,
}

async fn set_lang(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(lang): Path<String>,
    Query(back): Query<Back>,
) -> Response {
    let mut visit = Visit::new(&state, &headers);
    if let Ok(locale) = lang.parse::<Locale>() {
        visit.set_cookies.push(cookie_header(
            "lang",
            locale.code(),
            visit.secure,
            Some(365 * 24 * 3600),
        ));
    }
    visit.redirect(back_target(back.back.as_deref()))
}

/// The pages a language switch may return to: exactly these paths, nothing else (no
/// query, no other host, no characters a browser would read differently). Anything else
/// goes to `/`: no open redirect.
const BACK_TARGETS: [&str; 7] = [
    "/",
    "/register",
    "/cabinet",
    "/cabinet/add",
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
    use super::back_target;

    #[test]
    fn only_known_pages_are_followed_back() {
        for good in super::BACK_TARGETS {
            assert_eq!(back_target(Some(good)), good);
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
}
