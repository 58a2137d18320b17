//! The path parameters of the management routes: what the scope extractors read, and
//! how the OpenAPI document describes them.

use serde::Deserialize;
use utoipa::IntoParams;

/// A project.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Project {
    /// Project key, such as `default`.
    pub project: String,
}

/// An environment of a project.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Environment {
    /// Project key, such as `default`.
    pub project: String,
    /// Environment key, such as `production`.
    pub environment: String,
}

/// A flag of a project.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Flag {
    /// Project key, such as `default`.
    pub project: String,
    /// Flag key, such as `new-checkout`.
    pub flag: String,
}

/// A flag in one environment.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FlagInEnvironment {
    /// Project key, such as `default`.
    pub project: String,
    /// Environment key, such as `production`.
    pub environment: String,
    /// Flag key, such as `new-checkout`.
    pub flag: String,
}

/// A segment in one environment.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SegmentInEnvironment {
    /// Project key, such as `default`.
    pub project: String,
    /// Environment key, such as `production`.
    pub environment: String,
    /// Segment key, the name `$ref` uses.
    pub segment: String,
}

/// A rollout of a project.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Rollout {
    /// Project key, such as `default`.
    pub project: String,
    /// Rollout id, as `rollouts start` printed it.
    #[param(value_type = i64)]
    pub id: String,
}

/// A webhook of a project.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Webhook {
    /// Project key, such as `default`.
    pub project: String,
    /// Webhook id.
    pub id: String,
}

/// A placement surface of a project.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Surface {
    /// Project key, such as `default`.
    pub project: String,
    /// Surface key, such as `home_hero`.
    pub surface: String,
}

/// An item of a placement surface.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SurfaceItem {
    /// Project key, such as `default`.
    pub project: String,
    /// Surface key, such as `home_hero`.
    pub surface: String,
    /// Item id.
    pub id: String,
}

/// A scheduled change in one environment.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Schedule {
    /// Project key, such as `default`.
    pub project: String,
    /// Environment key, such as `production`.
    pub environment: String,
    /// Schedule id.
    #[param(value_type = i64)]
    pub id: String,
}
