//! The path parameters of the management routes, described once for the OpenAPI
//! document. Handlers read them as tuples; these types only document them.

#![allow(dead_code)]

use utoipa::IntoParams;

/// A project.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Project {
    /// Project key, such as `default`.
    project: String,
}

/// An environment of a project.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Environment {
    /// Project key, such as `default`.
    project: String,
    /// Environment key, such as `production`.
    environment: String,
}

/// A flag of a project.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Flag {
    /// Project key, such as `default`.
    project: String,
    /// Flag key, such as `new-checkout`.
    flag: String,
}

/// A flag in one environment.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct FlagInEnvironment {
    /// Project key, such as `default`.
    project: String,
    /// Environment key, such as `production`.
    environment: String,
    /// Flag key, such as `new-checkout`.
    flag: String,
}

/// A segment in one environment.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SegmentInEnvironment {
    /// Project key, such as `default`.
    project: String,
    /// Environment key, such as `production`.
    environment: String,
    /// Segment key, the name `$ref` uses.
    segment: String,
}

/// A rollout of a project.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Rollout {
    /// Project key, such as `default`.
    project: String,
    /// Rollout id, as `rollouts start` printed it.
    id: i64,
}

/// A webhook of a project.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Webhook {
    /// Project key, such as `default`.
    project: String,
    /// Webhook id.
    id: String,
}

/// A placement surface of a project.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct Surface {
    /// Project key, such as `default`.
    project: String,
    /// Surface key, such as `home_hero`.
    surface: String,
}

/// An item of a placement surface.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SurfaceItem {
    /// Project key, such as `default`.
    project: String,
    /// Surface key, such as `home_hero`.
    surface: String,
    /// Item id.
    id: String,
}
