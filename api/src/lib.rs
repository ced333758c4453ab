//! The HTTP API (poem + poem-openapi): typed endpoints, one error shape, bearer API keys.
//!
//! Handlers translate DTOs, open a transaction and call `referral_core` use cases; the
//! HTTP status of every failure is chosen in [`error`] and nowhere else.

pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod request_id;
pub mod routes;

use std::sync::Arc;

use poem::middleware::Cors;
use poem::{Endpoint, EndpointExt, Route};
use poem_openapi::OpenApiService;
use referral_core::{Clock, OffsetClock, ProgramSettings};
use sqlx::PgPool;

pub use config::ApiConfig;

/// The server URL written into the spec; constant so `openapi.json` does not depend on
/// where it was generated.
pub const SPEC_SERVER_URL: &str = "http://localhost:8080";

/// What every handler may use.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// The clock shared with the worker.
    pub clock: Arc<dyn Clock>,
    /// Program numbers.
    pub settings: Arc<ProgramSettings>,
    /// Public URLs the API hands out.
    pub config: Arc<ApiConfig>,
    /// The movable clock of a local installation (`DEV_TIME_TRAVEL`), if enabled.
    pub dev_clock: Option<OffsetClock>,
}

type Apis = (
    routes::health::HealthApi,
    routes::users::UsersApi,
    routes::clicks::ClicksApi,
    routes::admin::AdminApi,
);

/// The documented API.
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            routes::health::HealthApi,
            routes::users::UsersApi,
            routes::clicks::ClicksApi,
            routes::admin::AdminApi,
        ),
        "Referral & partner-program engine",
        env!("CARGO_PKG_VERSION"),
    )
    .description(
        "Referral links and click tracking, attributed signups with expiring credit, \
         commissions and payouts. Errors share one JSON shape: \
         `{status, code, message, field?}`; `code` is stable and machine-readable.",
    )
    .server(SPEC_SERVER_URL)
}

/// The whole HTTP application: API, interactive docs at `/docs`, spec at `/openapi.json`.
pub fn app(state: AppState) -> impl Endpoint {
    let api = openapi();
    let docs = api.swagger_ui();
    let spec = api.spec_endpoint();
    Route::new()
        .nest("/", api)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .with(Cors::new())
        .data(state)
        .catch_all_error(error::catch_all)
        .with(request_id::RequestIdMiddleware)
}
