//! Recording a click (SPEC: Attribution, rule 1): one insert, nothing else, because
//! clicks are the highest-volume write.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::clicks::{Click, ClickMeta, ClickSource};
use crate::domain::referral_code;
use crate::error::StoreError;
use crate::store::clicks;

/// Why a click was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ClickError {
    /// No user has this code.
    #[error("no referral link has the code `{0}`")]
    UnknownCode(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records a click on `code`'s link at `now`.
pub async fn record_click(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    code: &str,
    source: ClickSource,
    meta: &ClickMeta,
) -> Result<Click, ClickError> {
    if !referral_code::is_well_formed(code) {
        return Err(ClickError::UnknownCode(code.to_owned()));
    }
    clicks::insert_for_code(conn, code, now, source, meta)
        .await?
        .ok_or_else(|| ClickError::UnknownCode(code.to_owned()))
}
