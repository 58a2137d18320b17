//! `POST /api/v1/events`: exposures and metric events from SDKs, in batches. Guarded
//! rollouts read them.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::State;
use axum::http::StatusCode;
use capstan_model::{FlagKey, Role};
use capstan_store::{EventKind, EventRecord};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::auth::Principal;
use crate::core::body::JsonBody;
use crate::core::clock::parse_rfc3339;
use crate::core::error::ApiError;
use crate::core::state::Core;
use crate::flags::FlagsState;
use crate::flags::operations::events::metric_name;
use crate::flags::wire::Accepted;

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(ingest))
}

/// Most events one request may carry; SDKs send batches of a few hundred.
const MAX_EVENTS_PER_REQUEST: usize = 10_000;

/// A batch of events as SDKs send it.
#[derive(Deserialize, utoipa::ToSchema)]
struct EventBatch {
    events: Vec<WireEvent>,
}

/// One event. Fields other than these are accepted and ignored, so SDKs can send more.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct WireEvent {
    /// `exposure` or `metric`.
    kind: String,
    /// Exposures: the flag evaluated.
    flag: Option<String>,
    /// Exposures: the variant served.
    variant: Option<String>,
    /// Metrics: the metric's name, such as `checkout_error`.
    metric: Option<String>,
    /// Metrics: the measured value (1 when omitted: a count).
    value: Option<f64>,
    /// Who: the evaluation context's targeting key.
    targeting_key: String,
    /// When, RFC 3339.
    timestamp: String,
}

fn parse_event(
    index: usize,
    event: WireEvent,
    principal_scope: &(capstan_model::ProjectKey, capstan_model::EnvironmentKey),
    received_at: i64,
) -> Result<EventRecord, ApiError> {
    let field = |name: &str| format!("events[{index}].{name}");
    let missing = |name: &str| ApiError::field(field(name), "is required");
    let kind = match event.kind.as_str() {
        "exposure" => {
            let flag = event.flag.ok_or_else(|| missing("flag"))?;
            let flag =
                FlagKey::parse(flag).map_err(|error| ApiError::field(field("flag"), error))?;
            let variant = event
                .variant
                .filter(|variant| !variant.is_empty())
                .ok_or_else(|| missing("variant"))?;
            EventKind::Exposure { flag, variant }
        }
        "metric" => {
            let metric = event.metric.ok_or_else(|| missing("metric"))?;
            let metric =
                metric_name(&metric).map_err(|error| ApiError::field(field("metric"), error))?;
            let value = event.value.unwrap_or(1.0);
            if !value.is_finite() {
                return Err(ApiError::field(field("value"), "must be a finite number"));
            }
            EventKind::Metric { metric, value }
        }
        other => {
            return Err(ApiError::field(
                field("kind"),
                format!("unknown kind {other:?}; expected exposure or metric"),
            ));
        }
    };
    if event.targeting_key.is_empty() {
        return Err(missing("targetingKey"));
    }
    let at = parse_rfc3339(&event.timestamp)
        .ok_or_else(|| ApiError::field(field("timestamp"), "expected an RFC 3339 time"))?;
    Ok(EventRecord {
        project: principal_scope.0.clone(),
        environment: principal_scope.1.clone(),
        kind,
        targeting_key: event.targeting_key,
        at,
        received_at,
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "sdk",
    summary = "Record exposures and metric events (sdk or client key); all or none of a batch",
    request_body = EventBatch,
    responses((status = 202, description = "Stored", body = Accepted), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn ingest(
    State(state): State<FlagsState>,
    principal: Principal,
    JsonBody(batch): JsonBody<EventBatch>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    if !matches!(principal.role, Role::Sdk | Role::Client) {
        return Err(ApiError::Forbidden {
            role: principal.role.as_str(),
            action: "send events (use an sdk or client key)",
        });
    }
    let scope = principal.evaluation_scope()?;
    if batch.events.len() > MAX_EVENTS_PER_REQUEST {
        return Err(ApiError::field(
            "events",
            format!("at most {MAX_EVENTS_PER_REQUEST} events per request"),
        ));
    }
    let received_at = state.core.clock.now_ms();
    let records = batch
        .events
        .into_iter()
        .enumerate()
        .map(|(index, event)| parse_event(index, event, &scope, received_at))
        .collect::<Result<Vec<_>, _>>()?;
    let accepted = state.core.store.insert_events(&records).await?;
    Ok((StatusCode::ACCEPTED, Json(Accepted { accepted })))
}
