//! Starts the real SMTP server of `smtp_server.py` (aiosmtpd) on 127.0.0.1 and reads what
//! it received.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

pub struct Tls {
    pub cert_pem: String,
    pub dir: tempfile::TempDir,
}

/// A self-signed certificate for `localhost`, written where the server can read it.
pub fn self_signed() -> Tls {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), certified.cert.pem()).unwrap();
    std::fs::write(
        dir.path().join("key.pem"),
        certified.key_pair.serialize_pem(),
    )
    .unwrap();
    Tls {
        cert_pem: certified.cert.pem(),
        dir,
    }
}

pub struct SmtpServer {
    pub port: u16,
    child: Child,
    maildir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl SmtpServer {
    /// Starts the server: `tls` is `none`, `starttls` or `implicit`.
    pub async fn start(tls: &str, certificate: Option<&Tls>, auth: Option<&str>) -> Self {
        Self::start_with(tls, certificate, auth, &[]).await
    }

    /// Starts the server with `extra` arguments (e.g. `--no-smtputf8`). The port is picked
    /// free and released before the server binds it, so another test may take it in
    /// between: then the server exits without READY and another port is tried.
    pub async fn start_with(
        tls: &str,
        certificate: Option<&Tls>,
        auth: Option<&str>,
        extra: &[&str],
    ) -> Self {
        let maildir = tempfile::tempdir().unwrap();
        for _ in 0..5 {
            let port = free_port();
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_server.py");
            let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_owned());
            let mut command = Command::new(python);
            command
                .arg(script)
                .arg("--port")
                .arg(port.to_string())
                .arg("--maildir")
                .arg(maildir.path())
                .arg("--tls")
                .arg(tls)
                .args(extra)
                .stdout(Stdio::piped())
                .kill_on_drop(true);
            if let Some(certificate) = certificate {
                command
                    .arg("--cert")
                    .arg(certificate.dir.path().join("cert.pem"))
                    .arg("--key")
                    .arg(certificate.dir.path().join("key.pem"));
            }
            if let Some(auth) = auth {
                command.arg("--auth").arg(auth);
            }
            let mut child = command
                .spawn()
                .expect("python3 with aiosmtpd (scripts/test.sh installs it)");
            let stdout = child.stdout.take().unwrap();
            let mut lines = BufReader::new(stdout).lines();
            let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("the SMTP server did not start in 30 s")
                .unwrap();
            if ready.as_deref() == Some("READY") {
                return Self {
                    port,
                    child,
                    maildir,
                };
            }
        }
        panic!("the SMTP server failed to start on five free ports");
    }

    /// The raw messages received so far, waiting until at least `count` arrived.
    pub async fn received(&self, count: usize) -> Vec<Vec<u8>> {
        for _ in 0..200 {
            let files = self.files("eml");
            if files.len() >= count {
                return files.iter().map(|f| std::fs::read(f).unwrap()).collect();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {count} messages, got {}", self.files("eml").len());
    }

    /// The client ports messages came from (equal ports = one reused connection).
    pub fn peer_ports(&self) -> Vec<u64> {
        self.files("json")
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                let start = text.find("\"peer_port\": ").unwrap() + "\"peer_port\": ".len();
                text[start..]
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    pub fn metadata(&self) -> Vec<String> {
        self.files("json")
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }

    fn files(&self, extension: &str) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == extension))
            .collect();
        files.sort();
        files
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
