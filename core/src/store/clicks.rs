//! Clicks on referral links: the highest-volume write, one statement each.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::clicks::{Click, ClickMeta, ClickSource};
use crate::error::StoreError;
use crate::ids::{ClickId, UserId};

/// Records a click on `code`'s link in one statement; `None` when no user has the code.
pub async fn insert_for_code(
    conn: &mut PgConnection,
    code: &str,
    clicked_at: DateTime<Utc>,
    source: ClickSource,
    meta: &ClickMeta,
) -> Result<Option<Click>, StoreError> {
    // One statement: the code lookup, the insert and the owner's platform id together.
    Ok(sqlx::query_as!(
        Click,
        r#"with owner as (select id, platform_user_id from users where referral_code = $2),
                inserted as (
                  insert into clicks (id, referrer_id, clicked_at, source, ip, user_agent, referer, landing_page)
                  select $1, owner.id, $3, $4, $5, $6, $7, $8 from owner
                  returning id, referrer_id, clicked_at)
           select inserted.id as "id: ClickId", inserted.referrer_id as "referrer_id: UserId",
                  owner.platform_user_id as referrer_platform_id, inserted.clicked_at
           from inserted join owner on owner.id = inserted.referrer_id"#,
        ClickId::generate() as _,
        code,
        clicked_at,
        source as _,
        meta.ip.map(|ip| ip.to_string()),
        meta.user_agent.as_deref(),
        meta.referer.as_deref(),
        meta.landing_page.as_deref(),
    )
    .fetch_optional(conn)
    .await?)
}

/// A click by id.
pub async fn find(conn: &mut PgConnection, id: ClickId) -> Result<Option<Click>, StoreError> {
    Ok(sqlx::query_as!(
        Click,
        r#"select c.id as "id: ClickId", c.referrer_id as "referrer_id: UserId",
                  u.platform_user_id as referrer_platform_id, c.clicked_at
           from clicks c join users u on u.id = c.referrer_id where c.id = $1"#,
        id as _
    )
    .fetch_optional(conn)
    .await?)
}

/// Marks the click as having led to `user`'s signup.
pub async fn mark_signed_up(
    conn: &mut PgConnection,
    id: ClickId,
    user: UserId,
) -> Result<(), StoreError> {
    sqlx::query!(
        "update clicks set signed_up_user_id = $2 where id = $1",
        id as _,
        user as _
    )
    .execute(conn)
    .await?;
    Ok(())
}
