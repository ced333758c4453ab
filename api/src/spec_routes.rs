//! What the spec knows about routes that poem's answers lack, filled in after the fact:
//!
//! - `405 Method Not Allowed` answers carry an `Allow` header (RFC 9110 requires it);
//!   poem answers 405 without knowing the route's methods.
//! - poem-openapi names path parameters `param0`, `param1`, … internally, so a path
//!   parameter that fails its check is reported under that name; the real name
//!   (`user_id`) is put back.
//!
//! Both are read once from the spec, which lists every documented path and its methods.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{Body, Endpoint, IntoResponse, Middleware, Request, Response};

/// Path templates (`/v1/users/{user_id}`) and the methods each allows.
#[derive(Debug, Clone, Default)]
pub struct SpecRoutes {
    routes: Vec<(Vec<String>, String)>,
}

impl SpecRoutes {
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

    fn route(&self, path: &str) -> Option<&(Vec<String>, String)> {
        let parts: Vec<&str> = path.split('/').collect();
        self.routes.iter().find(|(segments, _)| {
            segments.len() == parts.len()
                && segments
                    .iter()
                    .zip(&parts)
                    .all(|(template, part)| template.starts_with('{') || template == part)
        })
    }

    /// The `Allow` value for a request path, if a documented path matches it.
    pub fn allow(&self, path: &str) -> Option<&str> {
        self.route(path).map(|(_, methods)| methods.as_str())
    }

    /// The name of the `index`-th parameter of the route matching `path`.
    pub fn path_param(&self, path: &str, index: usize) -> Option<&str> {
        self.route(path)?
            .0
            .iter()
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .nth(index)
    }
}

/// Fills in what poem's answers lack (see the module doc).
#[derive(Debug, Clone)]
pub struct SpecAware {
    routes: std::sync::Arc<SpecRoutes>,
}

impl SpecAware {
    /// Middleware answering from `routes`.
    pub fn new(routes: SpecRoutes) -> Self {
        Self {
            routes: std::sync::Arc::new(routes),
        }
    }
}

impl<E: Endpoint> Middleware<E> for SpecAware {
    type Output = SpecAwareEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        SpecAwareEndpoint {
            inner,
            routes: self.routes.clone(),
        }
    }
}

/// See [`SpecAware`].
#[derive(Debug)]
pub struct SpecAwareEndpoint<E> {
    inner: E,
    routes: std::sync::Arc<SpecRoutes>,
}

impl<E: Endpoint> SpecAwareEndpoint<E> {
    /// A 422 naming `paramN` names the real path parameter instead.
    async fn name_path_param(&self, path: &str, mut response: Response) -> Response {
        let body = response.take_body();
        let Ok(bytes) = body.into_bytes().await else {
            return response;
        };
        let mut error: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(error) => error,
            Err(_) => {
                response.set_body(Body::from(bytes));
                return response;
            }
        };
        let internal = error["field"].as_str().unwrap_or_default().to_owned();
        let real = internal
            .strip_prefix("param")
            .and_then(|n| n.parse::<usize>().ok())
            .and_then(|n| self.routes.path_param(path, n));
        if let Some(real) = real {
            let message = error["message"].as_str().unwrap_or_default();
            let message = match message.strip_prefix(&internal) {
                Some(rest) => format!("{real}{rest}"),
                None => message.to_owned(),
            };
            error["field"] = real.into();
            error["message"] = message.into();
            response.set_body(Body::from(error.to_string()));
        } else {
            response.set_body(Body::from(bytes));
        }
        response
    }
}

impl<E: Endpoint> Endpoint for SpecAwareEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> poem::Result<Response> {
        let path = req.uri().path().to_owned();
        let mut response = match self.inner.call(req).await {
            Ok(output) => output.into_response(),
            Err(error) => error.into_response(),
        };
        match response.status() {
            StatusCode::METHOD_NOT_ALLOWED => {
                if let Some(value) = self
                    .routes
                    .allow(&path)
                    .and_then(|m| HeaderValue::from_str(m).ok())
                {
                    response.headers_mut().insert(header::ALLOW, value);
                }
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                response = self.name_path_param(&path, response).await;
            }
            _ => {}
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_concrete_paths() {
        let routes = SpecRoutes::from_spec(
            r#"{"paths": {"/v1/users/{user_id}": {"get": {}}, "/v1/users/": {"post": {}}}}"#,
        );
        assert_eq!(routes.allow("/v1/users/bo"), Some("GET, HEAD, OPTIONS"));
        assert_eq!(routes.allow("/v1/users/"), Some("POST, OPTIONS"));
        assert_eq!(routes.allow("/v1/users/bo/x"), None);
        assert_eq!(routes.path_param("/v1/users/bo", 0), Some("user_id"));
        assert_eq!(routes.path_param("/v1/users/bo", 1), None);
    }
}
