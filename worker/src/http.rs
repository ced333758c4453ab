//! The worker's own small HTTP server (`WORKER_HTTP_ADDR`): `/healthz` (the process
//! answers), `/readyz` (and reaches the database), `/metrics` (Prometheus text: job
//! attempts by queue and outcome with durations, money moved, queue backlogs). It listens
//! on a local address by default and has no keys: expose it to your scraper only.

use std::net::SocketAddr;

use poem::http::StatusCode;
use poem::listener::TcpListener;
use poem::web::Data;
use poem::{EndpointExt, Response, Route, Server, get, handler};
use referral_core::telemetry;
use referral_core::usecases::operations;
use sqlx::PgPool;

#[handler]
fn healthz() -> &'static str {
    "ok"
}

#[handler]
async fn readyz(pool: Data<&PgPool>) -> Response {
    match operations::database_answers(&pool).await {
        Ok(()) => Response::builder().body("ready"),
        Err(error) => {
            tracing::warn!(?error, "readiness check failed");
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("the database does not answer")
        }
    }
}

#[handler]
async fn metrics(pool: Data<&PgPool>) -> Response {
    match telemetry::render(&pool).await {
        Ok(text) => Response::builder()
            .content_type("text/plain; version=0.0.4")
            .body(text),
        Err(error) => {
            tracing::warn!(?error, "metrics unavailable");
            Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body("the database does not answer")
        }
    }
}

/// Serves until `shutdown` completes.
pub async fn serve(
    addr: SocketAddr,
    pool: PgPool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    telemetry::handle();
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .data(pool);
    tracing::info!(%addr, "worker health and metrics listening");
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(app, shutdown, None)
        .await
}

/// Logs a heartbeat with the backlog every `every`, so a quiet worker is visibly alive.
pub async fn heartbeat(pool: PgPool, every: std::time::Duration) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        match operations::backlog(&pool).await {
            Ok(backlog) => {
                let due: i64 = backlog.iter().map(|q| q.due).sum();
                let failed: i64 = backlog.iter().map(|q| q.failed).sum();
                tracing::info!(due, failed, "worker heartbeat");
            }
            Err(error) => tracing::warn!(?error, "worker heartbeat: database unavailable"),
        }
    }
}
