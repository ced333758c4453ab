//! Bearer API keys with a role. A missing or unknown key is 401; a key of the wrong
//! role is 403.

use poem::Request;
use poem::http::StatusCode;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use referral_core::store::api_keys::{self, ApiKey, ApiRole};

use crate::AppState;
use crate::error::{ApiError, Carried};

/// A `platform` key: the embedding platform's backend.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "platform_key")]
pub struct PlatformKey(pub ApiKey);

/// An `admin` key: operators.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "admin_key")]
pub struct AdminKey(pub ApiKey);

async fn platform_key(req: &Request, bearer: Bearer) -> poem::Result<ApiKey> {
    authenticate(req, &bearer.token, ApiRole::Platform).await
}

async fn admin_key(req: &Request, bearer: Bearer) -> poem::Result<ApiKey> {
    authenticate(req, &bearer.token, ApiRole::Admin).await
}

async fn authenticate(req: &Request, token: &str, role: ApiRole) -> poem::Result<ApiKey> {
    let state = req.data::<AppState>().ok_or_else(|| {
        Carried(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "application state missing",
        ))
    })?;
    let mut conn = state
        .pool
        .acquire()
        .await
        .map_err(|e| Carried(ApiError::from(e)))?;
    let key = api_keys::find_by_plaintext(&mut conn, token)
        .await
        .map_err(|e| Carried(ApiError::from(e)))?;
    match key {
        None => Err(Carried(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "unknown or revoked API key",
        ))
        .into()),
        Some(key) if key.role != role => Err(Carried(ApiError::new(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            format!(
                "this endpoint needs a {} key; the key sent is a {} key",
                role.as_str(),
                key.role.as_str()
            ),
        ))
        .into()),
        Some(key) => {
            tracing::debug!(api_key = %key.id, "authenticated");
            Ok(key)
        }
    }
}
