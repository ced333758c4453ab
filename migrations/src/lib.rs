//! Schema migrations: ours (`sql/`, history in `public._sqlx_migrations`) and the job
//! queue's (apalis-postgres, history in `apalis._sqlx_migrations`), kept apart so their
//! version numbers never collide.

use sqlx::PgPool;
use sqlx::migrate::{MigrateError, Migrator};

static OURS: Migrator = sqlx::migrate!("./sql");

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The job queue's migrations failed.
    #[error("job queue migrations failed")]
    Queue(#[source] apalis_postgres::Error),
    /// Our migrations failed.
    #[error("schema migrations failed")]
    Schema(#[source] MigrateError),
}

/// Brings the database up to date. Safe to call from several processes at once: each
/// migrator holds a Postgres advisory lock while it runs.
pub async fn run(pool: &PgPool) -> Result<(), MigrationError> {
    apalis_postgres::PostgresStorage::setup(pool)
        .await
        .map_err(MigrationError::Queue)?;
    OURS.run(pool).await.map_err(MigrationError::Schema)?;
    tracing::info!("migrations applied");
    Ok(())
}
