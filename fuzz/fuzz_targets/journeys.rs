//! Drives the lifecycle service with arbitrary sequences of journey steps on the in-memory
//! adapters, checking after every step that:
//! - nothing panics;
//! - a link or activation token never works twice;
//! - every cabinet's password is one that was mailed to it (no credentials without a letter);
//! - no account is linked to two cabinets;
//! - a logged-out session never authenticates again.
#![no_main]

use std::{collections::HashSet, sync::Arc, time::Duration};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use resident_auth::{
    memory::{link_token, mailed_password, MemoryDirectory, MemoryStore, RecordingMailer},
    ports::CabinetKey,
    secrecy::SecretString,
    AddressForm, Argon2Hasher, AuthConfig, AuthService, CabinetStore, CredentialHasher, Email,
    HashParams, LetterKind, Links, ManualClock, Ports, RegistrationForm, RequestContext, Timestamp,
    Verification,
};

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
    Advance {
        minutes: u16,
    },
    FailMail {
        on: bool,
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
    activations: Vec<String>,
    sessions: Vec<String>,
    ended: Vec<String>,
    used: HashSet<String>,
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
        AuthConfig::new(Links::new("https://portal.example.org")),
    );
    World {
        service,
        store,
        mailer,
        clock,
        hasher,
        activations: Vec::new(),
        sessions: Vec::new(),
        ended: Vec::new(),
        used: HashSet::new(),
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
                let _ = self.service.register(&form, &context).await;
            }
            Step::Confirm { letter } => {
                let links = self.links(LetterKind::ConfirmEmail);
                if links.is_empty() {
                    return;
                }
                let token = links[usize::from(letter) % links.len()].clone();
                if let Ok(activation) = self.service.confirm_email(&token).await {
                    self.consumed(&token);
                    self.activations.push(activation.expose().to_owned());
                }
            }
            Step::Activate { token, premises } => {
                if self.activations.is_empty() {
                    return;
                }
                let token = self.activations[usize::from(token) % self.activations.len()].clone();
                if self
                    .service
                    .activate(&token, pick(&PREMISES, premises), &context)
                    .await
                    .is_ok()
                {
                    self.consumed(&token);
                }
            }
            Step::Login { email, password } => {
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
                if let Ok(logged_in) = self.service.login(to, password, &context).await {
                    self.sessions
                        .push(logged_in.session_token.expose().to_owned());
                }
            }
            Step::Cabinet { session } => {
                if let Some(token) = self.session(session) {
                    if let Ok(who) = self.service.authenticate(&token).await {
                        let _ = self.service.cabinet(&who).await;
                    }
                }
            }
            Step::Select { session, account } => {
                if let Some(token) = self.session(session) {
                    if let Ok(who) = self.service.authenticate(&token).await {
                        let _ = self
                            .service
                            .select_account(&who, pick(&ACCOUNTS, account))
                            .await;
                    }
                }
            }
            Step::Logout { session } => {
                if let Some(token) = self.session(session) {
                    if self.service.logout(&token).await.is_ok() {
                        self.ended.push(token);
                    }
                }
            }
            Step::AddAddress {
                session,
                surname,
                account,
            } => {
                if let Some(token) = self.session(session) {
                    let form = AddressForm {
                        surname: pick(&SURNAMES, surname).into(),
                        account_number: pick(&ACCOUNTS, account).into(),
                    };
                    if let Ok(who) = self.service.authenticate(&token).await {
                        let _ = self.service.add_address(&who, &form, &context).await;
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
                if self
                    .service
                    .complete_recovery(&token, &context)
                    .await
                    .is_ok()
                {
                    self.consumed(&token);
                }
            }
            Step::Advance { minutes } => self
                .clock
                .advance(Duration::from_secs(u64::from(minutes) * 60)),
            Step::FailMail { on } => self.mailer.set_failing(on),
        }
    }

    fn session(&self, index: u8) -> Option<String> {
        (!self.sessions.is_empty())
            .then(|| self.sessions[usize::from(index) % self.sessions.len()].clone())
    }

    async fn check_invariants(&self) {
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
            // Credentials are never effective without a letter that carries them.
            let mut mailed = false;
            for letter in self.mailer.letters() {
                if letter.to == email && letter.content.kind() == LetterKind::Credentials {
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
            assert!(mailed, "{to} holds a password that was never mailed");
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
                "a logged-out session authenticates"
            );
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
