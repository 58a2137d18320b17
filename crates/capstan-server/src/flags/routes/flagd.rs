//! Import and export of flagd flag-definition files, one environment at a time.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::body::JsonBody;
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InEnvironment, permissions};
use crate::core::state::Core;
use crate::flags::FlagsState;
use crate::flags::environments::flagd_json;
use crate::flags::operations::flagd;
use crate::flags::wire::{FlagdFile, ImportSummary};

const FLAGD_SCHEMA: &str = "https://flagd.dev/schema/v0/flags.json";

permissions! {
    ImportFlags = (Editor, "import flags");
    ExportFlags = (Viewer, "export flags");
}

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(export, import))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/flagd",
    tag = "flagd",
    summary = "Export an environment as a flagd file",
    params(paths::Environment),
    responses((status = 200, description = "OK", body = FlagdFile), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn export(
    State(state): State<FlagsState>,
    InEnvironment {
        project,
        environment,
        ..
    }: InEnvironment<ExportFlags>,
) -> Result<Json<FlagdFile>, ApiError> {
    let snapshot = state.environments.get(&project, &environment).await?;
    let mut document = flagd_json(&snapshot.state);
    Ok(Json(FlagdFile {
        schema: FLAGD_SCHEMA.to_owned(),
        flags: match document.get_mut("flags").map(Value::take) {
            Some(Value::Object(flags)) => flags,
            _ => Map::new(),
        },
        evaluators: match document.get_mut("$evaluators").map(Value::take) {
            Some(Value::Object(evaluators)) => Some(evaluators),
            _ => None,
        },
    }))
}

#[derive(Deserialize)]
struct ImportQuery {
    /// Make the environment exactly the file: flags and segments not in it are removed
    /// from the environment.
    #[serde(default)]
    replace: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/flagd",
    tag = "flagd",
    summary = "Import a flagd file as one change",
    params(paths::Environment, ("replace" = Option<bool>, Query, description = "Remove flags and segments not in the file")),
    request_body = FlagdFile,
    responses((status = 200, description = "OK", body = ImportSummary), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn import(
    State(state): State<FlagsState>,
    InEnvironment {
        principal,
        project,
        environment,
        ..
    }: InEnvironment<ImportFlags>,
    Query(query): Query<ImportQuery>,
    JsonBody(document): JsonBody<Value>,
) -> Result<Json<ImportSummary>, ApiError> {
    let file = flagd::read_file(&document)?;
    let outcome = flagd::import(
        &state,
        &principal.name,
        (&project, &environment),
        &file,
        query.replace,
    )
    .await?;
    Ok(Json(ImportSummary {
        changed: outcome.audit_id.is_some(),
        audit_id: outcome.audit_id,
        segments_changed: outcome.segments_changed,
        created: outcome.created,
        updated: outcome.updated,
        removed: outcome.removed,
    }))
}
