use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::process::{ADMIN_TOKEN, ServerProcess};

/// `kill -9` while writes are in flight: every acknowledged change is there after a
/// restart, and no change is there in part (a flag exists in all three environments or
/// in none).
#[tokio::test]
async fn a_crash_mid_write_loses_nothing_acknowledged_and_leaves_nothing_half_done() {
    for backend in capstan_store::testing::backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let server = ServerProcess::start(&database.url);
        let url = server.url.clone();
        let http = reqwest::Client::new();
        let (acknowledged_tx, mut acknowledged_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut writers = Vec::new();
        for writer in 0..4 {
            let http = http.clone();
            let url = url.clone();
            let acknowledged = acknowledged_tx.clone();
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let key = format!("crash-{writer}-{n}");
                    let sent = http
                        .post(format!("{url}/api/v1/projects/default/flags"))
                        .bearer_auth(ADMIN_TOKEN)
                        .json(&json!({ "key": key }))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 201 => {
                            let _ = acknowledged.send(key);
                        }
                        // The server died under this request: it may or may not have landed.
                        _ => return,
                    }
                }
            }));
        }
        drop(acknowledged_tx);
        // Let some writes land, then kill the server while the writers keep going.
        let mut acknowledged = BTreeSet::new();
        while acknowledged.len() < 20 {
            acknowledged.insert(acknowledged_rx.recv().await.expect("writers stopped early"));
        }
        server.signal("KILL");
        for writer in writers {
            writer.await.unwrap();
        }
        while let Some(key) = acknowledged_rx.recv().await {
            acknowledged.insert(key);
        }
        drop(server);

        let restarted = ServerProcess::start(&database.url);
        let flags: Value = http
            .get(format!("{}/api/v1/projects/default/flags", restarted.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut stored = BTreeSet::new();
        for flag in flags["flags"].as_array().unwrap() {
            let environments = flag["environments"].as_object().unwrap();
            assert_eq!(environments.len(), 3, "half-created flag: {flag}");
            stored.insert(flag["key"].as_str().unwrap().to_owned());
        }
        let lost: Vec<_> = acknowledged.difference(&stored).collect();
        assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
        // History agrees with the flags: one creation each, nothing orphaned.
        let audit: Value = http
            .get(format!(
                "{}/api/v1/audit?kind=flag&limit=1000",
                restarted.url
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let audited: BTreeSet<String> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(audited, stored);
    }
}
