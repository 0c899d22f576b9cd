//! Journeys 10 and 11: the signed-in resident downloads the cabinet's data and closes the
//! cabinet, each after the current password.

use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{
    answer, bearer, body, Api, ApiResponse, BadInput, Context, JsonBody, Language, Throttled,
    Unauthorized, Unavailable, UnsupportedMediaType,
};

/// The current password, to confirm a step that reads or erases the cabinet.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CurrentPasswordRequest {
    /// The password in force.
    #[schema(value_type = String)]
    pub current_password: SecretString,
}

/// Closing the cabinet: the current password and the explicit confirmation.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct CloseRequest {
    /// The password in force.
    #[schema(value_type = String)]
    pub current_password: SecretString,
    /// `true`: the resident confirms that everything about the cabinet is to be erased.
    pub confirm: bool,
}

/// The cabinet's data (`cabinet`, `sessions`, `pending`), without any secret.
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct OwnData(serde_json::Value);

/// Journey 10: the cabinet's data — the cabinet, its accounts and addresses, its sessions,
/// pending registrations and recoveries; no secret — after the current password.
#[utoipa::path(
    post,
    path = "/cabinet/export",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = CurrentPasswordRequest,
    responses(
        (status = 200, description = "The cabinet's data", body = OwnData),
        BadInput, Unauthorized, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn export_own_data(
    api: &Api,
    authorization: Option<&str>,
    request: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: CurrentPasswordRequest = try_body!(request, context.locale);
    let result = api
        .service
        .export_own_data(&session, request.current_password, context)
        .await;
    answer(result, context, |export| {
        ApiResponse::ok(&OwnData(
            serde_json::to_value(&export).unwrap_or(serde_json::Value::Null),
        ))
    })
}

/// Journey 11: closes the cabinet — the same erasure as the operators' — after the current
/// password and `"confirm": true`; the final letter "Личный кабинет закрыт" is mailed and
/// every session ends. The accounts can be registered again.
#[utoipa::path(
    post,
    path = "/cabinet/close",
    tag = "session",
    params(Language),
    security(("session" = [])),
    request_body = CloseRequest,
    responses(
        (status = 204, description = "Closed: the cabinet is erased and every session ended"),
        BadInput, Unauthorized, Throttled, Unavailable, UnsupportedMediaType
    )
)]
pub(crate) async fn close_cabinet(
    api: &Api,
    authorization: Option<&str>,
    request: JsonBody<'_>,
    context: &Context,
) -> ApiResponse {
    let (_, session) = try_session!(api, authorization, context);
    let request: CloseRequest = try_body!(request, context.locale);
    let result = api
        .service
        .close_cabinet(&session, request.current_password, request.confirm, context)
        .await;
    answer(result, context, |()| ApiResponse::status(204))
}
