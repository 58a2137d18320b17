//! The flag routes: project-wide attributes, per-environment configuration, history and
//! revert. Each parses, names its permission, and calls [`operations`].

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use capstan_model::{FlagKey, FlagType};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::core::body::{JsonBody, if_match, key};
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::scope::{InEnvironment, InProject, OnFlag, OnFlagIn, permissions};
use crate::core::state::Core;
use crate::flags::FlagsState;
use crate::flags::operations::{
    self, CONFIG_FIELDS, ConfigChange, ConfigView, FlagUpdate, NewFlag, set_state,
};
use crate::flags::wire::{
    EnvironmentFlag, EnvironmentFlagList, Flag, FlagDefinition, FlagHistory, FlagList, FlagVersion,
};

permissions! {
    /// Reading flags and their configuration.
    ReadFlags = (Viewer, "read flags");
    /// Reading a flag's versions.
    ReadHistory = (Viewer, "read flag history");
    CreateFlags = (Editor, "create flags");
    ChangeFlags = (Editor, "change flags");
    DeleteFlags = (Editor, "delete flags");
    RevertFlags = (Editor, "revert flags");
}

pub(super) fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    FlagsState: FromRef<S>,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_flags, create_flag))
        .routes(routes!(get_flag, update_flag, delete_flag))
        .routes(routes!(list_environment_flags))
        .routes(routes!(get_config, patch_config, put_config))
        .routes(routes!(enable))
        .routes(routes!(disable))
        .routes(routes!(history))
        .routes(routes!(revert))
}

/// One flag in one environment, with its version as the `ETag`.
fn config_answer(view: &ConfigView) -> Response {
    (
        [(
            axum::http::header::ETAG,
            format!("\"{}\"", view.config.version),
        )],
        Json(EnvironmentFlag::from(view)),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/flags",
    tag = "flags",
    summary = "Flags with their configuration in every environment",
    params(paths::Project),
    responses((status = 200, description = "OK", body = FlagList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_flags(
    State(state): State<FlagsState>,
    scope: InProject<ReadFlags>,
) -> Result<Json<FlagList>, ApiError> {
    let flags = operations::list_flags(&state, &scope.project).await?;
    let flags = flags.iter().map(Flag::from).collect();
    Ok(Json(FlagList { flags }))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/flags",
    tag = "flags",
    summary = "Flags in one environment",
    params(paths::Environment),
    responses((status = 200, description = "OK", body = EnvironmentFlagList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_environment_flags(
    State(state): State<FlagsState>,
    scope: InEnvironment<ReadFlags>,
) -> Result<Json<EnvironmentFlagList>, ApiError> {
    let flags = operations::environment_flags(&state, &scope.project, &scope.environment).await?;
    let flags = flags.iter().map(EnvironmentFlag::from).collect();
    Ok(Json(EnvironmentFlagList { flags }))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/flags/{flag}",
    tag = "flags",
    summary = "One flag",
    params(paths::Flag),
    responses((status = 200, description = "OK", body = Flag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn get_flag(
    State(state): State<FlagsState>,
    scope: OnFlag<ReadFlags>,
) -> Result<Json<Flag>, ApiError> {
    let view = operations::flag(&state, &scope.project, &scope.flag).await?;
    Ok(Json(Flag::from(&view)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateFlag {
    key: String,
    #[serde(rename = "type")]
    flag_type: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    client_visible: bool,
    variants: Option<Map<String, Value>>,
    default_variant: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/flags",
    tag = "flags",
    summary = "Create a flag, disabled in every environment",
    params(paths::Project),
    request_body = CreateFlag,
    responses((status = 201, description = "Created", body = Flag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn create_flag(
    State(state): State<FlagsState>,
    scope: InProject<CreateFlags>,
    JsonBody(body): JsonBody<CreateFlag>,
) -> Result<Response, ApiError> {
    let key = key("key", &body.key, FlagKey::parse)?;
    let flag_type = match body.flag_type.as_deref() {
        Some(text) => Some(FlagType::parse(text).ok_or_else(|| {
            ApiError::field(
                "type",
                format!("unknown type {text:?}; expected boolean, string, number or object"),
            )
        })?),
        None => None,
    };
    let new = NewFlag {
        key,
        flag_type,
        description: body.description,
        client_visible: body.client_visible,
        variants: body.variants,
        default_variant: body.default_variant,
    };
    let view = operations::create_flag(&state, &scope.principal.name, &scope.project, new).await?;
    Ok((StatusCode::CREATED, Json(Flag::from(&view))).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpdateFlag {
    description: Option<String>,
    client_visible: Option<bool>,
}

#[utoipa::path(
    patch,
    path = "/api/v1/projects/{project}/flags/{flag}",
    tag = "flags",
    summary = "Change a flag's description or client visibility",
    params(paths::Flag),
    request_body = UpdateFlag,
    responses((status = 200, description = "OK", body = Flag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn update_flag(
    State(state): State<FlagsState>,
    scope: OnFlag<ChangeFlags>,
    JsonBody(body): JsonBody<UpdateFlag>,
) -> Result<Json<Flag>, ApiError> {
    let update = FlagUpdate {
        description: body.description,
        client_visible: body.client_visible,
    };
    let view = operations::update_flag(
        &state,
        &scope.principal.name,
        &scope.project,
        &scope.flag,
        update,
    )
    .await?;
    Ok(Json(Flag::from(&view)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/flags/{flag}",
    tag = "flags",
    summary = "Delete a flag from every environment",
    params(paths::Flag),
    responses((status = 204, description = "Deleted"), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn delete_flag(
    State(state): State<FlagsState>,
    scope: OnFlag<DeleteFlags>,
) -> Result<StatusCode, ApiError> {
    operations::delete_flag(&state, &scope.principal.name, &scope.project, &scope.flag).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}",
    tag = "flags",
    summary = "One flag in one environment",
    params(paths::FlagInEnvironment),
    responses((status = 200, description = "OK", body = EnvironmentFlag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn get_config(
    State(state): State<FlagsState>,
    scope: OnFlagIn<ReadFlags>,
) -> Result<Response, ApiError> {
    let view =
        operations::config(&state, (&scope.project, &scope.environment, &scope.flag)).await?;
    Ok(config_answer(&view))
}

/// Carries out a configuration change a route asked for, and answers with the result.
async fn change(
    state: &FlagsState,
    scope: &OnFlagIn<ChangeFlags>,
    expected_version: Option<i64>,
    action: &'static str,
    edit: &operations::Edit<'_>,
) -> Result<Response, ApiError> {
    let view = operations::change_config(
        state,
        &scope.principal.name,
        (&scope.project, &scope.environment, &scope.flag),
        ConfigChange {
            expected_version,
            action,
            settles_schedule: None,
        },
        edit,
    )
    .await?;
    Ok(config_answer(&view))
}

/// Checks that a configuration body holds only flagd flag fields.
fn config_fields(body: &Map<String, Value>) -> Result<(), ApiError> {
    match body
        .keys()
        .find(|field| !CONFIG_FIELDS.contains(&field.as_str()) && *field != "version")
    {
        Some(field) => Err(ApiError::field(
            field.clone(),
            format!(
                "unknown field; a flag's configuration has {}",
                CONFIG_FIELDS.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

/// The version the caller expects: `If-Match`, or a `version` field in the body.
fn expected_version(
    headers: &HeaderMap,
    body: &Map<String, Value>,
) -> Result<Option<i64>, ApiError> {
    if let Some(version) = if_match(headers)? {
        return Ok(Some(version));
    }
    match body.get("version") {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_i64()
            .map(Some)
            .ok_or_else(|| ApiError::field("version", "expected an integer")),
    }
}

/// Applies a JSON merge patch (RFC 7386) to a configuration: a field set to `null` is
/// removed, any other value replaces the field.
#[utoipa::path(
    patch,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}",
    tag = "flags",
    summary = "JSON merge patch of a flag's configuration (If-Match: version)",
    params(paths::FlagInEnvironment),
    request_body = FlagDefinition,
    responses((status = 200, description = "OK", body = EnvironmentFlag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn patch_config(
    State(state): State<FlagsState>,
    scope: OnFlagIn<ChangeFlags>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    config_fields(&body)?;
    let expected = expected_version(&headers, &body)?;
    let edit = |current: &Map<String, Value>| {
        let mut next = current.clone();
        for (field, value) in body.iter().filter(|(field, _)| *field != "version") {
            if value.is_null() {
                next.remove(field);
            } else {
                next.insert(field.clone(), value.clone());
            }
        }
        Ok(next)
    };
    change(&state, &scope, expected, "flag.update", &edit).await
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}",
    tag = "flags",
    summary = "Replace a flag's configuration (If-Match: version)",
    params(paths::FlagInEnvironment),
    request_body = FlagDefinition,
    responses((status = 200, description = "OK", body = EnvironmentFlag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn put_config(
    State(state): State<FlagsState>,
    scope: OnFlagIn<ChangeFlags>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    config_fields(&body)?;
    let expected = expected_version(&headers, &body)?;
    let edit = |_: &Map<String, Value>| {
        let mut next = body.clone();
        next.remove("version");
        Ok(next)
    };
    change(&state, &scope, expected, "flag.replace", &edit).await
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}/enable",
    tag = "flags",
    summary = "Turn a flag on",
    params(paths::FlagInEnvironment),
    responses((status = 200, description = "OK", body = EnvironmentFlag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn enable(
    State(state): State<FlagsState>,
    scope: OnFlagIn<ChangeFlags>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    change(
        &state,
        &scope,
        expected,
        "flag.enable",
        &set_state("ENABLED"),
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}/disable",
    tag = "flags",
    summary = "Turn a flag off",
    params(paths::FlagInEnvironment),
    responses((status = 200, description = "OK", body = EnvironmentFlag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn disable(
    State(state): State<FlagsState>,
    scope: OnFlagIn<ChangeFlags>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    change(
        &state,
        &scope,
        expected,
        "flag.disable",
        &set_state("DISABLED"),
    )
    .await
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}/history",
    tag = "flags",
    summary = "Every version of a flag in an environment",
    params(paths::FlagInEnvironment, ("limit" = Option<usize>, Query, description = "Most versions to return")),
    responses((status = 200, description = "OK", body = FlagHistory), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn history(
    State(state): State<FlagsState>,
    scope: OnFlagIn<ReadHistory>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<FlagHistory>, ApiError> {
    let versions =
        operations::history(&state, (&scope.project, &scope.environment, &scope.flag)).await?;
    Ok(Json(FlagHistory {
        flag: scope.flag.to_string(),
        environment: scope.environment.to_string(),
        versions: versions
            .iter()
            .take(query.limit.unwrap_or(usize::MAX))
            .map(FlagVersion::from)
            .collect(),
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RevertBody {
    version: i64,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}/revert",
    tag = "flags",
    summary = "Restore an earlier version as a new change",
    params(paths::FlagInEnvironment),
    request_body = RevertBody,
    responses((status = 200, description = "OK", body = EnvironmentFlag), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn revert(
    State(state): State<FlagsState>,
    scope: OnFlagIn<RevertFlags>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<RevertBody>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let view = operations::revert(
        &state,
        &scope.principal.name,
        (&scope.project, &scope.environment, &scope.flag),
        body.version,
        expected,
    )
    .await?;
    Ok(config_answer(&view))
}
