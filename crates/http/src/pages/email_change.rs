//! Changing the cabinet's email (journey 12): the signed-in form, and the pages the two
//! letters' links land on — `/email/confirm` (the new address) and `/email/cancel` (the
//! old one). Following a link only shows a button, so mail scanners that prefetch links
//! consume nothing.

use http::StatusCode;
use resident_auth::{
    errors::{Field, Problem},
    secrecy::SecretString,
    Error,
};

use super::{
    cabinet::{signed_in, signed_in_form},
    forms,
    html::{alert, csrf_field, hidden, html, Html, Input},
    journeys::{link_problem, TokenQuery},
    split_problems, status_of, to_login, PageRequest, PageResponse, Request,
};

forms! {
    struct EmailChangeForm { email: String, current_password: SecretString }
    struct LinkForm { token: String }
}

fn email_form(
    visit: PageRequest,
    typed: &str,
    error: Option<&Error>,
    status: StatusCode,
) -> PageResponse {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let email_error = fields.remove(&Field::Email);
    let body = html!(
        "<h1>{title}</h1><p>{text}</p>{alert}<form method=\"post\" action=\"/cabinet/email\" novalidate>{csrf}{email}{current}\
         <button type=\"submit\">{submit}</button></form><div class=\"links\"><a href=\"/cabinet\">{back}</a></div>",
        title = visit.t("Смена e-mail", "Change the email"),
        text = visit.t(
            "На новый адрес придёт письмо со ссылкой: адрес для входа изменится, только когда вы по ней перейдёте. На нынешний адрес придёт уведомление.",
            "A letter with a link goes to the new address: the login changes only when you follow it. A notice goes to the address in force.",
        ),
        alert = alert(&general),
        csrf = csrf_field(&visit.csrf),
        email = Input {
            name: "email",
            label: visit.t("Новый адрес электронной почты", "New email address"),
            kind: "email",
            value: typed,
            hint: None,
            autofocus: error.is_none() || email_error.is_some(),
            error: email_error,
            autocomplete: "email",
        }
        .render(),
        current = Input {
            name: "current_password",
            label: visit.t("Текущий пароль", "Current password"),
            kind: "password",
            value: "",
            hint: None,
            autofocus: fields.contains_key(&Field::CurrentPassword),
            error: fields.remove(&Field::CurrentPassword),
            autocomplete: "current-password",
        }
        .render(),
        submit = visit.t("Сменить адрес", "Change the address"),
        back = visit.t("← В кабинет", "← Back to the cabinet"),
    );
    let title = visit.t("Смена e-mail", "Change the email");
    visit.html(status, title, Html::empty(), body, "/cabinet/email")
}

pub(super) async fn email_page(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    match signed_in(request, visit).await {
        Ok((session, visit)) if session.password_change_required => visit.redirect("/password"),
        Ok((_, visit)) => email_form(visit, "", None, StatusCode::OK),
        Err(response) => response,
    }
}

pub(super) async fn request_change(request: &Request<'_>) -> PageResponse {
    let (form, session, visit) = match signed_in_form::<EmailChangeForm>(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let result = request
        .api
        .service()
        .request_email_change(
            &session,
            &form.email,
            form.current_password,
            &request.context(),
        )
        .await;
    match result {
        Ok(()) => {
            let title = visit.t("Проверьте почту", "Check your mail");
            let body = html!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text} <strong>{email}</strong>.</p></div>\
                 <p><a class=\"button\" href=\"/cabinet\">{back}</a></p>",
                title = title,
                text = visit.t(
                    "Перейдите по ссылке из письма «Подтверждение нового e-mail», отправленного на адрес",
                    "Follow the link in the \u{201c}New email confirmation\u{201d} letter sent to",
                ),
                email = form.email.trim(),
                back = visit.t("В кабинет", "To the cabinet"),
            );
            visit.html(StatusCode::OK, title, Html::empty(), body, "/cabinet/email")
        }
        Err(error) if error.is(&Problem::SessionInvalid) => to_login(visit),
        Err(error) if error.is(&Problem::PasswordChangeRequired) => visit.redirect("/password"),
        Err(error) => {
            let status = status_of(&error);
            email_form(visit, &form.email, Some(&error), status)
        }
    }
}

/// The page a letter's link lands on: a button that posts the token to `action`.
fn link_page(request: &Request<'_>, action: &'static str) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    let query: TokenQuery = request.query();
    let (title, text, button) = if action == "/email/confirm" {
        (
            visit.t("Подтверждение нового e-mail", "New email confirmation"),
            visit.t(
                "Нажмите кнопку: этот адрес станет адресом для входа в личный кабинет, прежний перестанет действовать.",
                "Press the button: this address becomes the cabinet's login and the old one stops working.",
            ),
            visit.t("Подтвердить новый адрес", "Confirm the new address"),
        )
    } else {
        (
            visit.t("Отмена смены e-mail", "Cancel the email change"),
            visit.t(
                "Нажмите кнопку, если смену адреса запросили не вы: она будет отменена, все сеансы кабинета завершатся. Затем восстановите пароль.",
                "Press the button if you did not ask for the change: it is cancelled and every session of the cabinet ends. Then recover the password.",
            ),
            visit.t("Это был не я: отменить", "It was not me: cancel"),
        )
    };
    let body = html!(
        "<h1>{title}</h1><p>{text}</p><form method=\"post\" action=\"{action}\">{csrf}{token}\
         <button type=\"submit\" class=\"confirm\">{button}</button></form>",
        title = title,
        text = text,
        action = action,
        csrf = csrf_field(&visit.csrf),
        token = hidden("token", query.token.as_deref().unwrap_or_default()),
        button = button,
    );
    visit.html(StatusCode::OK, title, Html::empty(), body, "/")
}

pub(super) fn confirm_page(request: &Request<'_>) -> PageResponse {
    link_page(request, "/email/confirm")
}

pub(super) fn cancel_page(request: &Request<'_>) -> PageResponse {
    link_page(request, "/email/cancel")
}

pub(super) async fn confirm(request: &Request<'_>) -> PageResponse {
    let (form, visit) = match request.form::<LinkForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    // Followed in a browser signed in to the same cabinet, that session stays.
    let session = match request.session_cookie() {
        Some(token) => request.api.service().authenticate(token).await.ok(),
        None => None,
    };
    let result = request
        .api
        .service()
        .confirm_email_change(&form.token, session.as_ref(), &request.context())
        .await;
    match result {
        Ok(email) => {
            let kept = match session {
                Some(_) => request
                    .api
                    .service()
                    .authenticate(request.session_cookie().unwrap_or_default())
                    .await
                    .is_ok(),
                None => false,
            };
            let title = visit.t("Адрес изменён", "Email changed");
            let body = html!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text} <strong>{email}</strong>.</p></div>\
                 <p><a class=\"button\" href=\"{next}\">{button}</a></p>",
                title = title,
                text = visit.t(
                    "Входите в личный кабинет с адресом",
                    "Log in to the cabinet with",
                ),
                email = email.as_str(),
                next = if kept { "/cabinet" } else { "/" },
                button = if kept {
                    visit.t("В кабинет", "To the cabinet")
                } else {
                    visit.t("Войти", "Log in")
                },
            );
            visit.html(StatusCode::OK, title, Html::empty(), body, "/")
        }
        Err(error) => link_problem(visit, &error),
    }
}

pub(super) async fn cancel(request: &Request<'_>) -> PageResponse {
    let (form, mut visit) = match request.form::<LinkForm>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match request
        .api
        .service()
        .cancel_email_change(&form.token, &request.context())
        .await
    {
        Ok(_) => {
            let cookie = visit
                .cookies
                .set_cookie(visit.cookies.session(), "", Some(0));
            visit.set_cookies.push(cookie);
            let title = visit.t("Смена адреса отменена", "Email change cancelled");
            let body = html!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text}</p></div>\
                 <p><a class=\"button\" href=\"/\">{login}</a></p>",
                title = title,
                text = visit.t(
                    "Адрес для входа остался прежним. Тот, кто запросил смену, знал ваш пароль, поэтому он больше не действует: новый пароль отправлен на ваш адрес, все сеансы кабинета завершены.",
                    "The login stays as it was. Whoever asked knew your password, so it no longer works: a new password has been sent to your address, and every session of the cabinet has ended.",
                ),
                login = visit.t("Войти", "Log in"),
            );
            visit.html(StatusCode::OK, title, Html::empty(), body, "/")
        }
        Err(error) => link_problem(visit, &error),
    }
}
