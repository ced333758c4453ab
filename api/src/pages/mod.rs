//! Server-rendered web pages: the referral dashboard a platform embeds for one of its
//! users ([`dashboard`]) and the operators' console ([`ops`]). Templates are maud
//! macros, checked when the crate compiles; the stylesheet and the one small script are
//! compiled in and served from `/assets`, so a page needs nothing from another origin
//! (the platform's logo aside, when it sets one).
//!
//! Pages call the same use cases as the JSON API and add no rules of their own. Their
//! answers are always HTML, errors included.

pub mod dashboard;
pub mod ops;

use maud::{DOCTYPE, Markup, html};
use poem::http::{StatusCode, header};
use poem::web::{Data, Path};
use poem::{Response, handler};
use referral_core::Money;

use crate::AppState;
use crate::config::PagesConfig;

const STYLESHEET: &str = include_str!("../../assets/pages.css");
const SCRIPT: &str = include_str!("../../assets/pages.js");

/// `/assets/brand.css`: the platform's accent colour, as a stylesheet of its own (the
/// pages' CSP allows no inline style). The colour is a checked `#rrggbb`.
#[handler]
pub fn brand_css(state: Data<&AppState>) -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header("x-content-type-options", "nosniff")
        .body(format!(
            ":root{{--accent:{}}}\n",
            state.config.pages.brand_color
        ))
}

/// `/assets/{name}`: the pages' stylesheet and script.
#[handler]
pub fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type) = match name.as_str() {
        "pages.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "pages.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return Response::builder().status(StatusCode::NOT_FOUND).finish(),
    };
    Response::builder()
        .content_type(content_type)
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .header("x-content-type-options", "nosniff")
        .body(body)
}

/// How a page may be framed.
#[derive(Debug, Clone, Copy)]
enum Framing<'a> {
    /// By the listed origins (the dashboard, inside the platform's page).
    By(&'a str),
    /// Never (the console).
    Never,
}

/// An HTML answer with the headers every page carries: no caching (pages show balances
/// and carry tokens), no referrer (a dashboard address holds its token), scripts and
/// styles from this origin only.
fn page_response(status: StatusCode, body: Markup, framing: Framing<'_>) -> Response {
    let frame_ancestors = match framing {
        Framing::By(origins) => origins,
        Framing::Never => "'none'",
    };
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-content-type-options", "nosniff")
        .header(
            "content-security-policy",
            format!(
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; \
                 form-action 'self' https:; base-uri 'none'; frame-ancestors {frame_ancestors}"
            ),
        )
        .body(body.into_string())
}

/// A redirect after a form (303: the browser follows with a GET).
fn see_other(location: &str) -> Response {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .finish()
}

/// The frame of every page, in the platform's colours.
fn layout(title: &str, brand: &PagesConfig, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · " (brand.brand_name) }
                link rel="stylesheet" href="/assets/pages.css";
                link rel="stylesheet" href="/assets/brand.css";
                script src="/assets/pages.js" defer {}
            }
            body {
                header.top {
                    @if let Some(logo) = &brand.brand_logo_url {
                        img.logo src=(logo) alt=(brand.brand_name);
                    }
                    span.brand { (brand.brand_name) }
                    span.title { (title) }
                }
                main { (body) }
            }
        }
    }
}

/// `$12.50`, `-$3.00`.
fn usd(money: Money) -> String {
    let amount = money.amount().round_dp(2);
    if amount.is_sign_negative() && !amount.is_zero() {
        format!("-${:.2}", -amount)
    } else {
        format!("${amount:.2}")
    }
}

/// A notice or an error above a page's content, announced to screen readers.
fn flash(notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        @if let Some(error) = error {
            p.flash.error role="alert" { (error) }
        }
        @if let Some(notice) = notice {
            p.flash.notice role="status" { (notice) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_show_as_dollars_and_cents() {
        let usd_of = |cents: i64| usd(Money::usd_cents(cents));
        assert_eq!(usd_of(250), "$2.50");
        assert_eq!(usd_of(-300), "-$3.00");
        assert_eq!(usd_of(0), "$0.00");
        assert_eq!(usd_of(123_456), "$1234.56");
    }
}
