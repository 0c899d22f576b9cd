//! Journey 12: the signed-in resident changes the cabinet's email; the link to the new
//! address confirms it, the link to the old one cancels it.

use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    answer, bearer, body, email_answer, Api, ApiResponse, BadInput, Conflict, Context, EmailAnswer,
    JsonBody, Language, PasswordChangeRequired, Throttled, TokenRequest, Unauthorized, Unavailable,
    UnsupportedMediaType,
};

/// `POST /api/cabinet/email` (journey 12): the new address and the current password.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct EmailChangeRequest {
    /// The new login; it must not be another cabinet's.
    #[schema(example = "new.address@example.org")]
    pub email: String,
    /// The password in force.
    #[schema(value_type = String)]
    pub current_password: SecretString,
}

/// Journey 12, step 1: asks for the cabinet's email to change. "Подтверждение нового
/// e-mail" goes to the new address and "Смена e-mail", with a link that cancels the
/// change, to the address in force; nothing changes until the new address's link is
/// followed.
#[utoipa::path(
    post,
    path = "/cabinet/email",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = EmailChangeRequest,
    responses(
        (status = 202, description = "Both letters were sent; the address in force still logs in"),
        BadInput, Unauthorized, PasswordChangeRequired, Conflict, Throttled, Unavailable,
        UnsupportedMediaType
    )
)]
pub(crate) async fn request_email_change(
    api: &Api,
    authorization: Option<&str>,
    request: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: EmailChangeRequest = try_body!(request, context.locale);
    let result = api
        .service
        .request_email_change(&session, &request.email, request.current_password, context)
        .await;
    answer(result, context, |()| ApiResponse::status(202))
}

/// Journey 12, step 2: follow the link mailed to the new address; it becomes the login.
/// Every session ends except the one of this request, when it carries one of the same
/// cabinet: the link works without a session (from another device, say), and an
/// `Authorization: Bearer` session, if sent, is kept.
#[utoipa::path(
    post,
    path = "/email/confirm",
    tag = "session",
    params(Language),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "The new login", body = EmailAnswer),
        BadInput, Conflict, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn confirm_email_change(
    api: &Api,
    authorization: Option<&str>,
    request: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let request: TokenRequest = try_body!(request, context.locale);
    // A session that no longer works is no reason to refuse the link: it only stays out.
    let session = match bearer(authorization) {
        Some(token) => api.service.authenticate(token).await.ok(),
        None => None,
    };
    let result = api
        .service
        .confirm_email_change(&request.token, session.as_ref(), context)
        .await;
    answer(result, context, email_answer)
}

/// Journey 12, "это был не я": follow the link mailed to the address in force; the pending
/// change dies, the password is retired (new credentials are mailed to the address in
/// force, as after a recovery) and every session of the cabinet ends.
#[utoipa::path(
    post,
    path = "/email/cancel",
    tag = "session",
    params(Language),
    request_body = TokenRequest,
    responses(
        (status = 204, description = "Cancelled; the password retired and new credentials mailed; every session ended"),
        BadInput, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn cancel_email_change(
    api: &Api,
    request: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let request: TokenRequest = try_body!(request, context.locale);
    let result = api
        .service
        .cancel_email_change(&request.token, context)
        .await;
    answer(result, context, |_| ApiResponse::status(204))
}
