//! The JSON shapes of what `core` answers with: projects and environments.

use capstan_store::{EnvironmentRecord, ProjectRecord};
use serde::{Deserialize, Serialize};

use crate::core::clock::rfc3339;

/// A project.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    pub key: String,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&ProjectRecord> for Project {
    fn from(project: &ProjectRecord) -> Project {
        Project {
            key: project.key.to_string(),
            name: project.name.clone(),
            created_at: rfc3339(project.created_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProjectList {
    pub projects: Vec<Project>,
}

/// An environment of a project.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    pub key: String,
    pub name: String,
    /// Increments with every change to the environment's flags and segments.
    pub revision: i64,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&EnvironmentRecord> for Environment {
    fn from(environment: &EnvironmentRecord) -> Environment {
        Environment {
            key: environment.key.to_string(),
            name: environment.name.clone(),
            revision: environment.revision,
            created_at: rfc3339(environment.created_at),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvironmentList {
    pub environments: Vec<Environment>,
}
