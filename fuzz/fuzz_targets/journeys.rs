//! Drives the lifecycle service with arbitrary sequences of journey steps on the in-memory
//! adapters, checking after every step that:
//! - nothing panics;
//! - a link or activation token never works twice;
//! - every cabinet's password is one that was mailed to it or that its resident chose (no
//!   credentials without a letter);
//! - no account is linked to two cabinets;
//! - a logged-out, ended, replaced (new credentials: recovery, an added account, a changed
//!   password) or expired session never authenticates again; a password change keeps only
//!   the session that made it;
//! - no sequence of steps (re-registering, new letters, recovery) lifts a premises lock
//!   before the time it named.
#![no_main]

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use resident_auth::{
    config::{
        Argon2Hasher, AuthConfig, Clock, CredentialHasher, HashParams, ManualClock, Ports,
        Verification,
    },
    errors::Problem,
    journeys::{AddressForm, RegistrationForm},
    letters::{LetterKind, Links},
    mail::LetterStatus,
    memory::{link_token, mailed_password, MemoryDirectory, MemoryStore, RecordingMailer},
    ports::{CabinetKey, CabinetStore, LetterStore},
    secrecy::{ExposeSecret, SecretString},
    AuthService, Email, Error, RequestContext, SessionId, Timestamp,
};

#[path = "journeys/checks.rs"]
mod checks;

const DIRECTORY: &str = "account_number,surnames,address,premises\n\
7800000000001,Иванов,A1,12\n7800000000002,Иванов,A2,123/456П\n7800000000003,Петрова,A3,2Н\n4700000000004,,A4,7\n";
const ACCOUNTS: [&str; 5] = [
    "7800000000001",
    "7800000000002",
    "7800000000003",
    "4700000000004",
    "7899999999999",
];
const PREMISES: [&str; 6] = ["12", "123/456П", "2Н", "7", "13", "12А"];
const SURNAMES: [&str; 4] = ["Иванов", "Петрова", "Сидоров", "Иванов И.И."];
const EMAILS: [&str; 3] = ["a@example.org", "b@example.org", "c@example.org"];
/// New passwords: two the rules accept, three they refuse (short, common, the email).
const NEW_PASSWORDS: [&str; 5] = [
    "тихий вечер у старой реки",
    "oak tree near the old mill",
    "short",
    "passwordpassword",
    "my address is a@example.org",
];

#[derive(Arbitrary, Debug)]
enum Step {
    Register {
        surname: u8,
        account: u8,
        email: u8,
    },
    Confirm {
        letter: u8,
    },
    Activate {
        token: u8,
        premises: u8,
    },
    Login {
        email: u8,
        password: u8,
    },
    Cabinet {
        session: u8,
    },
    Select {
        session: u8,
        account: u8,
    },
    Logout {
        session: u8,
    },
    AddAddress {
        session: u8,
        surname: u8,
        account: u8,
    },
    RequestRecovery {
        email: u8,
    },
    CompleteRecovery {
        letter: u8,
    },
    ChangePassword {
        session: u8,
        current: u8,
        new: u8,
    },
    EndSession {
        session: u8,
        target: u8,
    },
    EndOtherSessions {
        session: u8,
    },
    Advance {
        minutes: u16,
    },
    /// The mail server goes down (`on`) or comes back.
    FailMail {
        on: bool,
    },
    /// A round of the delivery worker: due letters (retries among them) go out.
    Deliver,
    /// "Download my data" with a password the resident may or may not know.
    ExportData {
        session: u8,
        current: u8,
    },
    /// "Close my cabinet", confirmed or not.
    CloseCabinet {
        session: u8,
        current: u8,
        confirmed: bool,
    },
    /// "Change my email" to one of the emails (another cabinet's, the same, a free one).
    RequestEmailChange {
        session: u8,
        email: u8,
        current: u8,
    },
    /// The link to the new address, followed in a session or not.
    ConfirmEmailChange {
        letter: u8,
        session: Option<u8>,
    },
    /// The link to the old address: "it was not me".
    CancelEmailChange {
        letter: u8,
    },
}

fn pick<T: Copy>(items: &[T], index: u8) -> T {
    items[usize::from(index) % items.len()]
}

struct World {
    service: AuthService,
    store: MemoryStore,
    mailer: RecordingMailer,
    clock: Arc<ManualClock>,
    hasher: Argon2Hasher,
    /// Activation tokens with the account they activate.
    activations: Vec<(String, String)>,
    /// Confirmation link tokens with their account.
    confirmations: HashMap<String, String>,
    sessions: Vec<Opened>,
    ended: Vec<String>,
    used: HashSet<String>,
    /// Passwords residents chose, by email.
    chosen: HashMap<String, Vec<String>>,
    /// Premises locks answered, by account: no activation of it succeeds or is evaluated
    /// before then.
    locks: HashMap<String, Timestamp>,
    /// Every password a queued credentials letter carried, by email (seen after the step
    /// that queued it): a letter given up at its deadline is scrubbed, and its password —
    /// in force, known to nobody — must still be one a letter was queued for.
    queued_passwords: std::cell::RefCell<HashMap<String, Vec<String>>>,
    /// The emails a cabinet had before its email changed, by the email it moved to: its
    /// passwords were mailed to, or chosen under, any of them.
    aliases: HashMap<String, Vec<String>>,
}

/// A session a login opened.
#[derive(Clone)]
struct Opened {
    token: String,
    email: String,
    id: SessionId,
    created_at: Timestamp,
}

fn world() -> World {
    let store = MemoryStore::new();
    let mailer = RecordingMailer::new();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_767_225_600_000)));
    let hasher =
        Argon2Hasher::with_workers(HashParams::insecure_fast_for_tests(), 1).expect("hasher");
    let service = AuthService::new(
        Ports::new(
            Arc::new(store.clone()),
            Arc::new(MemoryDirectory::from_csv(DIRECTORY).expect("directory")),
            Arc::new(mailer.clone()),
            Arc::new(hasher.clone()),
            clock.clone(),
        ),
        {
            let mut config = AuthConfig::new(Links::new("https://portal.example.org"));
            // Each step's letter is attempted at once; while the mail is down it waits in
            // the queue for a later `Deliver`.
            config.delivery.in_request = true;
            config
        },
    );
    World {
        service,
        store,
        mailer,
        clock,
        hasher,
        activations: Vec::new(),
        confirmations: HashMap::new(),
        sessions: Vec::new(),
        ended: Vec::new(),
        used: HashSet::new(),
        chosen: HashMap::new(),
        locks: HashMap::new(),
        queued_passwords: std::cell::RefCell::new(HashMap::new()),
        aliases: HashMap::new(),
    }
}

impl World {
    fn links(&self, kind: LetterKind) -> Vec<String> {
        self.mailer
            .letters()
            .iter()
            .filter(|l| l.content.kind() == kind)
            .filter_map(link_token)
            .collect()
    }

    /// A token that worked once must never work again.
    fn consumed(&mut self, token: &str) {
        assert!(self.used.insert(token.to_owned()), "a token worked twice");
    }

    async fn step(&mut self, step: Step) {
        let context = RequestContext::default();
        match step {
            Step::Register {
                surname,
                account,
                email,
            } => {
                let form = RegistrationForm {
                    surname: pick(&SURNAMES, surname).into(),
                    account_number: pick(&ACCOUNTS, account).into(),
                    email: pick(&EMAILS, email).into(),
                };
                if self.service.register(&form, &context).await.is_ok() {
                    self.remember_confirmation(&form.account_number);
                }
            }
            Step::Confirm { letter } => {
                let links = self.links(LetterKind::ConfirmEmail);
                if links.is_empty() {
                    return;
                }
                let token = links[usize::from(letter) % links.len()].clone();
                if let Ok(activation) = self.service.confirm_email(&token).await {
                    self.consumed(&token);
                    let account = self.confirmations.get(&token).cloned().unwrap_or_default();
                    self.activations
                        .push((activation.expose().to_owned(), account));
                }
            }
            Step::Activate { token, premises } => {
                if self.activations.is_empty() {
                    return;
                }
                let (token, account) =
                    self.activations[usize::from(token) % self.activations.len()].clone();
                let now = self.clock.now();
                let locked_until = self.locks.get(&account).copied();
                let result = self
                    .service
                    .activate(&token, pick(&PREMISES, premises), &context)
                    .await;
                if locked_until.is_some_and(|until| now < until) {
                    assert!(
                        matches!(&result, Err(e) if matches!(e.problems(), [Problem::ActivationLocked { .. } | Problem::InvalidLink | Problem::Premises(_)])),
                        "account {account} locked until {locked_until:?} answered {result:?} at {now:?}"
                    );
                }
                match result {
                    Ok(email) => {
                        self.consumed(&token);
                        self.replaced(email.as_str(), None);
                    }
                    Err(Error::Rejected(problems)) => {
                        if let [Problem::ActivationLocked { retry_after }] = problems.as_slice() {
                            let until = now.plus(*retry_after);
                            let lock = self.locks.entry(account).or_insert(until);
                            *lock = (*lock).max(until);
                        }
                    }
                    Err(_) => {}
                }
            }
            Step::Login { email, password } => {
                let password_index = password;
                let to = pick(&EMAILS, email);
                let passwords: Vec<SecretString> = self
                    .mailer
                    .letters()
                    .iter()
                    .filter(|l| l.to.as_str() == to && l.content.kind() == LetterKind::Credentials)
                    .filter_map(mailed_password)
                    .collect();
                let password = if passwords.is_empty() || password % 4 == 0 {
                    SecretString::from("wrong-password")
                } else {
                    passwords[usize::from(password) % passwords.len()].clone()
                };
                let mut password = password;
                if let Some(chosen) = self.chosen.get(to).filter(|_| password_index % 2 == 1) {
                    if let Some(last) = chosen.last() {
                        password = SecretString::from(last.clone());
                    }
                }
                if let Ok(logged_in) = self.service.login(to, password, &context).await {
                    let token = logged_in.session_token.expose().to_owned();
                    let id = self
                        .service
                        .authenticate(&token)
                        .await
                        .expect("a fresh session authenticates")
                        .session_id();
                    self.sessions.push(Opened {
                        token,
                        email: to.to_owned(),
                        id,
                        created_at: self.clock.now(),
                    });
                }
            }
            Step::Cabinet { session } => {
                if let Some(opened) = self.session(session) {
                    if let Ok(who) = self.service.authenticate(&opened.token).await {
                        let _ = self.service.cabinet(&who).await;
                    }
                }
            }
            Step::Select { session, account } => {
                if let Some(opened) = self.session(session) {
                    if let Ok(who) = self.service.authenticate(&opened.token).await {
                        let _ = self
                            .service
                            .select_account(&who, pick(&ACCOUNTS, account))
                            .await;
                    }
                }
            }
            Step::Logout { session } => {
                if let Some(opened) = self.session(session) {
                    if self.service.logout(&opened.token).await.is_ok() {
                        self.ended.push(opened.token);
                    }
                }
            }
            Step::AddAddress {
                session,
                surname,
                account,
            } => {
                if let Some(opened) = self.session(session) {
                    let form = AddressForm {
                        surname: pick(&SURNAMES, surname).into(),
                        account_number: pick(&ACCOUNTS, account).into(),
                    };
                    if let Ok(who) = self.service.authenticate(&opened.token).await {
                        if self
                            .service
                            .add_address(&who, &form, &context)
                            .await
                            .is_ok()
                        {
                            self.remember_confirmation(&form.account_number);
                        }
                    }
                }
            }
            Step::RequestRecovery { email } => {
                let _ = self
                    .service
                    .request_recovery(pick(&EMAILS, email), &context)
                    .await;
            }
            Step::CompleteRecovery { letter } => {
                let links = self.links(LetterKind::RecoverPassword);
                if links.is_empty() {
                    return;
                }
                let token = links[usize::from(letter) % links.len()].clone();
                if let Ok(email) = self.service.complete_recovery(&token, &context).await {
                    self.consumed(&token);
                    self.replaced(email.as_str(), None);
                }
            }
            Step::ChangePassword {
                session,
                current,
                new,
            } => {
                let Some(opened) = self.session(session) else {
                    return;
                };
                let Ok(who) = self.service.authenticate(&opened.token).await else {
                    return;
                };
                let current = self.a_password_of(&opened.email, current);
                let new = pick(&NEW_PASSWORDS, new);
                let result = self
                    .service
                    .change_password(
                        &who,
                        SecretString::from(current),
                        SecretString::from(new.to_owned()),
                        &context,
                    )
                    .await;
                if result.is_ok() {
                    // The last one is refused only in a@example.org's own cabinet (it holds
                    // that email); another cabinet may take it.
                    let acceptable = NEW_PASSWORDS[..2].contains(&new)
                        || (new == NEW_PASSWORDS[4] && opened.email != "a@example.org");
                    assert!(acceptable, "a refused password was accepted: {new}");
                    self.chosen
                        .entry(opened.email.clone())
                        .or_default()
                        .push(new.to_owned());
                    self.replaced(&opened.email, Some(&opened.token));
                    assert!(
                        self.service.authenticate(&opened.token).await.is_ok(),
                        "the session that changed the password lives on"
                    );
                }
            }
            Step::EndSession { session, target } => {
                let Some(opened) = self.session(session) else {
                    return;
                };
                let Some(target) = self.session(target) else {
                    return;
                };
                let Ok(who) = self.service.authenticate(&opened.token).await else {
                    return;
                };
                let result = self.service.end_session(&who, &target.id.to_string()).await;
                if result.is_ok() {
                    assert_eq!(target.email, opened.email, "a foreign session was ended");
                    self.ended.push(target.token);
                }
            }
            Step::EndOtherSessions { session } => {
                let Some(opened) = self.session(session) else {
                    return;
                };
                let Ok(who) = self.service.authenticate(&opened.token).await else {
                    return;
                };
                if self.service.end_other_sessions(&who).await.is_ok() {
                    self.replaced(&opened.email, Some(&opened.token));
                }
            }
            Step::ExportData { session, current } => {
                let Some(opened) = self.session(session) else {
                    return;
                };
                let Ok(who) = self.service.authenticate(&opened.token).await else {
                    return;
                };
                let current = self.a_password_of(&opened.email, current);
                if let Ok(export) = self
                    .service
                    .export_own_data(&who, SecretString::from(current.clone()), &context)
                    .await
                {
                    assert_eq!(export.cabinet.email, opened.email, "another cabinet's data");
                    let text = format!("{export:?}");
                    assert!(!text.contains(&current), "the export holds the password");
                    assert!(
                        !text.contains(&opened.token),
                        "the export holds a session token"
                    );
                }
            }
            Step::CloseCabinet {
                session,
                current,
                confirmed,
            } => {
                let Some(opened) = self.session(session) else {
                    return;
                };
                let Ok(who) = self.service.authenticate(&opened.token).await else {
                    return;
                };
                let current = self.a_password_of(&opened.email, current);
                let result = self
                    .service
                    .close_cabinet(&who, SecretString::from(current), confirmed, &context)
                    .await;
                if result.is_ok() {
                    assert!(confirmed, "closed without the confirmation");
                    self.replaced(&opened.email, None);
                    let email: Email = opened.email.parse().expect("email");
                    assert!(
                        self.store
                            .cabinet(CabinetKey::Email(&email))
                            .await
                            .expect("store")
                            .is_none(),
                        "the closed cabinet is gone"
                    );
                    assert!(
                        self.service.authenticate(&opened.token).await.is_err(),
                        "the closing session ended"
                    );
                }
            }
            Step::RequestEmailChange {
                session,
                email,
                current,
            } => {
                let Some(opened) = self.session(session) else {
                    return;
                };
                let Ok(who) = self.service.authenticate(&opened.token).await else {
                    return;
                };
                let to = pick(&EMAILS, email);
                let current = self.a_password_of(&opened.email, current);
                let taken = self
                    .store
                    .cabinet(CabinetKey::Email(&to.parse::<Email>().expect("email")))
                    .await
                    .expect("store")
                    .is_some();
                let result = self
                    .service
                    .request_email_change(&who, to, SecretString::from(current), &context)
                    .await;
                if result.is_ok() {
                    assert!(!taken, "a change to another cabinet's email was accepted");
                    assert!(
                        self.service.authenticate(&opened.token).await.is_ok(),
                        "asking changes nothing yet"
                    );
                }
                if let Err(error) = &result {
                    if taken && to != opened.email && error.problems().is_empty() {
                        panic!("asking for a taken email failed with {error:?}");
                    }
                }
            }
            Step::ConfirmEmailChange { letter, session } => {
                let links = self.links(LetterKind::ConfirmEmailChange);
                if links.is_empty() {
                    return;
                }
                let token = links[usize::from(letter) % links.len()].clone();
                let following = session.and_then(|index| self.session(index));
                let who = match &following {
                    Some(opened) => self.service.authenticate(&opened.token).await.ok(),
                    None => None,
                };
                let before = self.cabinets().await;
                if let Ok(new) = self
                    .service
                    .confirm_email_change(&token, who.as_ref(), &context)
                    .await
                {
                    self.consumed(&token);
                    let new = new.as_str().to_owned();
                    let id = self.cabinets().await.get(&new).copied();
                    assert!(id.is_some(), "the cabinet has its new email");
                    let old = before
                        .iter()
                        .find(|(_, cabinet)| Some(**cabinet) == id)
                        .map(|(email, _)| email.clone())
                        .expect("the cabinet had an email before");
                    assert!(
                        !before.contains_key(&new),
                        "an email that was another cabinet's was taken"
                    );
                    let kept = following
                        .filter(|opened| opened.email == old && who.is_some())
                        .map(|opened| opened.token);
                    self.replaced(&old, kept.as_deref());
                    let mut previous = self.aliases.remove(&old).unwrap_or_default();
                    previous.push(old.clone());
                    self.aliases
                        .entry(new.clone())
                        .or_default()
                        .extend(previous);
                    if let Some(kept) = kept {
                        let now_of = self
                            .service
                            .authenticate(&kept)
                            .await
                            .expect("the session that followed the link lives on");
                        assert_eq!(now_of.email.as_str(), new);
                        for opened in &mut self.sessions {
                            if opened.token == kept {
                                opened.email.clone_from(&new);
                            }
                        }
                    }
                }
            }
            Step::CancelEmailChange { letter } => {
                let letters: Vec<_> = self
                    .mailer
                    .letters()
                    .into_iter()
                    .filter(|l| l.content.kind() == LetterKind::EmailChangeRequested)
                    .collect();
                if letters.is_empty() {
                    return;
                }
                let letter = &letters[usize::from(letter) % letters.len()];
                let token = link_token(letter).expect("a cancel link");
                if self
                    .service
                    .cancel_email_change(&token, &context)
                    .await
                    .is_ok()
                {
                    self.consumed(&token);
                    self.replaced(letter.to.as_str(), None);
                }
            }
            Step::Advance { minutes } => {
                self.clock
                    .advance(Duration::from_secs(u64::from(minutes) * 60));
                // Twelve hours after login a session is over, however it was used.
                let now = self.clock.now();
                let expired: Vec<String> = self
                    .sessions
                    .iter()
                    .filter(|s| now >= s.created_at.plus(Duration::from_secs(12 * 3600)))
                    .map(|s| s.token.clone())
                    .collect();
                self.ended.extend(expired);
            }
            Step::FailMail { on } => self.mailer.set_failing(on),
            Step::Deliver => {
                let sent_before = self.mailer.letters().len();
                let report = self.service.deliver_due().await.expect("delivery");
                assert_eq!(
                    self.mailer.letters().len(),
                    sent_before + report.sent,
                    "a letter reported sent was not handed over exactly once"
                );
            }
        }
    }
}

fuzz_target!(|steps: Vec<Step>| {
    if steps.len() > 64 {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut world = world();
        for step in steps {
            world.step(step).await;
            world.check_invariants().await;
        }
    });
});
