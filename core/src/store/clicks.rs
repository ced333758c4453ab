//! Clicks on referral links.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::error::StoreError;
use crate::ids::{ClickId, UserId};

/// Where a click was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
pub enum ClickSource {
    /// `GET /r/{code}` in a browser.
    Redirect,
    /// The JSON endpoint, for platforms that track on their side.
    Api,
}

/// What the browser told us about a click.
#[derive(Debug, Clone, Default)]
pub struct ClickMeta {
    /// Client IP.
    pub ip: Option<String>,
    /// User agent.
    pub user_agent: Option<String>,
    /// Referer header.
    pub referer: Option<String>,
    /// The page the visitor was sent to.
    pub landing_page: Option<String>,
}

/// A recorded click.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Click {
    /// Its id.
    pub id: ClickId,
    /// The link's owner.
    pub referrer_id: UserId,
    /// The owner's platform user id.
    pub referrer_platform_id: String,
    /// When.
    pub clicked_at: DateTime<Utc>,
}

/// Records a click on `code`'s link in one statement; `None` when no user has the code.
pub async fn insert_for_code(
    conn: &mut PgConnection,
    code: &str,
    clicked_at: DateTime<Utc>,
    source: ClickSource,
    meta: &ClickMeta,
) -> Result<Option<Click>, StoreError> {
    // One statement: the code lookup, the insert and the owner's platform id together.
    Ok(sqlx::query_as::<_, Click>(
        "with owner as (select id, platform_user_id from users where referral_code = $2),
              inserted as (
                insert into clicks (id, referrer_id, clicked_at, source, ip, user_agent, referer, landing_page)
                select $1, owner.id, $3, $4, $5, $6, $7, $8 from owner
                returning id, referrer_id, clicked_at)
         select inserted.id, inserted.referrer_id, owner.platform_user_id as referrer_platform_id,
                inserted.clicked_at
         from inserted join owner on owner.id = inserted.referrer_id",
    )
    .bind(ClickId::generate())
    .bind(code)
    .bind(clicked_at)
    .bind(source)
    .bind(&meta.ip)
    .bind(&meta.user_agent)
    .bind(&meta.referer)
    .bind(&meta.landing_page)
    .fetch_optional(conn)
    .await?)
}

/// A click by id.
pub async fn find(conn: &mut PgConnection, id: ClickId) -> Result<Option<Click>, StoreError> {
    Ok(sqlx::query_as::<_, Click>(
        "select c.id, c.referrer_id, u.platform_user_id as referrer_platform_id, c.clicked_at
         from clicks c join users u on u.id = c.referrer_id where c.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Marks the click as having led to `user`'s signup.
pub async fn mark_signed_up(
    conn: &mut PgConnection,
    id: ClickId,
    user: UserId,
) -> Result<(), StoreError> {
    sqlx::query("update clicks set signed_up_user_id = $2 where id = $1")
        .bind(id)
        .bind(user)
        .execute(conn)
        .await?;
    Ok(())
}
