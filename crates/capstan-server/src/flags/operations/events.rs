//! SDK events: exposures and metrics, as applications report them.

use capstan_model::FlagKey;

/// Metric names follow the same rules as keys, so they can be named in rollouts.
pub fn metric_name(text: &str) -> Result<String, String> {
    FlagKey::parse(text)
        .map(|key| key.to_string())
        .map_err(|error| error.to_string().replace("flag key", "metric name"))
}
