//! Personalised placement with the real server process: surfaces and items through the
//! CLI, rank and reward over HTTP, learning in the background, and offline evaluation
//! from the decision log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::process::{ServerProcess, ok};

async fn post(url: &str, token: &str, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn probability(ranked: &Value, id: &str) -> f64 {
    ranked["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == id)
        .unwrap()["probability"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn rewards_change_the_next_decisions_and_the_log_evaluates_policies() {
    for backend in capstan_store::testing::backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let server = ServerProcess::start_with(
            &database.url,
            "127.0.0.1:0",
            &["--placement-interval-ms", "50"],
        );
        let url = server.url.as_str();
        ok(
            url,
            &[
                "placement",
                "surface",
                "home_hero",
                "--description",
                "Hero slot",
                "--settings",
                r#"{"rewardWindowSeconds": 1, "rewardMin": 0, "rewardMax": 1, "learner": {"holdout": 0.1}}"#,
            ],
        );
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("items.json");
        std::fs::write(
            &file,
            json!([
                {"id": "sleep-story", "features": {"content": {"category": "sleep"}}},
                {"id": "focus-music", "features": {"content": {"category": "focus"}}},
                {"id": "calm-breath", "features": {"content": {"category": "calm"}}}
            ])
            .to_string(),
        )
        .unwrap();
        ok(
            url,
            &[
                "placement",
                "items",
                "home_hero",
                "--put",
                &file.to_string_lossy(),
            ],
        );
        let listed = ok(url, &["placement", "items", "home_hero"]);
        assert!(
            listed.contains("sleep-story") && listed.contains("live"),
            "{listed}"
        );
        let token = ok(
            url,
            &["tokens", "create", "--name", "app", "--role", "placement"],
        );
        let token = token.trim();

        // Rewards for sleep-story in the sleep context, until the server has learned
        // from them: the next decision gives sleep-story more probability than before.
        let context = json!({ "user": { "taste": "sleep" } });
        let (status, first) = post(
            url,
            token,
            "/api/v1/placements/home_hero/rank",
            json!({ "context": context }),
        )
        .await;
        assert_eq!(status, 201, "{first}");
        let before = probability(&first, "sleep-story");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut rounds = 0;
        loop {
            let (_, ranked) = post(
                url,
                token,
                "/api/v1/placements/home_hero/rank",
                json!({ "context": context }),
            )
            .await;
            if probability(&ranked, "sleep-story") > before + 0.05 {
                break;
            }
            let reward = if ranked["show"] == "sleep-story" {
                1.0
            } else {
                0.0
            };
            let event = ranked["eventId"].as_str().unwrap();
            let (status, body) = post(
                url,
                token,
                &format!("/api/v1/placements/events/{event}/reward"),
                json!({ "value": reward }),
            )
            .await;
            assert_eq!(status, 204, "{body}");
            rounds += 1;
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing learned after {rounds} rewarded decisions"
            );
        }

        // The log: once decisions are learned (saved and marked), the CLI evaluates
        // other policies from it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let evaluation = loop {
            let output = ok(url, &["placement", "evaluate", "home_hero", "--json"]);
            let evaluation: Value = serde_json::from_str(&output).unwrap();
            if evaluation["decisions"].as_u64().unwrap() >= 5 && evaluation["model"] == true {
                break evaluation;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no learned decisions in the log: {evaluation}"
            );
        };
        let policies: Vec<&str> = evaluation["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["policy"].as_str().unwrap())
            .collect();
        assert_eq!(
            policies,
            [
                "uniform random",
                "global ranking",
                "current model",
                "current model, exploration 0",
                "current model, exploration 0.1"
            ]
        );
        for policy in evaluation["policies"].as_array().unwrap() {
            let ips = &policy["ips"];
            let value = ips["value"].as_f64().unwrap();
            assert!(value >= 0.0, "{policy}");
            if let (Some(low), Some(high)) = (ips["low"].as_f64(), ips["high"].as_f64()) {
                assert!(low <= value && value <= high, "{policy}");
            }
        }
        let table = ok(url, &["placement", "evaluate", "home_hero"]);
        assert!(
            table.contains("DOUBLY ROBUST") && table.contains("global ranking"),
            "{table}"
        );
        let shown = ok(url, &["placement", "show", "home_hero"]);
        assert!(
            shown.contains("surface: home_hero") && shown.contains("IMPRESSIONS"),
            "{shown}"
        );
        let surfaces = ok(url, &["placement", "surfaces", "--json"]);
        assert!(surfaces.contains("\"home_hero\""), "{surfaces}");
    }
}
