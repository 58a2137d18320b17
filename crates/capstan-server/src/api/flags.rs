//! Flags: project-wide attributes, per-environment configuration, history and revert.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use capstan_model::{EnvironmentKey, FlagKey, FlagType, ProjectKey, Role};
use capstan_store::{ConfigRecord, ConfigWrite, FlagRecord, FlagWrite};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{JsonBody, if_match, key};
use super::paths;
use crate::auth::Principal;
use crate::clock::rfc3339;
use crate::environments::EnvironmentSnapshot;
use crate::error::ApiError;
use crate::mutations::{AuditDraft, Plan, mutate};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
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

/// The fields of a flag's configuration in one environment (a flagd flag object).
pub const CONFIG_FIELDS: [&str; 6] = [
    "state",
    "variants",
    "defaultVariant",
    "targeting",
    "metadata",
    "prerequisites",
];

pub fn project_key(principal: &Principal, text: &str) -> Result<ProjectKey, ApiError> {
    let project = key("project", text, ProjectKey::parse)?;
    principal.require_project(&project)?;
    Ok(project)
}

pub fn environment_key(text: &str) -> Result<EnvironmentKey, ApiError> {
    key("environment", text, EnvironmentKey::parse)
}

pub fn flag_key(text: &str) -> Result<FlagKey, ApiError> {
    key("flag", text, FlagKey::parse)
}

/// The flag a route addresses, parsed, once the caller is known to be allowed `action`.
pub fn flag_scope(
    principal: &Principal,
    role: Role,
    action: &'static str,
    (project, environment, flag): (&str, &str, &str),
) -> Result<(ProjectKey, EnvironmentKey, FlagKey), ApiError> {
    principal.require(role, action)?;
    Ok((
        project_key(principal, project)?,
        environment_key(environment)?,
        flag_key(flag)?,
    ))
}

pub async fn project_environments(
    state: &AppState,
    project: &ProjectKey,
) -> Result<Vec<EnvironmentKey>, ApiError> {
    Ok(state
        .store
        .list_environments(project)
        .await?
        .into_iter()
        .map(|env| env.key)
        .collect())
}

fn flag_not_found(flag: &FlagKey) -> ApiError {
    ApiError::NotFound {
        kind: "flag",
        key: flag.to_string(),
    }
}

fn find_flag<'a>(snapshot: &'a EnvironmentSnapshot, flag: &FlagKey) -> Option<&'a FlagRecord> {
    snapshot.flag(flag)
}

fn find_config<'a>(snapshot: &'a EnvironmentSnapshot, flag: &FlagKey) -> Option<&'a ConfigRecord> {
    snapshot.config(flag)
}

/// A flag's project-wide attributes as the API shows them.
fn flag_json(flag: &FlagRecord) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("key".into(), json!(flag.key.as_str()));
    out.insert("type".into(), json!(flag.flag_type.as_str()));
    out.insert("description".into(), json!(flag.description));
    out.insert("clientVisible".into(), json!(flag.client_visible));
    out.insert("createdAt".into(), json!(rfc3339(flag.created_at)));
    out
}

/// A flag's configuration in one environment, with its version.
fn config_json(config: &ConfigRecord) -> Map<String, Value> {
    let mut out = config.config.as_object().cloned().unwrap_or_default();
    out.insert("version".into(), json!(config.version));
    out.insert("updatedAt".into(), json!(rfc3339(config.updated_at)));
    out
}

/// One flag as seen in one environment: attributes and configuration together.
fn environment_flag_json(
    environment: &EnvironmentKey,
    flag: &FlagRecord,
    config: &ConfigRecord,
) -> Value {
    let mut out = flag_json(flag);
    out.insert("environment".into(), json!(environment.as_str()));
    out.extend(config_json(config));
    Value::Object(out)
}

fn with_etag(version: i64, body: Value) -> Response {
    (
        [(axum::http::header::ETAG, format!("\"{version}\""))],
        Json(body),
    )
        .into_response()
}

async fn snapshots(
    state: &AppState,
    project: &ProjectKey,
) -> Result<Vec<Arc<EnvironmentSnapshot>>, ApiError> {
    let mut out = Vec::new();
    for environment in project_environments(state, project).await? {
        out.push(state.environments.get(project, &environment).await?);
    }
    Ok(out)
}

/// A flag with its configuration in every environment.
fn full_flag_json(flag: &FlagRecord, snapshots: &[Arc<EnvironmentSnapshot>]) -> Value {
    let mut out = flag_json(flag);
    let environments: Map<String, Value> = snapshots
        .iter()
        .filter_map(|snapshot| {
            find_config(snapshot, &flag.key).map(|config| {
                (
                    snapshot.environment.to_string(),
                    Value::Object(config_json(config)),
                )
            })
        })
        .collect();
    out.insert("environments".into(), Value::Object(environments));
    Value::Object(out)
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/flags",
    tag = "flags",
    summary = "Flags with their configuration in every environment",
    params(paths::Project),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_flags(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Viewer, "read flags")?;
    let project = project_key(&principal, &project)?;
    let snapshots = snapshots(&state, &project).await?;
    let flags: Vec<Value> = snapshots
        .first()
        .map(|first| {
            first
                .state
                .flags
                .iter()
                .map(|flag| full_flag_json(flag, &snapshots))
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({ "flags": flags })))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/flags",
    tag = "flags",
    summary = "Flags in one environment",
    params(paths::Environment),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_environment_flags(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, environment)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Viewer, "read flags")?;
    let project = project_key(&principal, &project)?;
    let environment = environment_key(&environment)?;
    let snapshot = state.environments.get(&project, &environment).await?;
    let flags: Vec<Value> = snapshot
        .state
        .flags
        .iter()
        .filter_map(|flag| {
            find_config(&snapshot, &flag.key)
                .map(|config| environment_flag_json(&environment, flag, config))
        })
        .collect();
    Ok(Json(json!({ "flags": flags })))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/flags/{flag}",
    tag = "flags",
    summary = "One flag",
    params(paths::Flag),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn get_flag(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, flag)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Viewer, "read flags")?;
    let project = project_key(&principal, &project)?;
    let flag = flag_key(&flag)?;
    let snapshots = snapshots(&state, &project).await?;
    let record = snapshots
        .first()
        .and_then(|first| find_flag(first, &flag))
        .ok_or_else(|| flag_not_found(&flag))?;
    Ok(Json(full_flag_json(record, &snapshots)))
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
    responses((status = 201, description = "Created", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn create_flag(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<CreateFlag>,
) -> Result<Response, ApiError> {
    principal.require(Role::Editor, "create flags")?;
    let project = project_key(&principal, &project)?;
    let flag = key("key", &body.key, FlagKey::parse)?;
    let flag_type = match body.flag_type.as_deref() {
        Some(text) => Some(FlagType::parse(text).ok_or_else(|| {
            ApiError::field(
                "type",
                format!("unknown type {text:?}; expected boolean, string, number or object"),
            )
        })?),
        None => None,
    };
    let variants = match body.variants {
        Some(variants) if variants.is_empty() => {
            return Err(ApiError::field("variants", "must not be empty"));
        }
        Some(variants) => variants,
        None if matches!(flag_type, None | Some(FlagType::Boolean)) => {
            let mut variants = Map::new();
            variants.insert("on".into(), json!(true));
            variants.insert("off".into(), json!(false));
            variants
        }
        None => {
            return Err(ApiError::field(
                "variants",
                "are required for non-boolean flags",
            ));
        }
    };
    let flag_type = match flag_type {
        Some(flag_type) => flag_type,
        None => FlagType::infer(variants.values()).ok_or_else(|| {
            ApiError::field(
                "variants",
                "hold values of different types; give the flag a type",
            )
        })?,
    };
    // A new flag is created disabled; turning it on serves "on" unless told otherwise.
    let default_variant = match body.default_variant {
        Some(name) => name,
        None if variants.contains_key("on") => "on".to_owned(),
        None => variants.keys().next().cloned().unwrap_or_default(),
    };
    let config =
        json!({ "state": "DISABLED", "variants": variants, "defaultVariant": default_variant });
    let environments = project_environments(&state, &project).await?;
    let (result, _) = mutate(
        &state,
        &principal.name,
        &project,
        &environments,
        |snapshots, now| {
            if snapshots
                .iter()
                .any(|snapshot| find_flag(snapshot, &flag).is_some())
            {
                return Err(ApiError::AlreadyExists {
                    kind: "flag",
                    key: flag.to_string(),
                });
            }
            let record = FlagRecord {
                key: flag.clone(),
                flag_type,
                description: body.description.clone(),
                client_visible: body.client_visible,
                created_at: now,
            };
            let mut plan = Plan::new(
                AuditDraft {
                    action: "flag.create",
                    environment: None,
                    resource_kind: "flag",
                    resource_key: flag.to_string(),
                    before: None,
                    after: Some(
                        json!({ "flag": Value::Object(flag_json(&record)), "config": config }),
                    ),
                },
                (),
            );
            plan.flags.push(FlagWrite::Upsert(record));
            for snapshot in snapshots {
                plan.configs.push(ConfigWrite {
                    environment: snapshot.environment.clone(),
                    flag: flag.clone(),
                    expected_version: None,
                    config: Some(config.clone()),
                });
            }
            Ok(plan)
        },
    )
    .await?;
    let () = result;
    let snapshots = snapshots(&state, &project).await?;
    let record = snapshots
        .first()
        .and_then(|first| find_flag(first, &flag))
        .ok_or_else(|| flag_not_found(&flag))?;
    Ok((
        StatusCode::CREATED,
        Json(full_flag_json(record, &snapshots)),
    )
        .into_response())
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
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn update_flag(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, flag)): Path<(String, String)>,
    JsonBody(body): JsonBody<UpdateFlag>,
) -> Result<Json<Value>, ApiError> {
    principal.require(Role::Editor, "change flags")?;
    let project = project_key(&principal, &project)?;
    let flag = flag_key(&flag)?;
    let environments = project_environments(&state, &project).await?;
    mutate(
        &state,
        &principal.name,
        &project,
        &environments,
        |snapshots, _| {
            let current = snapshots
                .first()
                .and_then(|first| find_flag(first, &flag))
                .ok_or_else(|| flag_not_found(&flag))?;
            let mut next = current.clone();
            if let Some(description) = &body.description {
                next.description = description.clone();
            }
            if let Some(client_visible) = body.client_visible {
                next.client_visible = client_visible;
            }
            let mut plan = Plan::new(
                AuditDraft {
                    action: "flag.update",
                    environment: None,
                    resource_kind: "flag",
                    resource_key: flag.to_string(),
                    before: Some(Value::Object(flag_json(current))),
                    after: Some(Value::Object(flag_json(&next))),
                },
                (),
            );
            if &next != current {
                plan.flags.push(FlagWrite::Upsert(next));
            }
            Ok(plan)
        },
    )
    .await?;
    let snapshots = snapshots(&state, &project).await?;
    let record = snapshots
        .first()
        .and_then(|first| find_flag(first, &flag))
        .ok_or_else(|| flag_not_found(&flag))?;
    Ok(Json(full_flag_json(record, &snapshots)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/flags/{flag}",
    tag = "flags",
    summary = "Delete a flag from every environment",
    params(paths::Flag),
    responses((status = 204, description = "Deleted"), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn delete_flag(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, flag)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    principal.require(Role::Editor, "delete flags")?;
    let project = project_key(&principal, &project)?;
    let flag = flag_key(&flag)?;
    let environments = project_environments(&state, &project).await?;
    mutate(
        &state,
        &principal.name,
        &project,
        &environments,
        |snapshots, _| {
            let current = snapshots
                .first()
                .and_then(|first| find_flag(first, &flag))
                .ok_or_else(|| flag_not_found(&flag))?;
            let before = full_flag_json(current, snapshots);
            let mut plan = Plan::new(
                AuditDraft {
                    action: "flag.delete",
                    environment: None,
                    resource_kind: "flag",
                    resource_key: flag.to_string(),
                    before: Some(before),
                    after: None,
                },
                (),
            );
            for snapshot in snapshots {
                if let Some(config) = find_config(snapshot, &flag) {
                    plan.configs.push(ConfigWrite {
                        environment: snapshot.environment.clone(),
                        flag: flag.clone(),
                        expected_version: Some(config.version),
                        config: None,
                    });
                }
            }
            plan.flags.push(FlagWrite::Delete(flag.clone()));
            Ok(plan)
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}",
    tag = "flags",
    summary = "One flag in one environment",
    params(paths::FlagInEnvironment),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn get_config(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, environment, flag)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let (project, environment, flag) = flag_scope(
        &principal,
        Role::Viewer,
        "read flags",
        (&project, &environment, &flag),
    )?;
    let snapshot = state.environments.get(&project, &environment).await?;
    let record = find_flag(&snapshot, &flag).ok_or_else(|| flag_not_found(&flag))?;
    let config = find_config(&snapshot, &flag).ok_or_else(|| flag_not_found(&flag))?;
    Ok(with_etag(
        config.version,
        environment_flag_json(&environment, record, config),
    ))
}

/// How a configuration change is described: the new configuration from the current one.
type Edit<'a> = dyn Fn(&Map<String, Value>) -> Result<Map<String, Value>, ApiError> + Sync + 'a;

/// Changes one flag's configuration in one environment, checking `expected` (from
/// `If-Match`) against the current version when given.
pub async fn change_config(
    state: &AppState,
    actor: &str,
    scope: (&ProjectKey, &EnvironmentKey, &FlagKey),
    expected: Option<i64>,
    action: &'static str,
    settles_schedule: Option<i64>,
    edit: &Edit<'_>,
) -> Result<Response, ApiError> {
    let (project, environment, flag) = scope;
    mutate(
        state,
        actor,
        project,
        std::slice::from_ref(environment),
        |snapshots, _| {
            let snapshot = &snapshots[0];
            let current = find_config(snapshot, flag).ok_or_else(|| flag_not_found(flag))?;
            if let Some(expected) = expected
                && expected != current.version
            {
                return Err(ApiError::VersionConflict {
                    kind: "flag",
                    key: flag.to_string(),
                    current_version: current.version,
                });
            }
            let before = current.config.as_object().cloned().unwrap_or_default();
            let after = edit(&before)?;
            let mut plan = Plan::new(
                AuditDraft {
                    action,
                    environment: Some(environment.clone()),
                    resource_kind: "flag",
                    resource_key: flag.to_string(),
                    before: Some(Value::Object(before.clone())),
                    after: Some(Value::Object(after.clone())),
                },
                (),
            );
            plan.settles_schedule = settles_schedule;
            if after != before || settles_schedule.is_some() {
                plan.configs.push(ConfigWrite {
                    environment: environment.clone(),
                    flag: flag.clone(),
                    expected_version: Some(current.version),
                    config: Some(Value::Object(after)),
                });
            }
            Ok(plan)
        },
    )
    .await?;
    let snapshot = state.environments.get(project, environment).await?;
    let record = find_flag(&snapshot, flag).ok_or_else(|| flag_not_found(flag))?;
    let config = find_config(&snapshot, flag).ok_or_else(|| flag_not_found(flag))?;
    Ok(with_etag(
        config.version,
        environment_flag_json(environment, record, config),
    ))
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
    request_body = serde_json::Value,
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn patch_config(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path((project, environment, flag)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let (project, environment, flag) = flag_scope(
        &principal,
        Role::Editor,
        "change flags",
        (&project, &environment, &flag),
    )?;
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
    change_config(
        &state,
        &principal.name,
        (&project, &environment, &flag),
        expected,
        "flag.update",
        None,
        &edit,
    )
    .await
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}",
    tag = "flags",
    summary = "Replace a flag's configuration (If-Match: version)",
    params(paths::FlagInEnvironment),
    request_body = serde_json::Value,
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn put_config(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path((project, environment, flag)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<Map<String, Value>>,
) -> Result<Response, ApiError> {
    let (project, environment, flag) = flag_scope(
        &principal,
        Role::Editor,
        "change flags",
        (&project, &environment, &flag),
    )?;
    config_fields(&body)?;
    let expected = expected_version(&headers, &body)?;
    let edit = |_: &Map<String, Value>| {
        let mut next = body.clone();
        next.remove("version");
        Ok(next)
    };
    change_config(
        &state,
        &principal.name,
        (&project, &environment, &flag),
        expected,
        "flag.replace",
        None,
        &edit,
    )
    .await
}

pub fn set_state(
    state: &'static str,
) -> impl Fn(&Map<String, Value>) -> Result<Map<String, Value>, ApiError> + Sync {
    move |current: &Map<String, Value>| {
        let mut next = current.clone();
        next.insert("state".into(), json!(state));
        Ok(next)
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}/enable",
    tag = "flags",
    summary = "Turn a flag on",
    params(paths::FlagInEnvironment),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn enable(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path((project, environment, flag)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    toggle(
        state,
        principal,
        headers,
        (project, environment, flag),
        "ENABLED",
        "flag.enable",
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/flags/{flag}/disable",
    tag = "flags",
    summary = "Turn a flag off",
    params(paths::FlagInEnvironment),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn disable(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path((project, environment, flag)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    toggle(
        state,
        principal,
        headers,
        (project, environment, flag),
        "DISABLED",
        "flag.disable",
    )
    .await
}

async fn toggle(
    state: AppState,
    principal: Principal,
    headers: HeaderMap,
    (project, environment, flag): (String, String, String),
    to: &'static str,
    action: &'static str,
) -> Result<Response, ApiError> {
    let (project, environment, flag) = flag_scope(
        &principal,
        Role::Editor,
        "change flags",
        (&project, &environment, &flag),
    )?;
    let expected = if_match(&headers)?;
    change_config(
        &state,
        &principal.name,
        (&project, &environment, &flag),
        expected,
        action,
        None,
        &set_state(to),
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
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn history(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, environment, flag)): Path<(String, String, String)>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    let (project, environment, flag) = flag_scope(
        &principal,
        Role::Viewer,
        "read flag history",
        (&project, &environment, &flag),
    )?;
    let versions = state
        .store
        .flag_history(&project, &environment, &flag)
        .await?;
    if versions.is_empty() {
        return Err(flag_not_found(&flag));
    }
    let versions: Vec<Value> = versions
        .iter()
        .take(query.limit.unwrap_or(usize::MAX))
        .map(|version| {
            json!({
                "version": version.version,
                "at": rfc3339(version.at),
                "actor": version.actor,
                "action": version.action,
                "auditId": version.audit_id,
                "config": version.config,
            })
        })
        .collect();
    Ok(Json(
        json!({ "flag": flag.as_str(), "environment": environment.as_str(), "versions": versions }),
    ))
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
    responses((status = 200, description = "OK", body = serde_json::Value), crate::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn revert(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Path((project, environment, flag)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<RevertBody>,
) -> Result<Response, ApiError> {
    let (project, environment, flag) = flag_scope(
        &principal,
        Role::Editor,
        "revert flags",
        (&project, &environment, &flag),
    )?;
    let versions = state
        .store
        .flag_history(&project, &environment, &flag)
        .await?;
    let target = versions
        .iter()
        .find(|version| version.version == body.version)
        .ok_or_else(|| {
            ApiError::field(
                "version",
                format!("flag {flag:?} has no version {}", body.version),
            )
        })?;
    let config = target
        .config
        .as_ref()
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| {
            ApiError::field(
                "version",
                format!("version {} is the flag's deletion", body.version),
            )
        })?;
    let expected = if_match(&headers)?;
    let edit = move |_: &Map<String, Value>| Ok(config.clone());
    change_config(
        &state,
        &principal.name,
        (&project, &environment, &flag),
        expected,
        "flag.revert",
        None,
        &edit,
    )
    .await
}
