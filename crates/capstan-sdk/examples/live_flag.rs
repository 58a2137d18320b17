//! Serves a checkout chosen by the flag `new-checkout`, and switches as soon as the flag
//! changes on the server: `capstan flags enable new-checkout --env production` prints
//! "checkout: new" here, with no restart and no polling.
//!
//! ```sh
//! CAPSTAN_SERVER=http://127.0.0.1:8470 CAPSTAN_SDK_KEY=cps_... \
//!     cargo run -p capstan-sdk --example live_flag
//! ```

use std::process::ExitCode;

use capstan_sdk::{Client, EvaluationContext};

#[tokio::main]
async fn main() -> ExitCode {
    let (Ok(server), Ok(sdk_key)) = (
        std::env::var("CAPSTAN_SERVER"),
        std::env::var("CAPSTAN_SDK_KEY"),
    ) else {
        eprintln!(
            "set CAPSTAN_SERVER (e.g. http://127.0.0.1:8470) and CAPSTAN_SDK_KEY (from \
             `capstan tokens create --role sdk --env production --name example`)"
        );
        return ExitCode::FAILURE;
    };
    // Never fails: without the server the client answers the default below and keeps
    // trying to connect.
    let client = Client::builder(server, sdk_key).build().await;
    let user = EvaluationContext::new(Some("user-1".to_owned()), Default::default());
    let mut shown = None;
    loop {
        // Subscribe before evaluating, so a change that lands between the evaluation and
        // the wait below is not missed.
        let changed = client.status_changed();
        let details = client.bool_details("new-checkout", &user, false);
        let checkout = if details.value { "new" } else { "classic" };
        // The status also changes when the connection comes or goes; print only news.
        if shown != Some(checkout) {
            println!("checkout: {checkout} ({})", details.reason.as_str());
            shown = Some(checkout);
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    // Sends the exposures recorded so far before exiting.
    client.close().await;
    ExitCode::SUCCESS
}
