//! `405 Method Not Allowed` answers carry an `Allow` header (RFC 9110 requires it). poem
//! answers 405 without knowing the route's methods, so they are read once from the spec,
//! which lists every documented path and its methods.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response};

/// Path templates (`/v1/users/{user_id}`) and the methods each allows.
#[derive(Debug, Clone, Default)]
pub struct AllowedMethods {
    routes: Vec<(Vec<String>, String)>,
}

impl AllowedMethods {
    /// Reads the paths of an OpenAPI document.
    pub fn from_spec(spec: &str) -> Self {
        let spec: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let routes = spec["paths"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(template, operations)| {
                let segments = template.split('/').map(str::to_owned).collect();
                let mut methods: Vec<String> = operations
                    .as_object()
                    .into_iter()
                    .flat_map(|ops| ops.keys())
                    .map(|m| m.to_ascii_uppercase())
                    .collect();
                if methods.iter().any(|m| m == "GET") {
                    methods.push("HEAD".into());
                }
                methods.push("OPTIONS".into());
                (segments, methods.join(", "))
            })
            .collect();
        Self { routes }
    }

    /// The `Allow` value for a request path, if a documented path matches it.
    pub fn for_path(&self, path: &str) -> Option<&str> {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes
            .iter()
            .find(|(segments, _)| {
                segments.len() == parts.len()
                    && segments
                        .iter()
                        .zip(&parts)
                        .all(|(template, part)| template.starts_with('{') || template == part)
            })
            .map(|(_, methods)| methods.as_str())
    }
}

/// Adds `Allow` to 405 answers.
#[derive(Debug, Clone)]
pub struct AllowHeader {
    allowed: std::sync::Arc<AllowedMethods>,
}

impl AllowHeader {
    /// Middleware answering from `allowed`.
    pub fn new(allowed: AllowedMethods) -> Self {
        Self {
            allowed: std::sync::Arc::new(allowed),
        }
    }
}

impl<E: Endpoint> Middleware<E> for AllowHeader {
    type Output = AllowHeaderEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        AllowHeaderEndpoint {
            inner,
            allowed: self.allowed.clone(),
        }
    }
}

/// See [`AllowHeader`].
#[derive(Debug)]
pub struct AllowHeaderEndpoint<E> {
    inner: E,
    allowed: std::sync::Arc<AllowedMethods>,
}

impl<E: Endpoint> Endpoint for AllowHeaderEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let mut response = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && let Some(value) = self
                .allowed
                .for_path(&path)
                .and_then(|m| HeaderValue::from_str(m).ok())
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_concrete_paths() {
        let allowed = AllowedMethods::from_spec(
            r#"{"paths": {"/v1/users/{user_id}": {"get": {}}, "/v1/users/": {"post": {}}}}"#,
        );
        assert_eq!(allowed.for_path("/v1/users/bo"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(allowed.for_path("/v1/users/"), Some("POST, OPTIONS"));
        assert_eq!(allowed.for_path("/v1/users/bo/x"), None);
    }
}
