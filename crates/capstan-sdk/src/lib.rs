//! Capstan's Rust SDK. A [`Client`] keeps a copy of one environment's flag configuration,
//! live over Server-Sent Events, and evaluates flags locally with the same engine the
//! server uses (`capstan-flags`): no network call per evaluation.
//!
//! The client never takes the application down with Capstan: it starts from the server,
//! or from an on-disk cache of the last configuration it saw, or (with neither) answers
//! the caller's defaults with `PROVIDER_NOT_READY` while it keeps trying; and it keeps
//! serving the last good configuration whatever the server or the network does.
//!
//! ```no_run
//! # async fn example() {
//! use capstan_sdk::{Client, EvaluationContext};
//! let client = Client::builder("http://127.0.0.1:8470", "cps_...").build().await;
//! let context = EvaluationContext::new(Some("user-1".into()), Default::default());
//! if client.bool_value("new-checkout", &context, false) {
//!     // the new checkout
//! }
//! client.track("checkout_completed", "user-1", 1.0);
//! # }
//! ```

mod client;
mod config;
mod details;
mod events;
mod sse;

pub use capstan_flags::{EvaluationContext, Reason};
pub use client::{Client, ClientBuilder, ClientStatus, ConfigSource};
pub use details::{ErrorCode, EvaluationDetails};
