//! Plain records the store reads and writes. JSON columns are carried as
//! `serde_json::Value`; their shape belongs to the layer above.

use capstan_model::{EnvironmentKey, ProjectKey};

use crate::TokenRecord;

#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRecord {
    pub key: ProjectKey,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvironmentRecord {
    pub project: ProjectKey,
    pub key: EnvironmentKey,
    pub name: String,
    pub revision: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewEnvironment {
    pub project: ProjectKey,
    pub key: EnvironmentKey,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub project: ProjectKey,
    pub project_name: String,
    pub environments: Vec<EnvironmentKey>,
    pub admin_token: TokenRecord,
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapOutcome {
    Created,
    AlreadyBootstrapped,
}
