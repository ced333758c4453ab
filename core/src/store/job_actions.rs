//! Operators' actions on jobs: who retried or discarded what, when and why.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::operations::JobAction;
use crate::domain::operations::JobRow;
use crate::error::StoreError;

/// Records an action on `row`.
pub async fn insert(
    conn: &mut PgConnection,
    row: &JobRow,
    action: &str,
    actor: &str,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query!(
        "insert into job_actions (id, job_id, queue, action, actor, reason, payload, last_error, at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        uuid::Uuid::now_v7(),
        row.id,
        row.queue,
        action,
        actor,
        reason,
        row.payload,
        row.last_error,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// The actions taken on `job_id`, newest first.
pub async fn of_job(conn: &mut PgConnection, job_id: &str) -> Result<Vec<JobAction>, StoreError> {
    Ok(sqlx::query_as!(
        JobAction,
        "select job_id, queue, action, actor, reason, at from job_actions
         where job_id = $1 order by at desc, id desc",
        job_id
    )
    .fetch_all(conn)
    .await?)
}
