//! `resident-auth-admin`: what a support person runs for each call a resident makes
//! (docs/operating.md), on the portal's storage: PostgreSQL (`DATABASE_URL`), else the
//! portal's SQLite file (`SQLITE_PATH`, default `./resident-auth.db`).
//!
//! Exit codes: 0 done, 2 not found, 3 refused (e.g. unlinking a cabinet's last account
//! without `--erase`), 1 error (malformed input included). Every change is recorded in the
//! audit table with `--operator`.
// No production function over 80 lines (clippy.toml); tests may be longer.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

use std::{process::ExitCode, sync::Arc};

use clap::{Parser, Subcommand};
use resident_auth::{
    admin::{Admin, AdminError, Audit, Lookup, Operator, Report},
    config::{AccountDirectory, Argon2Hasher, HashParams},
    events::Events,
    mail::{MailQueueKey, MailQueueKeys, Mailer},
    ports::Store,
    AccountNumber, AuthService,
};
use resident_auth_postgres::{PgAudit, PgDirectory, PgEvents, PgStore, PoolConfig};
use resident_auth_smtp::{default_sender, OutboxMailer, SmtpConfig, SmtpMailer};
use resident_auth_sqlite::{
    SqliteAudit, SqliteDirectory, SqliteEvents, SqliteOptions, SqliteStore,
};

/// The operators' tool of a resident-auth portal.
#[derive(Debug, Parser)]
#[command(name = "resident-auth-admin", version)]
struct Cli {
    /// The portal's PostgreSQL (every command but `new-operator-token`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The portal's SQLite file, used when `DATABASE_URL` is unset; it must exist.
    #[arg(long, env = "SQLITE_PATH", default_value = "./resident-auth.db")]
    sqlite_path: std::path::PathBuf,
    /// Who acts, recorded with every change (required for changes).
    #[arg(long, env = "ADMIN_OPERATOR")]
    operator: Option<String>,
    /// Answer in JSON, for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// Where letters go: the SMTP server (default: `OUTBOX_DIR`).
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    /// Where letters are written as files when there is no SMTP server.
    #[arg(long, env = "OUTBOX_DIR")]
    outbox_dir: Option<std::path::PathBuf>,
    /// Where links in letters point.
    #[arg(long, env = "BASE_URL", default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// The portal's mail queue key (32 bytes, base64): letters are queued sealed with it,
    /// sent at once when the mail server answers, else by the portals' delivery. On SQLite
    /// the key file beside the database (`<SQLITE_PATH>.mail-queue-key`) is read when unset.
    #[arg(long, env = "MAIL_QUEUE_KEY", hide_env_values = true)]
    mail_queue_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// "Which accounts are in my cabinet?": the cabinet, accounts, sessions, pending
    /// registrations and locks of an email or personal account number.
    Find { lookup: String },
    /// "The letter never came": sends the pending confirmation again (a new link).
    Resend { lookup: String },
    /// "I am locked out": clears throttles, cooldowns and premises attempts.
    Unlock { lookup: String },
    /// Ends every session of the cabinet.
    EndSessions { lookup: String },
    /// "Someone else registered my account": takes the account out of its cabinet.
    Unlink {
        account: String,
        /// Unlinking the cabinet's last account erases the whole cabinet.
        #[arg(long)]
        erase: bool,
    },
    /// "Delete my data": erases the cabinet and everything naming its email and accounts.
    Erase { lookup: String },
    /// "What do you keep about me?": the cabinet's data as JSON.
    Export { lookup: String },
    /// Loads the billing directory from a CSV file (`account_number,surnames,address,premises`).
    ImportDirectory { file: std::path::PathBuf },
    /// A token for the operators' API: prints the token (give it to the operator) and the
    /// `ADMIN_OPERATORS` entry that admits it (the configuration keeps only its SHA-256).
    NewOperatorToken { name: String },
}

/// The mailer of commands that send no letter: one that tried would fail loudly.
struct NoLetters;

#[async_trait::async_trait]
impl Mailer for NoLetters {
    async fn send(
        &self,
        _id: &resident_auth::mail::LetterId,
        _letter: &resident_auth::letters::Letter,
    ) -> Result<(), resident_auth::mail::MailError> {
        Err(resident_auth::mail::MailError::permanent(
            "this command sends no letter",
        ))
    }
}

/// An operation's failure, with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl From<AdminError> for Failure {
    fn from(error: AdminError) -> Self {
        let code = match error {
            AdminError::NotFound => 2,
            AdminError::Refused(_) => 3,
            _ => 1,
        };
        Self {
            code,
            message: error.to_string(),
        }
    }
}

fn failure(message: impl std::fmt::Display) -> Failure {
    Failure {
        code: 1,
        message: message.to_string(),
    }
}

fn lookup(text: &str) -> Result<Lookup, Failure> {
    text.parse().map_err(failure)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() { 1 } else { 0 };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("resident-auth-admin: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn mailer(cli: &Cli) -> Result<Arc<dyn Mailer>, Failure> {
    if let Some(url) = &cli.smtp_url {
        let config: SmtpConfig = url.parse().map_err(|e| failure(format!("SMTP_URL: {e}")))?;
        return Ok(Arc::new(
            SmtpMailer::new(&config).map_err(|e| failure(format!("SMTP_URL: {e}")))?,
        ));
    }
    let dir = cli.outbox_dir.clone().ok_or_else(|| {
        failure("letters need SMTP_URL (or OUTBOX_DIR to write them as files on purpose)")
    })?;
    Ok(Arc::new(OutboxMailer::new(dir, default_sender())))
}

fn operator(cli: &Cli) -> Result<Operator, Failure> {
    cli.operator
        .as_deref()
        .ok_or_else(|| failure("changes need --operator NAME (or ADMIN_OPERATOR)"))?
        .parse()
        .map_err(failure)
}

fn print<T: serde::Serialize>(json: bool, value: &T, human: impl FnOnce(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        println!("{}", human(value));
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    if let Command::NewOperatorToken { name } = &cli.command {
        let name: Operator = name.parse().map_err(failure)?;
        let (token, line) = resident_auth_http::OperatorTokens::issue(&name);
        let answer = serde_json::json!({"token": token, "admin_operators_entry": line});
        print(cli.json, &answer, |_| {
            format!("token (give it to {name}; it is not stored): {token}\nADMIN_OPERATORS entry: {line}")
        });
        return Ok(());
    }
    let storage = open_storage(&cli).await?;
    if let Command::ImportDirectory { file } = &cli.command {
        let csv = std::fs::read_to_string(file)
            .map_err(|e| failure(format!("cannot read {}: {e}", file.display())))?;
        let report = storage.import(&csv).await?;
        print(cli.json, &report_json(report), |_| {
            format!(
                "imported: {} inserted, {} updated, {} unchanged, {} kept",
                report[0], report[1], report[2], report[3]
            )
        });
        return Ok(());
    }
    // Letters are needed only by the operations that send them.
    let needs_mail = matches!(cli.command, Command::Resend { .. } | Command::Unlink { .. });
    let mailer: Arc<dyn Mailer> = if needs_mail {
        mailer(&cli)?
    } else {
        Arc::new(NoLetters)
    };
    let mut builder = AuthService::builder(&cli.base_url)
        .shared_store(storage.store.clone())
        .shared_directory(storage.directory.clone())
        .shared_mailer(mailer)
        .shared_events(storage.events.clone())
        .hasher(
            Argon2Hasher::with_workers(HashParams::default(), 1)
                .map_err(|e| failure(format!("argon2: {e}")))?,
        )
        // The command's letter goes out before it exits when the mail server answers.
        .configure(|config| config.delivery.in_request = true);
    if needs_mail {
        builder = builder.mail_queue_keys(mail_queue_keys(&cli, &storage)?);
    }
    // The portal's own background tasks send what this command queues: it runs none.
    let (service, _background) = builder.build().map_err(failure)?;
    let admin: Admin = service.admin().with_audit(storage.audit.clone());
    act(&cli, &admin).await
}

/// The operators' command, done through the facade.
async fn act(cli: &Cli, admin: &Admin) -> Result<(), Failure> {
    let json = cli.json;
    match &cli.command {
        Command::Find { lookup: text } => {
            let report = admin.find(&lookup(text)?).await?;
            print(json, &report, human_report);
        }
        Command::Resend { lookup: text } => {
            let sent = admin
                .resend_confirmation(&lookup(text)?, &operator(cli)?)
                .await?;
            let answer = serde_json::json!({"sent_to": sent.to_string()});
            print(json, &answer, |_| {
                format!("confirmation letter sent again to {sent}")
            });
        }
        Command::Unlock { lookup: text } => {
            let cleared = admin.clear_locks(&lookup(text)?, &operator(cli)?).await?;
            let answer = serde_json::json!({"counters_cleared": cleared});
            print(json, &answer, |_| {
                format!("{cleared} lock(s) and throttle(s) cleared")
            });
        }
        Command::EndSessions { lookup: text } => {
            let ended = admin.end_sessions(&lookup(text)?, &operator(cli)?).await?;
            let answer = serde_json::json!({"sessions_ended": ended});
            print(json, &answer, |_| format!("{ended} session(s) ended"));
        }
        Command::Unlink { account, erase } => {
            let account: AccountNumber = account.parse().map_err(|e| {
                failure(format!("{account:?} is not a personal account number: {e}"))
            })?;
            let erased = admin.unlink(&account, *erase, &operator(cli)?).await?;
            match erased {
                Some(erased) => {
                    print(json, &erased, |e| {
                        format!("last account: cabinet erased ({} session(s), {} link(s), {} counter(s))", e.sessions, e.links, e.counters)
                    })
                }
                None => print(
                    json,
                    &serde_json::json!({"unlinked": account.to_string()}),
                    |_| {
                        format!("{account} unlinked; the cabinet's sessions ended and its email was told")
                    },
                ),
            }
        }
        Command::Erase { lookup: text } => {
            let erased = admin.erase(&lookup(text)?, &operator(cli)?).await?;
            print(json, &erased, |e| {
                format!(
                    "erased: {} cabinet(s), {} session(s), {} link(s), {} counter(s)",
                    e.cabinets, e.sessions, e.links, e.counters
                )
            });
        }
        Command::Export { lookup: text } => {
            let export = admin.export(&lookup(text)?, &operator(cli)?).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&export).map_err(failure)?
            );
        }
        Command::ImportDirectory { .. } | Command::NewOperatorToken { .. } => {}
    }
    Ok(())
}

/// The portal's mail queue key, for the commands that send a letter: `MAIL_QUEUE_KEY`, else
/// the key file beside the SQLite file.
fn mail_queue_keys(cli: &Cli, storage: &Storage) -> Result<MailQueueKeys, Failure> {
    let key = match (&cli.mail_queue_key, &storage.key_file) {
        (Some(key), _) => key.clone(),
        (None, Some(file)) => std::fs::read_to_string(file).map_err(|e| {
            failure(format!(
                "letters need the portal's key: {} ({e}); or set MAIL_QUEUE_KEY",
                file.display()
            ))
        })?,
        (None, None) => {
            return Err(failure(
                "letters need MAIL_QUEUE_KEY (or --mail-queue-key): the portal's key",
            ))
        }
    };
    let key = MailQueueKey::from_base64(key.trim()).map_err(failure)?;
    Ok(MailQueueKeys::new(key))
}

/// What an import changed: inserted, updated, unchanged, kept (absent from the file).
type ImportCounts = [u64; 4];

fn report_json(report: ImportCounts) -> serde_json::Value {
    serde_json::json!({
        "inserted": report[0],
        "updated": report[1],
        "unchanged": report[2],
        "kept": report[3],
    })
}

/// The portal's storage, as the command line names it.
enum Pool {
    Postgres(resident_auth_postgres::PgPool),
    Sqlite(resident_auth_sqlite::SqlitePool),
}

/// The adapters over the portal's storage.
struct Storage {
    pool: Pool,
    store: Arc<dyn Store>,
    directory: Arc<dyn AccountDirectory>,
    events: Arc<dyn Events>,
    audit: Arc<dyn Audit>,
    /// On SQLite, the mail queue key file beside the database.
    key_file: Option<std::path::PathBuf>,
}

impl Storage {
    /// Loads a directory CSV, all rows or none.
    async fn import(&self, csv: &str) -> Result<ImportCounts, Failure> {
        let nothing = |e: &dyn std::fmt::Display| failure(format!("nothing imported: {e}"));
        Ok(match &self.pool {
            Pool::Postgres(pool) => {
                let r = resident_auth_postgres::import_directory(pool, csv)
                    .await
                    .map_err(|e| nothing(&e))?;
                [r.inserted, r.updated, r.unchanged, r.absent]
            }
            Pool::Sqlite(pool) => {
                let r = resident_auth_sqlite::import_directory(pool, csv)
                    .await
                    .map_err(|e| nothing(&e))?;
                [r.inserted, r.updated, r.unchanged, r.absent]
            }
        })
    }
}

/// PostgreSQL when `DATABASE_URL` is set (connected and migrated), else the portal's
/// SQLite file, which must exist: an operator's typo never makes an empty database.
async fn open_storage(cli: &Cli) -> Result<Storage, Failure> {
    if let Some(url) = &cli.database_url {
        let pool = resident_auth_postgres::connect(url, &PoolConfig::default())
            .await
            .map_err(|e| failure(format!("cannot connect to DATABASE_URL: {e}")))?;
        resident_auth_postgres::migrate(&pool)
            .await
            .map_err(|e| failure(format!("cannot migrate: {e}")))?;
        return Ok(Storage {
            store: Arc::new(PgStore::new(pool.clone())),
            directory: Arc::new(PgDirectory::new(pool.clone())),
            events: Arc::new(PgEvents::new(pool.clone())),
            audit: Arc::new(PgAudit::new(pool.clone())),
            pool: Pool::Postgres(pool),
            key_file: None,
        });
    }
    let path = &cli.sqlite_path;
    if !path.is_file() {
        return Err(failure(format!(
            "no portal database at {} (set SQLITE_PATH, or DATABASE_URL for PostgreSQL)",
            path.display()
        )));
    }
    let pool = resident_auth_sqlite::open(path, &SqliteOptions::default())
        .await
        .map_err(|e| failure(format!("cannot open {}: {e}", path.display())))?;
    let mut key_file = path.clone().into_os_string();
    key_file.push(".mail-queue-key");
    Ok(Storage {
        store: Arc::new(SqliteStore::new(pool.clone())),
        directory: Arc::new(SqliteDirectory::new(pool.clone())),
        events: Arc::new(SqliteEvents::new(pool.clone())),
        audit: Arc::new(SqliteAudit::new(pool.clone())),
        pool: Pool::Sqlite(pool),
        key_file: Some(key_file.into()),
    })
}

fn human_report(report: &Report) -> String {
    let mut lines = Vec::new();
    match &report.cabinet {
        Some(cabinet) => {
            lines.push(format!("cabinet {}  <{}>", cabinet.cabinet, cabinet.email));
            for account in &cabinet.accounts {
                lines.push(format!(
                    "  account {}  {}",
                    account.account_number, account.address
                ));
            }
            lines.push(format!(
                "  sessions: {} live; last login: {}",
                cabinet.sessions,
                cabinet.last_login.as_deref().unwrap_or("never")
            ));
            if let Some(until) = &cabinet.temporary_password_until {
                lines.push(format!("  temporary password until {until}"));
            }
        }
        None => lines.push("no cabinet".to_owned()),
    }
    for pending in &report.pending {
        lines.push(format!(
            "pending {} for <{}>{}, until {}{}",
            pending.purpose,
            pending.email,
            pending
                .account_number
                .as_deref()
                .map(|a| format!(" account {a}"))
                .unwrap_or_default(),
            pending.expires_at,
            if pending.expired { " (expired)" } else { "" }
        ));
    }
    for lock in &report.locks {
        lines.push(format!(
            "lock {}: {} until {}",
            lock.counter, lock.count, lock.window_ends
        ));
    }
    lines.push(format!(
        "letters: {} queued, {} dead",
        report.letters_queued, report.letters_dead
    ));
    for letter in &report.letters {
        lines.push(format!(
            "  {} {} {} (queued {}, {} attempt(s){})",
            letter.letter,
            letter.kind,
            letter.status,
            letter.queued_at,
            letter.attempts,
            letter
                .last_error
                .as_deref()
                .map(|e| format!(", last error: {e}"))
                .unwrap_or_default()
        ));
    }
    lines.join("\n")
}
