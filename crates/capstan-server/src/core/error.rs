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
    /// What any operation can fail with: a bad field, not found, already exists, a
    /// version conflict, the store unavailable, an internal error.
    #[error(transparent)]
    Failure(#[from] Failure),

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

    /// The request conflicts with the resource's state; `code` says how.
    #[error("{message}")]
    Conflict { code: ErrorCode, message: String },

    #[error("too many requests; retry after {retry_after_seconds} s")]
    RateLimited { retry_after_seconds: u64 },
}

/// Declares the table of error codes: each with its HTTP status and error type.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => ($status:ident, $code:literal, $kind:ident),)*) => {
        /// Every stable machine code an answer can carry. Codes never change once
        /// released: clients match on them, and docs/api.md documents each.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)*
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $code,)*
                }
            }

            pub fn kind(self) -> ErrorKind {
                match self {
                    $(ErrorCode::$variant => ErrorKind::$kind,)*
                }
            }
        }
    };
}

error_codes! {
    /// A field of the request is missing or wrong.
    InvalidField => (BAD_REQUEST, "invalid_field", InvalidRequest),
    /// The body is not JSON, or not the shape the route takes.
    MalformedBody => (BAD_REQUEST, "malformed_body", InvalidRequest),
    /// A flag definition the engine refused.
    InvalidFlagDefinition => (BAD_REQUEST, "invalid_flag_definition", InvalidRequest),
    MissingOrInvalidToken => (UNAUTHORIZED, "missing_or_invalid_token", Auth),
    Forbidden => (FORBIDDEN, "forbidden", Auth),
    NotFound => (NOT_FOUND, "not_found", InvalidRequest),
    AlreadyExists => (CONFLICT, "already_exists", InvalidRequest),
    VersionConflict => (CONFLICT, "version_conflict", InvalidRequest),
    /// A scheduled change someone else already carried out or cancelled.
    AlreadySettled => (CONFLICT, "already_settled", InvalidRequest),
    /// A surface's hash size cannot change once it has a model.
    ModelExists => (CONFLICT, "model_exists", InvalidRequest),
    /// A second reward for a decision whose first reward is the one that counts.
    DuplicateReward => (CONFLICT, "duplicate_reward", InvalidRequest),
    /// A reward after the decision's reward window closed.
    RewardTooLate => (CONFLICT, "reward_too_late", InvalidRequest),
    RateLimited => (TOO_MANY_REQUESTS, "rate_limited", RateLimit),
    StoreUnavailable => (SERVICE_UNAVAILABLE, "store_unavailable", Internal),
    Internal => (INTERNAL_SERVER_ERROR, "internal", Internal),
}

/// The family of an error, the wire's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Auth,
    RateLimit,
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Auth => "auth",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Internal => "internal",
        }
    }
}

impl ApiError {
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> ApiError {
        Failure::field(field, message).into()
    }

    pub fn not_found(kind: &'static str, key: impl ToString) -> ApiError {
        Failure::not_found(kind, key).into()
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> ApiError {
        Failure::internal(error).into()
    }

    /// The stable code of the answer.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Failure(failure) => failure.code(),
            ApiError::MalformedBody(_) => ErrorCode::MalformedBody,
            ApiError::InvalidDefinition(_) => ErrorCode::InvalidFlagDefinition,
            ApiError::Unauthenticated => ErrorCode::MissingOrInvalidToken,
            ApiError::Forbidden { .. } => ErrorCode::Forbidden,
            ApiError::Conflict { code, .. } => *code,
            ApiError::RateLimited { .. } => ErrorCode::RateLimited,
        }
    }
}

/// What any operation can fail with, whichever capability it belongs to. Each
/// capability's error holds it beside its own cases, and the API answers it the same way
/// everywhere.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A field of the request is wrong; `field` names it.
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },

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

    #[error("the store is unavailable")]
    Unavailable,

    #[error("something went wrong")]
    Internal(#[source] anyhow::Error),
}

impl Failure {
    pub fn field(field: impl Into<String>, message: impl std::fmt::Display) -> Failure {
        Failure::InvalidField {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub fn not_found(kind: &'static str, key: impl ToString) -> Failure {
        Failure::NotFound {
            kind,
            key: key.to_string(),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Failure {
        Failure::Internal(error.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Failure::InvalidField { .. } => ErrorCode::InvalidField,
            Failure::NotFound { .. } => ErrorCode::NotFound,
            Failure::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Failure::VersionConflict { .. } => ErrorCode::VersionConflict,
            Failure::Unavailable => ErrorCode::StoreUnavailable,
            Failure::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Failure {
        match error {
            StoreError::NotFound { kind, key } => Failure::NotFound { kind, key },
            StoreError::AlreadyExists { kind, key } => Failure::AlreadyExists { kind, key },
            StoreError::VersionConflict {
                kind,
                key,
                current_version,
            } => Failure::VersionConflict {
                kind,
                key,
                current_version,
            },
            error if error.is_unavailable() => Failure::Unavailable,
            other => Failure::Internal(other.into()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::AlreadySettled { id } => ApiError::Conflict {
                code: ErrorCode::AlreadySettled,
                message: format!("scheduled change {id} was already carried out or cancelled"),
            },
            other => Failure::from(other).into(),
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
    /// The status and body of the error's answer; an internal error is logged here, once
    /// per answer (and counted by the request metrics, from its status). Every route's
    /// answer is built from this, including the Personalizer routes, which add
    /// Personalizer's own error object to it.
    pub(crate) fn answer(&self) -> (StatusCode, ErrorBody) {
        let code = self.code();
        if let ApiError::Failure(Failure::Internal(error)) = self {
            tracing::error!(error = format!("{error:#}"), "request failed");
        }
        let body = ErrorBody {
            message: self.to_string(),
            code: code.as_str(),
            kind: code.kind().as_str(),
            link: format!("docs/api.md#{}", code.as_str().replace('_', "-")),
            field: match self {
                ApiError::Failure(Failure::InvalidField { field, .. }) => Some(field.clone()),
                _ => None,
            },
            current_version: match self {
                ApiError::Failure(Failure::VersionConflict {
                    current_version, ..
                }) => Some(*current_version),
                _ => None,
            },
        };
        (code.status(), body)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/api.md's error table is what clients read: every code is in it, with its status.
    #[test]
    fn every_code_is_documented_with_its_status() {
        let docs = include_str!("../../../../docs/api.md");
        for code in ErrorCode::ALL {
            let row = format!("| {} | `{}` |", code.status().as_u16(), code.as_str());
            assert!(docs.contains(&row), "docs/api.md lacks the row {row}");
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
    }
}
