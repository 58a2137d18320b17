//! API tokens: how they are made, hashed, looked up and checked against a route's role.
//!
//! A token is shown once, when it is created; the store keeps only its SHA-256. Tokens
//! are long random strings, so a fast hash is the right one (a password hash would add
//! latency to every evaluation without adding safety).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use capstan_model::{EnvironmentKey, ProjectKey, Role};
use capstan_store::TokenRecord;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::core::error::ApiError;
use crate::core::state::Core;

/// What every token starts with, so secret scanners can find leaked ones.
pub const TOKEN_PREFIX: &str = "cps_";

/// How long a looked-up token is trusted before the store is asked again. Revocation
/// on this replica takes effect at once; on other replicas within this time.
const CACHE_TTL_MS: i64 = 5_000;

pub fn generate_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{TOKEN_PREFIX}{body}")
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The first characters of a secret: enough for a person to tell tokens apart, too few
/// to guess the rest.
pub fn hint(secret: &str) -> String {
    secret.chars().take(TOKEN_PREFIX.len() + 4).collect()
}

pub fn new_token_id() -> String {
    let mut rng = rand::rng();
    format!("tok_{:016x}", rng.random::<u64>())
}

/// The caller, as its token says.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_id: String,
    pub name: String,
    pub role: Role,
    pub project: Option<ProjectKey>,
    pub environment: Option<EnvironmentKey>,
}

impl Principal {
    /// Allows a management action that needs at least `required`.
    pub fn require(&self, required: Role, action: &'static str) -> Result<(), ApiError> {
        if self.role.can_manage(required) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.role.as_str(),
                action,
            })
        }
    }

    /// Allows access to a project: tokens bound to another project are refused as if the
    /// project did not exist for them.
    pub fn require_project(&self, project: &ProjectKey) -> Result<(), ApiError> {
        match &self.project {
            Some(own) if own != project => Err(ApiError::not_found("project", project)),
            _ => Ok(()),
        }
    }

    /// The environment an evaluation key is bound to.
    pub fn evaluation_scope(&self) -> Result<(ProjectKey, EnvironmentKey), ApiError> {
        match (&self.project, &self.environment, self.role) {
            (Some(project), Some(environment), Role::Sdk | Role::Client) => {
                Ok((project.clone(), environment.clone()))
            }
            _ => Err(ApiError::Forbidden {
                role: self.role.as_str(),
                action: "evaluate flags (use an sdk or client key)",
            }),
        }
    }
}

/// A lookup's answer (the token, or that there is none) and when it was made.
type CachedToken = (Option<Arc<TokenRecord>>, i64);

/// Looked-up tokens by hash, so evaluation does not touch the store per request.
#[derive(Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, CachedToken>>,
}

impl TokenCache {
    /// Most entries a cache keeps; past it, the cache starts over rather than grow
    /// without bound under a flood of made-up tokens.
    const CAPACITY: usize = 100_000;

    fn get(&self, hash: &str, now: i64) -> Option<Option<Arc<TokenRecord>>> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(hash)
            .filter(|(_, fetched_at)| now - fetched_at < CACHE_TTL_MS)
            .map(|(record, _)| record.clone())
    }

    fn put(&self, hash: String, record: Option<Arc<TokenRecord>>, now: i64) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= Self::CAPACITY {
            entries.clear();
        }
        entries.insert(hash, (record, now));
    }

    /// Forgets every cached token, after a rotation or revocation on this replica.
    pub fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }
}

fn secret_from_headers(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    {
        let value = value.trim();
        return Some(value.strip_prefix("Bearer ").unwrap_or(value).trim());
    }
    // OFREP clients send `X-API-Key`; Azure Personalizer's clients send
    // `Ocp-Apim-Subscription-Key`, so they move to Capstan by changing endpoint and key.
    ["x-api-key", "ocp-apim-subscription-key"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
}

pub async fn authenticate(state: &Core, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let secret = secret_from_headers(headers).ok_or(ApiError::Unauthenticated)?;
    if secret.is_empty() {
        return Err(ApiError::Unauthenticated);
    }
    let hash = hash_secret(secret);
    let now = state.clock.now_ms();
    let record = match state.tokens.get(&hash, now) {
        Some(record) => record,
        None => {
            let record = state.store.token_by_hash(&hash).await?.map(Arc::new);
            state.tokens.put(hash, record.clone(), now);
            record
        }
    };
    let record = record
        .filter(|record| record.is_valid_at(now))
        .ok_or(ApiError::Unauthenticated)?;
    Ok(Principal {
        token_id: record.id.clone(),
        name: record.name.to_string(),
        role: record.role,
        project: record.project.clone(),
        environment: record.environment.clone(),
    })
}

impl<S> FromRequestParts<S> for Principal
where
    S: Send + Sync,
    Arc<Core>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Principal, ApiError> {
        let core = Arc::<Core>::from_ref(state);
        let principal = authenticate(&core, &parts.headers).await?;
        core.rate_limiter
            .check(&principal.token_id, core.clock.now_ms())?;
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_prefixed_and_distinct() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 40);
        assert_ne!(a, b);
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), hash_secret(&b));
        assert_eq!(hint(&a).len(), 8);
    }

    #[test]
    fn reads_bearer_and_api_key_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, "Bearer cps_x".parse().unwrap());
        assert_eq!(secret_from_headers(&headers), Some("cps_x"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "cps_y".parse().unwrap());
        assert_eq!(secret_from_headers(&headers), Some("cps_y"));
        let mut headers = HeaderMap::new();
        headers.insert("ocp-apim-subscription-key", "cps_z".parse().unwrap());
        assert_eq!(secret_from_headers(&headers), Some("cps_z"));
        assert_eq!(secret_from_headers(&HeaderMap::new()), None);
    }
}
