//! The local Stripe stand-in as a program, for `scripts/start` and the walk-through:
//! `FAKE_STRIPE_ADDR` (127.0.0.1:12111), signed webhooks to `FAKE_STRIPE_WEBHOOK_URL`
//! with `STRIPE_WEBHOOK_SECRET`. Every request is logged.

use referral_tests::fake_stripe::FakeStripe;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    referral_tests::init_logging();
    let addr = std::env::var("FAKE_STRIPE_ADDR").unwrap_or_else(|_| "127.0.0.1:12111".into());
    let webhook = std::env::var("FAKE_STRIPE_WEBHOOK_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:8080/v1/stripe/webhook".into());
    let secret = std::env::var("STRIPE_WEBHOOK_SECRET").unwrap_or_else(|_| "whsec_local".into());
    let listener = std::net::TcpListener::bind(&addr)?;
    listener.set_nonblocking(true)?;
    let fake = FakeStripe::serve(listener)?;
    fake.send_webhooks_to(&webhook, &secret);
    tracing::info!(base_url = %fake.base_url, %webhook, "local Stripe stand-in listening");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
