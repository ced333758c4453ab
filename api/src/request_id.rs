//! Request ids: taken from `x-request-id` when the caller sends a sane one, generated
//! otherwise; every log line of the request carries it and the response echoes it.

use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use tracing::Instrument;

/// The header carrying the id.
pub const HEADER: &str = "x-request-id";

/// Middleware that assigns request ids.
#[derive(Debug, Clone, Copy)]
pub struct RequestIdMiddleware;

impl<E: Endpoint> Middleware<E> for RequestIdMiddleware {
    type Output = RequestIdEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestIdEndpoint { inner }
    }
}

/// See [`RequestIdMiddleware`].
#[derive(Debug)]
pub struct RequestIdEndpoint<E> {
    inner: E,
}

impl<E: Endpoint> Endpoint for RequestIdEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let id = req
            .headers()
            .get(HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
        async move {
            let result = self.inner.call(req).await;
            let mut response = match result {
                Ok(output) => output.into_response(),
                Err(error) => error.into_response(),
            };
            tracing::info!(status = response.status().as_u16(), "request done");
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(HEADER, value);
            }
            Ok(response)
        }
        .instrument(span)
        .await
    }
}
