//! The provider: each resolution is one local evaluation by the Capstan SDK, its details
//! translated into OpenFeature's.

use capstan_sdk::{Client, ConfigSource, ErrorCode, EvaluationDetails, Reason};
use open_feature::provider::{
    FeatureProvider, ProviderMetadata, ProviderStatus, ResolutionDetails,
};
use open_feature::{
    EvaluationContext, EvaluationError, EvaluationErrorCode, EvaluationReason, EvaluationResult,
    StructValue, async_trait,
};
use serde_json::Value as Json;

use crate::context::capstan_context;
use crate::value::{Unrepresentable, integer, json_to_struct};

/// An OpenFeature provider that evaluates flags with a Capstan [`Client`]: locally, with
/// the configuration the client keeps live, so a resolution makes no network call.
///
/// OpenFeature's Rust API does not hand the caller's default to the provider: a failed
/// resolution is an `Err`, and the caller's `unwrap_or(default)` applies its default.
/// Where Capstan serves no value, the provider answers as Capstan's OFREP endpoint does
/// for clients without a default of their own when it can (a disabled boolean flag
/// reads `false`, with reason `DISABLED`), and otherwise fails with `GENERAL` so the
/// caller's default applies.
#[derive(Clone)]
pub struct CapstanProvider {
    client: Client,
    metadata: ProviderMetadata,
}

impl CapstanProvider {
    pub fn new(client: Client) -> CapstanProvider {
        CapstanProvider {
            client,
            metadata: ProviderMetadata::new("capstan"),
        }
    }

    /// The client, for what OpenFeature has no call for: `track`, `status`, waiting for
    /// changes.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl FeatureProvider for CapstanProvider {
    fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    fn status(&self) -> ProviderStatus {
        provider_status(self.client.status().source)
    }

    async fn resolve_bool_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<bool>> {
        let context = capstan_context(evaluation_context)?;
        let details = self.client.bool_details(flag_key, &context, false);
        resolution(flag_key, details, Ok, Some(false))
    }

    async fn resolve_int_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<i64>> {
        let context = capstan_context(evaluation_context)?;
        let details = self.client.number_details(flag_key, &context, 0.0);
        let convert = |number: f64| {
            integer(number).ok_or_else(|| {
                type_mismatch(format!(
                    "flag \"{flag_key}\" is {number}, not an integer that fits in an i64"
                ))
            })
        };
        resolution(flag_key, details, convert, None)
    }

    async fn resolve_float_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<f64>> {
        let context = capstan_context(evaluation_context)?;
        let details = self.client.number_details(flag_key, &context, 0.0);
        resolution(flag_key, details, Ok, None)
    }

    async fn resolve_string_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<String>> {
        let context = capstan_context(evaluation_context)?;
        let details = self.client.string_details(flag_key, &context, "");
        resolution(flag_key, details, Ok, None)
    }

    async fn resolve_struct_value(
        &self,
        flag_key: &str,
        evaluation_context: &EvaluationContext,
    ) -> EvaluationResult<ResolutionDetails<StructValue>> {
        let context = capstan_context(evaluation_context)?;
        let details = self.client.json_details(flag_key, &context, Json::Null);
        let convert = |value: Json| {
            json_to_struct(value).map_err(|error| type_mismatch(flag_problem(flag_key, &error)))
        };
        resolution(flag_key, details, convert, None)
    }
}

/// A client that started from its on-disk cache and has not reached the server since
/// serves what may be an old configuration, which is what OpenFeature calls stale.
fn provider_status(source: ConfigSource) -> ProviderStatus {
    match source {
        ConfigSource::None => ProviderStatus::NotReady,
        ConfigSource::Cache => ProviderStatus::STALE,
        ConfigSource::Server => ProviderStatus::Ready,
    }
}

/// Translates the SDK's details. `convert` turns the served value into OpenFeature's
/// type; `disabled` is what a disabled flag reads as, when the type has such a value.
fn resolution<T, U>(
    flag_key: &str,
    details: EvaluationDetails<T>,
    convert: impl FnOnce(T) -> EvaluationResult<U>,
    disabled: Option<U>,
) -> EvaluationResult<ResolutionDetails<U>> {
    if let Some(code) = details.error_code {
        return Err(EvaluationError {
            code: error_code(code),
            message: details.error_message,
        });
    }
    // A served value always comes with its variant's name; without one, the SDK handed
    // back the placeholder default given to it above, which is no value at all.
    let value = match (&details.variant, details.reason, disabled) {
        (Some(_), _, _) => convert(details.value)?,
        (None, Reason::Disabled, Some(off)) => off,
        (None, reason, _) => {
            return Err(EvaluationError {
                code: error_code(ErrorCode::General),
                message: Some(format!(
                    "flag \"{flag_key}\" serves no value ({}): the caller's default applies",
                    reason.as_str()
                )),
            });
        }
    };
    Ok(ResolutionDetails {
        value,
        variant: details.variant,
        reason: Some(evaluation_reason(details.reason)),
        flag_metadata: None,
    })
}

fn evaluation_reason(reason: Reason) -> EvaluationReason {
    match reason {
        Reason::Static => EvaluationReason::Static,
        Reason::TargetingMatch => EvaluationReason::TargetingMatch,
        Reason::Split => EvaluationReason::Split,
        Reason::Disabled => EvaluationReason::Disabled,
        Reason::Default => EvaluationReason::Default,
        Reason::Error => EvaluationReason::Error,
        // OpenFeature has no name for it; its reasons are open-ended strings.
        Reason::PrerequisiteFailed => EvaluationReason::Other(reason.as_str().to_owned()),
    }
}

fn error_code(code: ErrorCode) -> EvaluationErrorCode {
    match code {
        ErrorCode::ProviderNotReady => EvaluationErrorCode::ProviderNotReady,
        ErrorCode::FlagNotFound => EvaluationErrorCode::FlagNotFound,
        ErrorCode::ParseError => EvaluationErrorCode::ParseError,
        ErrorCode::TypeMismatch => EvaluationErrorCode::TypeMismatch,
        ErrorCode::TargetingKeyMissing => EvaluationErrorCode::TargetingKeyMissing,
        ErrorCode::InvalidContext => EvaluationErrorCode::InvalidContext,
        // The Rust API prints this variant's text as the code, so it carries the code
        // itself; the explanation goes in the error's message.
        ErrorCode::General => EvaluationErrorCode::General(code.as_str().to_owned()),
    }
}

fn type_mismatch(message: String) -> EvaluationError {
    EvaluationError {
        code: EvaluationErrorCode::TypeMismatch,
        message: Some(message),
    }
}

fn flag_problem(flag_key: &str, error: &Unrepresentable) -> String {
    if error.path.is_empty() {
        format!("flag \"{flag_key}\": {}", error.problem)
    } else {
        format!("flag \"{flag_key}\" at {}: {}", error.path, error.problem)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn served<T>(value: T, variant: &str, reason: Reason) -> EvaluationDetails<T> {
        EvaluationDetails {
            value,
            variant: Some(variant.to_owned()),
            reason,
            error_code: None,
            error_message: None,
        }
    }

    /// What the SDK returns when it serves no value: the default it was given.
    fn unserved<T>(default: T, reason: Reason) -> EvaluationDetails<T> {
        EvaluationDetails {
            value: default,
            variant: None,
            reason,
            error_code: None,
            error_message: None,
        }
    }

    fn failed<T>(default: T, code: ErrorCode) -> EvaluationDetails<T> {
        EvaluationDetails {
            value: default,
            variant: None,
            reason: Reason::Error,
            error_code: Some(code),
            error_message: Some("what went wrong".to_owned()),
        }
    }

    #[test]
    fn every_reason_is_translated() {
        let cases = [
            (Reason::Static, EvaluationReason::Static),
            (Reason::TargetingMatch, EvaluationReason::TargetingMatch),
            (Reason::Split, EvaluationReason::Split),
            (Reason::Disabled, EvaluationReason::Disabled),
            (Reason::Default, EvaluationReason::Default),
            (Reason::Error, EvaluationReason::Error),
            (
                Reason::PrerequisiteFailed,
                EvaluationReason::Other("PREREQUISITE_FAILED".to_owned()),
            ),
        ];
        for (reason, expected) in cases {
            let resolved = resolution("f", served("blue", "b", reason), Ok, None).unwrap();
            assert_eq!(resolved.reason, Some(expected));
            assert_eq!(resolved.value, "blue");
            assert_eq!(resolved.variant.as_deref(), Some("b"));
            assert_eq!(resolved.flag_metadata, None);
        }
    }

    #[test]
    fn every_error_code_is_translated_with_its_message() {
        let cases = [
            (
                ErrorCode::ProviderNotReady,
                EvaluationErrorCode::ProviderNotReady,
            ),
            (ErrorCode::FlagNotFound, EvaluationErrorCode::FlagNotFound),
            (ErrorCode::ParseError, EvaluationErrorCode::ParseError),
            (ErrorCode::TypeMismatch, EvaluationErrorCode::TypeMismatch),
            (
                ErrorCode::TargetingKeyMissing,
                EvaluationErrorCode::TargetingKeyMissing,
            ),
            (
                ErrorCode::InvalidContext,
                EvaluationErrorCode::InvalidContext,
            ),
            (
                ErrorCode::General,
                EvaluationErrorCode::General("GENERAL".to_owned()),
            ),
        ];
        for (code, expected) in cases {
            let error = resolution("f", failed(false, code), Ok, Some(false)).unwrap_err();
            assert_eq!(error.code.to_string(), code.as_str());
            assert_eq!(
                error,
                EvaluationError {
                    code: expected,
                    message: Some("what went wrong".to_owned()),
                }
            );
        }
    }

    #[test]
    fn a_disabled_boolean_flag_reads_false() {
        let resolved = resolution("f", unserved(false, Reason::Disabled), Ok, Some(false)).unwrap();
        assert!(!resolved.value);
        assert_eq!(resolved.variant, None);
        assert_eq!(resolved.reason, Some(EvaluationReason::Disabled));
    }

    #[test]
    fn no_value_otherwise_leaves_the_callers_default_to_apply() {
        let error =
            resolution("f", unserved(String::new(), Reason::Disabled), Ok, None).unwrap_err();
        assert_eq!(
            error,
            EvaluationError {
                code: EvaluationErrorCode::General("GENERAL".to_owned()),
                message: Some(
                    "flag \"f\" serves no value (DISABLED): the caller's default applies"
                        .to_owned()
                ),
            }
        );
        // A boolean flag without a default variant that nothing matched is not off.
        let error = resolution("f", unserved(false, Reason::Default), Ok, Some(false)).unwrap_err();
        assert_eq!(
            error.code,
            EvaluationErrorCode::General("GENERAL".to_owned())
        );
    }

    #[test]
    fn a_conversion_failure_is_the_resolution_failure() {
        let convert = |number: f64| {
            integer(number).ok_or_else(|| type_mismatch(format!("{number} is not an integer")))
        };
        assert_eq!(
            resolution("f", served(12.0, "twelve", Reason::Static), convert, None)
                .unwrap()
                .value,
            12
        );
        let error =
            resolution("f", served(1.5, "half", Reason::Static), convert, None).unwrap_err();
        assert_eq!(error.code, EvaluationErrorCode::TypeMismatch);
    }

    #[test]
    fn struct_problems_name_the_flag_and_the_place() {
        let error = json_to_struct(json!({ "a": [null] })).unwrap_err();
        assert_eq!(
            flag_problem("layout", &error),
            "flag \"layout\" at a[0]: null, which OpenFeature's values cannot hold"
        );
        let error = json_to_struct(json!([1])).unwrap_err();
        assert_eq!(
            flag_problem("layout", &error),
            "flag \"layout\": an array, not an object"
        );
    }

    #[test]
    fn status_follows_where_the_configuration_came_from() {
        assert_eq!(
            provider_status(ConfigSource::None),
            ProviderStatus::NotReady
        );
        assert_eq!(provider_status(ConfigSource::Cache), ProviderStatus::STALE);
        assert_eq!(provider_status(ConfigSource::Server), ProviderStatus::Ready);
    }
}
