//! An OpenFeature provider for Capstan: the Rust OpenFeature SDK's calls, answered by a
//! Capstan [`Client`](capstan_sdk::Client) that evaluates locally with the configuration
//! it keeps live over Server-Sent Events.
//!
//! ```no_run
//! # async fn example() {
//! use capstan_openfeature::CapstanProvider;
//! use open_feature::{EvaluationContext, OpenFeature};
//!
//! let client = capstan_sdk::Client::builder("http://127.0.0.1:8470", "cps_...").build().await;
//! let flags = {
//!     let mut api = OpenFeature::singleton_mut().await;
//!     api.set_provider(CapstanProvider::new(client)).await;
//!     api.create_client()
//! };
//! let user = EvaluationContext::default()
//!     .with_targeting_key("user-1")
//!     .with_custom_field("plan", "pro");
//! // A failed resolution is an `Err`; the caller's default applies.
//! let new_checkout = flags
//!     .get_bool_value("new-checkout", Some(&user), None)
//!     .await
//!     .unwrap_or(false);
//! # let _ = new_checkout;
//! # }
//! ```
//!
//! Context fields become attributes of the same name (dates as RFC 3339 text in UTC;
//! structs given as `open_feature::StructValue`, `open_feature::Value` or
//! `serde_json::Value`). Integer resolutions read a number flag and succeed only for a
//! whole number that fits in an `i64`; struct resolutions need a JSON object.

mod context;
mod provider;
mod value;

pub use provider::CapstanProvider;
