//! `referral-worker`: runs the job queues until SIGTERM or Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use referral_core::stripe::StripeGateway;
use referral_core::usecases::reconcile::SweepSettings;
use referral_core::{Clock, ProgramSettings, SystemClock, dev_time, startup};
use referral_worker::runtime::RuntimeSettings;
use referral_worker::{JobEnv, SweepConfig, WorkerConfig, mailer::Mailer};

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("referral-worker: {error:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let config = WorkerConfig::from_env()?;
    init_tracing();
    let pool = startup::retried("connect and migrate", || async {
        let pool = referral_core::pool::pool_options()
            .max_connections(u32::try_from(config.concurrency * 2 + 10).unwrap_or(50))
            .acquire_timeout(Duration::from_secs(10))
            .connect(secrecy::ExposeSecret::expose_secret(&config.database_url))
            .await
            .context("cannot connect to DATABASE_URL")?;
        referral_migrations::run(&pool).await?;
        anyhow::Ok(pool)
    })
    .await?;
    let clock: Arc<dyn Clock> = if config.dev_time_travel {
        tracing::warn!(
            "DEV_TIME_TRAVEL is on: following the movable clock; never use this in production"
        );
        Arc::new(
            startup::retried("read the dev clock", || {
                dev_time::follow_skewed(pool.clone(), config.dev_clock_skew)
            })
            .await?,
        )
    } else {
        Arc::new(SystemClock)
    };
    let env = JobEnv {
        pool,
        clock,
        settings: Arc::new(ProgramSettings::default()),
        mailer: Mailer::new(&config.smtp_url, &config.smtp_from)?,
        stripe: StripeGateway::new(&config.stripe)?,
        sweep: SweepConfig {
            interval: chrono::Duration::from_std(config.reconcile_interval)?,
            settings: SweepSettings {
                // Clamped to a century: chrono's durations are bounded.
                done_retention: chrono::Duration::days(
                    i64::try_from(config.done_job_retention_days.min(36_500)).unwrap_or(36_500),
                ),
                ..SweepSettings::default()
            },
        },
    };
    let settings = RuntimeSettings {
        concurrency: config.concurrency,
        batch_size: config.batch_size,
        lanes: config.lanes,
        safety_wake: config.safety_wake,
        retry_base: config.retry_base,
        shutdown_grace: Duration::from_secs(30),
        orphan_after: config.orphan_after,
    };
    tracing::info!(concurrency = config.concurrency, "worker started");
    // The first sweep, unless a worker scheduled it already (and a broken chain revived).
    startup::retried("schedule the sweep", || {
        referral_worker::jobs::reconcile::schedule_next(&env)
    })
    .await
    .map_err(|e| anyhow::anyhow!(e))?;
    let http_pool = env.pool.clone();
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http_addr = config.http_addr;
    let http_serving = http_pool.clone();
    let http = tokio::spawn(async move {
        let stop = async move {
            let _ = http_stopped.await;
        };
        // The queues run on without it: health and metrics are for operators, not money.
        if let Err(error) = referral_worker::http::serve(http_addr, http_serving, stop).await {
            tracing::error!(%error, %http_addr, "worker health server cannot serve (WORKER_HTTP_ADDR)");
        }
    });
    let heartbeat = tokio::spawn(referral_worker::http::heartbeat(
        http_pool,
        config.heartbeat,
    ));
    let stopped = referral_worker::Queues::all(env, settings)
        .spawn(shutdown_signal())
        .wait()
        .await
        .map_err(|e| anyhow::anyhow!(e));
    heartbeat.abort();
    let _ = http_stop.send(());
    let _ = http.await;
    stopped?;
    tracing::info!("worker stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
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
