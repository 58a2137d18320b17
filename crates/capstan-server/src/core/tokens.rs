//! API tokens: create (shown once), list, rotate with a grace period, revoke.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::FromRef;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use capstan_model::{EnvironmentKey, ProjectKey, Role, TokenName};
use capstan_store::{AuditEntry, TokenRecord};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::{JsonBody, key, parse_json};
use crate::core::auth::{Principal, generate_secret, hash_secret, hint, new_token_id};
use crate::core::clock::{parse_rfc3339, rfc3339};
use crate::core::error::ApiError;
use crate::core::scope::{Allowed, permissions};
use crate::core::state::Core;
use crate::core::wire::{CreatedToken, RotatedToken, Token, TokenList};

permissions! {
    ManageTokens = (Admin, "manage tokens");
}

pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<Core>: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(get_token, revoke_token))
        .routes(routes!(rotate_token))
}

/// A token as the audit trail records it.
fn token_json(token: &TokenRecord, now: i64) -> Value {
    serde_json::to_value(Token::at(token, now)).unwrap_or_default()
}

fn audit(
    principal: &Principal,
    at: i64,
    action: &str,
    token: &TokenRecord,
    before: Option<Value>,
    after: Option<Value>,
) -> AuditEntry {
    AuditEntry {
        at,
        actor: principal.name.clone(),
        action: action.to_owned(),
        project: token.project.clone(),
        environment: token.environment.clone(),
        resource_kind: "token".to_owned(),
        resource_key: token.id.clone(),
        before,
        after,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateToken {
    name: String,
    role: String,
    project: Option<String>,
    environment: Option<String>,
    /// An RFC 3339 time after which the token stops working.
    expires_at: Option<String>,
    /// Or: seconds from now until the token stops working.
    expires_in_seconds: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    summary = "Create a token; the secret is shown only in this answer",
    request_body = CreateToken,
    responses((status = 201, description = "Created", body = CreatedToken), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn create_token(
    State(state): State<Arc<Core>>,
    Allowed { principal, .. }: Allowed<ManageTokens>,
    JsonBody(body): JsonBody<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let now = state.clock.now_ms();
    let name = key("name", &body.name, TokenName::parse)?;
    let role = Role::parse(&body.role).map_err(|error| ApiError::field("role", error))?;
    let project = match (&body.project, role.is_project_scoped()) {
        (Some(text), _) => Some(key("project", text, ProjectKey::parse)?),
        (None, true) => Some(ProjectKey::parse("default").map_err(ApiError::internal)?),
        (None, false) => principal.project.clone(),
    };
    let environment = match (&body.environment, role.is_environment_scoped()) {
        (Some(text), true) => Some(key("environment", text, EnvironmentKey::parse)?),
        (None, true) => {
            return Err(ApiError::field(
                "environment",
                format!("is required for {role} tokens"),
            ));
        }
        (Some(_), false) => {
            return Err(ApiError::field(
                "environment",
                format!("{role} tokens are not bound to an environment"),
            ));
        }
        (None, false) => None,
    };
    if let Some(project) = &project {
        principal.require_project(project)?;
        let environments = state.store.list_environments(project).await?;
        if let Some(environment) = &environment
            && !environments.iter().any(|e| &e.key == environment)
        {
            return Err(ApiError::field(
                "environment",
                format!("project {project} has no environment {environment:?}"),
            ));
        }
    }
    let expires_at = match (&body.expires_at, body.expires_in_seconds) {
        (Some(_), Some(_)) => {
            return Err(ApiError::field(
                "expiresAt",
                "give expiresAt or expiresInSeconds, not both",
            ));
        }
        (Some(text), None) => Some(
            parse_rfc3339(text)
                .ok_or_else(|| ApiError::field("expiresAt", "expected an RFC 3339 time"))?,
        ),
        (None, Some(seconds)) if seconds <= 0 => {
            return Err(ApiError::field("expiresInSeconds", "must be positive"));
        }
        (None, Some(seconds)) => Some(now.saturating_add(seconds.saturating_mul(1000))),
        (None, None) => None,
    };
    let secret = generate_secret();
    let record = TokenRecord {
        id: new_token_id(),
        name,
        role,
        project,
        environment,
        hash: hash_secret(&secret),
        hint: hint(&secret),
        created_at: now,
        expires_at,
        revoked_at: None,
        created_by: principal.name.clone(),
    };
    let entry = audit(
        &principal,
        now,
        "token.create",
        &record,
        None,
        Some(token_json(&record, now)),
    );
    state.store.create_token(record.clone(), entry).await?;
    let created = CreatedToken {
        token: Token::at(&record, now),
        secret,
    };
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    summary = "Tokens (never their secrets)",
    responses((status = 200, description = "OK", body = TokenList), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn list_tokens(
    State(state): State<Arc<Core>>,
    Allowed { principal, .. }: Allowed<ManageTokens>,
) -> Result<Json<TokenList>, ApiError> {
    let now = state.clock.now_ms();
    let tokens = state
        .store
        .list_tokens()
        .await?
        .iter()
        .filter(|token| principal.project.is_none() || token.project == principal.project)
        .map(|token| Token::at(token, now))
        .collect();
    Ok(Json(TokenList { tokens }))
}

async fn find_token(
    state: &Core,
    principal: &Principal,
    id: &str,
) -> Result<TokenRecord, ApiError> {
    let token = state.store.token_by_id(id).await?;
    if principal.project.is_some() && token.project != principal.project {
        return Err(ApiError::not_found("token", id));
    }
    Ok(token)
}

#[utoipa::path(
    get,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    summary = "One token",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, description = "OK", body = Token), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn get_token(
    State(state): State<Arc<Core>>,
    Allowed { principal, .. }: Allowed<ManageTokens>,
    Path(id): Path<String>,
) -> Result<Json<Token>, ApiError> {
    let token = find_token(&state, &principal, &id).await?;
    Ok(Json(Token::at(&token, state.clock.now_ms())))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RotateToken {
    /// How long the old token keeps working beside the new one.
    grace_period_seconds: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/api/v1/tokens/{id}/rotate",
    tag = "tokens",
    summary = "Replace a token; the old one works for the grace period",
    params(("id" = String, Path, description = "Token id")),
    request_body = RotateToken,
    responses((status = 201, description = "Created", body = RotatedToken), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn rotate_token(
    State(state): State<Arc<Core>>,
    Allowed { principal, .. }: Allowed<ManageTokens>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<RotatedToken>), ApiError> {
    // The body is optional: an empty one takes the default grace period.
    let body: RotateToken = if body.iter().all(u8::is_ascii_whitespace) {
        RotateToken::default()
    } else {
        parse_json(&body)?
    };
    let grace = body
        .grace_period_seconds
        .unwrap_or(state.settings.rotation_grace_seconds);
    if grace < 0 {
        return Err(ApiError::field(
            "gracePeriodSeconds",
            "must not be negative",
        ));
    }
    let now = state.clock.now_ms();
    let old = find_token(&state, &principal, &id).await?;
    if !old.is_valid_at(now) {
        return Err(ApiError::field("id", "only an active token can be rotated"));
    }
    let secret = generate_secret();
    let replacement = TokenRecord {
        id: new_token_id(),
        hash: hash_secret(&secret),
        hint: hint(&secret),
        created_at: now,
        revoked_at: None,
        created_by: principal.name.clone(),
        ..old.clone()
    };
    let old_expires_at = now.saturating_add(grace.saturating_mul(1000));
    let entry = audit(
        &principal,
        now,
        "token.rotate",
        &old,
        Some(token_json(&old, now)),
        Some(json!({ "replacedBy": replacement.id, "oldExpiresAt": rfc3339(old_expires_at) })),
    );
    state
        .store
        .rotate_token(&old.id, old_expires_at, replacement.clone(), entry)
        .await?;
    state.tokens.clear();
    let rotated = RotatedToken {
        created: CreatedToken {
            token: Token::at(&replacement, now),
            secret,
        },
        replaces: old.id,
        replaced_expires_at: rfc3339(old_expires_at),
    };
    Ok((StatusCode::CREATED, Json(rotated)))
}

#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "tokens",
    summary = "Revoke a token at once",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, description = "OK", body = Token), crate::core::error::ErrorResponses),
    security(("bearer" = []))
)]
async fn revoke_token(
    State(state): State<Arc<Core>>,
    Allowed { principal, .. }: Allowed<ManageTokens>,
    Path(id): Path<String>,
) -> Result<Json<Token>, ApiError> {
    let now = state.clock.now_ms();
    let token = find_token(&state, &principal, &id).await?;
    let entry = audit(
        &principal,
        now,
        "token.revoke",
        &token,
        Some(token_json(&token, now)),
        None,
    );
    state.store.revoke_token(&token.id, now, entry).await?;
    state.tokens.clear();
    let token = state.store.token_by_id(&id).await?;
    Ok(Json(Token::at(&token, now)))
}
