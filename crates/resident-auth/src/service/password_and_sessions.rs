//! What a signed-in resident does to their own cabinet's security: change the password
//! (docs/contract.md §3, journey 8) and see and end sessions (journey 9).

use secrecy::SecretString;

use super::{AuthService, SignedIn, CABINET_WRITE_ATTEMPTS};
use crate::ports::prelude::*;
use crate::{
    clock::Timestamp,
    errors::problem::{Error, Problem},
    events::{Event, EventKind},
    hasher::Verification,
    ids::SessionId,
    letters::{Letter, LetterContent},
    password::{normalize, NewPassword},
    ports::{CabinetKey, CabinetSwap, Expected, StoreError},
    RequestContext,
};

/// One session of a cabinet, as the list of sessions shows it. The token is never shown:
/// the [`SessionId`] names the session for [`AuthService::end_session`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionView {
    /// The session's public identity.
    pub id: SessionId,
    /// Login time.
    pub created_at: Timestamp,
    /// Last use, to within the touch interval.
    pub last_used: Timestamp,
    /// Browser, system and client address at login, when known.
    pub client: Option<String>,
    /// Whether this is the session of the request that asked.
    pub current: bool,
}

impl AuthService {
    /// Journey 8: changes the password of a signed-in resident who gives the current one.
    /// The try is counted first against the login limits of this cabinet and client (a
    /// throttled try costs nothing more, and a stolen session cannot guess the current
    /// password faster than logins could); then the new one is checked ([`NewPassword`]:
    /// length, email, blocklist, off the async executor; no argon2 for a password that
    /// would be refused); then argon2 verifies the current password, which must not be an
    /// expired mailed one. Success ends
    /// every other session and every recovery link, keeps this session, clears a temporary
    /// password's requirement, and mails the notice "Пароль изменён".
    ///
    /// # Errors
    /// [`Problem::NewPassword`], [`Problem::CurrentPasswordWrong`],
    /// [`Problem::PasswordExpired`], [`Problem::LoginThrottled`], [`Problem::SessionInvalid`] if the session ended
    /// meanwhile, or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.change_password",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn change_password(
        &self,
        session: &SignedIn,
        current_password: SecretString,
        new_password: SecretString,
        context: &RequestContext,
    ) -> Result<(), Error> {
        let now = self.now();
        let store = self.store();
        // Counted first: a refused or throttled try costs nothing else.
        let [pair_key, cabinet_key] = self
            .count_password_try(&session.email, context, now)
            .await?;
        let new_password = NewPassword::parse_off_executor(new_password, session.email.clone())
            .await?
            .map_err(Problem::from)?;
        let own_version = session.session.record.credential_version;
        let read = store.cabinet(CabinetKey::Id(&session.cabinet)).await?;
        let (stored, expires_at) = match &read {
            Some(cabinet) if cabinet.value.credential_version == own_version => (
                cabinet.value.password_hash.clone(),
                cabinet.value.password_expires_at,
            ),
            _ => return Err(Problem::SessionInvalid.into()),
        };
        let current_password = normalize(&current_password);
        if let Verification::Mismatch = self
            .ports
            .hasher
            .verify(current_password, Some(stored))
            .await?
        {
            return Err(Problem::CurrentPasswordWrong.into());
        }
        // An expired mailed password is refused here as at login.
        if expires_at.is_some_and(|until| until <= now) {
            return Err(Problem::PasswordExpired.into());
        }
        let hash = self.ports.hasher.hash(new_password.into_secret()).await?;
        // The notice is queued in the same write as the new password.
        let notice = Letter {
            to: session.email.clone(),
            locale: context.locale,
            content: LetterContent::PasswordChanged,
        };
        let queued = self.queued(&notice, Some(session.cabinet), self.now());
        let new_version = self
            .write_new_password(session, read, &hash, &queued)
            .await?;
        // The new password is in force: the step has succeeded. Keeping this session is
        // best effort — should it fail, the session ends like the others and the resident
        // logs in with the new password, rather than being told "try again" about a
        // change that was made.
        if let Err(error) = self.keep_session(session, new_version).await {
            tracing::warn!(cabinet = %session.cabinet, %error, "the session that changed the password ended");
        }
        // Best effort: a lingering count only shortens the next run of tries.
        let _ = store.reset_all(&[pair_key, cabinet_key]).await;
        self.letter_written(queued).await;
        self.record(
            Event::new(EventKind::PasswordChanged, self.now())
                .about(Some(session.cabinet), None)
                .from_client(context.client.as_deref()),
        )
        .await;
        Ok(())
    }

    /// Writes `hash` as the cabinet's password, with the notice `queued` in the same write,
    /// unless new credentials were issued since `session` opened; the new credential
    /// version. `read` is the cabinet as last read, if it is still current.
    async fn write_new_password(
        &self,
        session: &SignedIn,
        mut read: Option<crate::ports::Versioned<crate::ports::Cabinet>>,
        hash: &crate::ports::HashedPassword,
        queued: &crate::mail::QueuedLetter,
    ) -> Result<u64, Error> {
        let store = self.store();
        let own_version = session.session.record.credential_version;
        let mut written = None;
        for _ in 0..CABINET_WRITE_ATTEMPTS {
            let current = match read.take() {
                Some(current) => current,
                None => store
                    .cabinet(CabinetKey::Id(&session.cabinet))
                    .await?
                    .ok_or(Problem::SessionInvalid)?,
            };
            // New credentials were issued since this session opened (a recovery, another
            // change): the session is over, and so is its right to change anything.
            if current.value.credential_version != own_version {
                return Err(Problem::SessionInvalid.into());
            }
            let mut next = current.value.clone();
            next.password_hash = hash.clone();
            next.credential_version = own_version.saturating_add(1);
            next.password_expires_at = None;
            match store
                .swap_cabinet(
                    &next.id,
                    Expected::Version(current.version),
                    Some(&next),
                    Some(queued),
                )
                .await?
            {
                CabinetSwap::Written => {
                    written = Some(next.credential_version);
                    break;
                }
                CabinetSwap::Conflict | CabinetSwap::Taken => {}
            }
        }
        written.ok_or_else(|| {
            StoreError::unavailable("the cabinet kept changing under a write").into()
        })
    }

    /// Moves the asking session to the credential version just written, so it survives
    /// the change that ended every other one. A session logged out meanwhile stays out.
    pub(super) async fn keep_session(
        &self,
        session: &SignedIn,
        new_version: u64,
    ) -> Result<(), Error> {
        let store = self.store();
        let token = &session.session.token;
        let old_version = session.session.record.credential_version;
        for _ in 0..CABINET_WRITE_ATTEMPTS {
            let Some(current) = store.session(token).await? else {
                return Ok(());
            };
            if current.value.credential_version != old_version {
                return Ok(());
            }
            let mut next = current.value.clone();
            next.credential_version = new_version;
            if store
                .swap_session(token, Expected::Version(current.version), Some(&next))
                .await?
            {
                return Ok(());
            }
        }
        Err(StoreError::unavailable("the session kept changing under a write").into())
    }

    /// Journey 9: the cabinet's live sessions, the asking one first, then the most
    /// recently used. Works with a temporary password too.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails.
    #[tracing::instrument(
        name = "resident_auth.sessions",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn sessions(&self, session: &SignedIn) -> Result<Vec<SessionView>, Error> {
        let now = self.now();
        let own_version = session.session.record.credential_version;
        let mut list: Vec<SessionView> = self
            .store()
            .cabinet_sessions(&session.cabinet)
            .await?
            .into_iter()
            .filter(|(_, other)| self.session_alive(&other.value, own_version, now))
            .map(|(token, other)| SessionView {
                id: other.value.id,
                created_at: other.value.created_at,
                last_used: other.value.last_used,
                client: other.value.client,
                current: token == session.session.token,
            })
            .collect();
        list.sort_by(|a, b| {
            (b.current, b.last_used, b.created_at).cmp(&(a.current, a.last_used, a.created_at))
        });
        Ok(list)
    }

    /// Journey 9: ends the session `session_id` of the asking session's cabinet (the
    /// asking one included: that is a logout).
    ///
    /// # Errors
    /// [`Problem::SessionNotFound`] when the cabinet has no live session of that identity
    /// (another cabinet's session is not found either), or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.end_session",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn end_session(&self, session: &SignedIn, session_id: &str) -> Result<(), Error> {
        let id: SessionId = session_id.parse().map_err(|_| Problem::SessionNotFound)?;
        let now = self.now();
        let own_version = session.session.record.credential_version;
        let store = self.store();
        let found = store
            .cabinet_sessions(&session.cabinet)
            .await?
            .into_iter()
            .find(|(_, other)| {
                other.value.id == id && self.session_alive(&other.value, own_version, now)
            });
        let Some((token, _)) = found else {
            return Err(Problem::SessionNotFound.into());
        };
        store.swap_session(&token, Expected::Any, None).await?;
        self.record(Event::new(EventKind::SessionEnded, now).about(Some(session.cabinet), None))
            .await;
        Ok(())
    }

    /// Journey 9: ends every session of the cabinet but the asking one; returns how many
    /// live sessions ended.
    ///
    /// # Errors
    /// [`Error::Unavailable`] if the store fails (some may have ended).
    #[tracing::instrument(
        name = "resident_auth.end_other_sessions",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn end_other_sessions(&self, session: &SignedIn) -> Result<u64, Error> {
        let now = self.now();
        let own_version = session.session.record.credential_version;
        let store = self.store();
        let mut ended = 0;
        for (token, other) in store.cabinet_sessions(&session.cabinet).await? {
            if token == session.session.token {
                continue;
            }
            let alive = self.session_alive(&other.value, own_version, now);
            if store
                .swap_session(&token, Expected::Version(other.version), None)
                .await?
                && alive
            {
                ended += 1;
                self.record(
                    Event::new(EventKind::SessionEnded, now).about(Some(session.cabinet), None),
                )
                .await;
            }
        }
        Ok(ended)
    }
}
