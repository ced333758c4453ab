//! API keys: a role each, stored only as a SHA-256 of the key; the plaintext exists once,
//! when the key is created.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::ids::ApiKeyId;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize, serde::Deserialize)]
#[sqlx(type_name = "text", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum ApiRole {
    /// Server-to-server calls of the embedding platform.
    Platform,
    /// Operations: job lists and retries.
    Admin,
}

impl ApiRole {
    /// The role's name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiRole::Platform => "platform",
            ApiRole::Admin => "admin",
        }
    }
}

impl std::str::FromStr for ApiRole {
    type Err = String;

    fn from_str(role: &str) -> Result<Self, String> {
        match role {
            "platform" => Ok(ApiRole::Platform),
            "admin" => Ok(ApiRole::Admin),
            other => Err(format!("unknown role `{other}`: use platform or admin")),
        }
    }
}

/// A key as the authenticator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id.
    pub id: ApiKeyId,
    /// Human label.
    pub name: String,
    /// Its role.
    pub role: ApiRole,
}

/// A fresh key's plaintext: `rk_<role>_` and 256 random bits in hex.
pub fn generate_plaintext(role: ApiRole) -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("rk_{}_{}", role.as_str(), hex::encode(secret))
}

/// What is stored of a key. Looking keys up by this hash means the comparison never
/// touches the stored secret, so its timing reveals nothing.
pub fn hash(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_only_their_hash_is_kept() {
        let a = generate_plaintext(ApiRole::Platform);
        let b = generate_plaintext(ApiRole::Platform);
        assert_ne!(a, b);
        assert!(a.starts_with("rk_platform_") && a.len() == "rk_platform_".len() + 64);
        assert_eq!(hash(&a), hash(&a));
        assert!(!hash(&a).contains(&a[12..]));
    }
}
