//! The whole guide, walked as a resident in headless Chromium: register → letter →
//! confirm → a wrong then the right premises number → log in with the mailed password →
//! add an address → confirm → activate → log in again → switch address → log out →
//! recover the password → log in → change the password → sessions → change the email → my
//! data → close the cabinet. One screenshot per screen in
//! `test-artifacts/browser/<binary>/`, and axe-core's WCAG 2.1 A/AA and best-practice rules
//! run on every screen (`AXE_CORE_JS`, else where `scripts/test.sh` installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use crate::Server;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Browser {
    client: Client,
    axe: String,
    violations: Vec<String>,
    _driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    count: usize,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    async fn start(name: &str) -> Self {
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver (scripts/test.sh installs chromium-driver)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({
                "binary": CHROMIUM,
                "prefs": {"intl.accept_languages": "ru-RU,ru"},
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--disable-quic", "--window-size=1000,900", "--lang=ru-RU",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session in headless Chromium");
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let shots = root.join("test-artifacts/browser").join(name);
        let axe = std::env::var_os("AXE_CORE_JS").map_or_else(
            || root.join("target/tools/axe/node_modules/axe-core/axe.min.js"),
            PathBuf::from,
        );
        let axe = std::fs::read_to_string(&axe).unwrap_or_else(|e| {
            panic!(
                "axe-core at {} ({e}): scripts/test.sh installs it (npm install axe-core)",
                axe.display()
            )
        });
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        Self {
            client,
            axe,
            violations: Vec::new(),
            _driver: driver,
            _profile: profile,
            shots,
            count: 0,
        }
    }

    /// A screenshot of the screen, and axe-core's findings on it.
    async fn shot(&mut self, name: &str) {
        self.count += 1;
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(
            self.shots.join(format!("{:02}-{name}.png", self.count)),
            png,
        )
        .unwrap();
        self.audit(name).await;
    }

    /// Runs axe-core's WCAG 2.1 A and AA rules and its best practices on the screen.
    async fn audit(&mut self, screen: &str) {
        self.client.execute(&self.axe, vec![]).await.unwrap();
        let found = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {runOnly: {type: 'tag', values: \
                   ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})\
                 .then(r => done(r.violations.map(v => v.id + ' (' + v.impact + '): ' \
                   + v.nodes.map(n => n.target.join(' ')).join(', '))))\
                 .catch(e => done(['axe failed: ' + e]));",
                vec![],
            )
            .await
            .unwrap();
        for violation in found.as_array().into_iter().flatten() {
            self.violations.push(format!(
                "{screen}: {}",
                violation.as_str().unwrap_or_default()
            ));
        }
    }

    /// The page's text; `None` while a navigation replaces the document.
    async fn text(&self) -> Option<String> {
        let body = self.client.find(Locator::Css("body")).await.ok()?;
        body.text().await.ok()
    }

    /// Fills an input, waiting (up to 10 s) for the page that has it.
    async fn fill(&self, name: &str, value: &str) {
        let css = format!("input[name={name}]");
        self.expect_element(&css).await;
        let input = self.client.find(Locator::Css(&css)).await.unwrap();
        input.clear().await.unwrap();
        input.send_keys(value).await.unwrap();
    }

    /// Clicks the element `locator` finds.
    async fn click(&self, locator: Locator<'_>) {
        self.client
            .find(locator)
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn submit(&self) {
        self.click(Locator::Css("main button[type=submit]")).await;
    }

    async fn click_link(&self, text: &str) {
        self.click(Locator::LinkText(text)).await;
    }

    /// Waits (up to 10 s) for the page that follows a click to show `needle`.
    async fn expect(&self, needle: &str) {
        let mut last = None;
        for _ in 0..100 {
            last = self.text().await;
            if last.as_deref().is_some_and(|text| text.contains(needle)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "expected {needle:?} on the page:\n{}",
            last.unwrap_or_default()
        );
    }

    /// Waits (up to 10 s) for an element: the proof that the next page arrived.
    async fn expect_element(&self, css: &str) {
        for _ in 0..100 {
            if self.client.find(Locator::Css(css)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected an element {css:?} on the page");
    }

    async fn log_in(&mut self, base: &str, email: &str, password: &str, screens: (&str, &str)) {
        self.client.goto(&format!("{base}/")).await.unwrap();
        self.fill("email", email).await;
        self.submit().await;
        self.expect("Пароль").await;
        self.shot(screens.0).await;
        self.fill("password", password).await;
        self.submit().await;
        // The header says "Личный кабинет жителя" on every page: wait for the menu.
        self.expect_element("details.addresses").await;
        self.shot(screens.1).await;
    }
}

fn link(server: &Server, subject: &str, path: &str) -> String {
    format!(
        "{}/{path}?token={}",
        server.base,
        server.link_token(subject)
    )
}

/// The walk, on `binary`.
pub async fn a_resident_walks_the_whole_guide_in_chromium(binary: &str) {
    let server = Server::start(binary, &[]).await;
    let base = server.base.clone();
    let name = Path::new(binary).file_name().unwrap().to_string_lossy();
    let mut browser = Browser::start(&name).await;

    // Journey 1: registration.
    browser.client.goto(&format!("{base}/")).await.unwrap();
    browser.expect("Вход в личный кабинет").await;
    browser.shot("login").await;
    browser.click_link("Создайте аккаунт").await;
    browser.expect("Фамилия вводится без инициалов").await;
    browser.fill("surname", "Иванов И.И.").await;
    browser.fill("account_number", "78 0000 0000 001").await;
    browser.fill("email", "resident@example.org").await;
    browser.submit().await;
    browser.expect_element("#surname-error").await;
    browser.expect("Фамилия вводится без инициалов").await;
    browser.shot("register-with-initials").await;
    browser.fill("surname", "Иванов").await;
    browser.submit().await;
    browser.expect("Письмо отправлено").await;
    browser.shot("letter-sent").await;

    // Journeys 2–3: the letter's link, then the premises number.
    browser
        .client
        .goto(&link(&server, "Подтверждение e-mail", "confirm"))
        .await
        .unwrap();
    browser.shot("confirm").await;
    browser.submit().await;
    browser.expect("Номер помещения").await;
    browser.shot("premises").await;
    browser.fill("premises", "13").await;
    browser.submit().await;
    browser.expect("Осталось 4 попытки").await;
    browser.shot("wrong-premises").await;
    browser.fill("premises", "12").await;
    browser.submit().await;
    browser.expect("Аккаунт активирован").await;
    browser.shot("activated").await;

    // Journey 4: log in with the mailed password.
    let password = server.password();
    browser
        .log_in(
            &base,
            "resident@example.org",
            &password,
            ("login-password", "cabinet"),
        )
        .await;
    browser.expect("кв. 12").await;

    // Journey 7: add an address from the menu under the address at the top.
    browser
        .click(Locator::Css("details.addresses summary"))
        .await;
    browser.shot("address-menu").await;
    browser.click_link("Добавить адрес").await;
    browser.expect("Добавление нового адреса").await;
    browser.shot("add-address").await;
    browser.fill("surname", "Иванова").await;
    browser.fill("account_number", "7800000000002").await;
    browser.submit().await;
    browser.expect("Письмо отправлено").await;
    browser
        .client
        .goto(&link(&server, "Подтверждение e-mail", "confirm"))
        .await
        .unwrap();
    browser.submit().await;
    browser.expect("Номер помещения").await;
    browser.fill("premises", "123/456П").await;
    browser.submit().await;
    browser.expect("Аккаунт активирован").await;
    browser.shot("second-address-activated").await;

    // The new credentials ended the session; log in again and switch addresses.
    browser
        .client
        .goto(&format!("{base}/cabinet"))
        .await
        .unwrap();
    browser.expect("Вход в личный кабинет").await;
    let password = server.password();
    browser
        .log_in(
            &base,
            "resident@example.org",
            &password,
            ("login-again", "cabinet-two-addresses"),
        )
        .await;
    browser
        .click(Locator::Css("details.addresses summary"))
        .await;
    browser
        .click(Locator::XPath(
            "//details//button[contains(., 'машино-место')]",
        ))
        .await;
    browser.expect("7800000000002").await;
    browser.expect("123/456П").await;
    browser.shot("switched-address").await;

    // Log out.
    browser
        .click(Locator::Css("main button[type=submit]"))
        .await;
    browser.expect("Вход в личный кабинет").await;
    browser.shot("logged-out").await;

    // Journey 6: recovery.
    browser.click_link("Забыли пароль").await;
    browser.fill("email", "resident@example.org").await;
    browser.shot("recover").await;
    browser.submit().await;
    browser.expect("Проверьте почту").await;
    browser.shot("recover-sent").await;
    browser
        .client
        .goto(&link(&server, "Восстановление пароля", "recover"))
        .await
        .unwrap();
    browser.shot("recover-confirm").await;
    browser.submit().await;
    browser.expect("Новый пароль отправлен").await;
    browser.shot("new-password-sent").await;
    let new_password = server.password();
    assert_ne!(new_password, password);
    browser
        .log_in(
            &base,
            "resident@example.org",
            &new_password,
            ("login-after-recovery", "cabinet-after-recovery"),
        )
        .await;

    // Journeys 8 and 9: a password of one's own, then the sessions.
    browser
        .client
        .goto(&format!("{base}/password"))
        .await
        .unwrap();
    browser.fill("current_password", &new_password).await;
    browser
        .fill("new_password", "зелёная лампа над тихой рекой")
        .await;
    browser.shot("password").await;
    browser.submit().await;
    browser.expect("Пароль изменён").await;
    browser.shot("password-changed").await;
    browser
        .client
        .goto(&format!("{base}/sessions"))
        .await
        .unwrap();
    browser.expect("Этот сеанс").await;
    browser.shot("sessions").await;
    browser
        .client
        .goto(&format!("{base}/cabinet"))
        .await
        .unwrap();
    browser.expect_element("details.addresses").await;

    // Journey 12: a new email, confirmed from its letter in this browser (the session
    // stays); a second change's cancel page seen, not pressed.
    browser.click_link("Сменить e-mail").await;
    browser.fill("email", "moved@example.org").await;
    browser
        .fill("current_password", "зелёная лампа над тихой рекой")
        .await;
    browser.shot("email-change").await;
    browser.submit().await;
    browser.expect("Проверьте почту").await;
    browser.shot("email-change-sent").await;
    browser
        .client
        .goto(&link(
            &server,
            "Подтверждение нового e-mail",
            "email/confirm",
        ))
        .await
        .unwrap();
    browser.shot("email-change-confirm").await;
    browser.submit().await;
    browser.expect("Адрес изменён").await;
    browser.shot("email-changed").await;
    browser.click_link("В кабинет").await;
    browser.expect("moved@example.org").await;
    browser
        .client
        .goto(&format!("{base}/cabinet/email"))
        .await
        .unwrap();
    browser.fill("email", "third@example.org").await;
    browser
        .fill("current_password", "зелёная лампа над тихой рекой")
        .await;
    browser.submit().await;
    browser.expect("Проверьте почту").await;
    browser
        .client
        .goto(&link(&server, "Смена e-mail", "email/cancel"))
        .await
        .unwrap();
    browser.expect("Это был не я").await;
    browser.shot("email-change-cancel").await;
    browser
        .client
        .goto(&format!("{base}/cabinet"))
        .await
        .unwrap();
    browser.expect_element("details.addresses").await;

    // English, via the switch in the header.
    browser.click_link("English").await;
    browser.expect("Your cabinet").await;
    browser.shot("cabinet-english").await;

    // Journeys 10 and 11: the data page; the cabinet closed.
    browser.click_link("My data").await;
    browser.expect("Download my data").await;
    browser.shot("my-data").await;
    browser
        .fill("close_password", "зелёная лампа над тихой рекой")
        .await;
    browser.click(Locator::Css("#confirm")).await;
    browser.click(Locator::Css("button.danger")).await;
    browser.expect("Cabinet closed").await;
    browser.shot("cabinet-closed").await;

    browser.client.close().await.unwrap();
    assert!(
        browser.violations.is_empty(),
        "axe-core found accessibility problems:\n{}",
        browser.violations.join("\n")
    );
}
