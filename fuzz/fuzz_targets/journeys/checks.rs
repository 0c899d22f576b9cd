//! What the journeys target checks after every step, and the lookups its steps share.

use super::*;

impl World {
    pub(super) fn session(&self, index: u8) -> Option<Opened> {
        (!self.sessions.is_empty())
            .then(|| self.sessions[usize::from(index) % self.sessions.len()].clone())
    }

    /// The newest confirmation letter was sent for `account`.
    pub(super) fn remember_confirmation(&mut self, account: &str) {
        if let Some(letter) = self.mailer.letters().last() {
            if let Some(token) = link_token(letter) {
                self.confirmations.insert(token, account.to_owned());
            }
        }
    }

    /// New credentials (or an ending of the others) for `email`: every session of it
    /// opened so far is over, except `kept`.
    /// One of the passwords `email` was mailed or chose, or a wrong one.
    pub(super) fn a_password_of(&self, email: &str, index: u8) -> String {
        let names = self.names_of(email);
        let mut known: Vec<String> = self
            .mailer
            .letters()
            .iter()
            .filter(|l| {
                names.contains(&l.to.as_str().to_owned())
                    && l.content.kind() == LetterKind::Credentials
            })
            .filter_map(mailed_password)
            .map(|p| p.expose_secret().to_owned())
            .collect();
        for name in &names {
            known.extend(self.chosen.get(name).cloned().unwrap_or_default());
        }
        known.push("wrong-password".to_owned());
        known[usize::from(index) % known.len()].clone()
    }

    /// `email` and every email its cabinet had before.
    pub(super) fn names_of(&self, email: &str) -> Vec<String> {
        let mut names = self.aliases.get(email).cloned().unwrap_or_default();
        names.push(email.to_owned());
        names
    }

    /// Which cabinet each of the emails is the login of.
    pub(super) async fn cabinets(&self) -> HashMap<String, resident_auth::CabinetId> {
        let mut found = HashMap::new();
        for to in EMAILS {
            let email: Email = to.parse().expect("email");
            if let Some(cabinet) = self
                .store
                .cabinet(CabinetKey::Email(&email))
                .await
                .expect("store")
            {
                found.insert(to.to_owned(), cabinet.value.id);
            }
        }
        found
    }

    pub(super) fn replaced(&mut self, email: &str, kept: Option<&str>) {
        let over: Vec<String> = self
            .sessions
            .iter()
            .filter(|s| s.email == email && Some(s.token.as_str()) != kept)
            .map(|s| s.token.clone())
            .collect();
        self.ended.extend(over);
    }

    pub(super) async fn check_invariants(&self) {
        let mut linked = HashSet::new();
        for to in EMAILS {
            let email: Email = to.parse().expect("email");
            let Some(cabinet) = self
                .store
                .cabinet(CabinetKey::Email(&email))
                .await
                .expect("store")
            else {
                continue;
            };
            let stored = cabinet.value.password_hash;
            // Credentials are never effective without a letter queued for them in the same
            // write: sent, still queued (opened here with the service's key), or given up
            // at its deadline (scrubbed then; its password was seen while it was queued).
            let mut mailed = false;
            let keys = &self.service.config().mail_queue_keys;
            let names = self.names_of(to);
            let mut on_record = Vec::new();
            for name in &names {
                let name: Email = name.parse().expect("email");
                on_record.extend(
                    self.store
                        .letters_about(Some(&name), None)
                        .await
                        .expect("store"),
                );
            }
            for letter in &on_record {
                let settled = letter.value.status != LetterStatus::Queued;
                assert_eq!(
                    settled,
                    letter.value.sealed.is_none(),
                    "a settled letter kept its content, or a queued one lost it"
                );
            }
            let queued: Vec<_> = on_record
                .into_iter()
                .filter_map(|l| keys.open(&l.value.id, l.value.sealed.as_ref()?).ok())
                .collect();
            for letter in &queued {
                if let Some(password) = mailed_password(letter) {
                    self.queued_passwords
                        .borrow_mut()
                        .entry(to.to_owned())
                        .or_default()
                        .push(password.expose_secret().to_owned());
                }
            }
            let once_queued: Vec<_> = names
                .iter()
                .flat_map(|name| {
                    self.queued_passwords
                        .borrow()
                        .get(name)
                        .cloned()
                        .unwrap_or_default()
                })
                .map(SecretString::from)
                .collect();
            for password in once_queued {
                if matches!(
                    self.hasher.verify(password, Some(stored.clone())).await,
                    Ok(Verification::Match { .. })
                ) {
                    mailed = true;
                }
            }
            for letter in self.mailer.letters().into_iter().chain(queued) {
                if names.contains(&letter.to.as_str().to_owned())
                    && letter.content.kind() == LetterKind::Credentials
                {
                    let password = mailed_password(&letter).expect("password line");
                    if matches!(
                        self.hasher.verify(password, Some(stored.clone())).await,
                        Ok(Verification::Match { .. })
                    ) {
                        mailed = true;
                        break;
                    }
                }
            }
            for chosen in names
                .iter()
                .filter_map(|name| self.chosen.get(name))
                .flatten()
            {
                let password = SecretString::from(chosen.clone());
                if matches!(
                    self.hasher.verify(password, Some(stored.clone())).await,
                    Ok(Verification::Match { .. })
                ) {
                    mailed = true;
                }
            }
            assert!(
                mailed,
                "{to} holds a password neither mailed, queued nor chosen"
            );
            // No account in two cabinets.
            for account in cabinet.value.accounts {
                assert!(
                    linked.insert(account),
                    "account {account} is in two cabinets"
                );
                let owner = self
                    .store
                    .cabinet(CabinetKey::Account(&account))
                    .await
                    .expect("store")
                    .expect("a linked account finds its cabinet");
                assert_eq!(owner.value.id, cabinet.value.id, "the account index agrees");
            }
        }
        for token in &self.ended {
            assert!(
                self.service.authenticate(token).await.is_err(),
                "a logged-out, ended, replaced or expired session authenticates"
            );
        }
    }
}
