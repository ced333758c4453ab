//! Recording clicks (SPEC: Attribution, rule 1), the highest-volume write.
//!
//! A commit costs a disk flush, and one flush per click caps a link at what the disk can
//! flush. [`ClickRecorder`] groups the clicks that arrive together into one multi-row
//! insert and one commit (group commit): each caller still waits for the commit that
//! holds its click, so an answered click is a durable click. Clicks wait for each other
//! only as long as a commit takes: a few writers take turns, one collecting the next
//! group while another commits.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::domain::clicks::{Click, ClickMeta, ClickSource, NewClick};
use crate::domain::referral_code;
use crate::error::StoreError;
use crate::ids::ClickId;
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
    /// The recorder stopped (the process is shutting down).
    #[error("click recording has stopped")]
    Stopped,
    /// The click was not committed in time (the database is slow or unreachable); it
    /// may still be stored.
    #[error("the click could not be stored in time")]
    TooSlow,
    /// The database could not store the group the click was in (logged once per group).
    #[error("the click could not be stored: the database is unavailable")]
    Unavailable,
}

/// How clicks are grouped.
#[derive(Debug, Clone, Copy)]
pub struct ClickBatching {
    /// Groups being collected or committed at once (each holds a database connection
    /// while it commits).
    pub writers: usize,
    /// Most clicks in one group.
    pub max_clicks: usize,
    /// Most bytes of click data in one group, so one statement stays small. (sqlx 0.9
    /// sends without TCP_NODELAY, which once made a statement over 16 KB wait 40 ms for
    /// the server's delayed ACK; our pools now set it, see `crate::pool`.)
    pub max_bytes: usize,
}

impl Default for ClickBatching {
    fn default() -> Self {
        Self {
            writers: 2,
            max_clicks: 64,
            max_bytes: 8 * 1024,
        }
    }
}

type Reply = oneshot::Sender<Result<Option<Click>, ClickError>>;

struct PendingClick {
    click: NewClick,
    reply: Reply,
}

/// Records clicks in groups; cheap to clone, one per api process.
#[derive(Debug, Clone)]
pub struct ClickRecorder {
    queue: mpsc::Sender<PendingClick>,
}

impl std::fmt::Debug for PendingClick {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingClick")
            .field("click", &self.click)
            .finish_non_exhaustive()
    }
}

impl ClickRecorder {
    /// Starts the writers on the current Tokio runtime, with connections of their own to
    /// `pool`'s database; they stop once every clone of the recorder is dropped, after
    /// storing what was handed to them.
    pub fn start(pool: &PgPool, batching: ClickBatching) -> Self {
        let writers = batching.writers.clamp(1, MAX_WRITERS);
        let max_clicks = batching.max_clicks.clamp(1, MAX_GROUP);
        // Postgres re-plans a prepared statement for each execution while a plan made for
        // its actual parameters looks cheaper than the generic one, and with arrays of
        // clicks it always does: planning then cost more than the insert. The group
        // statement's best plan does not depend on its values, so plan it once.
        // Connections of their own also keep a click burst from starving other requests
        // of connections.
        let options = (*pool.connect_options()).clone().options([
            ("plan_cache_mode", "force_generic_plan"),
            ("statement_timeout", "5s"),
        ]);
        let pool = crate::pool::pool_options()
            .max_connections(u32::try_from(writers).unwrap_or(u32::MAX))
            .acquire_timeout(CONNECT_WAIT)
            .connect_lazy_with(options);
        let (queue, received) = mpsc::channel(writers * max_clicks * 4);
        let received = Arc::new(Mutex::new(received));
        for _ in 0..writers {
            tokio::spawn(write_groups(
                pool.clone(),
                received.clone(),
                max_clicks,
                batching.max_bytes,
            ));
        }
        Self { queue }
    }

    /// Records a click on `code`'s link at `now`; returns once it is committed.
    pub async fn record(
        &self,
        now: DateTime<Utc>,
        code: &str,
        source: ClickSource,
        meta: ClickMeta,
    ) -> Result<Click, ClickError> {
        if !referral_code::is_well_formed(code) {
            return Err(ClickError::UnknownCode(code.to_owned()));
        }
        let click = NewClick {
            id: ClickId::generate(),
            code: code.to_owned(),
            clicked_at: now,
            source,
            meta,
        };
        let (reply, answer) = oneshot::channel();
        let stored = tokio::time::timeout(ANSWER_WITHIN, async {
            self.queue
                .send(PendingClick { click, reply })
                .await
                .map_err(|_| ClickError::Stopped)?;
            answer.await.map_err(|_| ClickError::Stopped)
        })
        .await
        // The click may still be stored: the answer says only that it was not in time.
        .map_err(|_| ClickError::TooSlow)???;
        stored.ok_or_else(|| ClickError::UnknownCode(code.to_owned()))
    }
}

/// Upper bounds of [`ClickBatching`]'s numbers, whatever the configuration says.
const MAX_WRITERS: usize = 64;
const MAX_GROUP: usize = 1_000;

/// Longest a writer waits for a connection; the statement itself is limited to 5 s
/// (`statement_timeout`), so a group is answered within about 10 s.
const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Longest a caller waits for its click's commit, queueing included.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

/// One writer: takes the clicks waiting (at least one, at most a group's worth) and
/// commits them together, until the recorder is dropped.
async fn write_groups(
    pool: PgPool,
    received: Arc<Mutex<mpsc::Receiver<PendingClick>>>,
    max_clicks: usize,
    max_bytes: usize,
) {
    loop {
        let group = {
            let mut received = received.lock().await;
            let Some(first) = received.recv().await else {
                return;
            };
            let mut bytes = first.click.wire_size();
            let mut group = vec![first];
            while group.len() < max_clicks && bytes < max_bytes {
                match received.try_recv() {
                    Ok(next) => {
                        bytes += next.click.wire_size();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        metrics::histogram!("referral_click_group_size").record(group.len() as f64);
        commit_group(&pool, group).await;
    }
}

async fn commit_group(pool: &PgPool, group: Vec<PendingClick>) {
    let clicks: Vec<NewClick> = group.iter().map(|p| p.click.clone()).collect();
    match insert(pool, &clicks).await {
        Ok(stored) => answer(group, stored),
        Err(error) if group.len() > 1 && refused_for_its_data(&error) => {
            // The statement was refused whole, so nothing of it was stored: store the
            // clicks one by one, so one click's bad data does not fail the others.
            tracing::warn!(%error, clicks = group.len(), "click group refused; storing its clicks one by one");
            for pending in group {
                match insert(pool, std::slice::from_ref(&pending.click)).await {
                    Ok(stored) => answer(vec![pending], stored),
                    Err(error) => {
                        let _ = pending.reply.send(Err(error.into()));
                    }
                }
            }
        }
        Err(error) => {
            // The database is unreachable or slow, or the reply was lost after a commit:
            // no retry, which could wait for long or store a click twice.
            tracing::error!(%error, clicks = group.len(), "click group failed");
            for pending in group {
                let _ = pending.reply.send(Err(ClickError::Unavailable));
            }
        }
    }
}

/// Whether Postgres refused the statement because of the values in it (SQLSTATE classes
/// 22, data exception, and 23, integrity constraint violation).
fn refused_for_its_data(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(db)) => db
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        _ => false,
    }
}

async fn insert(pool: &PgPool, clicks: &[NewClick]) -> Result<Vec<Click>, StoreError> {
    let mut conn = pool.acquire().await?;
    clicks::insert_many(&mut conn, clicks).await
}

/// Hands each caller its stored click, or `None` when its code belongs to no one. A
/// caller that gave up waiting (its client left) is skipped: its click is stored anyway.
fn answer(group: Vec<PendingClick>, stored: Vec<Click>) {
    let mut stored: std::collections::HashMap<ClickId, Click> =
        stored.into_iter().map(|click| (click.id, click)).collect();
    for pending in group {
        let _ = pending.reply.send(Ok(stored.remove(&pending.click.id)));
    }
}
