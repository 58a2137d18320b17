//! The API's errors: one enum, one table from each variant to its HTTP status, stable
//! machine code and type, and one wire shape: `{message, code, type, link}`.
//!
//! Internal errors are logged with their cause and shown to clients as "something went
//! wrong"; nothing below this layer reaches a client verbatim unless it was written for one.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use capstan_store::StoreError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field of the request is missing or wrong; `field` names it.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },

    /// The body is not JSON, or not the JSON shape the route takes.
    #[error("{0}")]
    MalformedBody(String),

    /// A flag definition the engine refused; the message names the path of the bad field.
    #[error("{0}")]
    InvalidDefinition(String),

    #[error("missing or invalid API token")]
    Unauthenticated,

    #[error("this token's role ({role}) may not {action}")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },

    #[error("{kind} {key:?} not found")]
    NotFound { kind: &'static str, key: String },

    #[error("{kind} {key:?} already exists")]
    AlreadyExists { kind: &'static str, key: String },

    #[error("{kind} {key:?} was changed by someone else; its current version is {current_version}")]
    VersionConflict {
        kind: &'static str,
        key: String,
        current_version: i64,
    },

    /// The request conflicts with the resource's state; `code` says how.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    #[error("too many requests; retry after {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },

    #[error("the store is unavailable")]
    Unavailable,

    #[error("something went wrong")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> ApiError {
        ApiError::InvalidField {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// The status, stable code and error type of each variant. Codes never change once
    /// released: clients match on them.
    pub fn describe(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::InvalidField { .. } => {
                (StatusCode::BAD_REQUEST, "invalid_field", "invalid_request")
            }
            ApiError::MalformedBody(_) => {
                (StatusCode::BAD_REQUEST, "malformed_body", "invalid_request")
            }
            ApiError::InvalidDefinition(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_flag_definition",
                "invalid_request",
            ),
            ApiError::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, "missing_or_invalid_token", "auth")
            }
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", "auth"),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found", "invalid_request"),
            ApiError::AlreadyExists { .. } => {
                (StatusCode::CONFLICT, "already_exists", "invalid_request")
            }
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code, "invalid_request"),
            ApiError::VersionConflict { .. } => {
                (StatusCode::CONFLICT, "version_conflict", "invalid_request")
            }
            ApiError::RateLimited { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "rate_limit")
            }
            ApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "internal",
            ),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound { kind, key } => ApiError::NotFound { kind, key },
            StoreError::AlreadyExists { kind, key } => ApiError::AlreadyExists { kind, key },
            StoreError::VersionConflict {
                kind,
                key,
                current_version,
            } => ApiError::VersionConflict {
                kind,
                key,
                current_version,
            },
            error if error.is_unavailable() => ApiError::Unavailable,
            other => ApiError::Internal(other.into()),
        }
    }
}

/// The wire shape of every management API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// What went wrong, for people; for a bad field it starts with the field's path.
    pub message: String,
    /// A stable machine code, such as `invalid_field` or `version_conflict`.
    pub code: &'static str,
    /// The family of the error: `invalid_request`, `auth`, `rate_limit` or `internal`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Where the code is documented.
    pub link: String,
    /// The field that is wrong, for `invalid_field`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The current version, for `version_conflict`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
}

/// The error answers a management route may give. It only describes them for the
/// OpenAPI document; answers are built from [`ApiError`], so it is never constructed.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum ErrorResponses {
    /// Bad request: the error names the field, or the path of a bad flag definition.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No token, or an unknown, expired or revoked one.
    #[response(status = 401)]
    Unauthenticated(ErrorBody),
    /// The token's role may not do this.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// The project, environment or resource does not exist.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A version conflict (with `currentVersion`), or the resource already exists.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// Too many requests for this token; `Retry-After` says when to retry.
    #[response(status = 429)]
    RateLimited(ErrorBody),
}

impl ApiError {
    /// The status and body of the error's answer; an internal error is logged and counted
    /// here, once per answer. Every route's answer is built from this, including the
    /// Personalizer routes, which add Personalizer's own error object to it.
    pub(crate) fn answer(&self) -> (StatusCode, ErrorBody) {
        let (status, code, kind) = self.describe();
        if let ApiError::Internal(error) = self {
            tracing::error!(error = format!("{error:#}"), "request failed");
            crate::metrics::record_internal_error();
        }
        let body = ErrorBody {
            message: self.to_string(),
            code,
            kind,
            link: format!("docs/api.md#{}", code.replace('_', "-")),
            field: match self {
                ApiError::InvalidField { field, .. } => Some(field.clone()),
                _ => None,
            },
            current_version: match self {
                ApiError::VersionConflict {
                    current_version, ..
                } => Some(*current_version),
                _ => None,
            },
        };
        (status, body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.answer();
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited {
            retry_after_seconds,
        } = self
        {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        response
    }
}
