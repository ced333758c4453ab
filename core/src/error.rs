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

impl From<crate::money::MoneyError> for StoreError {
    /// Arithmetic on amounts read back from the database can only fail if a stored row
    /// broke an invariant (a mixed currency, an overflow the schema should have stopped).
    fn from(error: crate::money::MoneyError) -> Self {
        StoreError::Corrupt(error.to_string())
    }
}

/// Name of the unique constraint a database error violated, if any.
pub fn violated_constraint(error: &sqlx::Error) -> Option<&str> {
    match error {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

/// Whether the database aborted the transaction only because of a conflict with another
/// one (a deadlock or a serialization failure): retrying it would pass.
pub fn is_transient_conflict(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("40P01" | "40001"))
        }
        _ => false,
    }
}
