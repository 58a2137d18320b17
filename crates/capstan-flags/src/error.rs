//! The error a flag definition is rejected with.

/// A flag definition that cannot be compiled, with the JSON path of the offending field,
/// for example `flags.checkout.targeting.if[1]: unknown operator "startswith"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DefinitionError {
    /// Where in the flagd document the problem is, dotted keys and `[index]` for arrays.
    pub path: String,
    /// What is wrong there, without a final period.
    pub message: String,
}

impl DefinitionError {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> DefinitionError {
        DefinitionError {
            path: path.into(),
            message: message.into(),
        }
    }
}
