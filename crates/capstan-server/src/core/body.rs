//! Request parsing that names the bad field: JSON bodies, path keys and `If-Match`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;

use crate::core::error::ApiError;

/// A JSON body whose errors name the field that is wrong (`variants.on: invalid type`).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody<T>, ApiError> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|error| ApiError::MalformedBody(format!("failed to read body: {error}")))?;
        parse_json(&bytes).map(JsonBody)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ApiError::MalformedBody(format!("body is not valid JSON: {inner}"))
        } else if path == "." {
            ApiError::MalformedBody(format!("body: {inner}"))
        } else {
            ApiError::field(path, inner)
        }
    })
}

/// Parses a key from a path segment or body field, naming the field when it is bad.
pub fn key<K>(
    field: &str,
    text: &str,
    parse: fn(String) -> Result<K, capstan_model::InvalidKey>,
) -> Result<K, ApiError> {
    parse(text.to_owned()).map_err(|error| ApiError::field(field, error))
}

/// The version an `If-Match` header asks for: `3`, `"3"` or `W/"3"`.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<i64>().map(Some).map_err(|_| {
        ApiError::field(
            "If-Match",
            format!("expected a version number, found {text:?}"),
        )
    })
}
