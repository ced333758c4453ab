//! Stand-ins for what the engine talks to, shared by the end-to-end tests and by local
//! runs (`scripts/start` starts both binaries when no real Stripe or SMTP is configured).

pub mod fake_stripe;
pub mod faults;
pub mod invariants;
pub mod smtp_capture;
pub mod smtp_server;

/// Logs of the stand-in binaries: `RUST_LOG`, `info` by default.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
}
