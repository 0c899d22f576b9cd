//! The signed-in resident of a request to a host's own handler, and the library's errors as
//! answers: defined here once, so that the axum and actix-web extractors behave alike.

use resident_auth::{
    errors::Problem, journeys::SignedIn, AccountNumber, CabinetId, Email, Error, Locale,
};

use crate::{
    api::ApiResponse,
    integration::{Headers, Response},
    Api,
};

/// The signed-in resident of a request, as [`Api::resident`] found them: the session of
/// the `Authorization: Bearer` token, else of the session cookie. The integrations'
/// `Resident` extractors dereference to it.
#[derive(Debug, Clone)]
pub struct Resident {
    session: SignedIn,
    locale: Locale,
}

impl Resident {
    /// The cabinet: the opaque, stable identity to join the host's tables on.
    #[must_use]
    pub fn cabinet(&self) -> CabinetId {
        self.session.cabinet
    }

    /// The cabinet's email.
    #[must_use]
    pub fn email(&self) -> &Email {
        &self.session.email
    }

    /// The personal account the resident has selected.
    #[must_use]
    pub fn active_account(&self) -> Option<AccountNumber> {
        self.session.active_account
    }

    /// The authenticated session, for the service's operations.
    #[must_use]
    pub fn session(&self) -> &SignedIn {
        &self.session
    }

    /// The request's language (for [`AuthError::new`]).
    #[must_use]
    pub fn locale(&self) -> Locale {
        self.locale
    }
}

/// A library error as an answer: the API's problem JSON
/// (`{"errors":[{"field","code","message"}]}`, stable codes, messages in the request's
/// language), its status, and `Retry-After` when the error gives one. Host handlers return
/// `Result<_, AuthError>` and use `?` on the service's results: it is an axum
/// `IntoResponse` and an actix-web `ResponseError` (features `axum`, `actix`, which the
/// integrations turn on).
#[derive(Debug)]
pub struct AuthError {
    error: Error,
    locale: Locale,
}

impl AuthError {
    /// `error`, with messages in `locale`.
    #[must_use]
    pub fn new(error: Error, locale: Locale) -> Self {
        Self { error, locale }
    }

    /// The library's error.
    #[must_use]
    pub fn error(&self) -> &Error {
        &self.error
    }

    /// The answer.
    #[must_use]
    pub fn response(&self) -> Response {
        ApiResponse::from_error(&self.error, self.locale).into_response()
    }
}

/// Messages in Russian, the portal's default language; [`AuthError::new`] chooses.
impl From<Error> for AuthError {
    fn from(error: Error) -> Self {
        Self::new(error, Locale::Ru)
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for AuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for AuthError {
    fn into_response(self) -> axum_core::response::Response {
        self.response().into_response()
    }
}

#[cfg(feature = "actix")]
impl actix_web::ResponseError for AuthError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        let status = self.response().status().as_u16();
        actix_web::http::StatusCode::from_u16(status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        self.response().into_actix()
    }
}

impl Api {
    /// For an integration that mounts the API without the pages: warns once per process
    /// when the service's letters still link to the library's own pages, which would then
    /// answer 404 — enable the integration's `pages` feature, or point the links at the
    /// host's front end (`AuthServiceBuilder::confirmation_link`, `recovery_link`,
    /// `email_change_link`, `email_change_cancel_link`).
    pub fn warn_if_pages_unserved(&self, integration: &str) {
        static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
        let pages = self.service().config().links.pages_needed();
        if !pages.is_empty() && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                pages = %pages.join(", "),
                "resident-auth: letters link to the library's own pages, which {integration} \
                 does not serve without its `pages` feature: those links would answer 404. \
                 Enable `pages`, or point them at your front end \
                 (AuthServiceBuilder::confirmation_link, recovery_link, email_change_link, \
                 email_change_cancel_link, e.g. https://app.example/confirm/{{token}}), or \
                 serve those paths yourself"
            );
        }
    }

    /// The signed-in resident of a request to the host's own handlers: the session of an
    /// `Authorization: Bearer` token, else of the session cookie. A request that may change
    /// something (`safe` false: not GET, HEAD or OPTIONS) is taken by its cookie only with
    /// the CSRF token in the `X-CSRF-Token` header, so another site cannot make a
    /// resident's browser act.
    ///
    /// # Errors
    /// `session.invalid` (401) without a usable session; `password.change_required` (403)
    /// while a temporary password is in force; `service.unavailable` (503) when storage
    /// fails — each in the request's language.
    pub async fn resident(
        &self,
        headers: &(impl Headers + ?Sized),
        safe: bool,
    ) -> Result<Resident, AuthError> {
        let locale = crate::web::locale(headers);
        let cookies = self.cookies();
        let token = match crate::web::bearer(headers.first("authorization")) {
            Some(token) => Some(token),
            None => crate::web::cookie(headers, cookies.session()).filter(|_| {
                safe || headers
                    .first(crate::web::CSRF_HEADER)
                    .is_some_and(|submitted| self.csrf_key().check(cookies, headers, submitted))
            }),
        };
        let refused = |error: Error| AuthError::new(error, locale);
        let session = self
            .service()
            .authenticate(token.unwrap_or_default())
            .await
            .map_err(refused)?;
        if session.password_change_required {
            return Err(refused(Problem::PasswordChangeRequired.into()));
        }
        Ok(Resident { session, locale })
    }

    /// [`Api::resident`] for pages that work both ways: `None` only when there is no usable
    /// session; a storage outage (503) and a required password change (403) stay errors.
    ///
    /// # Errors
    /// As [`Api::resident`], but for `session.invalid`.
    pub async fn maybe_resident(
        &self,
        headers: &(impl Headers + ?Sized),
        safe: bool,
    ) -> Result<Option<Resident>, AuthError> {
        match self.resident(headers, safe).await {
            Ok(resident) => Ok(Some(resident)),
            Err(error) if error.error.is(&Problem::SessionInvalid) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use resident_auth::{
        memory::{MemoryDirectory, MemoryStore, RecordingMailer},
        testing::{FaultMode, FaultyStore},
        AuthService,
    };

    use super::*;

    #[tokio::test]
    async fn nobody_signed_in_is_none_and_an_outage_stays_an_error() {
        let store = FaultyStore::new(MemoryStore::new());
        let (service, _background) = AuthService::builder("https://portal.example.org")
            .store(store.clone())
            .directory(MemoryDirectory::default())
            .mailer(RecordingMailer::new())
            .build()
            .unwrap();
        let api = Api::new(service);
        let nobody: [(&str, &str); 0] = [];
        assert!(api
            .maybe_resident(&nobody[..], true)
            .await
            .unwrap()
            .is_none());
        let forged = [(
            "authorization",
            "Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )];
        assert!(api
            .maybe_resident(&forged[..], true)
            .await
            .unwrap()
            .is_none());
        let refused = api.resident(&forged[..], true).await.unwrap_err();
        assert_eq!(refused.response().status(), 401);

        store.arm(0, FaultMode::BeforeTheCall);
        let outage = api.maybe_resident(&forged[..], true).await.unwrap_err();
        assert_eq!(outage.response().status(), 503);
    }
}
