//! The JSON shapes of what `core` answers with: projects and environments.

use capstan_store::{AuditRecord, EnvironmentRecord, ProjectRecord, TokenRecord};
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

/// Whether a token works now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

/// An API token, never its secret.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Token {
    pub id: String,
    pub name: String,
    /// `admin`, `editor`, `viewer`, `sdk`, `client` or `placement`.
    pub role: String,
    /// The project the token is bound to, if any.
    pub project: Option<String>,
    /// The environment an `sdk` or `client` key evaluates in.
    pub environment: Option<String>,
    /// The secret's last characters, to tell tokens apart.
    pub hint: String,
    pub status: TokenStatus,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl Token {
    /// The token as it stands at `now` (Unix milliseconds).
    pub fn at(token: &TokenRecord, now: i64) -> Token {
        let status = if token.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if token.is_valid_at(now) {
            TokenStatus::Active
        } else {
            TokenStatus::Expired
        };
        Token {
            id: token.id.clone(),
            name: token.name.to_string(),
            role: token.role.as_str().to_owned(),
            project: token.project.as_ref().map(ToString::to_string),
            environment: token.environment.as_ref().map(ToString::to_string),
            hint: token.hint.clone(),
            status,
            created_at: rfc3339(token.created_at),
            created_by: token.created_by.clone(),
            expires_at: token.expires_at.map(rfc3339),
            revoked_at: token.revoked_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenList {
    pub tokens: Vec<Token>,
}

/// A token just made, with its secret: the only time the secret is shown.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: Token,
    /// The secret to present as `Authorization: Bearer <token>`.
    #[serde(rename = "token")]
    pub secret: String,
}

/// A token's replacement, with its secret, and when the replaced token stops working.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedToken {
    #[serde(flatten)]
    pub created: CreatedToken,
    /// The id of the token this one replaces.
    pub replaces: String,
    /// RFC 3339.
    pub replaced_expires_at: String,
}

/// One change in the audit trail.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// RFC 3339.
    pub at: String,
    /// Who made the change: a token's name, a person, or `rollout:<id>`, `scheduler (...)`.
    pub actor: String,
    /// What was done, such as `flag.enable` or `rollout.revert`.
    pub action: String,
    pub project: Option<String>,
    pub environment: Option<String>,
    /// The kind of resource changed, such as `flag`.
    pub kind: String,
    pub key: String,
    /// The resource before the change, as its API shows it; `null` for a creation.
    pub before: Option<serde_json::Value>,
    /// The resource after the change; `null` for a deletion.
    pub after: Option<serde_json::Value>,
}

impl From<&AuditRecord> for AuditEntry {
    fn from(record: &AuditRecord) -> AuditEntry {
        let entry = &record.entry;
        AuditEntry {
            id: record.id,
            at: rfc3339(entry.at),
            actor: entry.actor.clone(),
            action: entry.action.clone(),
            project: entry.project.as_ref().map(ToString::to_string),
            environment: entry.environment.as_ref().map(ToString::to_string),
            kind: entry.resource_kind.clone(),
            key: entry.resource_key.clone(),
            before: entry.before.clone(),
            after: entry.after.clone(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditLog {
    pub entries: Vec<AuditEntry>,
}

/// Reads a number written as `null` when it was not finite (serde_json writes NaN and the
/// infinities as `null`), so an answer that carried one still decodes, as NaN.
pub fn number_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Serialize)]
    struct Reading {
        #[serde(deserialize_with = "number_or_null")]
        mean: f64,
    }

    #[test]
    fn a_number_written_as_null_reads_back_as_nan() {
        let written = serde_json::to_value(Reading { mean: f64::NAN }).unwrap();
        assert_eq!(written, serde_json::json!({ "mean": null }));
        let read: Reading = serde_json::from_value(written).unwrap();
        assert!(read.mean.is_nan());
        let read: Reading = serde_json::from_value(serde_json::json!({ "mean": 0.25 })).unwrap();
        assert_eq!(read.mean, 0.25);
    }
}
