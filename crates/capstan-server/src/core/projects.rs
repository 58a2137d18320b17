//! Projects and environments.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use capstan_model::EnvironmentKey;
use capstan_store::{AuditEntry, EnvironmentRecord, NewEnvironment};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{JsonBody, key};

use super::paths;
use crate::core::clock::rfc3339;
use crate::core::error::ApiError;
use crate::core::scope::{Allowed, InProject, permissions};
use crate::state::AppState;

permissions! {
    ReadProjects = (Viewer, "read projects");
    CreateEnvironments = (Admin, "create environments");
    ReadEnvironments = (Viewer, "read environments");
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects))
        .routes(routes!(list_environments, create_environment))
}

fn environment_json(environment: &EnvironmentRecord) -> Value {
    json!({
        "key": environment.key.as_str(),
        "name": environment.name,
        "revision": environment.revision,
        "createdAt": rfc3339(environment.created_at),
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "projects",
    summary = "Projects",
    responses((status = 200, description = "OK", body = serde_json::Value), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_projects(
    State(state): State<AppState>,
    Allowed { principal, .. }: Allowed<ReadProjects>,
) -> Result<Json<Value>, ApiError> {
    let projects: Vec<Value> = state
        .store
        .list_projects()
        .await?
        .iter()
        .filter(|project| principal.project.as_ref().is_none_or(|own| own == &project.key))
        .map(|project| json!({ "key": project.key.as_str(), "name": project.name, "createdAt": rfc3339(project.created_at) }))
        .collect();
    Ok(Json(json!({ "projects": projects })))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments",
    tag = "projects",
    summary = "Environments of a project",
    params(paths::Project),
    responses((status = 200, description = "OK", body = serde_json::Value), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_environments(
    State(state): State<AppState>,
    InProject { project, .. }: InProject<ReadEnvironments>,
) -> Result<Json<Value>, ApiError> {
    let environments: Vec<Value> = state
        .store
        .list_environments(&project)
        .await?
        .iter()
        .map(environment_json)
        .collect();
    Ok(Json(json!({ "environments": environments })))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateEnvironment {
    key: String,
    name: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments",
    tag = "projects",
    summary = "Create an environment",
    params(paths::Project),
    request_body = CreateEnvironment,
    responses((status = 201, description = "Created", body = serde_json::Value), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn create_environment(
    State(state): State<AppState>,
    InProject {
        principal, project, ..
    }: InProject<CreateEnvironments>,
    JsonBody(body): JsonBody<CreateEnvironment>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let environment = key("key", &body.key, EnvironmentKey::parse)?;
    let name = body.name.unwrap_or_else(|| environment.to_string());
    let now = state.clock.now_ms();
    let record = state
        .store
        .create_environment(
            NewEnvironment {
                project: project.clone(),
                key: environment.clone(),
                name: name.clone(),
                created_at: now,
            },
            AuditEntry {
                at: now,
                actor: principal.name.clone(),
                action: "environment.create".to_owned(),
                project: Some(project.clone()),
                environment: Some(environment.clone()),
                resource_kind: "environment".to_owned(),
                resource_key: environment.to_string(),
                before: None,
                after: Some(json!({ "key": environment.as_str(), "name": name })),
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(environment_json(&record))))
}
