//! Projects and environments.

use std::sync::Arc;

use axum::Json;
use axum::extract::FromRef;
use axum::extract::State;
use axum::http::StatusCode;
use capstan_model::EnvironmentKey;
use capstan_store::{AuditEntry, NewEnvironment};
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{JsonBody, key};
use super::paths;
use crate::core::error::ApiError;
use crate::core::scope::{Allowed, InProject, permissions};
use crate::core::state::Core;
use crate::core::wire::{Environment, EnvironmentList, Project, ProjectList};

permissions! {
    ReadProjects = (Viewer, "read projects");
    CreateEnvironments = (Admin, "create environments");
    ReadEnvironments = (Viewer, "read environments");
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_projects))
        .routes(routes!(list_environments, create_environment))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects",
    tag = "projects",
    summary = "Projects",
    responses((status = 200, description = "OK", body = ProjectList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_projects(
    State(state): State<Arc<Core>>,
    Allowed { principal, .. }: Allowed<ReadProjects>,
) -> Result<Json<ProjectList>, ApiError> {
    let projects = state
        .store
        .list_projects()
        .await?
        .iter()
        .filter(|project| {
            principal
                .project
                .as_ref()
                .is_none_or(|own| own == &project.key)
        })
        .map(Project::from)
        .collect();
    Ok(Json(ProjectList { projects }))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments",
    tag = "projects",
    summary = "Environments of a project",
    params(paths::Project),
    responses((status = 200, description = "OK", body = EnvironmentList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_environments(
    State(state): State<Arc<Core>>,
    InProject { project, .. }: InProject<ReadEnvironments>,
) -> Result<Json<EnvironmentList>, ApiError> {
    let environments = state
        .store
        .list_environments(&project)
        .await?
        .iter()
        .map(Environment::from)
        .collect();
    Ok(Json(EnvironmentList { environments }))
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
    responses((status = 201, description = "Created", body = Environment), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn create_environment(
    State(state): State<Arc<Core>>,
    InProject {
        principal, project, ..
    }: InProject<CreateEnvironments>,
    JsonBody(body): JsonBody<CreateEnvironment>,
) -> Result<(StatusCode, Json<Environment>), ApiError> {
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
    Ok((StatusCode::CREATED, Json(Environment::from(&record))))
}
