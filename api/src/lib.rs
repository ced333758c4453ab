//! The HTTP API (poem + poem-openapi): typed endpoints, one error shape, bearer API keys.
//!
//! Handlers parse the request, call one `referral_core` use case and map its answer to
//! a DTO; the HTTP status of every failure is chosen in [`error`] and nowhere else.

pub mod auth;
pub mod body;
pub mod config;
pub mod error;
pub mod fields;
pub mod listener;
pub mod pages;
pub mod rate_limit;
pub mod routes;
pub mod spec_routes;

use std::sync::Arc;

use poem::endpoint::make_sync;
use poem::middleware::{CatchPanic, Cors, RequestId, ReuseId};
use poem::web::Html;
use poem::{Endpoint, EndpointExt, IntoResponse, Response, Route};
use poem_openapi::OpenApiService;
use referral_core::dev_time::OffsetClock;
use referral_core::stripe::StripeGateway;
use referral_core::usecases::api_keys::KeyCache;
use referral_core::usecases::clicks::ClickRecorder;
use referral_core::usecases::pages::PageSecret;
use referral_core::{Clock, ProgramSettings};
use sqlx::PgPool;

pub use config::ApiConfig;

use crate::error::{ApiError, ErrorCode};

/// The server URL written into the spec; constant so `openapi.json` does not depend on
/// where it was generated.
pub const SPEC_SERVER_URL: &str = "http://localhost:8080";

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

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
    /// Stripe.
    pub stripe: StripeGateway,
    /// The per-address limit of the public link redirects, if any.
    pub redirect_limiter: Option<Arc<rate_limit::RateLimiter>>,
    /// Clicks, committed in groups.
    pub clicks: ClickRecorder,
    /// API keys this process found live in the last second.
    pub api_keys: Arc<KeyCache>,
    /// The key that signs the pages' tokens.
    pub page_secret: Arc<PageSecret>,
}

impl AppState {
    /// The state of one api process. Starts the click writers, so it must be called
    /// inside the Tokio runtime that serves the api.
    pub fn new(
        pool: PgPool,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
        stripe: StripeGateway,
        dev_clock: Option<OffsetClock>,
    ) -> Self {
        Self {
            clicks: ClickRecorder::start(&pool, config.click_batching),
            api_keys: Arc::new(KeyCache::default()),
            page_secret: Arc::new(match &config.pages.page_secret {
                Some(secret) => PageSecret::fixed(secret.0.clone()),
                None => PageSecret::default(),
            }),
            redirect_limiter: config
                .redirect_limit
                .map(|limit| Arc::new(rate_limit::RateLimiter::new(limit))),
            settings: Arc::new(ProgramSettings::default()),
            config: Arc::new(config),
            pool,
            clock,
            stripe,
            dev_clock,
        }
    }
}

type Apis = (
    routes::health::HealthApi,
    routes::health::MetricsApi,
    routes::users::UsersApi,
    routes::referrals::ReferralsApi,
    routes::wallet::WalletApi,
    routes::clicks::ClicksApi,
    routes::purchases::PurchasesApi,
    routes::commissions::CommissionsApi,
    routes::partner::PartnerApi,
    routes::payouts::PayoutsApi,
    routes::payouts::StripeWebhookApi,
    routes::admin::AdminApi,
    routes::dev::DevApi,
);

/// The documented API.
pub fn openapi() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        (
            routes::health::HealthApi,
            routes::health::MetricsApi,
            routes::users::UsersApi,
            routes::referrals::ReferralsApi,
            routes::wallet::WalletApi,
            routes::clicks::ClicksApi,
            routes::purchases::PurchasesApi,
            routes::commissions::CommissionsApi,
            routes::partner::PartnerApi,
            routes::payouts::PayoutsApi,
            routes::payouts::StripeWebhookApi,
            routes::admin::AdminApi,
            routes::dev::DevApi,
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

/// The spec as served and checked in. poem-openapi cannot say that a request body
/// refuses unknown properties, and ours do (a misspelt field is an error, not silently
/// ignored), so every request-body schema gets `additionalProperties: false` here.
pub fn spec_json() -> String {
    let raw = openapi().spec();
    let Ok(mut spec) = serde_json::from_str::<serde_json::Value>(&raw) else {
        return raw;
    };
    let request_schemas: Vec<String> = spec["paths"]
        .as_object()
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(|path| path.as_object())
        .flat_map(|methods| methods.values())
        .filter_map(|op| op["requestBody"]["content"].as_object())
        .flat_map(|content| content.values())
        .filter_map(|media| media["schema"]["$ref"].as_str())
        .filter_map(|reference| reference.strip_prefix("#/components/schemas/"))
        .map(str::to_owned)
        // Stripe's events carry far more than the webhook reads, and more with each API
        // version: that body is open.
        .filter(|name| name != "StripeEventBody")
        .collect();
    for name in request_schemas {
        if let Some(schema) = spec["components"]["schemas"][&name].as_object_mut() {
            schema.insert(
                "additionalProperties".into(),
                serde_json::Value::Bool(false),
            );
        }
    }
    plain_references(&mut spec);
    serde_json::to_string_pretty(&spec).unwrap_or(raw)
}

/// poem-openapi describes a field whose type is another schema as
/// `{"allOf": [{"$ref": X}, {"description": D}], "description": D}`. Client generators
/// cannot take `allOf` of an enum (openapi-python-client drops the whole model), so such a
/// field becomes `{"$ref": X, "description": D}`: the same type, and the description kept
/// beside the reference, where generators and documentation tools read it.
fn plain_references(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(map) => {
            let reference = match map.get("allOf").and_then(|all| all.as_array()) {
                Some(parts)
                    if parts.len() == 2
                        && parts[0].get("$ref").is_some()
                        && parts[1]
                            .as_object()
                            .is_some_and(|extra| extra.keys().all(|k| k == "description")) =>
                {
                    parts[0].get("$ref").cloned()
                }
                _ => None,
            };
            if let Some(reference) = reference {
                map.remove("allOf");
                map.insert("$ref".into(), reference);
            }
            for value in map.values_mut() {
                plain_references(value);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(plain_references),
        _ => {}
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send>) -> Response {
    tracing::error!("handler panicked");
    ApiError::new(
        ErrorCode::Internal,
        "internal error; the request id in the x-request-id header finds it in our logs",
    )
    .into_response()
}

#[derive(Clone)]
struct PanicAnswer;

impl poem::middleware::PanicHandler for PanicAnswer {
    type Response = Response;

    fn get_response(&self, panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
        panic_response(panic)
    }
}

/// An incoming request id is reused when it is short and printable; anything else is
/// dropped so a fresh one is generated, never echoed into our logs as sent.
fn sane_request_id(value: &poem::http::HeaderValue) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(u8::is_ascii_graphic)
}

/// The whole HTTP application: API, interactive docs at `/docs`, spec at `/openapi.json`.
pub fn app(state: AppState) -> impl Endpoint {
    referral_core::telemetry::handle();
    let api = openapi();
    let spec = spec_json();
    let docs = api.swagger_ui_html().replace(&api.spec(), &spec);
    let routes = spec_routes::SpecRoutes::from_spec(&spec);
    Route::new()
        .nest("/", api)
        .nest("/embed", pages::dashboard::routes())
        .nest("/ops", pages::ops::routes())
        .at("/assets/brand.css", pages::brand_css)
        .at("/assets/:name", pages::asset)
        .at("/docs", make_sync(move |_| Html(docs.clone())))
        .at(
            "/openapi.json",
            make_sync(move |_| {
                Response::builder()
                    .content_type("application/json")
                    .body(spec.clone())
            }),
        )
        .with(Cors::new())
        .data(state)
        .catch_all_error(error::catch_all)
        .with(CatchPanic::new().with_handler(PanicAnswer))
        .with(spec_routes::SpecAware::new(routes))
        // Inside the request-id span, so the line carries the id.
        .around(|endpoint, request| async move {
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let started = std::time::Instant::now();
            let response = endpoint.call(request).await?;
            let status = response.status().as_u16();
            // The operation's id, not the path: paths carry ids, and a label per id
            // would grow without bound.
            let operation = response
                .data::<poem_openapi::OperationId>()
                .map_or("other", |id| id.0);
            metrics::counter!("referral_http_requests_total",
                "operation" => operation, "status" => status.to_string())
            .increment(1);
            metrics::histogram!("referral_http_request_duration_seconds", "operation" => operation)
                .record(started.elapsed().as_secs_f64());
            tracing::info!(%method, %path, status, "request done");
            Ok(response)
        })
        .with(RequestId::with_header_name(REQUEST_ID_HEADER).reuse_id(ReuseId::Use))
        .around(|endpoint, mut request| async move {
            if request
                .headers()
                .get(REQUEST_ID_HEADER)
                .is_some_and(|v| !sane_request_id(v))
            {
                request.headers_mut().remove(REQUEST_ID_HEADER);
            }
            endpoint.call(request).await
        })
}
