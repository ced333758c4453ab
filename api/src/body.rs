//! `JsonBody<T>`: a JSON request body parsed with serde so a failure names its field.
//!
//! poem-openapi's own `Json<T>` reports type errors without the field path, and cannot
//! tell malformed JSON (400) from a well-formed body with a bad field (422). The schema
//! still comes from `T`'s `Object` derive, so the spec is unchanged.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Carried};
use poem::http::StatusCode;

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
        let bytes = Vec::<u8>::from_request(request, body).await?;
        parse(&bytes).map(JsonBody).map_err(|e| Carried(e).into())
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: Type + DeserializeOwned);

/// Parses `bytes`: malformed JSON is a 400, a bad field a 422 naming the field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            format!("request body is not valid JSON: {e}"),
        ));
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
        assert_eq!(e.body().code, "MALFORMED_JSON");
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
    }
}
