//! The resident's own security settings: change the password (journey 8) and see and end
//! sessions (journey 9).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{get, post},
    Form, Router,
};
use resident_auth::{errors::Field, secrecy::SecretString, Authenticated, Error, Problem};
use serde::Deserialize;

use super::{
    context, cookie, csrf_ok, forbidden,
    html::{alert, csrf_field, escape, hidden, Input},
    split_problems, status_of, to_login, AppState, CsrfOnly, Peer, Visit,
};

pub(super) fn routes() -> axum::Router<AppState> {
    Router::new()
        .route("/password", get(password_page).post(change_password))
        .route("/sessions", get(sessions_page))
        .route("/sessions/end", post(end_session))
        .route("/sessions/end-others", post(end_other_sessions))
}

/// The session behind the request's cookie, or the way back to the login page.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
    visit: Visit,
) -> Result<(Authenticated, Visit), Response> {
    let token = cookie(headers, state.session_cookie()).unwrap_or_default();
    match state.service().authenticate(token).await {
        Ok(session) => Ok((session, visit)),
        Err(_) => Err(to_login(visit)),
    }
}

fn password_form(
    visit: Visit,
    session: &Authenticated,
    error: Option<&Error>,
    status: StatusCode,
) -> Response {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let temporary = if session.password_change_required {
        format!(
            "<div class=\"notice\" role=\"status\"><p>{}</p></div>",
            visit.t(
                "Пароль из письма временный. Задайте свой пароль, чтобы открыть кабинет.",
                "The password from the letter is temporary. Choose your own to open the cabinet."
            )
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>{title}</h1>{temporary}{alert}<form method=\"post\" action=\"/password\" novalidate>{csrf}{current}{new}\
         <button type=\"submit\">{submit}</button></form><div class=\"links\"><a href=\"/cabinet\">{back}</a>\
         <a href=\"/sessions\">{sessions}</a></div>",
        title = visit.t("Смена пароля", "Change the password"),
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
    visit.html(status, title, "", &body, "/password")
}

async fn password_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let visit = Visit::new(&state, &headers);
    match signed_in(&state, &headers, visit).await {
        Ok((session, visit)) => password_form(visit, &session, None, StatusCode::OK),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    csrf: String,
    current_password: SecretString,
    new_password: SecretString,
}

async fn change_password(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let (session, visit) = match signed_in(&state, &headers, visit).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let context = context(&headers, &peer);
    match state
        .service()
        .change_password(&session, form.current_password, form.new_password, &context)
        .await
    {
        Ok(()) => {
            let body = format!(
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
            visit.html(StatusCode::OK, title, "", &body, "/password")
        }
        Err(error) if error.is(&Problem::SessionInvalid) => to_login(visit),
        Err(error) => {
            let status = status_of(&error);
            password_form(visit, &session, Some(&error), status)
        }
    }
}

async fn sessions_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let visit = Visit::new(&state, &headers);
    let (session, visit) = match signed_in(&state, &headers, visit).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let list = match state.service().sessions(&session).await {
        Ok(list) => list,
        Err(error) => {
            let (_, general) = split_problems(&error, visit.locale);
            let body = format!(
                "<h1>{}</h1>{}",
                visit.t("Сеансы", "Sessions"),
                alert(&general)
            );
            let title = visit.t("Сеансы", "Sessions");
            return visit.html(status_of(&error), title, "", &body, "/sessions");
        }
    };
    let items: String = list
        .iter()
        .map(|s| {
            let end = if s.current {
                format!("<p><strong>{}</strong></p>", visit.t("Этот сеанс", "This session"))
            } else {
                format!(
                    "<form method=\"post\" action=\"/sessions/end\">{csrf}{id}\
                     <button type=\"submit\" class=\"secondary\">{label}</button></form>",
                    csrf = csrf_field(&visit.csrf),
                    id = hidden("session_id", &s.id.to_string()),
                    label = visit.t("Завершить", "End"),
                )
            };
            format!(
                "<li class=\"session\" data-session=\"{id}\"><dl><dt>{client_label}</dt><dd>{client}</dd>\
                 <dt>{started_label}</dt><dd><time>{started}</time></dd><dt>{used_label}</dt><dd><time>{used}</time></dd></dl>{end}</li>",
                id = s.id,
                client_label = visit.t("Устройство", "Device"),
                client = escape(s.client.as_deref().unwrap_or("—")),
                started_label = visit.t("Вход (UTC)", "Logged in (UTC)"),
                started = s.created_at,
                used_label = visit.t("Последнее действие (UTC)", "Last used (UTC)"),
                used = s.last_used,
            )
        })
        .collect();
    let others = if list.len() > 1 {
        format!(
            "<form method=\"post\" action=\"/sessions/end-others\">{csrf}<button type=\"submit\">{label}</button></form>",
            csrf = csrf_field(&visit.csrf),
            label = visit.t("Завершить все другие сеансы", "End every other session"),
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>{title}</h1><ul class=\"sessions\">{items}</ul>{others}\
         <div class=\"links\"><a href=\"/cabinet\">{back}</a><a href=\"/password\">{password}</a></div>",
        title = visit.t("Сеансы", "Sessions"),
        back = visit.t("← В кабинет", "← Back to the cabinet"),
        password = visit.t("Сменить пароль", "Change the password"),
    );
    let title = visit.t("Сеансы", "Sessions");
    visit.html(StatusCode::OK, title, "", &body, "/sessions")
}

#[derive(Deserialize)]
struct EndForm {
    csrf: String,
    session_id: String,
}

async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<EndForm>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let (session, visit) = match signed_in(&state, &headers, visit).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let own = session.session_id().to_string() == form.session_id;
    // Not found (ended meanwhile) shows the list as it now is.
    let _ = state
        .service()
        .end_session(&session, &form.session_id)
        .await;
    if own {
        to_login(visit)
    } else {
        visit.redirect("/sessions")
    }
}

async fn end_other_sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CsrfOnly>,
) -> Response {
    let visit = check_csrf!(state, headers, form);
    let (session, visit) = match signed_in(&state, &headers, visit).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let _ = state.service().end_other_sessions(&session).await;
    visit.redirect("/sessions")
}
