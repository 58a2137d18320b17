//! Scope extractors: who is asking, whether their role allows the route, and which
//! project, environment or flag the route's path addresses, parsed once.
//!
//! A handler names its permission in its signature (`InProject<ChangeFlags>`), so the
//! role a route needs is read where the route is declared, and no handler repeats the
//! preamble of authenticating, checking the role, parsing keys and checking the token's
//! project. Checks run in this order, so answers are the same on every route: no or bad
//! token 401, role too low 403, bad key 400, another project's token 404.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts, Path};
use axum::http::request::Parts;
use capstan_model::{EnvironmentKey, FlagKey, ProjectKey, Role, SurfaceKey};
use serde::de::DeserializeOwned;

use crate::core::auth::Principal;
use crate::core::body::key;
use crate::core::error::ApiError;
use crate::core::paths;
use crate::core::state::Core;

/// What a route lets a caller do: the least role it needs, and the action named in the
/// 403 a lesser role gets ("this token's role (viewer) may not change flags").
pub trait Permission: Send + Sync + 'static {
    const ROLE: Role;
    const ACTION: &'static str;
}

/// Declares permission marker types: `Name = (Role, "action")`.
macro_rules! permissions {
    ($($(#[$doc:meta])* $name:ident = ($role:ident, $action:literal);)*) => {
        $(
            $(#[$doc])*
            pub(crate) struct $name;

            impl $crate::core::scope::Permission for $name {
                const ROLE: capstan_model::Role = capstan_model::Role::$role;
                const ACTION: &'static str = $action;
            }
        )*
    };
}
pub(crate) use permissions;

/// Parses a project key and checks the caller may see that project.
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

/// The caller, once allowed `P`. For routes whose path addresses no project.
pub struct Allowed<P> {
    pub principal: Principal,
    permission: PhantomData<P>,
}

/// A project (`{project}`), for a caller allowed `P`.
pub struct InProject<P> {
    pub principal: Principal,
    pub project: ProjectKey,
    permission: PhantomData<P>,
}

/// An environment of a project (`{project}/environments/{environment}`).
pub struct InEnvironment<P> {
    pub principal: Principal,
    pub project: ProjectKey,
    pub environment: EnvironmentKey,
    permission: PhantomData<P>,
}

/// A flag of a project, across its environments (`{project}/flags/{flag}`).
pub struct OnFlag<P> {
    pub principal: Principal,
    pub project: ProjectKey,
    pub flag: FlagKey,
    permission: PhantomData<P>,
}

/// A placement surface of a project (`{project}/surfaces/{surface}`).
pub struct OnSurface<P> {
    pub principal: Principal,
    pub project: ProjectKey,
    pub surface: SurfaceKey,
    permission: PhantomData<P>,
}

/// A flag in one environment (`{project}/environments/{environment}/flags/{flag}`).
pub struct OnFlagIn<P> {
    pub principal: Principal,
    pub project: ProjectKey,
    pub environment: EnvironmentKey,
    pub flag: FlagKey,
    permission: PhantomData<P>,
}

/// Authenticates the caller and checks the role `P` needs.
async fn allowed<P: Permission, S>(parts: &mut Parts, state: &S) -> Result<Principal, ApiError>
where
    S: Send + Sync,
    Arc<Core>: FromRef<S>,
{
    let principal = Principal::from_request_parts(parts, state).await?;
    principal.require(P::ROLE, P::ACTION)?;
    Ok(principal)
}

/// The route's path parameters as `T`; parameters `T` does not name are left alone.
pub async fn path<T: DeserializeOwned + Send, S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
) -> Result<T, ApiError> {
    let Path(params) = Path::<T>::from_request_parts(parts, state)
        .await
        .map_err(|rejection| {
            // Every parameter is text, so only a route declared without the parameter
            // its extractor reads gets here: a bug, not a bad request.
            ApiError::internal(anyhow::anyhow!(
                "failed to read path: {}",
                rejection.body_text()
            ))
        })?;
    Ok(params)
}

impl<P: Permission, S> FromRequestParts<S> for Allowed<P>
where
    S: Send + Sync,
    Arc<Core>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(Allowed {
            principal: allowed::<P, S>(parts, state).await?,
            permission: PhantomData,
        })
    }
}

/// Implements a scope extractor: the caller allowed `P`, the path parameters read as
/// `$params`, each field of the scope parsed from them by the expression given.
macro_rules! scope_extractor {
    ($scope:ident, $params:ty, |$p:ident, $principal:ident| { $($field:ident: $parse:expr),* $(,)? }) => {
        impl<P: Permission, S> FromRequestParts<S> for $scope<P>
        where
            S: Send + Sync,
            Arc<Core>: FromRef<S>,
        {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                let $principal = allowed::<P, S>(parts, state).await?;
                let $p: $params = path(parts, state).await?;
                Ok($scope {
                    $($field: $parse,)*
                    principal: $principal,
                    permission: PhantomData,
                })
            }
        }
    };
}

scope_extractor!(InProject, paths::Project, |params, principal| {
    project: project_key(&principal, &params.project)?,
});

scope_extractor!(InEnvironment, paths::Environment, |params, principal| {
    project: project_key(&principal, &params.project)?,
    environment: environment_key(&params.environment)?,
});

scope_extractor!(OnFlag, paths::Flag, |params, principal| {
    project: project_key(&principal, &params.project)?,
    flag: flag_key(&params.flag)?,
});

scope_extractor!(OnFlagIn, paths::FlagInEnvironment, |params, principal| {
    project: project_key(&principal, &params.project)?,
    environment: environment_key(&params.environment)?,
    flag: flag_key(&params.flag)?,
});

scope_extractor!(OnSurface, paths::Surface, |params, principal| {
    project: project_key(&principal, &params.project)?,
    surface: key("surface", &params.surface, SurfaceKey::parse)?,
});
