//! The environment configuration the client holds: the server's SDK document, compiled.

use std::path::Path;

use capstan_flags::{CompiledEnvironment, FlagdDocument};
use serde_json::Value;

/// One compiled revision of the environment.
pub(crate) struct LoadedConfig {
    pub(crate) revision: i64,
    pub(crate) engine: CompiledEnvironment,
    /// The document as received, written to the cache as it is.
    pub(crate) text: String,
}

/// Why a configuration was refused; the client keeps what it had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("configuration is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("configuration has no revision")]
    MissingRevision,
    #[error("configuration does not compile: {0}")]
    Definition(#[from] capstan_flags::DefinitionError),
    #[error("failed to read the cache: {0}")]
    Io(#[from] std::io::Error),
}

impl LoadedConfig {
    /// Parses and compiles an SDK document (`GET /api/v1/sdk/config`, or a stream's
    /// snapshot). A truncated or otherwise broken document is an error, never a partial
    /// configuration.
    pub(crate) fn parse(text: &str) -> Result<LoadedConfig, ConfigError> {
        let document: Value = serde_json::from_str(text)?;
        let revision = document
            .get("revision")
            .and_then(Value::as_i64)
            .ok_or(ConfigError::MissingRevision)?;
        // The SDK document is a flagd document with a few more fields; keep the flagd part.
        let mut flagd = serde_json::Map::new();
        for field in ["flags", "$evaluators", "metadata"] {
            if let Some(value) = document.get(field) {
                flagd.insert(field.to_owned(), value.clone());
            }
        }
        let engine = CompiledEnvironment::compile(&FlagdDocument::parse(&Value::Object(flagd))?)?;
        Ok(LoadedConfig {
            revision,
            engine,
            text: text.to_owned(),
        })
    }

    pub(crate) fn read_cache(path: &Path) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::parse(&std::fs::read_to_string(path)?)
    }

    /// Writes the cache so that a crash mid-write leaves the old file, never half a new one.
    pub(crate) fn write_cache(&self, path: &Path) -> std::io::Result<()> {
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, &self.text)?;
        std::fs::rename(&temporary, path)
    }
}
