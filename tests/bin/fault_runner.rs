//! `fault-runner`: plays seeded stories under seeded faults against the real binaries
//! and checks the money's invariants after each (see RELIABILITY.md). Exits 1 when any
//! invariant broke, naming the seed that breaks it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use referral_tests::faults::Suite;

#[derive(Parser)]
#[command(about = "Seeded fault suite: kill -9, database crashes, Stripe and SMTP outages")]
struct Args {
    /// The first seed; runs use seed, seed + 1, ...
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many seeds to run.
    #[arg(long, default_value_t = 10)]
    runs: u64,
    /// Steps of each story.
    #[arg(long, default_value_t = 120)]
    steps: usize,
    /// Instead of the seeds: a soak of this many seconds (link visits and signups at a
    /// steady rate while the workers are killed and restarted).
    #[arg(long)]
    soak: Option<u64>,
    /// Requests a second of the soak.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Checks the checker: the Stripe stand-in forgets idempotency keys, so a request
    /// retried after a timeout moves money twice, and the runs must report it.
    #[arg(long)]
    stripe_forgets_idempotency_keys: bool,
    /// Where each failing run's service logs are kept.
    #[arg(long, default_value = "target/faults")]
    log_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let suite = Suite::start(args.steps, args.log_dir.clone())?;
    if args.stripe_forgets_idempotency_keys {
        suite.stripe().forget_idempotency_keys();
    }
    // Interrupted (Ctrl-C, SIGTERM, a CI time limit), it returns like a failed run: main
    // returning drops the services and the cluster, so nothing is left running.
    let passed = tokio::select! {
        passed = play(&args, &suite) => passed?,
        () = interrupted() => {
            tracing::error!("interrupted: stopping the services and the cluster");
            false
        }
    };
    anyhow::ensure!(
        passed,
        "not every run held (or the runner was interrupted): see above"
    );
    Ok(())
}

async fn interrupted() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// The soak or the seeds, as asked; whether everything held.
async fn play(args: &Args, suite: &Suite) -> anyhow::Result<bool> {
    if let Some(seconds) = args.soak {
        let report = suite.soak(seconds, args.rate).await?;
        let mut out = std::io::stdout().lock();
        use std::io::Write;
        writeln!(
            out,
            "soak: {} s at {}/s, {} worker kills\n\
             requests: {}, errors: {} ({:.3} %)\n\
             latency: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n\
             link visits acknowledged: {}, missing: {}\n\
             signups acknowledged: {}, missing: {}, referred without credit: {}",
            report.seconds,
            report.rate,
            report.worker_kills,
            report.requests,
            report.errors,
            100.0 * report.errors as f64 / report.requests.max(1) as f64,
            report.p50.as_secs_f64() * 1e3,
            report.p99.as_secs_f64() * 1e3,
            report.max.as_secs_f64() * 1e3,
            report.clicks_acknowledged,
            report.clicks_missing,
            report.signups_acknowledged,
            report.signups_missing,
            report.referred_without_credit,
        )?;
        let lost = report.clicks_missing + report.signups_missing;
        return Ok(lost == 0 && report.referred_without_credit == 0);
    }
    let mut faults: BTreeMap<&'static str, u32> = BTreeMap::new();
    let mut acknowledged: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut failed_seeds = Vec::new();
    let mut duplicates = 0;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for seed in args.seed..args.seed + args.runs {
        let report = suite
            .run(seed)
            .await
            .with_context(|| format!("seed {seed} could not be run"))?;
        let injected: u32 = report.faults.values().sum();
        for (kind, n) in &report.faults {
            *faults.entry(kind).or_default() += n;
        }
        for (kind, n) in &report.acknowledged {
            *acknowledged.entry(kind).or_default() += n;
        }
        duplicates += report.duplicate_deliveries;
        let verdict = if report.violations.is_empty() {
            "ok".to_owned()
        } else {
            failed_seeds.push(seed);
            format!("BROKEN (logs: {})", report.logs.display())
        };
        writeln!(
            out,
            "seed {seed}: {verdict}; {injected} faults, {} acknowledged writes, {:.1} s",
            report.acknowledged.values().sum::<usize>(),
            report.elapsed.as_secs_f64()
        )?;
        for violation in &report.violations {
            writeln!(out, "  seed {seed} violation: {violation}")?;
        }
    }
    writeln!(out, "faults injected by kind:")?;
    for (kind, n) in &faults {
        writeln!(out, "  {kind}: {n}")?;
    }
    writeln!(out, "acknowledged writes by kind:")?;
    for (kind, n) in &acknowledged {
        writeln!(out, "  {kind}: {n}")?;
    }
    writeln!(
        out,
        "e-mails delivered twice (same Message-ID): {duplicates}"
    )?;
    writeln!(
        out,
        "runs: {}, with violations: {} {:?}",
        args.runs,
        failed_seeds.len(),
        failed_seeds
    )?;
    Ok(failed_seeds.is_empty())
}
