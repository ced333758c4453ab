//! Prometheus metrics: one recorder per process, rendered by the api's and the worker's
//! `/metrics`. Counters and histograms are recorded where things happen (requests, job
//! attempts, money moved); the queue gauges are read from the database at each scrape,
//! so every process reports the same, current backlog.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;

use crate::error::StoreError;
use crate::money::Money;

/// Latency buckets, in seconds: a millisecond to ten seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(BUCKETS) {
            Ok(with_buckets) => with_buckets,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only when another recorder was installed first; ours then renders empty,
        // which the tests would see.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts money moved by `kind` (`commission_paid`, `payout_requested`, …), in cents.
pub fn money_moved(kind: &'static str, amount: Money) {
    handle();
    metrics::counter!("referral_money_moved_cents_total", "kind" => kind)
        .increment(u64::try_from(amount.to_minor_units().unwrap_or(0)).unwrap_or(0));
}

/// The metrics as Prometheus text, with the queue gauges read now.
pub async fn render(pool: &PgPool) -> Result<String, StoreError> {
    let handle = handle();
    // A queue with no job at all reports zeros rather than vanishing.
    for queue in crate::usecases::operations::backlog(pool).await? {
        let labels = [("queue", queue.queue.clone())];
        metrics::gauge!("referral_queue_due_jobs", &labels).set(queue.due as f64);
        metrics::gauge!("referral_queue_scheduled_jobs", &labels).set(queue.scheduled as f64);
        metrics::gauge!("referral_queue_running_jobs", &labels).set(queue.running as f64);
        metrics::gauge!("referral_queue_failed_jobs", &labels).set(queue.failed as f64);
        metrics::gauge!("referral_queue_oldest_due_seconds", &labels).set(queue.oldest_due_seconds);
    }
    Ok(handle.render())
}
