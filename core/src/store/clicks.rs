//! Clicks on referral links: the highest-volume write, many per statement.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::clicks::{Click, NewClick};
use crate::error::StoreError;
use crate::ids::{ClickId, UserId};

/// Records `clicks` in one statement (code lookups, inserts and the owners' platform ids
/// together) and returns those whose code belongs to a user; a click on an unknown code
/// is not stored and not returned.
pub async fn insert_many(
    conn: &mut PgConnection,
    clicks: &[NewClick],
) -> Result<Vec<Click>, StoreError> {
    let ids: Vec<Uuid> = clicks.iter().map(|c| c.id.0).collect();
    let codes: Vec<&str> = clicks.iter().map(|c| c.code.as_str()).collect();
    let clicked_at: Vec<_> = clicks.iter().map(|c| c.clicked_at).collect();
    let sources: Vec<&str> = clicks.iter().map(|c| c.source.as_str()).collect();
    let ips: Vec<Option<String>> = clicks
        .iter()
        .map(|c| c.meta.ip.map(|ip| ip.to_string()))
        .collect();
    let user_agents: Vec<Option<&str>> = clicks
        .iter()
        .map(|c| c.meta.user_agent.as_deref())
        .collect();
    let referers: Vec<Option<&str>> = clicks.iter().map(|c| c.meta.referer.as_deref()).collect();
    let landing_pages: Vec<Option<&str>> = clicks
        .iter()
        .map(|c| c.meta.landing_page.as_deref())
        .collect();
    Ok(sqlx::query_as!(
        Click,
        r#"with input as (
             select * from unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[],
                                  $5::text[], $6::text[], $7::text[], $8::text[])
               as t(id, code, clicked_at, source, ip, user_agent, referer, landing_page)),
           inserted as (
             insert into clicks (id, referrer_id, clicked_at, source, ip, user_agent, referer, landing_page)
             select input.id, users.id, input.clicked_at, input.source, input.ip,
                    input.user_agent, input.referer, input.landing_page
             from input join users on users.referral_code = input.code
             returning id, referrer_id, clicked_at)
           select inserted.id as "id!: ClickId", inserted.referrer_id as "referrer_id!: UserId",
                  users.platform_user_id as "referrer_platform_id!", inserted.clicked_at as "clicked_at!"
           from inserted join users on users.id = inserted.referrer_id"#,
        &ids,
        &codes as &[&str],
        &clicked_at,
        &sources as &[&str],
        // Arrays with missing values: the macros check arrays of non-null elements only.
        &ips as _,
        &user_agents as _,
        &referers as _,
        &landing_pages as _,
    )
    .fetch_all(conn)
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
