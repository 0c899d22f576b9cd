//! The signed-in cabinet: its accounts and the switch between them (journey 5), adding an
//! address (journey 7), and logging out.

use http::StatusCode;
use resident_auth::{
    errors::Problem,
    journeys::{AddressForm, SignedIn},
    Error,
};

use super::{
    forms,
    html::{alert, csrf_field, hidden, html, Html},
    journeys::{letter_sent, surname_and_account},
    split_problems, status_of, to_login, CsrfOnly, PageRequest, PageResponse, Request,
};

forms! {
    struct SelectForm { account_number: String }
    struct AddForm { surname: String, account_number: String }
}

/// The session behind the request's cookie, or the way back to the login page.
pub(super) async fn signed_in(
    request: &Request<'_>,
    visit: PageRequest,
) -> Result<(SignedIn, PageRequest), PageResponse> {
    let token = request.session_cookie().unwrap_or_default();
    match request.api.service().authenticate(token).await {
        Ok(session) => Ok((session, visit)),
        Err(_) => Err(to_login(visit)),
    }
}

/// A form of a signed-in page: its fields (CSRF checked), the session, the visit; else the
/// answer to give.
#[allow(clippy::result_large_err)] // the error is the request's whole answer
pub(super) async fn signed_in_form<T: serde::de::DeserializeOwned + super::Csrf>(
    request: &Request<'_>,
) -> Result<(T, SignedIn, PageRequest), PageResponse> {
    let (form, visit) = request.form::<T>()?;
    let (session, visit) = signed_in(request, visit).await?;
    Ok((form, session, visit))
}

pub(super) async fn cabinet(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    if request.session_cookie().is_none() {
        return visit.redirect("/");
    }
    let (session, visit) = match signed_in(request, visit).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let cabinet = match request.api.service().cabinet(&session).await {
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
    let items: Html = cabinet
        .accounts
        .iter()
        .map(|account| {
            let current = Some(account.account_number) == active.map(|a| a.account_number);
            html!(
                "<li><form method=\"post\" action=\"/cabinet/select\">{csrf}{number}\
                 <button type=\"submit\" aria-current=\"{current}\">{address}</button></form></li>",
                csrf = csrf_field(&visit.csrf),
                number = hidden("account_number", account.account_number.as_str()),
                current = if current { "true" } else { "false" },
                address = account.address,
            )
        })
        .collect();
    let menu = html!(
        "<details class=\"addresses\"><summary>{selected}</summary><ul>{items}\
         <li><a href=\"/cabinet/add\">{add}</a></li></ul></details>",
        selected = active.map_or("—", |a| a.address.as_str()),
        items = items,
        add = visit.t("Добавить адрес", "Add an address"),
    );
    let details = active.map_or_else(Html::empty, |account| {
        html!(
            "<dl><dt>{number_label}</dt><dd>{number}</dd><dt>{address_label}</dt><dd>{address}</dd>\
             <dt>{premises_label}</dt><dd>{premises}</dd><dt>{email_label}</dt><dd>{email}</dd></dl>",
            number_label = visit.t("Лицевой счёт", "Personal account"),
            number = account.account_number.as_str(),
            address_label = visit.t("Адрес", "Address"),
            address = account.address,
            premises_label = visit.t("Помещение", "Premises"),
            premises = account.premises.map(|p| p.to_string()).unwrap_or_default(),
            email_label = visit.t("Электронная почта", "Email"),
            email = cabinet.email.as_str(),
        )
    });
    let body = html!(
        "<h1>{title}</h1>{details}<p class=\"hint\">{switch}</p>\
         <div class=\"links\"><a href=\"/password\">{password}</a><a href=\"/sessions\">{sessions}</a>\
         <a href=\"/cabinet/email\">{email_change}</a><a href=\"/cabinet/data\">{data}</a></div>\
         <form method=\"post\" action=\"/logout\">{csrf}<button type=\"submit\" class=\"secondary\">{logout}</button></form>",
        title = visit.t("Личный кабинет", "Your cabinet"),
        details = details,
        switch = visit.t("Чтобы переключить лицевой счёт или добавить адрес, нажмите на адрес вверху страницы.", "To switch accounts or add an address, press the address at the top of the page."),
        password = visit.t("Сменить пароль", "Change the password"),
        sessions = visit.t("Сеансы", "Sessions"),
        email_change = visit.t("Сменить e-mail", "Change the email"),
        data = visit.t("Мои данные", "My data"),
        csrf = csrf_field(&visit.csrf),
        logout = visit.t("Выйти", "Log out"),
    );
    let title = visit.t("Личный кабинет", "Your cabinet");
    visit.html(StatusCode::OK, title, menu, body, "/cabinet")
}

pub(super) async fn select(request: &Request<'_>) -> PageResponse {
    let (form, session, visit) = match signed_in_form::<SelectForm>(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match request
        .api
        .service()
        .select_account(&session, &form.account_number)
        .await
    {
        Err(error) if error.is(&Problem::SessionInvalid) => to_login(visit),
        _ => visit.redirect("/cabinet"),
    }
}

fn add_form(
    visit: PageRequest,
    form: &AddressForm,
    error: Option<&Error>,
    status: StatusCode,
) -> PageResponse {
    let (mut fields, general) = error
        .map(|e| split_problems(e, visit.locale))
        .unwrap_or_default();
    let body = html!(
        "<h1>{title}</h1>{alert}<form method=\"post\" action=\"/cabinet/add\" novalidate>{csrf}{surname_and_account}\
         <button type=\"submit\">{submit}</button></form><div class=\"links\"><a href=\"/cabinet\">{back}</a></div>",
        title = visit.t("Добавление нового адреса", "Add a new address"),
        alert = alert(&general),
        csrf = csrf_field(&visit.csrf),
        surname_and_account = surname_and_account(
            &visit,
            (&form.surname, &form.account_number),
            &mut fields,
            visit.t("13 цифр", "13 digits"),
        ),
        submit = visit.t("Добавить", "Add"),
        back = visit.t("← В кабинет", "← Back to the cabinet"),
    );
    let title = visit.t("Добавление адреса", "Add an address");
    visit.html(status, title, Html::empty(), body, "/cabinet/add")
}

pub(super) async fn add_page(request: &Request<'_>) -> PageResponse {
    let visit = PageRequest::new(request.api, request.headers);
    match signed_in(request, visit).await {
        Ok((_, visit)) => add_form(visit, &AddressForm::default(), None, StatusCode::OK),
        Err(response) => response,
    }
}

pub(super) async fn add(request: &Request<'_>) -> PageResponse {
    let (form, session, visit) = match signed_in_form::<AddForm>(request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let address = AddressForm {
        surname: form.surname,
        account_number: form.account_number,
    };
    match request
        .api
        .service()
        .add_address(&session, &address, &request.context())
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

pub(super) async fn logout(request: &Request<'_>) -> PageResponse {
    let (_, visit) = match request.form::<CsrfOnly>() {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    if let Some(session) = request.session_cookie() {
        let _ = request.api.service().logout(session).await;
    }
    to_login(visit)
}
