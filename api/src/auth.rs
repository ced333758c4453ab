//! Bearer API keys with a role. A missing or unknown key is 401; a key of the wrong
//! role is 403.

use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use referral_core::domain::api_key::{ApiKey, ApiRole};

use crate::AppState;
use crate::error::{ApiError, Carried, ErrorCode};

/// A `platform` key: the embedding platform's backend.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "platform_key")]
pub struct PlatformKey(pub ApiKey);

/// An `admin` key: operators.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "admin_key")]
pub struct AdminKey(pub ApiKey);

async fn platform_key(req: &Request, bearer: Bearer) -> poem::Result<ApiKey> {
    authenticate(req, &bearer.token, ApiRole::Platform)
        .await
        .map_err(|e| Carried(e).into())
}

async fn admin_key(req: &Request, bearer: Bearer) -> poem::Result<ApiKey> {
    authenticate(req, &bearer.token, ApiRole::Admin)
        .await
        .map_err(|e| Carried(e).into())
}

async fn authenticate(req: &Request, token: &str, role: ApiRole) -> Result<ApiKey, ApiError> {
    let state = req
        .data::<AppState>()
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "application state missing"))?;
    let key = state
        .api_keys
        .authenticate(&state.pool, token, role)
        .await?;
    tracing::debug!(api_key = %key.id, "authenticated");
    Ok(key)
}
