//! What server-side SDKs use: the whole configuration of their environment, once
//! (`GET /api/v1/sdk/config`, with `ETag`) and as a Server-Sent Events stream of
//! snapshots (`GET /api/v1/sdk/stream`) that resumes by revision.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use capstan_model::{EnvironmentKey, ProjectKey, Role};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::auth::Principal;
use crate::core::error::ApiError;
use crate::core::state::Core;
use crate::flags::FlagsState;
use crate::flags::environments::EnvironmentSnapshot;
use crate::flags::wire::SdkConfig;

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(config))
        .routes(routes!(stream))
}

fn etag(snapshot: &EnvironmentSnapshot) -> String {
    format!(
        "\"{}:{}:{}\"",
        snapshot.project,
        snapshot.environment,
        snapshot.revision()
    )
}

fn sdk_scope(principal: &Principal) -> Result<(ProjectKey, EnvironmentKey), ApiError> {
    if principal.role != Role::Sdk {
        return Err(ApiError::Forbidden {
            role: principal.role.as_str(),
            action: "read SDK configuration (use an sdk key)",
        });
    }
    principal.evaluation_scope()
}

#[utoipa::path(
    get,
    path = "/api/v1/sdk/config",
    tag = "sdk",
    summary = "The environment's whole flag configuration, for local evaluation (sdk key; ETag and If-None-Match)",
    responses(
        (status = 200, description = "OK", body = SdkConfig),
        (status = 304, description = "Unchanged since the ETag in If-None-Match"),
        crate::core::error::ErrorResponses
    ),
    security(("bearer" = []))
)]
async fn config(
    State(state): State<FlagsState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (project, environment) = sdk_scope(&principal)?;
    let snapshot = state.environments.get(&project, &environment).await?;
    let etag = etag(&snapshot);
    let etag_value = HeaderValue::from_str(&etag).map_err(ApiError::internal)?;
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.split(',').any(|candidate| candidate.trim() == etag));
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag_value),
        ],
        snapshot.sdk_document().to_string(),
    )
        .into_response())
}

fn snapshot_event(snapshot: &EnvironmentSnapshot) -> Event {
    Event::default()
        .event("snapshot")
        .id(snapshot.revision().to_string())
        .data(&*snapshot.sdk_document())
}

#[utoipa::path(
    get,
    path = "/api/v1/sdk/stream",
    tag = "sdk",
    summary = "Server-Sent Events: a `snapshot` event (id = revision) on connect and after every change; \
               Last-Event-ID resumes without resending an unchanged snapshot",
    responses((status = 200, description = "text/event-stream"), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn stream(
    State(state): State<FlagsState>,
    principal: Principal,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (project, environment) = sdk_scope(&principal)?;
    follow(&state, &project, &environment, &headers, snapshot_event).await
}

/// A Server-Sent Events response that follows an environment: one event, made by
/// `event`, for the current snapshot (unless the client's `Last-Event-ID` says it has
/// it) and one for every snapshot after it. Event ids are revisions.
pub(super) async fn follow(
    state: &FlagsState,
    project: &ProjectKey,
    environment: &EnvironmentKey,
    headers: &HeaderMap,
    event: fn(&EnvironmentSnapshot) -> Event,
) -> Result<Response, ApiError> {
    let mut changes = state.environments.subscribe(project, environment).await?;
    let current = changes.borrow_and_update().clone();
    // A client that already has this revision (it reconnected) gets only what comes next.
    let resumed_at = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<i64>().ok());
    let first = (resumed_at != Some(current.revision())).then_some(current);
    let shutdown = state.core.shutdown.subscribe();
    let events = futures_util::stream::unfold(
        (first, changes, shutdown),
        move |(first, mut changes, mut shutdown)| async move {
            let snapshot = match first {
                Some(snapshot) => snapshot,
                // Ends the stream when the server shuts down, so graceful shutdown does not
                // wait for clients that never hang up.
                None => tokio::select! {
                    changed = changes.changed() => {
                        changed.ok()?;
                        changes.borrow_and_update().clone()
                    }
                    _ = shutdown.wait_for(|stop| *stop) => return None,
                },
            };
            Some((
                Ok::<_, Infallible>(event(&snapshot)),
                (None, changes, shutdown),
            ))
        },
    );
    // Idle streams send comments, so proxies and clients can tell a quiet stream from a
    // dead one.
    let keep_alive = Duration::from_secs(state.core.settings.sse_keep_alive_seconds.max(1));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive))
        .into_response())
}
