//! The OpenFeature Remote Evaluation Protocol (OFREP): single and bulk evaluation, as
//! specified in open-feature/protocol `service/openapi.yaml`.
//!
//! Errors here use OFREP's own shapes (`{key, errorCode, errorDetails}`), not the
//! management API's, because OFREP providers parse them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use capstan_flags::{ErrorCode, EvaluationContext, Reason, Resolution};
use capstan_model::Role;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::auth::{Principal, authenticate};
use crate::core::error::ApiError;
use crate::core::state::Core;
use crate::flags::FlagsState;
use crate::flags::environments::EnvironmentSnapshot;

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(evaluate_one))
        .routes(routes!(evaluate_all))
        .routes(routes!(configuration))
        .routes(routes!(event_stream))
}

/// An evaluation request: the evaluation context (`targetingKey` and attributes).
#[derive(Deserialize, utoipa::ToSchema)]
struct EvaluationRequest {
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    context: Option<Value>,
}

/// A flag's evaluation (OFREP's `serverEvaluationSuccess`).
#[derive(Serialize, utoipa::ToSchema)]
struct Success<'a> {
    key: &'a str,
    /// `STATIC`, `TARGETING_MATCH`, `SPLIT`, `DISABLED`, `DEFAULT` or `ERROR`.
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    /// The variant's value: a boolean, number, string or object.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    value: Option<&'a Value>,
    /// The flag's metadata.
    #[schema(value_type = Object)]
    metadata: &'a Map<String, Value>,
}

/// A flag that could not be evaluated (OFREP's `evaluationFailure`).
#[derive(Serialize, utoipa::ToSchema)]
struct Failure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    /// `FLAG_NOT_FOUND`, `PARSE_ERROR`, `TARGETING_KEY_MISSING`, `INVALID_CONTEXT` or
    /// `GENERAL`.
    #[serde(rename = "errorCode")]
    error_code: &'static str,
    #[serde(rename = "errorDetails")]
    error_details: String,
}

/// Every flag the key may see, evaluated, and where to hear of changes.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct BulkEvaluation<'a> {
    flags: Vec<BulkEntry<'a>>,
    event_streams: [EventStream; 1],
}

/// OFREP's change notifications: an SSE stream that says when to evaluate again.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct EventStream {
    /// Always `sse`.
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
    /// How long a backgrounded client may keep the stream open.
    inactivity_delay_sec: u64,
}

/// What the OFREP provider may rely on.
#[derive(Serialize, utoipa::ToSchema)]
struct Configuration {
    name: &'static str,
    capabilities: Capabilities,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Capabilities {
    cache_invalidation: CacheInvalidation,
    flag_evaluation: FlagEvaluation,
}

#[derive(Serialize, utoipa::ToSchema)]
struct CacheInvalidation {
    polling: Polling,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Polling {
    enabled: bool,
    min_polling_interval_ms: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct FlagEvaluation {
    supported_types: [&'static str; 5],
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response(),
        Err(error) => ApiError::internal(error).into_response(),
    }
}

fn failure(
    status: StatusCode,
    key: Option<&str>,
    code: &'static str,
    details: impl Into<String>,
) -> Response {
    json_response(
        status,
        &Failure {
            key,
            error_code: code,
            error_details: details.into(),
        },
    )
}

/// Authentication for OFREP: only sdk and client keys evaluate, each in its own
/// environment. Failures keep OFREP's bare 401/403/429.
async fn evaluation_principal(
    state: &FlagsState,
    headers: &HeaderMap,
) -> Result<Principal, Response> {
    let principal = authenticate(&state.core, headers)
        .await
        .map_err(IntoResponse::into_response)?;
    if !matches!(principal.role, Role::Sdk | Role::Client) {
        return Err(failure(
            StatusCode::FORBIDDEN,
            None,
            "GENERAL",
            "OFREP evaluation needs an sdk or client key",
        ));
    }
    state
        .core
        .rate_limiter
        .check(&principal.token_id, state.core.clock.now_ms())
        .map_err(IntoResponse::into_response)?;
    Ok(principal)
}

async fn snapshot_for(
    state: &FlagsState,
    principal: &Principal,
) -> Result<Arc<EnvironmentSnapshot>, Response> {
    let (project, environment) = principal
        .evaluation_scope()
        .map_err(IntoResponse::into_response)?;
    match state
        .environments
        .cached(project.as_str(), environment.as_str())
    {
        Some(snapshot) => Ok(snapshot),
        None => state
            .environments
            .get(&project, &environment)
            .await
            .map_err(|error| ApiError::from(error).into_response()),
    }
}

/// Reads the evaluation context of a request body; an empty body is an empty context.
fn read_context(body: &[u8]) -> Result<EvaluationContext, (&'static str, String)> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(EvaluationContext::new(None, Map::new()));
    }
    let request: EvaluationRequest = serde_json::from_slice(body)
        .map_err(|error| ("PARSE_ERROR", format!("request body: {error}")))?;
    let mut attributes = match request.context {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(attributes)) => attributes,
        Some(_) => {
            return Err((
                "INVALID_CONTEXT",
                "context must be a JSON object".to_owned(),
            ));
        }
    };
    let targeting_key = match attributes.remove("targetingKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key),
        Some(_) => {
            return Err((
                "INVALID_CONTEXT",
                "context.targetingKey must be a string".to_owned(),
            ));
        }
    };
    Ok(EvaluationContext::new(targeting_key, attributes))
}

fn visible(snapshot: &EnvironmentSnapshot, principal: &Principal, key: &str) -> bool {
    principal.role != Role::Client
        || snapshot
            .flags
            .get(key)
            .is_some_and(|flag| flag.client_visible)
}

fn now_seconds(state: &FlagsState) -> i64 {
    state.core.clock.now_ms().div_euclid(1000)
}

fn record(snapshot: &EnvironmentSnapshot, key: &str, resolution: &Resolution<'_>) {
    if let Some(flag) = snapshot.flags.get(key) {
        flag.counters.record(resolution.reason);
    }
}

/// An OFREP provider compares the served value's type with the caller's default, so a
/// disabled flag serves its default variant, as a flag that is off does elsewhere.
fn served<'a>(
    snapshot: &'a EnvironmentSnapshot,
    key: &str,
    resolution: Resolution<'a>,
) -> Resolution<'a> {
    if resolution.reason == Reason::Disabled
        && resolution.value.is_none()
        && let Some((variant, value)) = snapshot.flags.get(key).and_then(|flag| flag.off.as_ref())
    {
        return Resolution {
            value: Some(value),
            variant: Some(variant),
            ..resolution
        };
    }
    resolution
}

fn error_status(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::FlagNotFound => StatusCode::NOT_FOUND,
        ErrorCode::ParseError | ErrorCode::TargetingKeyMissing | ErrorCode::InvalidContext => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::TypeMismatch | ErrorCode::General => StatusCode::BAD_REQUEST,
    }
}

/// OFREP's evaluation failures name one of its own codes; others become GENERAL.
fn ofrep_code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
        ErrorCode::ParseError => "PARSE_ERROR",
        ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        ErrorCode::InvalidContext => "INVALID_CONTEXT",
        ErrorCode::TypeMismatch | ErrorCode::General => "GENERAL",
    }
}

#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags/{key}",
    tag = "ofrep",
    summary = "OFREP single flag evaluation (sdk or client key)",
    params(("key" = String, Path, description = "Flag key")),
    request_body = EvaluationRequest,
    responses(
        (status = 200, description = "OK", body = Success),
        (status = 400, description = "{key, errorCode: PARSE_ERROR | TARGETING_KEY_MISSING | INVALID_CONTEXT | GENERAL, errorDetails}"),
        (status = 401, description = "No valid key"),
        (status = 403, description = "Not an evaluation key"),
        (status = 404, description = "{key, errorCode: FLAG_NOT_FOUND, errorDetails}"),
        (status = 429, description = "Rate limited; Retry-After in seconds")
    ),
    security(("bearer" = []))
)]
async fn evaluate_one(
    State(state): State<FlagsState>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match evaluation_principal(&state, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let context = match read_context(&body) {
        Ok(context) => context,
        Err((code, details)) => return failure(StatusCode::BAD_REQUEST, Some(&key), code, details),
    };
    let snapshot = match snapshot_for(&state, &principal).await {
        Ok(snapshot) => snapshot,
        Err(response) => return response,
    };
    if !visible(&snapshot, &principal, &key) {
        return failure(
            StatusCode::NOT_FOUND,
            Some(&key),
            "FLAG_NOT_FOUND",
            format!("flag {key:?} not found"),
        );
    }
    let resolution = served(
        &snapshot,
        &key,
        snapshot
            .engine
            .evaluate(&key, &context, now_seconds(&state)),
    );
    record(&snapshot, &key, &resolution);
    match &resolution.error {
        Some(error) => failure(
            error_status(error.code),
            Some(&key),
            ofrep_code(error.code),
            error.message.clone(),
        ),
        None => json_response(
            StatusCode::OK,
            &Success {
                key: &key,
                reason: resolution.reason.as_str(),
                variant: resolution.variant,
                value: resolution.value,
                metadata: resolution.metadata,
            },
        ),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum BulkEntry<'a> {
    Success(Success<'a>),
    Failure(Failure<'a>),
}

#[utoipa::path(
    post,
    path = "/ofrep/v1/evaluate/flags",
    tag = "ofrep",
    summary = "OFREP bulk evaluation of every flag the key may see; ETag and If-None-Match",
    request_body = EvaluationRequest,
    responses(
        (status = 200, description = "OK, with an ETag", body = BulkEvaluation),
        (status = 304, description = "Not modified since the ETag in If-None-Match"),
        (status = 400, description = "{errorCode, errorDetails}"),
        (status = 401, description = "No valid key"),
        (status = 429, description = "Rate limited; Retry-After in seconds")
    ),
    security(("bearer" = []))
)]
async fn evaluate_all(
    State(state): State<FlagsState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match evaluation_principal(&state, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let context = match read_context(&body) {
        Ok(context) => context,
        Err((code, details)) => return failure(StatusCode::BAD_REQUEST, None, code, details),
    };
    let snapshot = match snapshot_for(&state, &principal).await {
        Ok(snapshot) => snapshot,
        Err(response) => return response,
    };
    let now = now_seconds(&state);
    let flags: Vec<BulkEntry<'_>> = snapshot
        .engine
        .keys()
        .filter(|key| visible(&snapshot, &principal, key))
        .map(|key| {
            let resolution = served(&snapshot, key, snapshot.engine.evaluate(key, &context, now));
            record(&snapshot, key, &resolution);
            match resolution.error {
                Some(error) => BulkEntry::Failure(Failure {
                    key: Some(key),
                    error_code: ofrep_code(error.code),
                    error_details: error.message,
                }),
                None => BulkEntry::Success(Success {
                    key,
                    reason: resolution.reason.as_str(),
                    variant: resolution.variant,
                    value: resolution.value,
                    metadata: resolution.metadata,
                }),
            }
        })
        .collect();
    // OFREP's change notifications: the provider follows this stream and fetches the
    // bulk evaluation again when told to. The URL is built from the Host the client used.
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    let answer = BulkEvaluation {
        flags,
        event_streams: [EventStream {
            kind: "sse",
            url: format!("http://{host}/ofrep/v1/event-stream"),
            inactivity_delay_sec: EVENT_STREAM_INACTIVITY_SECONDS,
        }],
    };
    let bytes = match serde_json::to_vec(&answer) {
        Ok(bytes) => bytes,
        Err(error) => return ApiError::internal(error).into_response(),
    };
    // The ETag names the response itself: the same flags and context give the same tag.
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..32]);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|candidate| candidate.trim() == etag || candidate.trim() == "*")
        });
    let etag = HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"\""));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
        ],
        bytes,
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/ofrep/v1/configuration",
    tag = "ofrep",
    summary = "OFREP provider configuration",
    responses((status = 200, description = "Capabilities", body = Configuration)),
    security(("bearer" = []))
)]
async fn configuration(State(state): State<FlagsState>, headers: HeaderMap) -> Response {
    if let Err(response) = evaluation_principal(&state, &headers).await {
        return response;
    }
    json_response(
        StatusCode::OK,
        &Configuration {
            name: "capstan",
            capabilities: Capabilities {
                cache_invalidation: CacheInvalidation {
                    polling: Polling {
                        enabled: true,
                        min_polling_interval_ms: 1000,
                    },
                },
                flag_evaluation: FlagEvaluation {
                    supported_types: ["int", "float", "string", "boolean", "object"],
                },
            },
        },
    )
}

/// How long a backgrounded client may keep the event stream open, as OFREP suggests.
const EVENT_STREAM_INACTIVITY_SECONDS: u64 = 120;

fn refetch_event(snapshot: &EnvironmentSnapshot) -> axum::response::sse::Event {
    let last_modified = snapshot
        .state
        .configs
        .iter()
        .map(|config| config.updated_at)
        .max()
        .unwrap_or_default();
    axum::response::sse::Event::default()
        .id(snapshot.revision().to_string())
        .data(
            json!({
                "type": "refetchEvaluation",
                "etag": format!("\"{}\"", snapshot.revision()),
                "lastModified": last_modified.div_euclid(1000),
            })
            .to_string(),
        )
}

#[utoipa::path(
    get,
    path = "/ofrep/v1/event-stream",
    tag = "ofrep",
    summary = "OFREP change notifications (the bulk response's eventStreams): a refetchEvaluation event, id = revision, after every change",
    responses((status = 200, description = "text/event-stream"), (status = 401, description = "No valid key")),
    security(("bearer" = []))
)]
async fn event_stream(State(state): State<FlagsState>, headers: HeaderMap) -> Response {
    let principal = match evaluation_principal(&state, &headers).await {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    let (project, environment) = match principal.evaluation_scope() {
        Ok(scope) => scope,
        Err(error) => return error.into_response(),
    };
    // A provider fetches the bulk evaluation when it connects, so the stream only speaks
    // of changes after that, unless the client says (by Last-Event-ID) it is behind.
    let mut headers = headers;
    if !headers.contains_key("last-event-id")
        && let Some(snapshot) = state
            .environments
            .cached(project.as_str(), environment.as_str())
        && let Ok(current) = HeaderValue::from_str(&snapshot.revision().to_string())
    {
        headers.insert("last-event-id", current);
    }
    super::sdk::follow(&state, &project, &environment, &headers, refetch_event)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}
