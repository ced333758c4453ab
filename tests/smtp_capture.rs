//! A real SMTP server on a local port that keeps what it receives: in memory for tests,
//! and as one `.eml` file per message for people (the `mail-sink` binary).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use referral_core::{Clock, SystemClock};

use crate::smtp_server::{self, Mailbox};

/// A message the SMTP capture received.
#[derive(Debug, Clone)]
pub struct CapturedMail {
    pub to: Vec<String>,
    pub data: String,
}

impl CapturedMail {
    /// The `Message-ID` header's value.
    pub fn message_id(&self) -> Option<&str> {
        self.data
            .lines()
            .take_while(|line| !line.is_empty())
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("message-id")
                    .then_some(value.trim())
            })
    }
}

/// Until when the server refuses mail (451, "try again later").
type RefuseUntil = Arc<Mutex<Option<std::time::Instant>>>;

#[derive(Default)]
struct Capture {
    mails: Arc<Mutex<Vec<CapturedMail>>>,
    /// Where each message is also written as an `.eml` file, if anywhere.
    directory: Option<std::path::PathBuf>,
    refuse_until: RefuseUntil,
}

impl Mailbox for Capture {
    fn accepting(&self) -> bool {
        !self
            .refuse_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|until| std::time::Instant::now() < until)
    }

    fn deliver(&self, to: Vec<String>, data: Vec<u8>) {
        let mail = CapturedMail {
            to,
            data: String::from_utf8_lossy(&data).into_owned(),
        };
        if let Some(directory) = &self.directory {
            let name = format!("{}.eml", SystemClock.now().format("%Y%m%dT%H%M%S%.6fZ"));
            if let Err(error) = std::fs::write(directory.join(&name), &mail.data) {
                tracing::warn!(%error, "cannot keep the mail");
            } else {
                tracing::info!(to = ?mail.to, file = %name, "mail received");
            }
        }
        self.mails
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(mail);
    }
}

/// A real SMTP server on a free local port, keeping what it receives.
pub struct SmtpCapture {
    pub url: String,
    mails: Arc<Mutex<Vec<CapturedMail>>>,
    refuse_until: RefuseUntil,
}

impl SmtpCapture {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind SMTP capture");
        Self::serve(listener, None).expect("serve SMTP capture")
    }

    /// Serves on `listener`, also writing each message under `directory` when given.
    pub fn serve(
        listener: std::net::TcpListener,
        directory: Option<std::path::PathBuf>,
    ) -> std::io::Result<Self> {
        let url = format!("smtp://{}", listener.local_addr()?);
        let capture = Capture {
            directory,
            ..Capture::default()
        };
        let mails = capture.mails.clone();
        let refuse_until = capture.refuse_until.clone();
        smtp_server::serve(listener, "capture.test", Arc::new(capture));
        Ok(Self {
            url,
            mails,
            refuse_until,
        })
    }

    /// Forgets the messages received so far.
    pub fn clear(&self) {
        self.mails.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Refuses every message with a temporary failure (451) until `until`.
    pub fn refuse_until(&self, until: std::time::Instant) {
        *self.refuse_until.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
    }

    pub fn mails(&self) -> Vec<CapturedMail> {
        self.mails.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits (bounded) until `count` messages arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<CapturedMail> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mails = self.mails();
            if mails.len() >= count {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "expected {count} e-mails, got {mails:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
