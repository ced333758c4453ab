//! The one place HTTP statuses are chosen. Every non-2xx answer is
//! `{status, code, message, field?}` with a stable `SCREAMING_SNAKE` code.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};
use referral_core::StoreError;
use referral_core::domain::credit::SpendRefused;
use referral_core::usecases::clicks::ClickError;
use referral_core::usecases::credit::SpendError;
use referral_core::usecases::signup::SignUpError;

/// The error body.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(example)]
pub struct ErrorBody {
    /// HTTP status code, repeated for clients that only see the body.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request field at fault, for validation errors.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl poem_openapi::types::Example for ErrorBody {
    fn example() -> Self {
        Self {
            status: 422,
            code: "INVALID_FIELD".into(),
            message: "email: not an e-mail address".into(),
            field: Some("email".into()),
        }
    }
}

/// A failed request, as documented in the spec.
#[derive(Debug, Clone, ApiResponse)]
#[oai(bad_request_handler = "from_request_error")]
pub enum ApiError {
    /// The body is not valid JSON, or the request is malformed.
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing or unknown API key.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The API key's role may not do this.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The thing named in the path does not exist.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The request conflicts with the current state; nothing was written.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// Well-formed JSON with a field that breaks a rule; nothing was written.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Something failed on our side; details are in the logs under the request id.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// A dependency (the database) is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::build(status, code, message.into(), None)
    }

    /// A validation error naming `field`.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        Self::build(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_FIELD",
            format!("{field}: {message}"),
            Some(field.to_owned()),
        )
    }

    fn build(status: StatusCode, code: &str, message: String, field: Option<String>) -> Self {
        let body = Json(ErrorBody {
            status: status.as_u16(),
            code: code.to_owned(),
            message,
            field,
        });
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized(body),
            StatusCode::FORBIDDEN => Self::Forbidden(body),
            StatusCode::NOT_FOUND => Self::NotFound(body),
            StatusCode::CONFLICT => Self::Conflict(body),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(body),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(body),
            s if s.is_server_error() => Self::Internal(body),
            _ => Self::BadRequest(body),
        }
    }

    /// The same error, naming `field`.
    pub fn with_field(mut self, field: &str) -> Self {
        self.body_mut().field = Some(field.to_owned());
        self
    }

    fn body_mut(&mut self) -> &mut ErrorBody {
        match self {
            Self::BadRequest(b)
            | Self::Unauthorized(b)
            | Self::Forbidden(b)
            | Self::NotFound(b)
            | Self::Conflict(b)
            | Self::Unprocessable(b)
            | Self::Internal(b)
            | Self::Unavailable(b) => &mut b.0,
        }
    }

    /// No user has this platform id.
    pub fn user_not_found(user_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "USER_NOT_FOUND",
            format!("no user with user_id `{user_id}`"),
        )
    }

    /// The body, whatever the variant.
    pub fn body(&self) -> &ErrorBody {
        match self {
            Self::BadRequest(b)
            | Self::Unauthorized(b)
            | Self::Forbidden(b)
            | Self::NotFound(b)
            | Self::Conflict(b)
            | Self::Unprocessable(b)
            | Self::Internal(b)
            | Self::Unavailable(b) => &b.0,
        }
    }

    /// An opaque 500; the cause goes to the log, not the client.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = ?cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error; the request id in the x-request-id header finds it in our logs",
        )
    }
}

/// An [`ApiError`] carried through poem's error type (from extractors and checkers),
/// recovered intact by [`from_request_error`] and [`catch_all`].
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.body().message)]
pub struct Carried(pub ApiError);

impl From<Carried> for poem::Error {
    fn from(carried: Carried) -> Self {
        let status = StatusCode::from_u16(carried.0.body().status)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        poem::Error::new(carried, status)
    }
}

/// Maps poem-openapi's request-parsing failures to the common shape.
pub fn from_request_error(error: poem::Error) -> ApiError {
    if let Some(Carried(api_error)) = error.downcast_ref::<Carried>() {
        return api_error.clone();
    }
    if let Some(e) = error.downcast_ref::<ParseParamError>() {
        return ApiError::invalid_field(e.name, &e.reason);
    }
    if let Some(e) = error.downcast_ref::<ParsePathError>() {
        return ApiError::invalid_field(e.name, &e.reason);
    }
    if error.is::<AuthorizationError>() {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "missing API key: send `Authorization: Bearer <key>`",
        );
    }
    if let Some(e) = error.downcast_ref::<ContentTypeError>() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED_CONTENT_TYPE",
            format!("{e}; send `Content-Type: application/json`"),
        );
    }
    if let Some(e) = error.downcast_ref::<ParseRequestPayloadError>() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            e.reason.clone(),
        );
    }
    ApiError::new(error.status(), "BAD_REQUEST", error.to_string())
}

/// Last line of defence: any error leaving the app (unknown route, wrong method, an
/// error from a middleware) gets the common shape.
pub async fn catch_all(error: poem::Error) -> Response {
    if error.is_from_response() {
        return error.into_response();
    }
    if let Some(Carried(api_error)) = error.downcast_ref::<Carried>() {
        return api_error.clone().into_response();
    }
    let status = error.status();
    let api_error = match status {
        StatusCode::NOT_FOUND => ApiError::new(status, "ROUTE_NOT_FOUND", "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            // 405 has no variant of its own in the spec; answer it directly.
            let body = ErrorBody {
                status: 405,
                code: "METHOD_NOT_ALLOWED".into(),
                message: "method not allowed on this route".into(),
                field: None,
            };
            return poem::web::Json(body)
                .with_status(StatusCode::METHOD_NOT_ALLOWED)
                .into_response();
        }
        s if s.is_server_error() => ApiError::internal(&error),
        _ => from_request_error(error),
    };
    api_error.into_response()
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Database(sqlx::Error::PoolTimedOut)
            | StoreError::Database(sqlx::Error::Io(_)) => {
                tracing::error!(error = ?error, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "DATABASE_UNAVAILABLE",
                    "the database is unavailable; retry later",
                )
            }
            StoreError::Database(_)
            | StoreError::Queue(_)
            | StoreError::Encode(_)
            | StoreError::Corrupt(_) => ApiError::internal(&error),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::from(error).into()
    }
}

impl From<SignUpError> for ApiError {
    fn from(error: SignUpError) -> Self {
        match error {
            SignUpError::DuplicatePlatformId => ApiError::new(
                StatusCode::CONFLICT,
                "USER_ALREADY_EXISTS",
                "user_id: a user with this user_id already exists",
            )
            .with_field("user_id"),
            SignUpError::DuplicateEmail => ApiError::new(
                StatusCode::CONFLICT,
                "EMAIL_ALREADY_REGISTERED",
                "email: a user with this e-mail already exists",
            )
            .with_field("email"),
            SignUpError::Store(e) => e.into(),
        }
    }
}

impl From<ClickError> for ApiError {
    fn from(error: ClickError) -> Self {
        match error {
            ClickError::UnknownCode(_) => ApiError::new(
                StatusCode::NOT_FOUND,
                "UNKNOWN_REFERRAL_CODE",
                error.to_string(),
            ),
            ClickError::Store(e) => e.into(),
        }
    }
}

impl From<SpendError> for ApiError {
    fn from(error: SpendError) -> Self {
        match error {
            SpendError::Refused(SpendRefused::Insufficient { .. }) => ApiError::new(
                StatusCode::CONFLICT,
                "INSUFFICIENT_CREDIT",
                error.to_string(),
            )
            .with_field("amount"),
            SpendError::Refused(SpendRefused::Amount(e)) => ApiError::invalid_field("amount", e),
            SpendError::ReferenceReused { .. } => {
                ApiError::new(StatusCode::CONFLICT, "REFERENCE_REUSED", error.to_string())
                    .with_field("reference")
            }
            SpendError::Store(e) => e.into(),
        }
    }
}
