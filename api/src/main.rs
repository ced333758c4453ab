//! `referral-api`: serves the HTTP API, and holds the operator commands.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use poem::Server;
use poem::listener::{Listener, TcpListener};
use referral_api::listener::NoDelay;
use referral_api::{ApiConfig, AppState};
use referral_core::domain::api_key::ApiRole;
use referral_core::stripe::StripeGateway;
use referral_core::usecases::{api_keys, operations};
use referral_core::{Clock, SystemClock, dev_time, startup};
use sqlx::PgPool;

/// Referral & partner-program engine: HTTP API and operator commands.
///
/// Settings come from environment variables (see README): DATABASE_URL, LISTEN_ADDR,
/// PUBLIC_BASE_URL, LANDING_URL, STRIPE_WEBHOOK_SECRET.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run migrations, then serve the API (the default).
    Serve,
    /// Run migrations and exit.
    Migrate,
    /// Create an API key and print it once; only its hash is stored.
    CreateKey {
        /// `platform` (server-to-server calls) or `admin` (operations).
        #[arg(long)]
        role: ApiRole,
        /// A label to recognise the key by.
        #[arg(long)]
        name: String,
    },
    /// Revoke every live API key with this name; refused from the next request on, by
    /// every api process.
    RevokeKey {
        /// The name the key was created with.
        #[arg(long)]
        name: String,
    },
    /// Operate on jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
}

#[derive(Subcommand)]
enum JobsCommand {
    /// List failed jobs (out of attempts, or failed permanently).
    Failed {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Retry failed jobs by id.
    Retry {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// List jobs by queue and state (pending, scheduled, running, failed, done).
    List {
        /// Only this queue (e.g. send_payout_transfer).
        #[arg(long)]
        queue: Option<String>,
        /// Only this state.
        #[arg(long, value_parser = ["pending", "scheduled", "running", "failed", "done"])]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Retry every failed job of a queue.
    RetryQueue {
        /// The queue.
        queue: String,
        /// Only jobs that failed at or after this instant (RFC 3339).
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// Discard a failed job for good, with a reason (kept with its payload).
    Discard {
        /// The job.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(error) = run(cli).await {
        eprintln!("referral-api: {error:#}");
        std::process::exit(1);
    }
}

async fn connect(config: &ApiConfig) -> anyhow::Result<PgPool> {
    let pool = referral_core::pool::pool_options()
        .max_connections(32)
        .acquire_timeout(Duration::from_secs(5))
        .connect(secrecy::ExposeSecret::expose_secret(&config.database_url))
        .await
        .context("cannot connect to DATABASE_URL")?;
    referral_migrations::run(&pool).await?;
    Ok(pool)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = ApiConfig::from_env()?;
    init_tracing();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            connect(&config).await?;
            Ok(())
        }
        Command::CreateKey { role, name } => {
            let pool = connect(&config).await?;
            let created = api_keys::create(&mut *pool.acquire().await?, &name, role).await?;
            // The plaintext exists only here: stdout is the one place it goes.
            write_stdout(&format!("{}\n", created.plaintext))
        }
        Command::RevokeKey { name } => {
            let pool = connect(&config).await?;
            let revoked =
                api_keys::revoke(&mut *pool.acquire().await?, &name, SystemClock.now()).await?;
            anyhow::ensure!(revoked > 0, "no live API key is named {name:?}");
            write_stdout(&format!("revoked {revoked} key(s) named {name:?}\n"))
        }
        Command::Jobs(JobsCommand::Failed { limit }) => {
            let pool = connect(&config).await?;
            let rows = operations::failed_jobs(&mut *pool.acquire().await?, limit).await?;
            write_stdout(&job_lines(rows))
        }
        Command::Jobs(JobsCommand::List {
            queue,
            state,
            limit,
        }) => {
            if let Some(queue) = &queue
                && !referral_core::jobs::ALL_QUEUES.contains(&queue.as_str())
            {
                anyhow::bail!(
                    "unknown queue `{queue}`; queues: {}",
                    referral_core::jobs::ALL_QUEUES.join(", ")
                );
            }
            let pool = connect(&config).await?;
            let rows = operations::list(
                &mut *pool.acquire().await?,
                queue.as_deref(),
                state.as_deref(),
                limit,
            )
            .await?;
            write_stdout(&job_lines(rows))
        }
        Command::Jobs(JobsCommand::RetryQueue { queue, since }) => {
            let pool = connect(&config).await?;
            let mut tx = pool.begin().await?;
            let retried =
                operations::retry_queue(&mut tx, &queue, since, &cli_actor(), SystemClock.now())
                    .await?;
            tx.commit().await?;
            write_stdout(&format!("retried {} jobs of {queue}\n", retried.len()))
        }
        Command::Jobs(JobsCommand::Discard { id, reason }) => {
            let pool = connect(&config).await?;
            let mut tx = pool.begin().await?;
            let row =
                operations::discard(&mut tx, &id, &reason, &cli_actor(), SystemClock.now()).await?;
            tx.commit().await?;
            write_stdout(&format!("discarded {} of {}\n", row.id, row.queue))
        }
        Command::Jobs(JobsCommand::Retry { ids }) => {
            let pool = connect(&config).await?;
            let asked = ids.len();
            let mut tx = pool.begin().await?;
            let outcome = operations::retry(&mut tx, ids, &cli_actor(), SystemClock.now()).await?;
            tx.commit().await?;
            write_stdout(&format!(
                "retried {} of {asked} jobs\n",
                outcome.retried.len()
            ))
        }
    }
}

/// Who an action from the command line is recorded as.
fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

/// One line per job: id, queue, state, attempts, due, last error.
fn job_lines(rows: Vec<operations::JobRow>) -> String {
    rows.into_iter()
        .map(|row| {
            format!(
                "{}\t{}\t{}\t{}/{}\t{}\t{}\n",
                row.id,
                row.queue,
                row.state,
                row.attempts,
                row.max_attempts,
                row.run_at.to_rfc3339(),
                row.last_error.unwrap_or_default()
            )
        })
        .collect()
}

fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

async fn serve(config: ApiConfig) -> anyhow::Result<()> {
    config.webhook_secret()?;
    let pool = startup::retried("connect and migrate", || connect(&config)).await?;
    let listen_addr = config.listen_addr;
    let dev_clock = if config.dev_time_travel {
        tracing::warn!(
            "DEV_TIME_TRAVEL is on: the clock can be moved forward; never use this in production"
        );
        Some(startup::retried("read the dev clock", || dev_time::follow(pool.clone())).await?)
    } else {
        None
    };
    let clock: Arc<dyn Clock> = match &dev_clock {
        Some(dev_clock) => Arc::new(dev_clock.clone()),
        None => Arc::new(SystemClock),
    };
    let stripe = StripeGateway::new(&config.stripe)?;
    let state = AppState::new(pool, clock, config, stripe, dev_clock);
    tracing::info!(%listen_addr, "api listening; docs at /docs");
    let acceptor = TcpListener::bind(listen_addr).into_acceptor().await?;
    Server::new_with_acceptor(NoDelay(acceptor))
        .run_with_graceful_shutdown(
            referral_api::app(state),
            shutdown_signal(),
            Some(Duration::from_secs(10)),
        )
        .await?;
    Ok(())
}

/// SIGTERM (service managers) or Ctrl-C.
async fn shutdown_signal() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("api stopping");
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
