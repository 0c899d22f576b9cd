//! The endpoints of journeys 1–9, one function each, with the `#[utoipa::path]` the
//! OpenAPI document is generated from.

use super::*;

/// Journey 1: register. A confirmation letter goes to the email.
#[utoipa::path(
    post,
    path = "/registrations",
    tag = "registration",
    params(Language),
    request_body = RegistrationRequest,
    responses(
        (status = 202, description = "A confirmation letter was sent"),
        BadInput, Conflict, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn register(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: RegistrationRequest = try_body!(body, context.locale);
    let form = RegistrationForm {
        surname: request.surname,
        account_number: request.account_number,
        email: request.email,
    };
    answer(api.service.register(&form, context).await, context, |()| {
        ApiResponse::status(202)
    })
}

/// Journey 2: confirm the email with the letter's link token.
#[utoipa::path(
    post,
    path = "/registrations/confirm",
    tag = "registration",
    params(Language),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Confirmed; activation is next", body = ActivationTokenAnswer),
        BadInput, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn confirm(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: TokenRequest = try_body!(body, context.locale);
    answer(
        api.service.confirm_email(&request.token).await,
        context,
        |token| {
            ApiResponse::ok(&ActivationTokenAnswer {
                activation_token: token.expose().to_owned(),
            })
        },
    )
}

/// Journey 3: activate with the premises number; the credentials letter is sent.
#[utoipa::path(
    post,
    path = "/registrations/activate",
    tag = "registration",
    params(Language),
    request_body = ActivationRequest,
    responses(
        (status = 200, description = "Activated; login and password were mailed", body = EmailAnswer),
        BadInput, Conflict, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn activate(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: ActivationRequest = try_body!(body, context.locale);
    let result = api
        .service
        .activate(&request.activation_token, &request.premises, context)
        .await;
    answer(result, context, email_answer)
}

/// Journey 4, first screen: the email in canonical form.
#[utoipa::path(
    post,
    path = "/login/identify",
    tag = "login",
    params(Language),
    request_body = EmailRequest,
    responses(
        (status = 200, description = "The email, canonical", body = EmailAnswer),
        BadInput, UnsupportedMediaType
    )
)]
pub(crate) async fn identify(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: EmailRequest = try_body!(body, context.locale);
    answer(api.service.identify(&request.email), context, email_answer)
}

/// Journey 4: log in with email and password.
#[utoipa::path(
    post,
    path = "/login",
    tag = "login",
    params(Language),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "A new session", body = SessionTokenAnswer),
        BadInput, Unauthorized, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn login(api: &Api, body: JsonBody<'_>, context: &Context) -> ApiResponse {
    let request: LoginRequest = try_body!(body, context.locale);
    let result = api
        .service
        .login(&request.email, request.password, context)
        .await;
    answer(result, context, |logged_in| {
        ApiResponse::ok(&SessionTokenAnswer {
            session_token: logged_in.session_token.expose().to_owned(),
            cabinet_id: logged_in.cabinet.to_string(),
            password_change_required: logged_in.password_change_required,
        })
    })
}

/// Journey 5: the cabinet behind the session.
#[utoipa::path(
    get,
    path = "/session",
    tag = "session",
    params(Language),
    security(("session" = [])),
    responses(
        (status = 200, description = "The cabinet and its accounts", body = CabinetAnswer),
        Unauthorized, PasswordChangeRequired, Unavailable
    )
)]
pub(crate) async fn session(
    api: &Api,
    authorization: Option<&str>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    answer(api.service.cabinet(&session).await, context, |cabinet| {
        let accounts = cabinet
            .accounts
            .iter()
            .map(|a| AccountAnswer {
                account_number: a.account_number.to_string(),
                address: a.address.clone(),
                premises: a.premises.as_ref().map(ToString::to_string),
            })
            .collect();
        ApiResponse::ok(&CabinetAnswer {
            cabinet_id: cabinet.cabinet.to_string(),
            email: cabinet.email.to_string(),
            accounts,
            active_account: cabinet.active_account.as_ref().map(ToString::to_string),
        })
    })
}

/// Journey 7: switch the session to another account of the cabinet.
#[utoipa::path(
    post,
    path = "/session/active-account",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = SelectAccountRequest,
    responses(
        (status = 200, description = "Switched", body = ActiveAccountAnswer),
        BadInput, Unauthorized, PasswordChangeRequired, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn select_account(
    api: &Api,
    authorization: Option<&str>,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: SelectAccountRequest = try_body!(body, context.locale);
    let result = api
        .service
        .select_account(&session, &request.account_number)
        .await;
    answer(result, context, |()| {
        ApiResponse::ok(&ActiveAccountAnswer {
            active_account: request.account_number.trim().to_owned(),
        })
    })
}

/// Ends the session.
#[utoipa::path(
    post,
    path = "/logout",
    tag = "session",
    params(Language),
    security(("session" = [])),
    responses(
        (status = 204, description = "The session is over"),
        Unauthorized, Unavailable
    )
)]
pub(crate) async fn logout(
    api: &Api,
    authorization: Option<&str>,
    context: &Context,
) -> ApiResponse {
    let (token, _) = try_session!(api, authorization, context);
    answer(api.service.logout(token).await, context, |()| {
        ApiResponse::status(204)
    })
}

/// Journey 6: ask for a recovery link. The answer is the same whether or not the email
/// has a cabinet.
#[utoipa::path(
    post,
    path = "/recovery",
    tag = "recovery",
    params(Language),
    request_body = EmailRequest,
    responses(
        (status = 202, description = "If the email has a cabinet, a recovery letter was sent"),
        BadInput, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn request_recovery(
    api: &Api,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let request: EmailRequest = try_body!(body, context.locale);
    let result = api.service.request_recovery(&request.email, context).await;
    answer(result, context, |()| ApiResponse::status(202))
}

/// Journey 6: follow the recovery link; new credentials are mailed.
#[utoipa::path(
    post,
    path = "/recovery/complete",
    tag = "recovery",
    params(Language),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A new password was mailed", body = EmailAnswer),
        BadInput, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn complete_recovery(
    api: &Api,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let request: TokenRequest = try_body!(body, context.locale);
    let result = api.service.complete_recovery(&request.token, context).await;
    answer(result, context, email_answer)
}

/// Journey 7: add another account to the signed-in cabinet (a confirmation letter goes
/// to the cabinet's email).
#[utoipa::path(
    post,
    path = "/addresses",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = AddressRequest,
    responses(
        (status = 202, description = "A confirmation letter was sent"),
        BadInput, Unauthorized, PasswordChangeRequired, Conflict, Throttled, Unavailable,
        UnsupportedMediaType
    )
)]
pub(crate) async fn add_address(
    api: &Api,
    authorization: Option<&str>,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: AddressRequest = try_body!(body, context.locale);
    let form = AddressForm {
        surname: request.surname,
        account_number: request.account_number,
    };
    let result = api.service.add_address(&session, &form, context).await;
    answer(result, context, |()| ApiResponse::status(202))
}

/// Journey 8: change the password. Every other session ends; this one lives on; the
/// notice "Пароль изменён" is mailed.
#[utoipa::path(
    post,
    path = "/password",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = PasswordChangeRequest,
    responses(
        (status = 204, description = "Changed; every other session ended"),
        BadInput, Unauthorized, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn change_password(
    api: &Api,
    authorization: Option<&str>,
    body: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: PasswordChangeRequest = try_body!(body, context.locale);
    let result = api
        .service
        .change_password(
            &session,
            request.current_password,
            request.new_password,
            context,
        )
        .await;
    answer(result, context, |()| ApiResponse::status(204))
}

/// Journey 9: the cabinet's live sessions.
#[utoipa::path(
    get,
    path = "/sessions",
    tag = "session",
    params(Language),
    security(("session" = [])),
    responses(
        (status = 200, description = "The live sessions, the asking one first", body = SessionsAnswer),
        Unauthorized, Unavailable
    )
)]
pub(crate) async fn sessions(
    api: &Api,
    authorization: Option<&str>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    answer(api.service.sessions(&session).await, context, |list| {
        let sessions = list
            .into_iter()
            .map(|s| SessionAnswer {
                id: s.id.to_string(),
                created_at: s.created_at.to_string(),
                last_used: s.last_used.to_string(),
                client: s.client,
                current: s.current,
            })
            .collect();
        ApiResponse::ok(&SessionsAnswer { sessions })
    })
}

/// A session's identity in a path.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Path)]
// Read only by utoipa: the document's parameters.
#[allow(dead_code)]
pub(crate) struct SessionPath {
    /// The session's `id` from `GET /api/sessions`.
    #[param(example = "0f1e2d3c4b5a69788796a5b4c3d2e1f0")]
    pub id: String,
}

/// Journey 9: end one session of the cabinet (the asking one included: a logout).
#[utoipa::path(
    delete,
    path = "/sessions/{id}",
    tag = "session",
    params(SessionPath, Language),
    security(("session" = [])),
    responses(
        (status = 204, description = "The session is over"),
        Unauthorized, SessionNotFound, Unavailable
    )
)]
pub(crate) async fn end_session(
    api: &Api,
    authorization: Option<&str>,
    session_id: &str,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let result = api.service.end_session(&session, session_id).await;
    answer(result, context, |()| ApiResponse::status(204))
}

/// Journey 9: end every session of the cabinet but the asking one.
#[utoipa::path(
    delete,
    path = "/sessions/others",
    tag = "session",
    params(Language),
    security(("session" = [])),
    responses(
        (status = 200, description = "The other sessions are over", body = EndedAnswer),
        Unauthorized, Unavailable
    )
)]
pub(crate) async fn end_other_sessions(
    api: &Api,
    authorization: Option<&str>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    answer(
        api.service.end_other_sessions(&session).await,
        context,
        |ended| ApiResponse::ok(&EndedAnswer { ended }),
    )
}
