//! Signed-out screens: login (journey 4), registration with its letter, confirmation and
//! activation (journeys 1–3), and recovery (journey 6).

use std::collections::HashMap;

use http::StatusCode;
use resident_auth::{
    errors::{Explain, Field, Problem},
    journeys::RegistrationForm,
    secrecy::SecretString,
    Error,
};

use super::{
    forms,
    html::{alert, csrf_field, hidden, html, Html, Input},
    split_problems, status_of, PageRequest, PageResponse, Request,
};

forms! {
    struct IdentifyForm { email: String }
    struct LoginForm { email: String, password: SecretString }
    struct RegisterForm { surname: String, account_number: String, email: String }
    struct TokenForm { token: String }
    struct ActivateForm { activation_token: String, premises: String }
    struct RecoverForm { email: String }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct TokenQuery {
    pub(super) token: Option<String>,
}

// ---- Login (journey 4) -----------------------------------------------------------------

fn login_email_step(
    visit: PageRequest,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> PageResponse {
    let body = html!(
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
    visit.html(status, title, Html::empty(), body, "/")
}

fn login_password_step(
    visit: PageRequest,
    email: &str,
    error: Option<String>,
    status: StatusCode,
) -> PageResponse {
    let body = html!(
        "<h1>{title}</h1><p>{email_label}: <strong>{email}</strong></p>\
         <form method=\"post\" action=\"/login\" novalidate>{csrf}{email_field}{input}\
         <button type=\"submit\">{login}</button></form>\
         <div class=\"links\"><a href=\"/\">{other}</a><a href=\"/recover\">{forgot}</a></div>",
        title = visit.t("Вход в личный кабинет", "Log in"),
        email_label = visit.t("Электронная почта", "Email"),
        email = email,
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
    visit.html(status, title, Html::empty(), body, "/")
}

pub(super) async fn login_page(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    if let Some(session) = request.session_cookie() {
        if request.api.service().authenticate(session).await.is_ok() {
            return visit.redirect("/cabinet");
        }
    }
    login_email_step(visit, "", None, StatusCode::OK)
}

pub(super) fn identify(request: &Request<'_>) -> PageResponse {
    let (form, visit) = match request.form::<IdentifyForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match request.api.service().identify(&form.email) {
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

pub(super) async fn login(request: &Request<'_>) -> PageResponse {
    let (form, mut visit) = match request.form::<LoginForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let service = request.api.service();
    match service
        .login(&form.email, form.password, &request.context())
        .await
    {
        Ok(logged_in) => {
            // A session the browser still holds ends on the server: one login, one session.
            if let Some(old) = request.session_cookie() {
                let _ = service.logout(old).await;
            }
            // A fresh token at every login: no session fixation.
            visit.sign_in(logged_in.session_token.expose());
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

/// The surname and account number inputs of registering and of adding an address, the
/// account's hint as given; their errors taken from `fields`.
pub(super) fn surname_and_account(
    visit: &PageRequest,
    (surname, account): (&str, &str),
    fields: &mut HashMap<Field, String>,
    account_hint: &str,
) -> Html {
    let surname = Input {
        name: "surname",
        label: visit.t("Фамилия", "Surname"),
        kind: "text",
        value: surname,
        hint: Some(visit.t(
            "Фамилия вводится без инициалов",
            "Enter the surname without initials",
        )),
        error: fields.remove(&Field::Surname),
        autocomplete: "family-name",
        autofocus: true,
    }
    .render();
    let account = Input {
        name: "account_number",
        label: visit.t("Номер лицевого счёта", "Personal account number"),
        kind: "text",
        value: account,
        hint: Some(account_hint),
        error: fields.remove(&Field::AccountNumber),
        autocomplete: "off",
        autofocus: false,
    }
    .render();
    html!("{surname}{account}", surname = surname, account = account)
}

fn register_form(
    visit: PageRequest,
    form: &RegistrationForm,
    error: Option<&Error>,
    status: StatusCode,
) -> PageResponse {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let body = html!(
        "<h1>{title}</h1>{alert}<form method=\"post\" action=\"/register\" novalidate>{csrf}{surname_and_account}{email}\
         <button type=\"submit\">{submit}</button></form>\
         <div class=\"links\"><a href=\"/\">{have}</a></div>",
        title = visit.t("Регистрация", "Registration"),
        alert = alert(&general),
        csrf = csrf_field(&visit.csrf),
        surname_and_account = surname_and_account(
            &visit,
            (&form.surname, &form.account_number),
            &mut fields,
            visit.t(
                "13 цифр; первые две обычно совпадают с кодом вашего региона",
                "13 digits; the first two are usually your region code",
            ),
        ),
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
    visit.html(status, title, Html::empty(), body, "/register")
}

pub(super) fn register_page(request: &Request<'_>) -> PageResponse {
    register_form(
        PageRequest::new(request.api, request.headers),
        &RegistrationForm::default(),
        None,
        StatusCode::OK,
    )
}

/// "We sent the letter to …".
pub(super) fn letter_sent(visit: PageRequest, email: &str) -> PageResponse {
    let body = html!(
        "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{sent} <strong>{email}</strong>.</p></div><p>{next}</p>",
        title = visit.t("Письмо отправлено", "Letter sent"),
        sent = visit.t("Мы отправили письмо «Подтверждение e-mail» на адрес", "We sent the \u{201c}Email confirmation\u{201d} letter to"),
        email = email,
        next = visit.t(
            "Откройте его и нажмите зелёную кнопку «Подтвердить электронный адрес». Письмо придёт от no_reply@example.org.",
            "Open it and press the green button \u{201c}Confirm email address\u{201d}. It comes from no_reply@example.org.",
        ),
    );
    let title = visit.t("Письмо отправлено", "Letter sent");
    visit.html(StatusCode::OK, title, Html::empty(), body, "/")
}

pub(super) async fn register(request: &Request<'_>) -> PageResponse {
    let (form, visit) = match request.form::<RegisterForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let registration = RegistrationForm {
        surname: form.surname,
        account_number: form.account_number,
        email: form.email,
    };
    let service = request.api.service();
    match service.register(&registration, &request.context()).await {
        Ok(()) => {
            let email = service
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

pub(super) fn link_problem(visit: PageRequest, error: &Error) -> PageResponse {
    let (_, general) = split_problems(error, visit.locale);
    let body = html!(
        "<h1>{title}</h1>{alert}<p><a href=\"/register\">{again}</a> · <a href=\"/recover\">{recover}</a></p>",
        title = visit.t("Ссылка не работает", "The link does not work"),
        alert = alert(&general),
        again = visit.t("Зарегистрироваться снова", "Register again"),
        recover = visit.t("Восстановить пароль", "Recover the password"),
    );
    let title = visit.t("Ссылка не работает", "The link does not work");
    visit.html(status_of(error), title, Html::empty(), body, "/")
}

pub(super) fn confirm_page(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    let query: TokenQuery = request.query();
    // Following the link only shows a button: mail scanners that prefetch links must not
    // consume the token.
    let body = html!(
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
    visit.html(StatusCode::OK, title, Html::empty(), body, "/")
}

fn premises_form(
    visit: PageRequest,
    activation_token: &str,
    premises: &str,
    error: Option<&Error>,
    status: StatusCode,
) -> PageResponse {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let body = html!(
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
    visit.html(status, title, Html::empty(), body, "/")
}

pub(super) async fn confirm(request: &Request<'_>) -> PageResponse {
    let (form, visit) = match request.form::<TokenForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match request.api.service().confirm_email(&form.token).await {
        Ok(activation) => premises_form(visit, activation.expose(), "", None, StatusCode::OK),
        Err(error) => link_problem(visit, &error),
    }
}

/// "Done: the letter went to …", with the way to log in.
fn sent_to(
    visit: PageRequest,
    title: &'static str,
    text: &'static str,
    email: &str,
) -> PageResponse {
    let body = html!(
        "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text} <strong>{email}</strong>.</p></div>\
         <p><a class=\"button\" href=\"/\">{login}</a></p>",
        title = title,
        text = text,
        email = email,
        login = visit.t("Перейти ко входу", "Go to log in"),
    );
    visit.html(StatusCode::OK, title, Html::empty(), body, "/")
}

pub(super) async fn activate(request: &Request<'_>) -> PageResponse {
    let (form, visit) = match request.form::<ActivateForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match request
        .api
        .service()
        .activate(&form.activation_token, &form.premises, &request.context())
        .await
    {
        Ok(email) => {
            let title = visit.t("Аккаунт активирован", "Account activated");
            let text = visit.t("Логин и пароль отправлены в письме «Данные для входа» на адрес", "Your login and password were sent in the \u{201c}Your login details\u{201d} letter to");
            sent_to(visit, title, text, email.as_str())
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

// ---- Recovery (journey 6) --------------------------------------------------------------

fn recover_form(
    visit: PageRequest,
    email: &str,
    error: Option<&Error>,
    status: StatusCode,
) -> PageResponse {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let body = html!(
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
    visit.html(status, title, Html::empty(), body, "/recover")
}

pub(super) fn recover_page(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    let query: TokenQuery = request.query();
    let Some(token) = query.token else {
        return recover_form(visit, "", None, StatusCode::OK);
    };
    let body = html!(
        "<h1>{title}</h1><p>{text}</p><form method=\"post\" action=\"/recover/complete\">{csrf}{token}\
         <button type=\"submit\" class=\"confirm\">{button}</button></form>",
        title = visit.t("Восстановление пароля", "Password recovery"),
        text = visit.t("Нажмите кнопку: новый пароль придёт в письме «Данные для входа», прежний перестанет действовать.", "Press the button: a new password comes in the \u{201c}Your login details\u{201d} letter and the old one stops working."),
        csrf = csrf_field(&visit.csrf),
        token = hidden("token", &token),
        button = visit.t("Получить новый пароль", "Get a new password"),
    );
    let title = visit.t("Восстановление пароля", "Password recovery");
    visit.html(StatusCode::OK, title, Html::empty(), body, "/")
}

pub(super) async fn recover(request: &Request<'_>) -> PageResponse {
    let (form, visit) = match request.form::<RecoverForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match request
        .api
        .service()
        .request_recovery(&form.email, &request.context())
        .await
    {
        Ok(()) => {
            let body = html!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text}</p></div><p><a href=\"/\">{back}</a></p>",
                title = visit.t("Проверьте почту", "Check your mail"),
                text = visit.t(
                    "Если этот адрес зарегистрирован, на него отправлено письмо «Восстановление пароля». Перейдите по ссылке из письма.",
                    "If this address is registered, a \u{201c}Password recovery\u{201d} letter was sent to it. Follow its link.",
                ),
                back = visit.t("← Ко входу", "← Back to log in"),
            );
            let title = visit.t("Проверьте почту", "Check your mail");
            visit.html(StatusCode::OK, title, Html::empty(), body, "/")
        }
        Err(error) => {
            let status = status_of(&error);
            recover_form(visit, &form.email, Some(&error), status)
        }
    }
}

pub(super) async fn recover_complete(request: &Request<'_>) -> PageResponse {
    let (form, visit) = match request.form::<TokenForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match request
        .api
        .service()
        .complete_recovery(&form.token, &request.context())
        .await
    {
        Ok(email) => {
            let title = visit.t("Новый пароль отправлен", "New password sent");
            let text = visit.t(
                "Новые логин и пароль отправлены в письме «Данные для входа» на адрес",
                "Your new login details were sent to",
            );
            sent_to(visit, title, text, email.as_str())
        }
        Err(error) => link_problem(visit, &error),
    }
}
