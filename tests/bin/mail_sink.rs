//! A local SMTP server for `scripts/start`: every message it receives is written as one
//! `.eml` file under `MAIL_SINK_DIR` (.local/mail), to open with any mail program or
//! `less`. Listens on `MAIL_SINK_ADDR` (127.0.0.1:2525).

use referral_tests::smtp_capture::SmtpCapture;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    referral_tests::init_logging();
    let addr = std::env::var("MAIL_SINK_ADDR").unwrap_or_else(|_| "127.0.0.1:2525".into());
    let directory = std::path::PathBuf::from(
        std::env::var("MAIL_SINK_DIR").unwrap_or_else(|_| ".local/mail".into()),
    );
    std::fs::create_dir_all(&directory)?;
    let sink = SmtpCapture::serve(std::net::TcpListener::bind(&addr)?, Some(directory.clone()))?;
    tracing::info!(url = %sink.url, directory = %directory.display(), "mail sink listening");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
