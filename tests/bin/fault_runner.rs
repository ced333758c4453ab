//! `fault-runner`: plays seeded stories under seeded faults against the real binaries
//! and checks the money's invariants after each (see RELIABILITY.md). Exits 1 when any
//! invariant broke, naming the seed that breaks it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use referral_tests::faults::{Planted, Suite};

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
    /// Checks the checker: plants this bug in every run (`scripts/faults --mutant NAME`
    /// builds the engine with its planted bugs); the runs must report it.
    #[arg(long, value_parser = planted_by_name)]
    mutant: Option<Planted>,
    /// Measures the checker: every planted bug over the seeds, and the share of seeds
    /// that caught each (`scripts/faults --mutants`).
    #[arg(long, conflicts_with_all = ["mutant", "soak"])]
    mutants: bool,
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
    let plants_in_product = args.mutants || matches!(args.mutant, Some(Planted::Product(_)));
    anyhow::ensure!(
        !plants_in_product || referral_core::mutants::COMPILED,
        "this build has no planted bugs: run it through scripts/faults --mutants (or --mutant NAME)"
    );
    let suite = Suite::start(args.steps, args.log_dir.clone())?;
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
        "not every run held, a planted bug was caught in fewer than half the seeds, or the \
         runner was interrupted: see above"
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

fn planted_by_name(name: &str) -> Result<Planted, String> {
    Planted::all()
        .into_iter()
        .find(|planted| planted.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = Planted::all().into_iter().map(Planted::name).collect();
            format!(
                "no planted bug is called {name}; there are: {}",
                names.join(", ")
            )
        })
}

/// Every planted bug over the seeds: the share of seeds whose checks broke. Passes when
/// each was caught in at least half of them.
async fn measure_mutants(args: &Args, suite: &Suite) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut rows = Vec::new();
    for planted in Planted::all() {
        let mut caught = Vec::new();
        let mut missed = Vec::new();
        for seed in args.seed..args.seed + args.runs {
            let report = suite
                .run(seed, Some(planted))
                .await
                .with_context(|| format!("seed {seed} with {} could not be run", planted.name()))?;
            let verdict = if report.violations.is_empty() {
                missed.push(seed);
                "missed".to_owned()
            } else {
                caught.push(seed);
                format!("caught: {}", report.violations[0])
            };
            let mut out = std::io::stdout().lock();
            writeln!(out, "{} seed {seed}: {verdict}", planted.name())?;
        }
        rows.push((planted.name(), caught.len(), missed));
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\n| planted bug | seeds that caught it | missed by seeds |"
    )?;
    writeln!(out, "| --- | --- | --- |")?;
    let mut all_seen = true;
    for (name, caught, missed) in &rows {
        let share = 100.0 * *caught as f64 / args.runs.max(1) as f64;
        all_seen &= 2 * *caught as u64 >= args.runs;
        writeln!(
            out,
            "| `{name}` | {caught} / {} ({share:.0} %) | {missed:?} |",
            args.runs
        )?;
    }
    Ok(all_seen)
}

/// The soak, the mutants or the seeds, as asked; whether everything held.
async fn play(args: &Args, suite: &Suite) -> anyhow::Result<bool> {
    if args.mutants {
        return measure_mutants(args, suite).await;
    }
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
            .run(seed, args.mutant)
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
