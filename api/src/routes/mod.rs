//! Endpoints, one module per tag.

pub mod admin;
pub mod health;

/// Tags grouping the endpoints in the docs.
#[derive(poem_openapi::Tags)]
pub enum Tag {
    /// Liveness and readiness.
    Health,
    /// Operations: failed jobs and retries (admin key).
    Operations,
}
