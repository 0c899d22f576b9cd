//! The resident's own data (journeys 10 and 11): download it, or close the cabinet.

use http::{header, HeaderValue, StatusCode};
use resident_auth::{
    errors::{Field, Problem},
    secrecy::SecretString,
    Error,
};

use super::{
    cabinet::{signed_in, signed_in_form},
    forms,
    html::{alert, csrf_field, html, Html, Input},
    split_problems, status_of, to_login, PageRequest, PageResponse, Request,
};

forms! {
    struct ExportForm { current_password: SecretString }
    struct CloseForm { close_password: SecretString, confirm: Option<String> }
}

/// Which form an error belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Export,
    Close,
}

fn data_page(
    visit: PageRequest,
    failed: Option<(Which, &Error)>,
    status: StatusCode,
) -> PageResponse {
    let problems = |which: Which| {
        failed
            .filter(|(w, _)| *w == which)
            .map(|(_, e)| split_problems(e, visit.locale))
            .unwrap_or_default()
    };
    let (mut export_fields, export_general) = problems(Which::Export);
    let (mut close_fields, close_general) = problems(Which::Close);
    let password = |name: &'static str, error: Option<String>, autofocus: bool| Input {
        name,
        label: visit.t("Текущий пароль", "Current password"),
        kind: "password",
        value: "",
        hint: None,
        error,
        autocomplete: "current-password",
        autofocus,
    };
    let body = html!(
        "<h1>{title}</h1>\
         <h2>{export_title}</h2><p>{export_text}</p>{export_alert}\
         <form method=\"post\" action=\"/cabinet/data/export\" novalidate>{csrf}{export_password}\
         <button type=\"submit\">{export_button}</button></form>\
         <h2>{close_title}</h2><p>{close_text}</p>{close_alert}\
         <form method=\"post\" action=\"/cabinet/close\" novalidate>{csrf}{close_password}\
         <p><input type=\"checkbox\" id=\"confirm\" name=\"confirm\" value=\"yes\" required> \
         <label for=\"confirm\" class=\"inline\">{confirm}</label></p>\
         <button type=\"submit\" class=\"danger\">{close_button}</button></form>\
         <div class=\"links\"><a href=\"/cabinet\">{back}</a></div>",
        title = visit.t("Мои данные", "My data"),
        export_title = visit.t("Скачать мои данные", "Download my data"),
        export_text = visit.t(
            "Всё, что хранится о вашем кабинете: адрес почты, лицевые счета и адреса, сеансы, незавершённые регистрации. Пароли и ссылки не выгружаются.",
            "Everything kept about your cabinet: the email, personal accounts and addresses, sessions, unfinished registrations. No password or link is included.",
        ),
        export_alert = alert(&export_general),
        csrf = csrf_field(&visit.csrf),
        export_password = password(
            "current_password",
            export_fields.remove(&Field::CurrentPassword),
            failed.is_none_or(|(w, _)| w == Which::Export),
        )
        .render(),
        export_button = visit.t("Скачать (JSON)", "Download (JSON)"),
        close_title = visit.t("Закрыть кабинет", "Close the cabinet"),
        close_text = visit.t(
            "Кабинет и всё, что о нём хранится, будут удалены; все сеансы завершатся, на почту придёт письмо «Личный кабинет закрыт». Лицевые счета можно будет зарегистрировать снова.",
            "The cabinet and everything kept about it are erased; every session ends and the letter \u{201c}Cabinet closed\u{201d} is mailed. The personal accounts can be registered again.",
        ),
        close_alert = alert(&close_general),
        close_password = password(
            "close_password",
            close_fields.remove(&Field::CurrentPassword),
            failed.is_some_and(|(w, _)| w == Which::Close),
        )
        .render(),
        confirm = visit.t(
            "Я понимаю, что кабинет и все данные о нём будут удалены",
            "I understand that the cabinet and all its data will be erased",
        ),
        close_button = visit.t("Закрыть кабинет", "Close the cabinet"),
        back = visit.t("← В кабинет", "← Back to the cabinet"),
    );
    let title = visit.t("Мои данные", "My data");
    visit.html(status, title, Html::empty(), body, "/cabinet/data")
}

pub(super) async fn data(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    match signed_in(request, visit).await {
        Ok((_, visit)) => data_page(visit, None, StatusCode::OK),
        Err(response) => response,
    }
}

/// The answer to a refused step: the login page for an ended session, else the page with
/// the problem beside its form.
fn refused(visit: PageRequest, which: Which, error: &Error) -> PageResponse {
    if error.is(&Problem::SessionInvalid) {
        return to_login(visit);
    }
    let status = status_of(error);
    data_page(visit, Some((which, error)), status)
}

pub(super) async fn export(request: &Request<'_>) -> PageResponse {
    let (form, session, visit) = match signed_in_form::<ExportForm>(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let result = request
        .api
        .service()
        .export_own_data(&session, form.current_password, &request.context())
        .await;
    match result {
        Ok(export) => {
            let json = serde_json::to_string_pretty(&export).unwrap_or_default();
            let mut response = http::Response::new(json);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"my-cabinet.json\""),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            visit.finish(response)
        }
        Err(error) => refused(visit, Which::Export, &error),
    }
}

pub(super) async fn close(request: &Request<'_>) -> PageResponse {
    let (form, session, visit) = match signed_in_form::<CloseForm>(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let confirmed = form.confirm.as_deref() == Some("yes");
    let result = request
        .api
        .service()
        .close_cabinet(&session, form.close_password, confirmed, &request.context())
        .await;
    match result {
        Ok(()) => {
            let mut visit = visit;
            let cookie = visit
                .cookies
                .set_cookie(visit.cookies.session(), "", Some(0));
            visit.set_cookies.push(cookie);
            let title = visit.t("Кабинет закрыт", "Cabinet closed");
            let body = html!(
                "<h1>{title}</h1><div class=\"notice\" role=\"status\"><p>{text}</p></div>\
                 <p><a class=\"button\" href=\"/\">{home}</a></p>",
                title = title,
                text = visit.t(
                    "Кабинет и все данные о нём удалены. На почту отправлено письмо «Личный кабинет закрыт».",
                    "The cabinet and all its data are erased. The letter \u{201c}Cabinet closed\u{201d} was mailed.",
                ),
                home = visit.t("На главную", "Home"),
            );
            visit.html(StatusCode::OK, title, Html::empty(), body, "/")
        }
        Err(error) => refused(visit, Which::Close, &error),
    }
}
