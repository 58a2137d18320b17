//! The management API under `/api/v1`: one router per module, merged by [`crate::app`].

pub mod audit;
pub mod body;
pub mod flagd;
pub mod flags;
pub mod paths;
pub mod projects;
pub mod schedules;
pub mod segments;
pub mod tokens;
