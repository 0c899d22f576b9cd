//! The resident's own security settings: change the password (journey 8) and see and end
//! sessions (journey 9).

use http::StatusCode;
use resident_auth::{
    errors::{Field, Problem},
    journeys::SignedIn,
    secrecy::SecretString,
    Error,
};

use super::{
    cabinet::{signed_in, signed_in_form},
    forms,
    html::{alert, csrf_field, hidden, html, Html, Input},
    problem_page, split_problems, status_of, to_login, CsrfOnly, PageRequest, PageResponse,
    Request,
};

forms! {
    struct PasswordForm { current_password: SecretString, new_password: SecretString }
    struct EndForm { session_id: String }
}

fn password_form(
    visit: PageRequest,
    session: &SignedIn,
    error: Option<&Error>,
    status: StatusCode,
) -> PageResponse {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let temporary = if session.password_change_required {
        html!(
            "<div class=\"notice\" role=\"status\"><p>{text}</p></div>",
            text = visit.t(
                "Пароль из письма временный. Задайте свой пароль, чтобы открыть кабинет.",
                "The password from the letter is temporary. Choose your own to open the cabinet."
            )
        )
    } else {
        Html::empty()
    };
    let body = html!(
        "<h1>{title}</h1>{temporary}{alert}<form method=\"post\" action=\"/password\" novalidate>{csrf}{current}{new}\
         <button type=\"submit\">{submit}</button></form><div class=\"links\"><a href=\"/cabinet\">{back}</a>\
         <a href=\"/sessions\">{sessions}</a></div>",
        title = visit.t("Смена пароля", "Change the password"),
        temporary = temporary,
        alert = alert(&general),
        csrf = csrf_field(&visit.csrf),
        current = Input {
            name: "current_password",
            label: visit.t("Текущий пароль", "Current password"),
            kind: "password",
            value: "",
            hint: None,
            error: fields.remove(&Field::CurrentPassword),
            autocomplete: "current-password",
            autofocus: true,
        }
        .render(),
        new = Input {
            name: "new_password",
            label: visit.t("Новый пароль", "New password"),
            kind: "password",
            value: "",
            hint: Some(visit.t(
                "Не короче 15 символов, любые буквы, цифры и знаки; удобнее всего фраза из нескольких слов. Нельзя: распространённые пароли и адрес почты.",
                "At least 15 characters, any letters, digits and signs; a phrase of several words is easiest. Not allowed: common passwords and the email address.",
            )),
            error: fields.remove(&Field::NewPassword),
            autocomplete: "new-password",
            autofocus: false,
        }
        .render(),
        submit = visit.t("Сменить пароль", "Change the password"),
        back = visit.t("← В кабинет", "← Back to the cabinet"),
        sessions = visit.t("Сеансы", "Sessions"),
    );
    let title = visit.t("Смена пароля", "Change the password");
    visit.html(status, title, Html::empty(), body, "/password")
}

pub(super) async fn password_page(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    match signed_in(request, visit).await {
        Ok((session, visit)) => password_form(visit, &session, None, StatusCode::OK),
        Err(response) => response,
    }
}

pub(super) async fn change_password(request: &Request<'_>) -> PageResponse {
    let (form, session, visit) = match signed_in_form::<PasswordForm>(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match request
        .api
        .service()
        .change_password(
            &session,
            form.current_password,
            form.new_password,
            &request.context(),
        )
        .await
    {
        Ok(()) => {
            let body = html!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text}</p></div>\
                 <p><a class=\"button\" href=\"/cabinet\">{back}</a></p>",
                title = visit.t("Пароль изменён", "Password changed"),
                text = visit.t(
                    "Новый пароль действует. Все другие сеансы завершены; на почту отправлено уведомление.",
                    "The new password is in force. Every other session has ended; a notice went to your email."
                ),
                back = visit.t("В кабинет", "To the cabinet"),
            );
            let title = visit.t("Пароль изменён", "Password changed");
            visit.html(StatusCode::OK, title, Html::empty(), body, "/password")
        }
        Err(error) if error.is(&Problem::SessionInvalid) => to_login(visit),
        Err(error) => {
            let status = status_of(&error);
            password_form(visit, &session, Some(&error), status)
        }
    }
}

pub(super) async fn sessions_page(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    let (session, visit) = match signed_in(request, visit).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let list = match request.api.service().sessions(&session).await {
        Ok(list) => list,
        Err(error) => {
            let title = visit.t("Сеансы", "Sessions");
            return problem_page(visit, title, &error, "/sessions");
        }
    };
    let items: Html = list
        .iter()
        .map(|s| {
            let end = if s.current {
                html!("<p><strong>{this}</strong></p>", this = visit.t("Этот сеанс", "This session"))
            } else {
                html!(
                    "<form method=\"post\" action=\"/sessions/end\">{csrf}{id}\
                     <button type=\"submit\" class=\"secondary\">{label}</button></form>",
                    csrf = csrf_field(&visit.csrf),
                    id = hidden("session_id", &s.id.to_string()),
                    label = visit.t("Завершить", "End"),
                )
            };
            html!(
                "<li class=\"session\" data-session=\"{id}\"><dl><dt>{client_label}</dt><dd>{client}</dd>\
                 <dt>{started_label}</dt><dd><time>{started}</time></dd><dt>{used_label}</dt><dd><time>{used}</time></dd></dl>{end}</li>",
                id = s.id.to_string(),
                client_label = visit.t("Устройство", "Device"),
                client = s.client.as_deref().unwrap_or("—"),
                started_label = visit.t("Вход (UTC)", "Logged in (UTC)"),
                started = s.created_at.to_string(),
                used_label = visit.t("Последнее действие (UTC)", "Last used (UTC)"),
                used = s.last_used.to_string(),
                end = end,
            )
        })
        .collect();
    let others = if list.len() > 1 {
        html!(
            "<form method=\"post\" action=\"/sessions/end-others\">{csrf}<button type=\"submit\">{label}</button></form>",
            csrf = csrf_field(&visit.csrf),
            label = visit.t("Завершить все другие сеансы", "End every other session"),
        )
    } else {
        Html::empty()
    };
    let body = html!(
        "<h1>{title}</h1><ul class=\"sessions\">{items}</ul>{others}\
         <div class=\"links\"><a href=\"/cabinet\">{back}</a><a href=\"/password\">{password}</a></div>",
        title = visit.t("Сеансы", "Sessions"),
        items = items,
        others = others,
        back = visit.t("← В кабинет", "← Back to the cabinet"),
        password = visit.t("Сменить пароль", "Change the password"),
    );
    let title = visit.t("Сеансы", "Sessions");
    visit.html(StatusCode::OK, title, Html::empty(), body, "/sessions")
}

pub(super) async fn end_session(request: &Request<'_>) -> PageResponse {
    let (form, session, visit) = match signed_in_form::<EndForm>(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let own = session.session_id().to_string() == form.session_id;
    // Not found (ended meanwhile) shows the list as it now is.
    let _ = request
        .api
        .service()
        .end_session(&session, &form.session_id)
        .await;
    if own {
        to_login(visit)
    } else {
        visit.redirect("/sessions")
    }
}

pub(super) async fn end_other_sessions(request: &Request<'_>) -> PageResponse {
    let (_, session, visit) = match signed_in_form::<CsrfOnly>(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let _ = request.api.service().end_other_sessions(&session).await;
    visit.redirect("/sessions")
}
