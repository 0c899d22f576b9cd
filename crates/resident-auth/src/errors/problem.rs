//! Errors of the journeys: what the user did wrong (with codes, fields and messages), or
//! an infrastructure failure to retry.

use std::time::Duration;

use crate::{
    account_number::russian_plural,
    hasher::HashError,
    locale::{Explain, Field, Locale},
    mail::MailError,
    ports::StoreError,
    AccountNumberError, EmailError, NewPasswordError, PremisesError, RegionNotServed, SurnameError,
};

/// One thing the user can fix. Every variant has a stable code (see [`Explain`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The surname field.
    #[error(transparent)]
    Surname(#[from] SurnameError),
    /// The account number field.
    #[error(transparent)]
    AccountNumber(#[from] AccountNumberError),
    /// The email field.
    #[error(transparent)]
    Email(#[from] EmailError),
    /// The premises field.
    #[error(transparent)]
    Premises(#[from] PremisesError),
    /// The account's region is not served.
    #[error(transparent)]
    RegionNotServed(#[from] RegionNotServed),
    /// No such account, or the surname does not match: one answer for both, so account
    /// numbers cannot be probed.
    #[error("no account with this number and surname")]
    AccountNotFound,
    /// The account is linked to a cabinet already, or the email has a cabinet.
    #[error("already registered")]
    AlreadyRegistered,
    /// Too many requests of this kind; try again later.
    #[error("too many requests")]
    TooManyRequests {
        /// How long to wait.
        retry_after: Duration,
    },
    /// A link's token is unknown, used or expired.
    #[error("the link is invalid or expired")]
    InvalidLink,
    /// The premises number does not match the account.
    #[error("wrong premises number")]
    WrongPremises {
        /// Tries left before activation locks.
        attempts_left: u32,
    },
    /// Too many wrong premises numbers: activation is locked for a while.
    #[error("activation locked")]
    ActivationLocked {
        /// How long until the lock ends.
        retry_after: Duration,
    },
    /// Login step 1: the email is not syntactically valid.
    #[error("incorrect data")]
    IncorrectData,
    /// Login step 2: wrong password or unknown email (one answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failed logins for this cabinet or client.
    #[error("login throttled")]
    LoginThrottled {
        /// How long to wait.
        retry_after: Duration,
    },
    /// No live session for this token.
    #[error("session invalid or expired")]
    SessionInvalid,
    /// The account is not linked to this cabinet.
    #[error("account not linked to this cabinet")]
    AccountNotLinked,
    /// The recipient's mail server refused the address for good (a 5xx such as "no such
    /// mailbox"): retrying will not help; the resident should check the address.
    #[error("the address refuses mail")]
    AddressRefused,
    /// The chosen new password breaks a rule.
    #[error(transparent)]
    NewPassword(#[from] NewPasswordError),
    /// The current password given to change it is wrong.
    #[error("the current password is wrong")]
    CurrentPasswordWrong,
    /// The password was mailed as a temporary one and its time is over: recover it.
    #[error("the temporary password has expired")]
    PasswordExpired,
    /// The password was mailed as a temporary one: choose a password before anything else.
    #[error("a new password must be chosen first")]
    PasswordChangeRequired,
    /// No session of this cabinet has that identity.
    #[error("no such session")]
    SessionNotFound,
    /// Closing the cabinet was asked for without the resident's explicit confirmation.
    #[error("closing the cabinet was not confirmed")]
    ClosingNotConfirmed,
    /// The new email is the cabinet's login already.
    #[error("the new email is the one in force")]
    EmailUnchanged,
    /// The new email is another cabinet's login (whose is never said).
    #[error("the email belongs to another cabinet")]
    EmailTaken,
}

/// What kind of refusal an error is: what a transport maps to its own status
/// (resident-auth-http answers 422, 409, 429, 401, 403, 404 and 503; docs/contract.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input is not acceptable as it is: correct it.
    Invalid,
    /// It conflicts with what exists (already registered; an address taken).
    Conflict,
    /// Too many tries: wait [`Error::retry_after`], then the same step may succeed.
    Throttled,
    /// Nobody is signed in, or the credentials or link are not valid.
    Unauthenticated,
    /// Signed in, but a password change comes first.
    Forbidden,
    /// What the request names is not there.
    NotFound,
    /// Storage, mail or hashing failed: nothing was decided; the same step may succeed later.
    Unavailable,
}

impl Problem {
    /// What kind of refusal this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Problem::AlreadyRegistered | Problem::EmailTaken => ErrorKind::Conflict,
            Problem::TooManyRequests { .. }
            | Problem::ActivationLocked { .. }
            | Problem::LoginThrottled { .. } => ErrorKind::Throttled,
            Problem::InvalidCredentials | Problem::SessionInvalid | Problem::PasswordExpired => {
                ErrorKind::Unauthenticated
            }
            Problem::PasswordChangeRequired => ErrorKind::Forbidden,
            Problem::SessionNotFound => ErrorKind::NotFound,
            _ => ErrorKind::Invalid,
        }
    }

    /// How long the user should wait before retrying, for throttled problems.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Problem::TooManyRequests { retry_after }
            | Problem::ActivationLocked { retry_after }
            | Problem::LoginThrottled { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// Whole minutes, rounded up, for messages.
fn minutes(duration: Duration) -> u64 {
    duration.as_secs().div_ceil(60).max(1)
}

impl Explain for Problem {
    fn code(&self) -> &'static str {
        match self {
            Problem::Surname(e) => e.code(),
            Problem::AccountNumber(e) => e.code(),
            Problem::Email(e) => e.code(),
            Problem::Premises(e) => e.code(),
            Problem::RegionNotServed(e) => e.code(),
            Problem::AccountNotFound => "registration.account_not_found",
            Problem::AlreadyRegistered => "registration.already_registered",
            Problem::TooManyRequests { .. } => "request.too_many",
            Problem::InvalidLink => "link.invalid",
            Problem::WrongPremises { .. } => "activation.wrong_premises",
            Problem::ActivationLocked { .. } => "activation.locked",
            Problem::IncorrectData => "login.incorrect_data",
            Problem::InvalidCredentials => "login.invalid_credentials",
            Problem::LoginThrottled { .. } => "login.throttled",
            Problem::SessionInvalid => "session.invalid",
            Problem::AccountNotLinked => "session.account_not_linked",
            Problem::AddressRefused => "email.undeliverable",
            Problem::NewPassword(e) => e.code(),
            Problem::CurrentPasswordWrong => "password.current_wrong",
            Problem::PasswordExpired => "login.password_expired",
            Problem::PasswordChangeRequired => "password.change_required",
            Problem::SessionNotFound => "session.not_found",
            Problem::ClosingNotConfirmed => "cabinet.close_not_confirmed",
            Problem::EmailUnchanged => "email_change.same_email",
            Problem::EmailTaken => "email_change.email_taken",
        }
    }

    fn field(&self) -> Option<Field> {
        match self {
            Problem::Surname(e) => e.field(),
            Problem::AccountNumber(e) => e.field(),
            Problem::Email(e) => e.field(),
            Problem::Premises(e) => e.field(),
            Problem::RegionNotServed(e) => e.field(),
            Problem::NewPassword(e) => e.field(),
            Problem::CurrentPasswordWrong => Some(Field::CurrentPassword),
            Problem::SessionNotFound => Some(Field::Session),
            Problem::AccountNotFound | Problem::AccountNotLinked => Some(Field::AccountNumber),
            Problem::WrongPremises { .. } => Some(Field::Premises),
            Problem::IncorrectData
            | Problem::AddressRefused
            | Problem::EmailUnchanged
            | Problem::EmailTaken => Some(Field::Email),
            Problem::InvalidLink => Some(Field::Token),
            Problem::AlreadyRegistered
            | Problem::TooManyRequests { .. }
            | Problem::ActivationLocked { .. }
            | Problem::InvalidCredentials
            | Problem::LoginThrottled { .. }
            | Problem::SessionInvalid
            | Problem::PasswordExpired
            | Problem::PasswordChangeRequired
            | Problem::ClosingNotConfirmed => None,
        }
    }

    fn message(&self, locale: Locale) -> String {
        let ru = locale == Locale::Ru;
        match self {
            Problem::Surname(e) => e.message(locale),
            Problem::AccountNumber(e) => e.message(locale),
            Problem::Email(e) => e.message(locale),
            Problem::Premises(e) => e.message(locale),
            Problem::RegionNotServed(e) => e.message(locale),
            Problem::NewPassword(e) => e.message(locale),
            Problem::CurrentPasswordWrong if ru => "Текущий пароль введён неверно".into(),
            Problem::CurrentPasswordWrong => "The current password is wrong".into(),
            Problem::PasswordExpired if ru => "Срок действия временного пароля истёк. Воспользуйтесь восстановлением пароля («Забыли пароль»)".into(),
            Problem::PasswordExpired => "The temporary password has expired. Use password recovery (\u{201c}Forgot password\u{201d})".into(),
            Problem::PasswordChangeRequired if ru => "Пароль из письма временный: сначала задайте свой пароль".into(),
            Problem::PasswordChangeRequired => "The password from the letter is temporary: choose your own password first".into(),
            Problem::SessionNotFound if ru => "Такого сеанса нет или он уже завершён".into(),
            Problem::SessionNotFound => "No such session, or it has already ended".into(),
            Problem::ClosingNotConfirmed if ru => "Подтвердите, что кабинет нужно закрыть: все данные о нём будут удалены".into(),
            Problem::ClosingNotConfirmed => "Confirm that the cabinet is to be closed: all its data will be erased".into(),
            Problem::EmailUnchanged if ru => "Это и есть адрес для входа в ваш кабинет. Укажите новый адрес".into(),
            Problem::EmailUnchanged => "This is your cabinet's login already. Give the new address".into(),
            Problem::EmailTaken if ru => "Этот адрес уже используется для входа в другой личный кабинет. Укажите другой адрес".into(),
            Problem::EmailTaken => "This address is the login of another cabinet. Give another address".into(),
            Problem::AccountNotFound if ru => "Лицевой счёт с такой фамилией не найден. Проверьте номер лицевого счёта и фамилию".into(),
            Problem::AccountNotFound => "No personal account with this number and surname was found. Check both".into(),
            Problem::AlreadyRegistered if ru => "Пользователь уже зарегистрирован. Если вы не помните пароль, воспользуйтесь восстановлением пароля («Забыли пароль»)".into(),
            Problem::AlreadyRegistered => "The user is already registered. If you do not remember the password, use password recovery (\u{201c}Forgot password\u{201d})".into(),
            Problem::TooManyRequests { retry_after } if ru => format!("Слишком много запросов. Повторите через {} мин.", minutes(*retry_after)),
            Problem::TooManyRequests { retry_after } => format!("Too many requests. Try again in {} min", minutes(*retry_after)),
            Problem::InvalidLink if ru => "Ссылка недействительна или устарела. Запросите новое письмо".into(),
            Problem::InvalidLink => "The link is invalid or has expired. Ask for a new letter".into(),
            Problem::WrongPremises { attempts_left } if ru => format!(
                "Номер помещения не совпадает с данными лицевого счёта. {} {attempts_left} {}",
                russian_plural(*attempts_left as usize, "Осталась", "Осталось", "Осталось"),
                russian_plural(*attempts_left as usize, "попытка", "попытки", "попыток")
            ),
            Problem::WrongPremises { attempts_left } => format!(
                "The premises number does not match the account. {attempts_left} {} left",
                if *attempts_left == 1 { "attempt" } else { "attempts" }
            ),
            Problem::ActivationLocked { retry_after } if ru => format!("Слишком много неверных попыток. Активация заблокирована на {} мин.", minutes(*retry_after)),
            Problem::ActivationLocked { retry_after } => format!("Too many wrong attempts. Activation is locked for {} min", minutes(*retry_after)),
            Problem::IncorrectData if ru => "Некорректные данные".into(),
            Problem::IncorrectData => "Incorrect data".into(),
            Problem::InvalidCredentials if ru => "Неверное имя пользователя или пароль".into(),
            Problem::InvalidCredentials => "Invalid user name or password".into(),
            Problem::LoginThrottled { retry_after } if ru => format!("Слишком много неудачных попыток входа. Повторите через {} мин.", minutes(*retry_after)),
            Problem::LoginThrottled { retry_after } => format!("Too many failed logins. Try again in {} min", minutes(*retry_after)),
            Problem::SessionInvalid if ru => "Сеанс завершён. Войдите снова".into(),
            Problem::SessionInvalid => "Your session has ended. Please log in again".into(),
            Problem::AccountNotLinked if ru => "Этот лицевой счёт не добавлен в ваш кабинет".into(),
            Problem::AccountNotLinked => "This account is not in your cabinet".into(),
            Problem::AddressRefused if ru => {
                "Почтовый сервер не принимает письма на этот адрес. Проверьте адрес электронной почты"
                    .into()
            }
            Problem::AddressRefused => {
                "The mail server refuses letters to this address. Check the email address".into()
            }
        }
    }
}

/// An infrastructure failure: storage, mail or hashing. Always retryable from the user's
/// point of view; its message never shows internals.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// Storage or the directory failed.
    #[error("store unavailable")]
    Store(#[source] StoreError),
    /// The mail system did not take the letter.
    #[error("mail unavailable")]
    Mail(#[source] MailError),
    /// Password hashing failed.
    #[error("password hashing unavailable")]
    Hashing(#[source] HashError),
}

impl Explain for Unavailable {
    fn code(&self) -> &'static str {
        match self {
            Unavailable::Store(_) => "service.store_unavailable",
            Unavailable::Mail(_) => "service.mail_unavailable",
            Unavailable::Hashing(_) => "service.unavailable",
        }
    }

    fn field(&self) -> Option<Field> {
        None
    }

    fn message(&self, locale: Locale) -> String {
        match (self, locale) {
            (Unavailable::Mail(_), Locale::Ru) => {
                "Не удалось отправить письмо. Повторите попытку позже".into()
            }
            (Unavailable::Mail(_), Locale::En) => {
                "The letter could not be sent. Please try again later".into()
            }
            (_, Locale::Ru) => "Сервис временно недоступен. Повторите попытку позже".into(),
            (_, Locale::En) => {
                "The service is temporarily unavailable. Please try again later".into()
            }
        }
    }
}

/// The error of every journey step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The user's input or situation: one or more problems, all reported together.
    #[error("rejected: {}", .0.iter().map(Explain::code).collect::<Vec<_>>().join(", "))]
    Rejected(Vec<Problem>),
    /// Infrastructure failed; the same step may be retried.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

impl Error {
    /// The problems, if the user caused this error.
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            Error::Rejected(problems) => problems,
            Error::Unavailable(_) => &[],
        }
    }

    /// Whether retrying the same step later may succeed.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Rejected(problems) => problems.iter().any(|p| p.retry_after().is_some()),
        }
    }

    /// What kind of refusal this is: [`ErrorKind::Unavailable`] for infrastructure, else
    /// the first problem's.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::Rejected(problems) => problems.first().map_or(ErrorKind::Invalid, Problem::kind),
        }
    }

    /// The longest wait any problem asks for; for a busy hashing pool, a second; for a
    /// failure of storage, [`StoreError::RETRY_AFTER`].
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Unavailable(Unavailable::Hashing(HashError::Busy)) => {
                return Some(HashError::BUSY_RETRY_AFTER)
            }
            Error::Unavailable(Unavailable::Store(_)) => return Some(StoreError::RETRY_AFTER),
            _ => {}
        }
        self.problems()
            .iter()
            .filter_map(Problem::retry_after)
            .max()
    }

    /// Whether this error is exactly the one problem `problem` (handy in tests and hosts).
    #[must_use]
    pub fn is(&self, problem: &Problem) -> bool {
        self.problems() == std::slice::from_ref(problem)
    }
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Self {
        Error::Rejected(vec![problem])
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        Error::Unavailable(Unavailable::Store(error))
    }
}

impl From<MailError> for Error {
    /// A permanent refusal (5xx) is the resident's to fix (a 422 asking to check the
    /// address); anything else may pass by itself (a retryable 503).
    fn from(error: MailError) -> Self {
        if error.is_permanent() {
            Error::Rejected(vec![Problem::AddressRefused])
        } else {
            Error::Unavailable(Unavailable::Mail(error))
        }
    }
}

impl From<HashError> for Error {
    fn from(error: HashError) -> Self {
        Error::Unavailable(Unavailable::Hashing(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guide_wording() {
        assert_eq!(
            Problem::IncorrectData.message(Locale::Ru),
            "Некорректные данные"
        );
        assert_eq!(
            Problem::InvalidCredentials.message(Locale::Ru),
            "Неверное имя пользователя или пароль"
        );
        assert!(Problem::AlreadyRegistered
            .message(Locale::Ru)
            .starts_with("Пользователь уже зарегистрирован"));
        assert!(Problem::WrongPremises { attempts_left: 4 }
            .message(Locale::Ru)
            .ends_with("Осталось 4 попытки"));
        assert!(Problem::WrongPremises { attempts_left: 1 }
            .message(Locale::Ru)
            .ends_with("Осталась 1 попытка"));
    }

    #[test]
    fn kinds_follow_the_api_contract() {
        let kind = |problem: Problem| Error::from(problem).kind();
        assert_eq!(kind(Problem::AlreadyRegistered), ErrorKind::Conflict);
        assert_eq!(
            kind(Problem::InvalidCredentials),
            ErrorKind::Unauthenticated
        );
        assert_eq!(kind(Problem::SessionInvalid), ErrorKind::Unauthenticated);
        assert_eq!(kind(Problem::IncorrectData), ErrorKind::Invalid);
        let throttled = Error::from(Problem::LoginThrottled {
            retry_after: Duration::from_secs(61),
        });
        assert_eq!(throttled.kind(), ErrorKind::Throttled);
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(61)));
        let down = Error::from(StoreError::unavailable("connection refused"));
        assert_eq!(down.kind(), ErrorKind::Unavailable);
        assert!(down.is_retryable());
        assert_eq!(down.retry_after(), Some(StoreError::RETRY_AFTER));
        let unreachable = Error::from(StoreError::unreachable("connection refused"));
        assert!(unreachable.is_retryable());
        assert_eq!(unreachable.retry_after(), Some(StoreError::RETRY_AFTER));
        let Error::Unavailable(inner) = &down else {
            unreachable!()
        };
        assert!(!inner.message(Locale::Ru).contains("refused"));
    }
}
