//! What a signed-in resident does with the cabinet's data without calling anyone
//! (docs/contract.md §3, journeys 10 and 11): download it, and close the cabinet.

use secrecy::SecretString;

use super::{
    admin::{AdminError, CabinetExport, Lookup},
    AuthService, SignedIn,
};
use crate::ports::prelude::*;
use crate::{
    errors::problem::{Error, Problem},
    events::{Event, EventKind},
    hasher::Verification,
    letters::{Letter, LetterContent},
    password::normalize,
    ports::{CabinetKey, CounterKey, StoreError},
    RequestContext,
};

impl AuthService {
    /// Journey 10, "download my data": what the operators' export holds about the
    /// session's cabinet (the cabinet, its accounts and addresses, its sessions, pending
    /// registrations and recoveries; no secret), after the current password — counted and
    /// checked as for a password change. Recorded as an event.
    ///
    /// # Errors
    /// [`Problem::CurrentPasswordWrong`], [`Problem::PasswordExpired`],
    /// [`Problem::LoginThrottled`], [`Problem::SessionInvalid`] if the session ended
    /// meanwhile, or [`Error::Unavailable`].
    #[tracing::instrument(
        name = "resident_auth.export_own_data",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn export_own_data(
        &self,
        session: &SignedIn,
        current_password: SecretString,
        context: &RequestContext,
    ) -> Result<CabinetExport, Error> {
        let keys = self
            .check_current_password(session, current_password, context)
            .await?;
        let (export, cabinet) = self
            .admin()
            .export_quietly(&Lookup::Email(session.email.clone()))
            .await
            .map_err(own)?;
        let _ = self.store().reset_all(&keys).await;
        self.record(
            Event::new(EventKind::DataExported, self.now())
                .about(Some(cabinet), None)
                .from_client(context.client.as_deref()),
        )
        .await;
        Ok(export)
    }

    /// Journey 11, "close my cabinet": after the current password (counted and checked as
    /// for a password change) and the resident's explicit `confirmed`, the same erasure as
    /// the operators' — the cabinet, its sessions, pending links, counters, letters and
    /// events — with the final letter "Личный кабинет закрыт" queued in the write that
    /// deletes the cabinet. The accounts can be registered again.
    ///
    /// # Errors
    /// [`Problem::ClosingNotConfirmed`] without `confirmed`;
    /// [`Problem::CurrentPasswordWrong`], [`Problem::PasswordExpired`],
    /// [`Problem::LoginThrottled`], [`Problem::SessionInvalid`] if the session ended
    /// meanwhile, or [`Error::Unavailable`] (then nothing was erased, or the cabinet changed
    /// meanwhile and the resident may try again; on a store without the operators' optional
    /// listing primitives, always).
    #[tracing::instrument(
        name = "resident_auth.close_cabinet",
        skip_all,
        err(level = "debug", Display)
    )]
    pub async fn close_cabinet(
        &self,
        session: &SignedIn,
        current_password: SecretString,
        confirmed: bool,
        context: &RequestContext,
    ) -> Result<(), Error> {
        if !confirmed {
            return Err(Problem::ClosingNotConfirmed.into());
        }
        self.check_current_password(session, current_password, context)
            .await?;
        let farewell = Letter {
            to: session.email.clone(),
            locale: context.locale,
            content: LetterContent::CabinetClosed,
        };
        // The letter names no cabinet: it outlives the erasure it reports.
        let queued = self.queued(&farewell, None, self.now());
        let (_, cabinet) = self
            .admin()
            .erase_quietly(&Lookup::Email(session.email.clone()), Some(&queued))
            .await
            .map_err(own)?;
        self.letter_written(queued).await;
        self.record(
            Event::new(EventKind::CabinetClosed, self.now())
                .about(cabinet, None)
                .from_client(context.client.as_deref()),
        )
        .await;
        Ok(())
    }

    /// The current password of the session's cabinet, counted against the login limits
    /// first and then verified; an expired mailed password is refused as at login. Returns
    /// the counters a success clears.
    pub(super) async fn check_current_password(
        &self,
        session: &SignedIn,
        current_password: SecretString,
        context: &RequestContext,
    ) -> Result<[CounterKey; 2], Error> {
        let now = self.now();
        let keys = self
            .count_password_try(&session.email, context, now)
            .await?;
        let own_version = session.session.record.credential_version;
        let cabinet = match self
            .store()
            .cabinet(CabinetKey::Id(&session.cabinet))
            .await?
        {
            Some(cabinet) if cabinet.value.credential_version == own_version => cabinet.value,
            _ => return Err(Problem::SessionInvalid.into()),
        };
        if let Verification::Mismatch = self
            .ports
            .hasher
            .verify(normalize(&current_password), Some(cabinet.password_hash))
            .await?
        {
            return Err(Problem::CurrentPasswordWrong.into());
        }
        if cabinet
            .password_expires_at
            .is_some_and(|until| until <= now)
        {
            return Err(Problem::PasswordExpired.into());
        }
        Ok(keys)
    }
}

/// An operator-side failure, as the resident's step reports it.
fn own(error: AdminError) -> Error {
    match error {
        AdminError::NotFound => Problem::SessionInvalid.into(),
        AdminError::Refused(reason) => StoreError::unavailable(reason).into(),
        AdminError::Service(error) => error,
    }
}
