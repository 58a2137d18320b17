//! Capstan's flag engine: compiles flag definitions in flagd's format and evaluates them.
//!
//! The crate is pure: no IO, no clock and no randomness. [`FlagdDocument`] is the domain
//! form of a flagd file; [`CompiledEnvironment::compile`] turns it into typed rule trees
//! once, rejecting bad definitions with the JSON path of the problem; and
//! [`CompiledEnvironment::evaluate`] resolves a flag for an [`EvaluationContext`] without
//! reading JSON again, returning values borrowed from the compiled environment.
//!
//! [`CompiledEnvironment::compile_flagd_compatible`] loads files written for flagd the way
//! flagd does, which tolerates some mistakes: the flagd-testbed conformance suite needs
//! it, since its flags include such mistakes on purpose.
//!
//! Beyond flagd, a flag may list `prerequisites`: flags that must be enabled and on one of
//! the listed variants for the flag to be served normally.

mod compile;
mod context;
mod definition;
mod environment;
mod error;
mod eval;
mod fast_hash;
mod flagd;
mod murmur;
mod node;
mod resolution;
mod semver;
mod value;

pub use context::EvaluationContext;
pub use definition::{FlagDefinition, FlagState, Prerequisite};
pub use environment::CompiledEnvironment;
pub use error::DefinitionError;
pub use flagd::FlagdDocument;
pub use resolution::{ErrorCode, EvaluationError, Reason, Resolution, ValueType};

#[cfg(test)]
mod tests;
