//! `JsonBody<T>`: a JSON request body parsed with serde so a failure names its field.
//!
//! poem-openapi's own `Json<T>` reports type errors without the field path, and cannot
//! tell malformed JSON (400) from a well-formed body with a bad field (422). The schema
//! still comes from `T`'s `Object` derive, so the spec is unchanged.

use poem::{Request, RequestBody};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Carried, ErrorCode};

/// A JSON request body.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(mime)
            if mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type + DeserializeOwned> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let bytes = read_limited(request, body).await.map_err(Carried)?;
        parse(&bytes).map(JsonBody).map_err(|e| Carried(e).into())
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned);

/// A JSON body kept as the bytes received, for a signature over them to be checked
/// before anything reads it (Stripe's webhooks). `T` only documents its shape.
#[derive(Debug, Clone)]
pub struct SignedBody<T> {
    /// The body exactly as received.
    pub raw: Vec<u8>,
    _shape: std::marker::PhantomData<T>,
}

impl<T: Type> Payload for SignedBody<T> {
    const CONTENT_TYPE: &'static str = JsonBody::<T>::CONTENT_TYPE;

    fn check_content_type(content_type: &str) -> bool {
        JsonBody::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Type> ParsePayload for SignedBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let raw = read_limited(request, body).await.map_err(Carried)?;
        Ok(SignedBody {
            raw,
            _shape: std::marker::PhantomData,
        })
    }
}

impl_apirequest_for_payload!(SignedBody<T>, T: Type);

/// The largest body accepted. Our largest request is a few kilobytes; a client sending
/// megabytes is broken or hostile, and reading it whole would cost memory for nothing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// Reads the body, refusing it as soon as it passes [`MAX_BODY_BYTES`] (declared or not).
async fn read_limited(request: &Request, body: &mut RequestBody) -> Result<Vec<u8>, ApiError> {
    use tokio::io::AsyncReadExt;

    let declared = request
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let Ok(body) = body.take() else {
        return Ok(Vec::new());
    };
    let mut bytes = Vec::new();
    body.into_async_read()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| {
            ApiError::new(
                ErrorCode::MalformedRequest,
                format!("cannot read the request body: {e}"),
            )
        })?;
    if bytes.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Parses `bytes`: malformed JSON is a 400, a bad field a 422 naming the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(e) => {
            return Err(ApiError::new(
                ErrorCode::MalformedJson,
                format!("request body is not valid JSON: {e}"),
            ));
        }
        // serde would also read a struct from an array of its fields; every body of this
        // API is an object, as the spec says.
        Ok(value) if !value.is_object() => {
            return Err(ApiError::invalid_field("body", "must be a JSON object"));
        }
        Ok(_) => {}
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = inner.split(" at line ").next().unwrap_or(&inner).to_owned();
        let field = if path == "." {
            quoted_name(&message).unwrap_or_else(|| "body".to_owned())
        } else if let Some(missing) =
            quoted_name(&message).filter(|_| message.starts_with("missing field"))
        {
            format!("{path}.{missing}")
        } else {
            path
        };
        ApiError::invalid_field(&field, message)
    })
}

/// The first `quoted` name in a serde message such as "missing field `email`".
fn quoted_name(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let end = start + message[start..].find('`')?;
    Some(message[start..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Signup {
        email: String,
        age: u32,
    }

    #[test]
    fn malformed_json_is_a_400() {
        let e = parse::<Signup>(b"{\"email\": ").unwrap_err();
        assert_eq!(e.body().status, 400);
        assert_eq!(e.body().code, ErrorCode::MalformedJson);
    }

    #[test]
    fn a_bad_field_is_a_422_naming_it() {
        let e = parse::<Signup>(br#"{"email": "a@b.c", "age": "old"}"#).unwrap_err();
        assert_eq!(e.body().status, 422);
        assert_eq!(e.body().field.as_deref(), Some("age"));
        let e = parse::<Signup>(br#"{"age": 3}"#).unwrap_err();
        assert_eq!(e.body().field.as_deref(), Some("email"));
        let e = parse::<Signup>(br#"{"email": "a@b.c", "age": 3, "x": 1}"#).unwrap_err();
        assert_eq!(e.body().field.as_deref(), Some("x"));
        let e = parse::<Signup>(br#"["a@b.c", 3]"#).unwrap_err();
        assert_eq!(e.body().field.as_deref(), Some("body"));
    }
}
