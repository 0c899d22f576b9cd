//! Every letter's words, in every language: data only, one table per language, typed so
//! that a text missing in one language does not compile. [`Letter::render`](super::Letter::render)
//! puts them around the letter's link or credentials; a translator edits only this file.

use crate::Locale;

/// The words of every letter in one language.
pub(super) struct Texts {
    pub(super) confirm_email: LinkLetter,
    pub(super) credentials: CredentialsLetter,
    pub(super) recover_password: LinkLetter,
    pub(super) confirm_email_change: LinkLetter,
    pub(super) email_change_requested: LinkLetter,
    pub(super) password_changed: Notice,
    pub(super) cabinet_closed: Notice,
    /// `{account}` stands for the personal account number.
    pub(super) account_unlinked: Notice,
}

/// A letter whose point is one link: an intro, the link's button, what to do if the
/// letter was unexpected.
pub(super) struct LinkLetter {
    pub(super) subject: &'static str,
    pub(super) intro: &'static str,
    pub(super) action: &'static str,
    pub(super) ignore: &'static str,
}

/// The letter with a login and a password.
pub(super) struct CredentialsLetter {
    pub(super) subject: &'static str,
    pub(super) intro: &'static str,
    pub(super) login_label: &'static str,
    pub(super) password_label: &'static str,
    pub(super) outro: &'static str,
    /// Added to the outro when the password is temporary.
    pub(super) temporary: &'static str,
}

/// A letter that only tells: a subject and one paragraph.
pub(super) struct Notice {
    pub(super) subject: &'static str,
    pub(super) body: &'static str,
}

/// The texts of `locale`.
pub(super) const fn of(locale: Locale) -> &'static Texts {
    match locale {
        Locale::Ru => &RU,
        Locale::En => &EN,
    }
}

const RU: Texts = Texts {
    confirm_email: LinkLetter {
        subject: "Подтверждение e-mail",
        intro: "Вы указали этот адрес при регистрации в личном кабинете жителя.",
        action: "Подтвердить электронный адрес",
        ignore: "Если вы не регистрировались, просто удалите это письмо.",
    },
    credentials: CredentialsLetter {
        subject: "Данные для входа",
        intro: "Данные для входа в личный кабинет жителя:",
        login_label: "Логин",
        password_label: "Пароль",
        outro: "Прежний пароль больше не действует.",
        temporary: " Это временный пароль: при первом входе задайте свой.",
    },
    recover_password: LinkLetter {
        subject: "Восстановление пароля",
        intro: "Чтобы получить новый пароль от личного кабинета жителя, перейдите по ссылке. \
            Ссылка действует один час и только один раз.",
        action: "Получить новый пароль",
        ignore: "Если вы не запрашивали восстановление, просто удалите это письмо: пароль \
            останется прежним.",
    },
    confirm_email_change: LinkLetter {
        subject: "Подтверждение нового e-mail",
        intro: "Этот адрес указан как новый адрес для входа в личный кабинет жителя. Ссылка \
            действует один раз; после перехода по ней входите с этим адресом.",
        action: "Подтвердить новый адрес",
        ignore: "Если вы ничего не меняли, просто удалите это письмо: адрес не изменится.",
    },
    email_change_requested: LinkLetter {
        subject: "Смена e-mail",
        intro: "В вашем личном кабинете жителя запрошена смена адреса электронной почты. На \
            новый адрес отправлено письмо со ссылкой: адрес изменится, только когда по ней \
            перейдут. Если это сделали не вы, отмените смену: все сеансы будут завершены. \
            Затем восстановите пароль («Забыли пароль»).",
        action: "Это был не я: отменить смену адреса",
        ignore: "Если адрес меняете вы, ничего делать не нужно.",
    },
    password_changed: Notice {
        subject: "Пароль изменён",
        body: "Пароль от вашего личного кабинета жителя только что изменён, все другие сеансы \
            завершены. Если это сделали не вы, сразу восстановите пароль («Забыли пароль») и \
            обратитесь в расчётный центр.",
    },
    cabinet_closed: Notice {
        subject: "Личный кабинет закрыт",
        body: "Ваш личный кабинет жителя закрыт по вашей просьбе: сведения о нём удалены, все \
            сеансы завершены. Лицевые счета можно зарегистрировать снова. Если это сделали не \
            вы, обратитесь в расчётный центр.",
    },
    account_unlinked: Notice {
        subject: "Лицевой счёт отвязан",
        body: "Лицевой счёт {account} больше не привязан к вашему личному кабинету жителя: это \
            сделал сотрудник расчётного центра. Все сеансы завершены, войдите снова. Если вы об \
            этом не просили, обратитесь в расчётный центр.",
    },
};

const EN: Texts = Texts {
    confirm_email: LinkLetter {
        subject: "Email confirmation",
        intro: "This address was given when registering in the residents' portal.",
        action: "Confirm email address",
        ignore: "If you did not register, simply delete this letter.",
    },
    credentials: CredentialsLetter {
        subject: "Your login details",
        intro: "Your details for logging in to the residents' portal:",
        login_label: "Login",
        password_label: "Password",
        outro: "Any earlier password no longer works.",
        temporary: " This password is temporary: choose your own at first login.",
    },
    recover_password: LinkLetter {
        subject: "Password recovery",
        intro: "To get a new password for the residents' portal, follow the link. It works \
            once, for one hour.",
        action: "Get a new password",
        ignore: "If you did not ask for this, simply delete this letter: your password stays \
            as it is.",
    },
    confirm_email_change: LinkLetter {
        subject: "New email confirmation",
        intro: "This address was given as the new login of a residents' portal cabinet. The \
            link works once; after following it, log in with this address.",
        action: "Confirm the new address",
        ignore: "If you changed nothing, simply delete this letter: nothing changes.",
    },
    email_change_requested: LinkLetter {
        subject: "Email change",
        intro: "A change of the email of your residents' portal cabinet was asked for. A \
            letter with a link went to the new address: the address changes only when it is \
            followed. If it was not you, cancel the change: every session will end. Then \
            recover the password (\u{201c}Forgot password\u{201d}).",
        action: "It was not me: cancel the change",
        ignore: "If you are changing the address yourself, there is nothing to do.",
    },
    password_changed: Notice {
        subject: "Password changed",
        body: "The password of your residents' portal cabinet was just changed and every \
            other session ended. If it was not you, recover the password at once \
            (\u{201c}Forgot password\u{201d}) and call the settlement center.",
    },
    cabinet_closed: Notice {
        subject: "Cabinet closed",
        body: "Your residents' portal cabinet was closed at your request: its data is erased \
            and every session has ended. The personal accounts can be registered again. If it \
            was not you, call the settlement center.",
    },
    account_unlinked: Notice {
        subject: "Personal account unlinked",
        body: "Personal account {account} is no longer in your residents' portal cabinet: the \
            settlement center's staff unlinked it. Every session ended; please log in again. \
            If you did not ask for this, call the settlement center.",
    },
};
