//! The one place HTTP statuses are chosen. Every non-2xx answer is
//! `{status, code, message, field?}` with a stable `SCREAMING_SNAKE` code.

use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::error::{
    AuthorizationError, ContentTypeError, ParseParamError, ParsePathError, ParseRequestPayloadError,
};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object};
use referral_core::domain::credit::SpendRefused;
use referral_core::domain::partner::{DowngradeRefused, UpgradeRefused};
use referral_core::domain::payout::PayoutRefused;
use referral_core::payments::EventRejected;
use referral_core::usecases::UserLookupError;
use referral_core::usecases::api_keys::AuthError;
use referral_core::usecases::clicks::ClickError;
use referral_core::usecases::operations::OperationError;
use referral_core::usecases::partner::PartnerError;
use referral_core::usecases::payouts::PayoutError;
use referral_core::usecases::purchases::{PurchaseError, RefundError};
use referral_core::usecases::signup::SignUpError;
use referral_core::usecases::wallet::SpendError;
use referral_core::{MoneyError, StoreError};

/// Every stable error code of the API. A client matches on these; the HTTP status of
/// each is chosen once, in [`ErrorCode::status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum, serde::Serialize)]
#[oai(rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The request is malformed in a way no field names (400).
    BadRequest,
    /// The body is not valid JSON (400).
    MalformedJson,
    /// The request could not be read (400).
    MalformedRequest,
    /// No API key, or an unknown or revoked one (401).
    Unauthenticated,
    /// The API key's role may not call this endpoint (403).
    Forbidden,
    /// No route has this path (404).
    RouteNotFound,
    /// No user has the `user_id` of the path (404).
    UserNotFound,
    /// No referral link has this code (404).
    UnknownReferralCode,
    /// Local time travel is off on this installation (404).
    DevTimeTravelDisabled,
    /// No purchase has the `purchase_id` of the path (404).
    PurchaseNotFound,
    /// No job has the `job_id` of the path (404).
    JobNotFound,
    /// The route exists, not with this method (405).
    MethodNotAllowed,
    /// A user with this `user_id` exists already (409).
    UserAlreadyExists,
    /// A user with this e-mail exists already (409).
    EmailAlreadyRegistered,
    /// Less unexpired credit than asked for (409).
    InsufficientCredit,
    /// The reference was used before with another amount (409).
    ReferenceReused,
    /// The purchase id was recorded before with a different body (409).
    PurchaseIdReused,
    /// The refund id was recorded before with a different body (409).
    RefundIdReused,
    /// Only failed jobs can be retried or discarded by hand (409).
    JobNotFailed,
    /// The user is a Partner already (409).
    AlreadyPartner,
    /// The agreement signed is not the current one (409).
    AgreementNotCurrent,
    /// The user is not a Partner (409).
    NotAPartner,
    /// Going back to Basic needs a zero referral balance (409).
    ReferralBalanceNotZero,
    /// Going back to Basic needs no pending or eligible commission (409).
    CommissionsOutstanding,
    /// Going back to Basic needs no payout on its way (409).
    PayoutsInFlight,
    /// The purchase's payment failed: nothing to refund (409).
    PurchaseNotRefundable,
    /// More than what is left of the cash paid (409).
    RefundExceedsPayment,
    /// Connecting Stripe and payouts are for Partners (409).
    PartnerOnly,
    /// No Stripe account is connected yet (409).
    StripeNotConnected,
    /// Stripe has not enabled payouts on the account yet (409).
    PayoutsNotEnabled,
    /// Stripe needs more information from the user first (409).
    StripeRequirementsDue,
    /// The available referral balance is short of the payout (409).
    InsufficientReferralBalance,
    /// The body is larger than the API accepts (413).
    PayloadTooLarge,
    /// The body is not `application/json` (415).
    UnsupportedContentType,
    /// A field breaks a rule; `field` names it (422).
    InvalidField,
    /// A currency other than `USD` (422).
    UnsupportedCurrency,
    /// The payout amount is under the minimum payout (422).
    BelowMinimumPayout,
    /// A webhook's `Stripe-Signature` is missing, malformed, stale or wrong (400).
    InvalidSignature,
    /// A signed webhook body is not an event we can store (not an event's shape, or a
    /// NUL character in a string) (400).
    MalformedEvent,
    /// Stripe refused a request or could not be reached (502).
    StripeError,
    /// Something failed on our side (500).
    Internal,
    /// Too many requests from one address; `Retry-After` says when to come back (429).
    RateLimited,
    /// The database is unavailable (503).
    DatabaseUnavailable,
    /// A Stripe event names a payout whose sending is still being recorded; Stripe
    /// delivers it again later (503).
    EventArrivedEarly,
}

impl ErrorCode {
    /// The HTTP status of this code: the one place statuses are chosen.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest
            | Self::MalformedJson
            | Self::MalformedRequest
            | Self::InvalidSignature
            | Self::MalformedEvent => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RouteNotFound
            | Self::UserNotFound
            | Self::UnknownReferralCode
            | Self::DevTimeTravelDisabled
            | Self::PurchaseNotFound
            | Self::JobNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::UserAlreadyExists
            | Self::EmailAlreadyRegistered
            | Self::InsufficientCredit
            | Self::ReferenceReused
            | Self::PurchaseIdReused
            | Self::RefundIdReused
            | Self::JobNotFailed
            | Self::AlreadyPartner
            | Self::AgreementNotCurrent
            | Self::NotAPartner
            | Self::ReferralBalanceNotZero
            | Self::CommissionsOutstanding
            | Self::PayoutsInFlight
            | Self::PurchaseNotRefundable
            | Self::RefundExceedsPayment
            | Self::PartnerOnly
            | Self::StripeNotConnected
            | Self::PayoutsNotEnabled
            | Self::StripeRequirementsDue
            | Self::InsufficientReferralBalance => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::InvalidField | Self::UnsupportedCurrency | Self::BelowMinimumPayout => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::StripeError => StatusCode::BAD_GATEWAY,
            Self::DatabaseUnavailable | Self::EventArrivedEarly => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The error body.
#[derive(Debug, Clone, Object, serde::Serialize)]
#[oai(example)]
pub struct ErrorBody {
    /// HTTP status code, always equal to the response's status.
    pub status: u16,
    /// Stable machine-readable code.
    pub code: ErrorCode,
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
            code: ErrorCode::InvalidField,
            message: "email: not an e-mail address".into(),
            field: Some("email".into()),
        }
    }
}

/// A failed request, as documented in the spec. Build it with [`ApiError::new`]; the
/// variant follows from the code.
#[derive(Debug, Clone, ApiResponse)]
#[oai(bad_request_handler = "from_request_error")]
pub enum ApiError {
    /// The request is malformed: not JSON, or unreadable.
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
    /// The method is not allowed on this path; `Allow` lists those that are.
    #[oai(status = 405)]
    MethodNotAllowed(Json<ErrorBody>),
    /// The request conflicts with the current state; nothing was written.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The body is too large.
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is not JSON.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Well-formed JSON with a field that breaks a rule; nothing was written.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Too many requests from one address (the public link redirects are limited per
    /// address); nothing was written.
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>),
    /// Something failed on our side; details are in the logs under the request id.
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// Stripe refused a request or could not be reached; nothing was written.
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// A dependency (the database) is unavailable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl ApiError {
    /// An error with `code` and `message`; the status follows from the code.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::build(code, message.into(), None)
    }

    /// A validation error naming `field`.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        Self::build(
            ErrorCode::InvalidField,
            format!("{field}: {message}"),
            Some(field.to_owned()),
        )
    }

    fn build(code: ErrorCode, message: String, field: Option<String>) -> Self {
        let status = code.status();
        let body = Json(ErrorBody {
            status: status.as_u16(),
            code,
            message,
            field,
        });
        // The variant follows from the status alone, so a new code needs only its line in
        // `ErrorCode::status`.
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest(body),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(body),
            StatusCode::FORBIDDEN => Self::Forbidden(body),
            StatusCode::NOT_FOUND => Self::NotFound(body),
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed(body),
            StatusCode::CONFLICT => Self::Conflict(body),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(body),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(body),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(body),
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests(body),
            StatusCode::BAD_GATEWAY => Self::BadGateway(body),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(body),
            // A status without a variant of its own is a 500 (a test checks none is).
            _ => Self::Internal(body),
        }
    }

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
            | Self::MethodNotAllowed(b)
            | Self::Conflict(b)
            | Self::PayloadTooLarge(b)
            | Self::UnsupportedMediaType(b)
            | Self::Unprocessable(b)
            | Self::TooManyRequests(b)
            | Self::Internal(b)
            | Self::BadGateway(b)
            | Self::Unavailable(b) => &mut b.0,
        }
    }

    /// The body, whatever the variant.
    pub fn body(&self) -> &ErrorBody {
        match self {
            Self::BadRequest(b)
            | Self::Unauthorized(b)
            | Self::Forbidden(b)
            | Self::NotFound(b)
            | Self::MethodNotAllowed(b)
            | Self::Conflict(b)
            | Self::PayloadTooLarge(b)
            | Self::UnsupportedMediaType(b)
            | Self::Unprocessable(b)
            | Self::TooManyRequests(b)
            | Self::Internal(b)
            | Self::BadGateway(b)
            | Self::Unavailable(b) => &b.0,
        }
    }

    /// An opaque 500; the cause goes to the log, not the client.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = ?cause, "internal error");
        Self::new(
            ErrorCode::Internal,
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

/// poem-openapi wraps a parameter's parse error in the Rust types' names (`failed to
/// parse "X": … (occurred while parsing "optional_X")`); clients get the rule alone.
fn parameter_reason(reason: &str) -> &str {
    let reason = match reason.strip_prefix("failed to parse \"") {
        Some(rest) => rest.split_once("\": ").map_or(reason, |(_, why)| why),
        None => reason,
    };
    match reason.rfind(" (occurred while parsing \"") {
        Some(at) if reason.ends_with("\")") => &reason[..at],
        _ => reason,
    }
}

/// Maps poem-openapi's request-parsing failures to the common shape.
pub fn from_request_error(error: poem::Error) -> ApiError {
    if let Some(Carried(api_error)) = error.downcast_ref::<Carried>() {
        return api_error.clone();
    }
    if let Some(e) = error.downcast_ref::<ParseParamError>() {
        return ApiError::invalid_field(e.name, parameter_reason(&e.reason));
    }
    if let Some(e) = error.downcast_ref::<ParsePathError>() {
        return ApiError::invalid_field(e.name, parameter_reason(&e.reason));
    }
    if error.is::<AuthorizationError>() {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "missing API key: send `Authorization: Bearer <key>`",
        );
    }
    if let Some(e) = error.downcast_ref::<ContentTypeError>() {
        return ApiError::new(
            ErrorCode::UnsupportedContentType,
            format!("{e}; send `Content-Type: application/json`"),
        );
    }
    if let Some(e) = error.downcast_ref::<ParseRequestPayloadError>() {
        return ApiError::new(ErrorCode::MalformedRequest, e.reason.clone());
    }
    from_status(error.status(), &error)
}

/// An error that carries only a status (from poem itself) in the common shape.
fn from_status(status: StatusCode, error: &poem::Error) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::new(ErrorCode::RouteNotFound, "no such route"),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this route; the Allow header lists those that are",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorCode::PayloadTooLarge, "request body too large")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
            ErrorCode::UnsupportedContentType,
            "send `Content-Type: application/json`",
        ),
        s if s.is_server_error() => ApiError::internal(error),
        _ => ApiError::new(ErrorCode::BadRequest, error.to_string()),
    }
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
    let api_error = match error.status() {
        status @ (StatusCode::NOT_FOUND
        | StatusCode::METHOD_NOT_ALLOWED
        | StatusCode::PAYLOAD_TOO_LARGE) => from_status(status, &error),
        s if s.is_server_error() => ApiError::internal(&error),
        _ => from_request_error(error),
    };
    api_error.into_response()
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            conflict if referral_core::error::is_transient_conflict(conflict) => {
                tracing::warn!(error = ?error, "transaction lost a conflict; the client may retry");
                ApiError::new(
                    ErrorCode::DatabaseUnavailable,
                    "the request collided with another one; retry it",
                )
            }
            StoreError::Database(sqlx::Error::PoolTimedOut)
            | StoreError::Database(sqlx::Error::Io(_)) => {
                tracing::error!(error = ?error, "database unavailable");
                ApiError::new(
                    ErrorCode::DatabaseUnavailable,
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

impl From<EventRejected> for ApiError {
    fn from(error: EventRejected) -> Self {
        ApiError::new(ErrorCode::MalformedEvent, error.to_string())
    }
}

impl From<UserLookupError> for ApiError {
    fn from(error: UserLookupError) -> Self {
        match error {
            UserLookupError::NotFound(_) => {
                ApiError::new(ErrorCode::UserNotFound, error.to_string()).with_field("user_id")
            }
            UserLookupError::Store(e) => e.into(),
        }
    }
}

impl From<SignUpError> for ApiError {
    fn from(error: SignUpError) -> Self {
        match error {
            SignUpError::DuplicatePlatformId => ApiError::new(
                ErrorCode::UserAlreadyExists,
                "user_id: a user with this user_id already exists",
            )
            .with_field("user_id"),
            SignUpError::DuplicateEmail => ApiError::new(
                ErrorCode::EmailAlreadyRegistered,
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
            ClickError::UnknownCode(_) => {
                ApiError::new(ErrorCode::UnknownReferralCode, error.to_string())
            }
            ClickError::Store(e) => e.into(),
            ClickError::Stopped | ClickError::TooSlow | ClickError::Unavailable => {
                ApiError::new(ErrorCode::DatabaseUnavailable, error.to_string())
            }
        }
    }
}

impl From<MoneyError> for ApiError {
    fn from(error: MoneyError) -> Self {
        match error {
            MoneyError::UnsupportedCurrency(_) => {
                ApiError::new(ErrorCode::UnsupportedCurrency, format!("currency: {error}"))
                    .with_field("currency")
            }
            MoneyError::TooPrecise(_)
            | MoneyError::NotANumber(_)
            | MoneyError::NotPositive
            | MoneyError::Overflow
            | MoneyError::CurrencyMismatch => ApiError::invalid_field("amount", error),
        }
    }
}

impl From<SpendError> for ApiError {
    fn from(error: SpendError) -> Self {
        match error {
            SpendError::UserNotFound(_) => {
                ApiError::new(ErrorCode::UserNotFound, error.to_string()).with_field("user_id")
            }
            SpendError::Refused(SpendRefused::Insufficient { .. }) => {
                ApiError::new(ErrorCode::InsufficientCredit, error.to_string()).with_field("amount")
            }
            SpendError::Refused(SpendRefused::Amount(e)) => e.into(),
            SpendError::ReferenceReused { .. } => {
                ApiError::new(ErrorCode::ReferenceReused, error.to_string()).with_field("reference")
            }
            SpendError::Store(e) => e.into(),
        }
    }
}

impl From<PurchaseError> for ApiError {
    fn from(error: PurchaseError) -> Self {
        match error {
            PurchaseError::UserNotFound(_) => {
                ApiError::new(ErrorCode::UserNotFound, error.to_string()).with_field("user_id")
            }
            PurchaseError::CreditAboveAmount { .. } => {
                ApiError::invalid_field("credit_applied", error)
            }
            PurchaseError::PurchaseIdReused(_) => {
                ApiError::new(ErrorCode::PurchaseIdReused, error.to_string())
                    .with_field("purchase_id")
            }
            PurchaseError::CreditReferenceTaken(_) => {
                ApiError::new(ErrorCode::ReferenceReused, error.to_string())
                    .with_field("purchase_id")
            }
            PurchaseError::Credit(spend) => {
                // The spend of the credit applied: its field is `credit_applied` here.
                let mut error = ApiError::from(spend);
                match error.body().field.as_deref() {
                    Some("amount") => error = error.with_field("credit_applied"),
                    Some("reference") => error = error.with_field("purchase_id"),
                    _ => {}
                }
                error
            }
            PurchaseError::Store(e) => e.into(),
        }
    }
}

impl From<RefundError> for ApiError {
    fn from(error: RefundError) -> Self {
        match error {
            RefundError::PurchaseNotFound(_) => {
                ApiError::new(ErrorCode::PurchaseNotFound, error.to_string())
                    .with_field("purchase_id")
            }
            RefundError::NotPaid(_) => {
                ApiError::new(ErrorCode::PurchaseNotRefundable, error.to_string())
            }
            RefundError::ExceedsPayment { .. } => {
                ApiError::new(ErrorCode::RefundExceedsPayment, error.to_string())
                    .with_field("amount")
            }
            RefundError::RefundIdReused(_) => {
                ApiError::new(ErrorCode::RefundIdReused, error.to_string()).with_field("refund_id")
            }
            RefundError::Store(e) => e.into(),
        }
    }
}

impl From<PartnerError> for ApiError {
    fn from(error: PartnerError) -> Self {
        match error {
            PartnerError::UserNotFound(_) => {
                ApiError::new(ErrorCode::UserNotFound, error.to_string()).with_field("user_id")
            }
            PartnerError::Upgrade(UpgradeRefused::AlreadyPartner) => {
                ApiError::new(ErrorCode::AlreadyPartner, error.to_string())
            }
            PartnerError::Upgrade(UpgradeRefused::NotCurrentAgreement { .. }) => {
                ApiError::new(ErrorCode::AgreementNotCurrent, error.to_string())
                    .with_field("agreement_sha256")
            }
            PartnerError::Downgrade(DowngradeRefused::NotPartner) => {
                ApiError::new(ErrorCode::NotAPartner, error.to_string())
            }
            PartnerError::Downgrade(DowngradeRefused::BalanceNotZero(_)) => {
                ApiError::new(ErrorCode::ReferralBalanceNotZero, error.to_string())
            }
            PartnerError::Downgrade(DowngradeRefused::CommissionsOutstanding(_)) => {
                ApiError::new(ErrorCode::CommissionsOutstanding, error.to_string())
            }
            PartnerError::Downgrade(DowngradeRefused::PayoutsInFlight(_)) => {
                ApiError::new(ErrorCode::PayoutsInFlight, error.to_string())
            }
            PartnerError::Store(e) => e.into(),
        }
    }
}

impl From<PayoutError> for ApiError {
    fn from(error: PayoutError) -> Self {
        let message = error.to_string();
        match error {
            PayoutError::UserNotFound(_) => {
                ApiError::new(ErrorCode::UserNotFound, message).with_field("user_id")
            }
            PayoutError::NotPartner | PayoutError::Refused(PayoutRefused::NotPartner) => {
                ApiError::new(ErrorCode::PartnerOnly, message)
            }
            PayoutError::Refused(PayoutRefused::StripeNotConnected) => {
                ApiError::new(ErrorCode::StripeNotConnected, message)
            }
            PayoutError::Refused(PayoutRefused::PayoutsNotEnabled) => {
                ApiError::new(ErrorCode::PayoutsNotEnabled, message)
            }
            PayoutError::Refused(PayoutRefused::RequirementsDue(_)) => {
                ApiError::new(ErrorCode::StripeRequirementsDue, message)
            }
            PayoutError::Refused(PayoutRefused::BelowMinimum { .. }) => {
                ApiError::new(ErrorCode::BelowMinimumPayout, message).with_field("amount")
            }
            PayoutError::Refused(PayoutRefused::InsufficientBalance { .. }) => {
                ApiError::new(ErrorCode::InsufficientReferralBalance, message)
            }
            PayoutError::Stripe(cause) => {
                tracing::warn!(error = %cause, "stripe call failed");
                ApiError::new(ErrorCode::StripeError, message)
            }
            PayoutError::Store(e) => e.into(),
        }
    }
}

impl From<OperationError> for ApiError {
    fn from(error: OperationError) -> Self {
        match error {
            OperationError::JobNotFound(_) => {
                ApiError::new(ErrorCode::JobNotFound, error.to_string()).with_field("job_id")
            }
            OperationError::NotFailed { .. } => {
                ApiError::new(ErrorCode::JobNotFailed, error.to_string())
            }
            OperationError::Store(e) => e.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::UnknownKey => ApiError::new(ErrorCode::Unauthenticated, error.to_string()),
            AuthError::WrongRole { .. } => ApiError::new(ErrorCode::Forbidden, error.to_string()),
            AuthError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code, as the spec lists them (so a new code is covered without editing this).
    fn every_code() -> Vec<ErrorCode> {
        use poem_openapi::registry::Registry;
        use poem_openapi::types::{ParseFromJSON, Type};
        let mut registry = Registry::new();
        ErrorCode::register(&mut registry);
        let schema = registry
            .schemas
            .get(ErrorCode::name().as_ref())
            .expect("ErrorCode is a named schema");
        schema
            .enum_items
            .iter()
            .map(|item| ErrorCode::parse_from_json(Some(item.clone())).expect("a listed code"))
            .collect()
    }

    #[test]
    fn every_code_answers_its_own_status_in_the_response_and_the_body() {
        let codes = every_code();
        assert!(codes.len() > 40, "{codes:?}");
        for code in codes {
            let error = ApiError::new(code, "x");
            let response = error.clone().into_response();
            assert_eq!(response.status(), code.status(), "{code:?}");
            assert_eq!(error.body().status, code.status().as_u16(), "{code:?}");
            assert_eq!(error.body().code, code);
        }
    }

    #[test]
    fn parameter_errors_drop_rust_type_names() {
        assert_eq!(
            parameter_reason(
                r#"failed to parse "ReferralStatusView": must be one of A, B (occurred while parsing "optional_ReferralStatusView")"#
            ),
            "must be one of A, B"
        );
        assert_eq!(parameter_reason("plain"), "plain");
    }
}
