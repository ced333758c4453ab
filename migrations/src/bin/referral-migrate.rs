//! `referral-migrate`: brings the database at `DATABASE_URL` up to date and exits.

use anyhow::Context;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let url = std::env::var("DATABASE_URL").context("DATABASE_URL is not set")?;
    let pool = sqlx::PgPool::connect(&url)
        .await
        .context("cannot connect to DATABASE_URL")?;
    referral_migrations::run(&pool).await?;
    Ok(())
}
