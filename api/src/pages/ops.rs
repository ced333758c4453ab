//! The operators' console at `/ops`: queues, failed jobs (retry, discard) and recent
//! payouts, through the same use cases as the admin API.
//!
//! Signing in trades an admin API key for a session cookie (HttpOnly, SameSite=Strict,
//! scoped to `/ops`, signed, eight hours); the key itself is never stored in the browser.
//! A session ends early when its key is revoked. Every form carries a CSRF token derived
//! from the session (the sign-in form, which has no session yet, a random one doubled in
//! a cookie), checked before anything else.

use chrono::Duration;
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Form, Path, Query};
use poem::{Request, Response, Route, get, handler, post};
use rand::RngCore;
use referral_core::domain::api_key::ApiKey;
use referral_core::usecases::operations;
use referral_core::usecases::pages::{self, SessionError};
use serde::Deserialize;

use super::{Framing, flash, layout, page_response, see_other, usd};
use crate::AppState;
use crate::error::{ApiError, ErrorCode};

const SESSION_COOKIE: &str = "ops_session";
const LOGIN_CSRF_COOKIE: &str = "ops_login_csrf";
/// How long a console session lasts.
const SESSION_HOURS: i64 = 8;

/// `/ops/...`.
pub fn routes() -> Route {
    Route::new()
        .at("/", get(console))
        .at("/login", get(login_form).post(login))
        .at("/logout", post(logout))
        .at("/jobs/:job_id/retry", post(retry))
        .at("/jobs/:job_id/discard", post(discard))
}

/// The value of cookie `name` in the request.
fn cookie<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all("cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> String {
    let secure = if state.config.pages.api_public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/ops; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

fn console_page(state: &AppState, status: StatusCode, title: &str, body: Markup) -> Response {
    page_response(
        status,
        layout(title, &state.config.pages, body),
        Framing::Never,
    )
}

/// The signed-in operator and the session's cookie, or where to send the browser.
async fn session(state: &AppState, req: &Request) -> Result<(ApiKey, String), Response> {
    let Some(cookie) = cookie(req, SESSION_COOKIE).map(str::to_owned) else {
        return Err(see_other("/ops/login"));
    };
    let secret = match state.page_secret.get(&state.pool).await {
        Ok(secret) => secret,
        Err(error) => return Err(failure(state, ApiError::from(error))),
    };
    let mut conn = match state.pool.acquire().await {
        Ok(conn) => conn,
        Err(error) => return Err(failure(state, ApiError::from(error))),
    };
    match pages::ops_session(&mut conn, &secret, &cookie, state.clock.now()).await {
        Ok(key) => Ok((key, cookie)),
        Err(SessionError::Store(error)) => Err(failure(state, ApiError::from(error))),
        Err(SessionError::Token(_) | SessionError::KeyRevoked) => {
            Err(see_other("/ops/login?expired=1"))
        }
    }
}

fn failure(state: &AppState, error: ApiError) -> Response {
    let body = error.body();
    console_page(
        state,
        body.code.status(),
        "Operations",
        html! { p.flash.error role="alert" { (body.message) } p { a href="/ops" { "Back to the console" } } },
    )
}

/// The operator behind a console form: a live session, and the form carrying that
/// session's CSRF token.
async fn operator(state: &AppState, req: &Request, csrf: &str) -> Result<ApiKey, Response> {
    let (key, cookie) = session(state, req).await?;
    let secret = state
        .page_secret
        .get(&state.pool)
        .await
        .map_err(|error| failure(state, ApiError::from(error)))?;
    if pages::csrf_matches(&secret, &cookie, csrf) {
        Ok(key)
    } else {
        Err(refused_form(state))
    }
}

fn refused_form(state: &AppState) -> Response {
    console_page(
        state,
        ErrorCode::Forbidden.status(),
        "Operations",
        html! {
            p.flash.error role="alert" { "This form is stale or was not sent from the console. Nothing was changed." }
            p { a href="/ops" { "Back to the console" } }
        },
    )
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    expired: Option<String>,
}

#[handler]
async fn login_form(state: Data<&AppState>, Query(query): Query<LoginQuery>) -> Response {
    let error = query
        .expired
        .is_some()
        .then_some("Your session ended. Sign in again.");
    login_page(&state, StatusCode::OK, error)
}

/// The sign-in form, with a fresh nonce in a hidden field and in a cookie.
fn login_page(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let mut nonce = [0u8; 16];
    rand::rng().fill_bytes(&mut nonce);
    let nonce = hex::encode(nonce);
    let mut response = console_page(
        state,
        status,
        "Operations sign-in",
        html! {
            (flash(None, error))
            form.signin method="post" action="/ops/login" {
                input type="hidden" name="csrf" value=(&nonce);
                label for="admin_key" { "Admin API key" }
                input #admin_key type="password" name="admin_key" required autocomplete="off";
                button #sign-in type="submit" { "Sign in" }
            }
        },
    );
    if let Ok(value) = set_cookie(state, LOGIN_CSRF_COOKIE, &nonce, 600).parse() {
        response.headers_mut().append("set-cookie", value);
    }
    response
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    csrf: String,
    admin_key: String,
}

#[handler]
async fn login(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<LoginForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused_form(&state);
    };
    let expected = cookie(req, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let nonce_ok = !expected.is_empty()
        && subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), form.csrf.as_bytes()).into();
    if !nonce_ok {
        return refused_form(&state);
    }
    let signed_in = async {
        let secret = state.page_secret.get(&state.pool).await?;
        let mut conn = state.pool.acquire().await?;
        Ok::<_, ApiError>(
            pages::sign_in(
                &mut conn,
                &secret,
                state.clock.now(),
                form.admin_key.trim(),
                Duration::hours(SESSION_HOURS),
            )
            .await?,
        )
    }
    .await;
    match signed_in {
        Ok(session) => {
            tracing::info!(api_key = %session.key.id, "operator signed in to the console");
            let mut response = see_other("/ops");
            let headers = response.headers_mut();
            for value in [
                set_cookie(
                    &state,
                    SESSION_COOKIE,
                    &session.cookie,
                    SESSION_HOURS * 3600,
                ),
                set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0),
            ] {
                if let Ok(value) = value.parse() {
                    headers.append("set-cookie", value);
                }
            }
            response
        }
        Err(error) if error.body().code.status().is_server_error() => failure(&state, error),
        Err(_) => login_page(
            &state,
            ErrorCode::Unauthenticated.status(),
            Some("That is not a live admin API key."),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

#[handler]
async fn logout(
    req: &Request,
    state: Data<&AppState>,
    form: poem::Result<Form<CsrfForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused_form(&state);
    };
    if let Err(response) = operator(&state, req, &form.csrf).await {
        return response;
    }
    let mut response = see_other("/ops/login");
    if let Ok(value) = set_cookie(&state, SESSION_COOKIE, "", 0).parse() {
        response.headers_mut().append("set-cookie", value);
    }
    response
}

#[derive(Debug, Deserialize)]
struct ConsoleQuery {
    notice: Option<String>,
}

#[handler]
async fn console(
    req: &Request,
    state: Data<&AppState>,
    Query(query): Query<ConsoleQuery>,
) -> Response {
    let (key, cookie) = match session(&state, req).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let page = async {
        let secret = state.page_secret.get(&state.pool).await?;
        let queues = operations::backlog(&state.pool).await?;
        let mut conn = state.pool.acquire().await?;
        let failed = operations::failed_jobs(&mut conn, 50).await?;
        let payouts = operations::recent_payouts(&mut conn, 20).await?;
        Ok::<_, ApiError>((pages::csrf_token(&secret, &cookie), queues, failed, payouts))
    }
    .await;
    let (csrf, queues, failed, payouts) = match page {
        Ok(parts) => parts,
        Err(error) => return failure(&state, error),
    };
    let notice = match query.notice.as_deref() {
        Some("retried") => Some("Job re-queued: it runs again now."),
        Some("discarded") => Some("Job discarded."),
        _ => None,
    };
    console_page(
        &state,
        StatusCode::OK,
        "Operations",
        html! {
            (flash(notice, None))
            form.inline.signout method="post" action="/ops/logout" {
                span { "Signed in with key " strong { (key.name) } }
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
            section aria-labelledby="queues-h" {
                h2 #queues-h { "Queues" }
                table #queues {
                    thead { tr {
                        th scope="col" { "Queue" } th scope="col" { "Due" } th scope="col" { "Oldest due" }
                        th scope="col" { "Scheduled" } th scope="col" { "Running" } th scope="col" { "Failed" }
                    } }
                    tbody {
                        @for queue in &queues {
                            tr {
                                th scope="row" { (queue.queue) }
                                td.num { (queue.due) }
                                td.num { @if queue.due > 0 { (format!("{:.0} s", queue.oldest_due_seconds)) } @else { "–" } }
                                td.num { (queue.scheduled) }
                                td.num { (queue.running) }
                                td.num.failed[queue.failed > 0] { (queue.failed) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="failed-h" {
                h2 #failed-h { "Failed jobs" }
                @if failed.is_empty() {
                    p.empty { "No failed job." }
                } @else {
                    table #failed-jobs {
                        thead { tr {
                            th scope="col" { "Job" } th scope="col" { "Queue" } th scope="col" { "Attempts" }
                            th scope="col" { "Last error" } th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for job in &failed {
                                tr data-job=(job.id) {
                                    td { code { (job.id) } }
                                    td { (job.queue) }
                                    td.num { (job.attempts) " / " (job.max_attempts) }
                                    td.error-text { (error_text(job.last_error.as_deref())) }
                                    td.actions {
                                        form method="post" action=(format!("/ops/jobs/{}/retry", job.id)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            button.retry type="submit" aria-label=(format!("Retry job {}", job.id)) { "Retry" }
                                        }
                                        form method="post" action=(format!("/ops/jobs/{}/discard", job.id)) {
                                            input type="hidden" name="csrf" value=(csrf);
                                            label for=(format!("reason-{}", job.id)) { "Reason" }
                                            input id=(format!("reason-{}", job.id)) type="text" name="reason" required maxlength="500";
                                            button.discard type="submit" aria-label=(format!("Discard job {}", job.id)) { "Discard" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="payouts-h" {
                h2 #payouts-h { "Recent payouts" }
                @if payouts.is_empty() {
                    p.empty { "No payout yet." }
                } @else {
                    table #recent-payouts {
                        thead { tr {
                            th scope="col" { "Requested" } th scope="col" { "User" } th scope="col" { "Amount" }
                            th scope="col" { "Status" } th scope="col" { "Transfer" } th scope="col" { "Failure" }
                        } }
                        tbody {
                            @for (user, payout) in &payouts {
                                tr {
                                    td { (payout.requested_at.format("%Y-%m-%d %H:%M")) }
                                    td { (user) }
                                    td.num { (usd(payout.amount)) }
                                    td.status { (payout.status.as_str()) }
                                    td { (payout.transfer_id.as_deref().unwrap_or("–")) }
                                    td { (payout.failure_reason.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A job's last error as people read it: apalis stores it as `{"Err": "…"}`.
fn error_text(stored: Option<&str>) -> String {
    let Some(stored) = stored else {
        return String::new();
    };
    serde_json::from_str::<serde_json::Value>(stored)
        .ok()
        .and_then(|value| value.get("Err").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| stored.to_owned())
}

#[derive(Debug, Deserialize)]
struct DiscardForm {
    csrf: String,
    reason: String,
}

#[handler]
async fn retry(
    req: &Request,
    state: Data<&AppState>,
    Path(job_id): Path<String>,
    form: poem::Result<Form<CsrfForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused_form(&state);
    };
    let key = match operator(&state, req, &form.csrf).await {
        Ok(key) => key,
        Err(response) => return response,
    };
    let done = async {
        let mut tx = state.pool.begin().await?;
        operations::retry_one(&mut tx, &job_id, &key.name, state.clock.now()).await?;
        tx.commit().await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match done {
        Ok(()) => see_other("/ops?notice=retried"),
        Err(error) => failure(&state, error),
    }
}

#[handler]
async fn discard(
    req: &Request,
    state: Data<&AppState>,
    Path(job_id): Path<String>,
    form: poem::Result<Form<DiscardForm>>,
) -> Response {
    let Ok(Form(form)) = form else {
        return refused_form(&state);
    };
    let key = match operator(&state, req, &form.csrf).await {
        Ok(key) => key,
        Err(response) => return response,
    };
    let reason = form.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return failure(
            &state,
            ApiError::invalid_field(
                "reason",
                "say why the job is discarded (up to 500 characters)",
            ),
        );
    }
    let done = async {
        let mut tx = state.pool.begin().await?;
        operations::discard(&mut tx, &job_id, reason, &key.name, state.clock.now()).await?;
        tx.commit().await?;
        Ok::<_, ApiError>(())
    }
    .await;
    match done {
        Ok(()) => see_other("/ops?notice=discarded"),
        Err(error) => failure(&state, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_errors_read_as_their_message() {
        assert_eq!(
            error_text(Some(r#"{"Err": "smtp: refused"}"#)),
            "smtp: refused"
        );
        assert_eq!(error_text(Some("plain words")), "plain words");
        assert_eq!(error_text(None), "");
    }

    #[test]
    fn the_session_cookie_is_read_from_any_cookie_header() {
        let req = Request::builder()
            .header("cookie", "a=1; ops_session=tok.en; b=2")
            .finish();
        assert_eq!(cookie(&req, "ops_session"), Some("tok.en"));
        assert_eq!(cookie(&req, "ops"), None);
    }
}
