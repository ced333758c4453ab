//! Errors of the data-access layer.

/// A database failure; constraint violations that are client errors are mapped to
/// domain errors at the call site, so what reaches this type is infrastructure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed.
    #[error("database error")]
    Database(#[from] sqlx::Error),
    /// The job queue refused a job.
    #[error("job queue error")]
    Queue(#[from] apalis_postgres::Error),
    /// A job payload could not be encoded.
    #[error("job payload encoding")]
    Encode(#[from] serde_json::Error),
    /// A stored row broke an invariant the schema should have kept.
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Name of the unique constraint a database error violated, if any.
pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}
