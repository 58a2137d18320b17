//! Personalised placement through the real server: surfaces and items, rank and reward,
//! learning (ticked by the test), the model kept across a restart, and bad input.

use capstan_server::placements::driver::PlacementDriver;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::each_backend;
use crate::helpers::TestApp;

const SURFACES: &str = "/api/v1/projects/default/surfaces";

async fn surface(app: &TestApp, key: &str, settings: Value) -> Value {
    let (code, body) = app
        .admin(
            Method::PUT,
            &format!("{SURFACES}/{key}"),
            Some(json!({ "description": "test", "settings": settings })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

async fn items(app: &TestApp, key: &str, items: Value) {
    let (code, body) = app
        .admin(
            Method::POST,
            &format!("{SURFACES}/{key}/items"),
            Some(json!({ "items": items })),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
}

async fn rank(app: &TestApp, token: &str, key: &str, body: Value) -> (StatusCode, Value) {
    app.request(
        Method::POST,
        &format!("/api/v1/placements/{key}/rank"),
        Some(token),
        Some(body),
    )
    .await
}

async fn reward(app: &TestApp, token: &str, event: &str, value: Value) -> (StatusCode, Value) {
    app.request(
        Method::POST,
        &format!("/api/v1/placements/events/{event}/reward"),
        Some(token),
        Some(json!({ "value": value })),
    )
    .await
}

/// `count` decisions for contexts `{"user": {"n": 0..count}}`, each rewarded `value`.
async fn rewarded_decisions(app: &TestApp, token: &str, count: usize, value: f64) {
    for round in 0..count {
        let (_, ranked) = rank(
            app,
            token,
            "home_hero",
            json!({ "context": { "user": { "n": round } } }),
        )
        .await;
        let (code, body) = reward(
            app,
            token,
            ranked["eventId"].as_str().unwrap(),
            json!(value),
        )
        .await;
        assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    }
}

fn three_items() -> Value {
    json!([
        {"id": "sleep-story", "features": {"content": {"category": "sleep", "length": 20}}},
        {"id": "focus-music", "features": {"content": {"category": "focus", "length": 45}}},
        {"id": "calm-breath", "features": {"content": {"category": "calm", "length": 5}}}
    ])
}

#[tokio::test]
async fn surfaces_and_items_are_managed_and_checked() {
    each_backend!(|app| {
        let created = surface(&app, "home_hero", json!({ "learner": { "holdout": 0.1 } })).await;
        assert_eq!(created["settings"]["learner"]["holdout"], 0.1);
        assert_eq!(
            created["settings"]["learner"]["testingBudget"], 0.05,
            "defaults fill the rest"
        );
        assert_eq!(created["settings"]["rewardCombine"], "first");
        let cases = [
            (
                json!({ "settings": { "learner": { "holdout": 2 } } }),
                "settings.learner.holdout",
            ),
            (
                json!({ "settings": { "learner": { "speed": 2 } } }),
                "settings.learner",
            ),
            (
                json!({ "settings": { "rewardMin": 1, "rewardMax": 0 } }),
                "settings.rewardMax",
            ),
            (
                json!({ "settings": { "rewardCombine": "max" } }),
                "settings.rewardCombine",
            ),
            (json!({ "settings": 3 }), "settings"),
        ];
        for (body, field) in cases {
            let (code, error) = app
                .admin(
                    Method::PUT,
                    &format!("{SURFACES}/home_hero"),
                    Some(body.clone()),
                )
                .await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {error}");
            assert!(
                error["field"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(field),
                "{body}: {error}"
            );
        }
        let (code, error) = app
            .admin(Method::PUT, &format!("{SURFACES}/bad key"), Some(json!({})))
            .await;
        assert_eq!(
            (code, error["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("surface"))
        );

        items(&app, "home_hero", three_items()).await;
        let (code, _) = app
            .admin(
                Method::PUT,
                &format!("{SURFACES}/home_hero/items/calm-breath"),
                Some(json!({ "features": {}, "status": "retired" })),
            )
            .await;
        assert_eq!(code, StatusCode::OK);
        let (_, listed) = app
            .admin(Method::GET, &format!("{SURFACES}/home_hero/items"), None)
            .await;
        let statuses: Vec<(&str, &str)> = listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                (
                    item["id"].as_str().unwrap(),
                    item["status"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            statuses,
            vec![
                ("calm-breath", "retired"),
                ("focus-music", "live"),
                ("sleep-story", "live")
            ]
        );
        let (code, error) = app
            .admin(
                Method::POST,
                &format!("{SURFACES}/home_hero/items"),
                Some(json!({ "items": [{"id": "x", "features": {}, "status": "gone"}] })),
            )
            .await;
        assert_eq!(
            (code, error["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("items[0].status"))
        );
        let (code, _) = app
            .admin(
                Method::POST,
                &format!("{SURFACES}/nowhere/items"),
                Some(json!({ "items": [] })),
            )
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        let (_, listed) = app.admin(Method::GET, SURFACES, None).await;
        assert_eq!(listed["surfaces"][0]["key"], "home_hero");
    });
}

#[tokio::test]
async fn rank_and_reward_end_to_end_with_every_bad_input_a_clear_4xx() {
    each_backend!(|app| {
        surface(
            &app,
            "home_hero",
            json!({ "rewardWindowSeconds": 60, "rewardMin": 0, "rewardMax": 1 }),
        )
        .await;
        items(&app, "home_hero", three_items()).await;
        let token = app.token("placement", None).await;
        let context =
            json!({ "user": { "taste": "sleep", "country": "FR" }, "timeOfDay": "evening" });

        let (code, ranked) = rank(&app, &token, "home_hero", json!({ "context": context })).await;
        assert_eq!(code, StatusCode::CREATED, "{ranked}");
        let listed = ranked["items"].as_array().unwrap();
        assert_eq!(listed.len(), 3);
        assert_eq!(ranked["show"], listed[0]["id"]);
        let total: f64 = listed
            .iter()
            .map(|item| item["probability"].as_f64().unwrap())
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{ranked}");
        let event = ranked["eventId"].as_str().unwrap().to_owned();

        // Candidates: given by id, inline, excluded, limited to slots.
        let (code, ranked) = rank(
            &app,
            &token,
            "home_hero",
            json!({ "context": context, "candidates": ["sleep-story", {"id": "new-one", "features": {"content": {"category": "sleep"}}}], "exclude": ["sleep-story"], "slots": 1, "eventId": "my-event-1" }),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{ranked}");
        assert_eq!(
            (ranked["eventId"].as_str(), ranked["show"].as_str()),
            (Some("my-event-1"), Some("new-one"))
        );
        assert_eq!(ranked["items"].as_array().unwrap().len(), 1);

        assert_eq!(
            reward(&app, &token, &event, json!(1.0)).await.0,
            StatusCode::NO_CONTENT
        );
        let (code, error) = reward(&app, &token, &event, json!(1.0)).await;
        assert_eq!(
            (code, error["code"].as_str()),
            (StatusCode::CONFLICT, Some("duplicate_reward")),
            "{error}"
        );
        let (code, error) = reward(&app, &token, "no-such-event", json!(1.0)).await;
        assert_eq!(
            (code, error["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
        let (code, error) = reward(&app, &token, "my-event-1", json!(7)).await;
        assert_eq!(
            (code, error["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("value")),
            "{error}"
        );
        let (code, error) = reward(&app, &token, "my-event-1", json!("lots")).await;
        assert_eq!(
            (code, error["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some("value")),
            "{error}"
        );
        app.clock.advance(61_000);
        let (code, error) = reward(&app, &token, "my-event-1", json!(1.0)).await;
        assert_eq!(
            (code, error["code"].as_str()),
            (StatusCode::CONFLICT, Some("reward_too_late")),
            "{error}"
        );

        let bad_ranks = [
            (
                json!({ "context": context, "exclude": ["sleep-story", "focus-music", "calm-breath"] }),
                "candidates",
            ),
            (
                json!({ "context": context, "candidates": [] }),
                "candidates",
            ),
            (
                json!({ "context": context, "candidates": ["ghost"] }),
                "candidates[0]",
            ),
            (
                json!({ "context": context, "candidates": ["sleep-story", "sleep-story"] }),
                "candidates[1]",
            ),
            (json!({ "context": "sleepy" }), "context"),
            (
                json!({ "context": { "user": (0..5_000).map(|i| (format!("f{i}"), json!(i))).collect::<serde_json::Map<_, _>>() } }),
                "context.user",
            ),
            (json!({ "context": context, "slots": 0 }), "slots"),
            (json!({ "context": context, "eventId": "" }), "eventId"),
            (json!({ "context": context, "eventId": "my-event-1" }), ""),
        ];
        for (body, field) in bad_ranks {
            let (code, error) = rank(&app, &token, "home_hero", body.clone()).await;
            assert!(code.is_client_error(), "{code}: {error}");
            if field.is_empty() {
                assert_eq!(
                    (code, error["code"].as_str()),
                    (StatusCode::CONFLICT, Some("already_exists")),
                    "{error}"
                );
            } else {
                assert!(
                    error["field"]
                        .as_str()
                        .unwrap_or_default()
                        .starts_with(field),
                    "{field}: {error}"
                );
            }
        }
        let (code, _) = rank(&app, &token, "nowhere", json!({ "context": context })).await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        let sdk = app.token("sdk", Some("production")).await;
        let (code, _) = rank(&app, &sdk, "home_hero", json!({ "context": context })).await;
        assert_eq!(code, StatusCode::FORBIDDEN);
        // After all that, the surface still ranks.
        let (code, _) = rank(&app, &token, "home_hero", json!({ "context": context })).await;
        assert_eq!(code, StatusCode::CREATED);
    });
}

/// Users of two tastes; each taste rewards one item. Returns the share of the last
/// `measure` decisions that showed each user's item.
async fn learn_tastes(
    app: &TestApp,
    token: &str,
    driver: &mut PlacementDriver,
    rounds: usize,
    measure: usize,
) -> f64 {
    let mut hits = 0;
    for round in 0..rounds {
        let taste = if round % 2 == 0 { "sleep" } else { "focus" };
        let wanted = if taste == "sleep" {
            "sleep-story"
        } else {
            "focus-music"
        };
        let (code, ranked) = rank(
            app,
            token,
            "home_hero",
            json!({ "context": { "user": { "taste": taste } } }),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED, "{ranked}");
        let shown = ranked["show"].as_str().unwrap();
        if shown == wanted {
            let (code, _) =
                reward(app, token, ranked["eventId"].as_str().unwrap(), json!(1.0)).await;
            assert_eq!(code, StatusCode::NO_CONTENT);
        }
        if round + measure >= rounds && shown == wanted {
            hits += 1;
        }
        if round % 10 == 9 {
            // Unrewarded decisions count 0 once their window closes.
            app.clock.advance(2_000);
            driver.tick(&app.state().placements).await.unwrap();
        }
    }
    hits as f64 / measure as f64
}

#[tokio::test]
async fn rewards_teach_the_surface_what_each_taste_wants_and_the_model_survives_a_restart() {
    each_backend!(|app| {
        surface(
            &app,
            "home_hero",
            json!({ "rewardWindowSeconds": 1, "rewardMin": 0, "rewardMax": 1, "learner": { "holdout": 0.0, "testingBudget": 0.0 } }),
        )
        .await;
        items(&app, "home_hero", three_items()).await;
        let token = app.token("placement", None).await;
        let mut driver = PlacementDriver::new(60_000, 0);
        let share = learn_tastes(&app, &token, &mut driver, 400, 100).await;
        assert!(
            share >= 0.75,
            "the right item for each taste in {share} of the last 100 decisions"
        );

        // A reward affects the next decision: one tick after it is learned.
        let probability_of = |ranked: &Value, id: &str| {
            ranked["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|item| item["id"] == id)
                .unwrap()["probability"]
                .as_f64()
                .unwrap()
        };
        let context = json!({ "user": { "taste": "sleep" } });
        let (_, before) = rank(
            &app,
            &token,
            "home_hero",
            json!({ "context": context, "candidates": ["sleep-story", "focus-music"] }),
        )
        .await;

        let (_, state) = app
            .admin(Method::GET, &format!("{SURFACES}/home_hero"), None)
            .await;
        let version = state["modelVersion"].as_i64().unwrap();
        assert!(version > 0, "{state}");
        let impressions: u64 = state["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["impressions"].as_u64().unwrap())
            .sum();
        assert!(impressions >= 390, "{state}");

        // A second server on the same database loads the saved model: same probabilities.
        let restarted = capstan_server::start(
            &crate::helpers::config(&app.database.url, &Default::default()),
            app.clock.clone(),
        )
        .await
        .unwrap();
        let other = format!("http://{}", restarted.address);
        let response = reqwest::Client::new()
            .post(format!("{other}/api/v1/placements/home_hero/rank"))
            .bearer_auth(&token)
            .json(&json!({ "context": context, "candidates": ["sleep-story", "focus-music"] }))
            .send()
            .await
            .unwrap();
        let after: Value = response.json().await.unwrap();
        assert_eq!(
            probability_of(&after, "sleep-story"),
            probability_of(&before, "sleep-story"),
            "{before} / {after}"
        );
    });
}

#[tokio::test]
async fn decisions_ranked_together_are_all_logged_and_an_event_id_once() {
    each_backend!(|app| {
        surface(&app, "home_hero", json!({ "rewardWindowSeconds": 60 })).await;
        items(&app, "home_hero", three_items()).await;
        let token = app.token("placement", None).await;
        // 40 ranks at once, 8 of them claiming the same event id: they share commits,
        // and exactly one of the 8 gets the id.
        let requests = (0..40).map(|round| {
            let mut body = json!({ "context": { "user": { "n": round } } });
            if round % 5 == 0 {
                body["eventId"] = json!("shared-event");
            }
            rank(&app, &token, "home_hero", body)
        });
        let answers = futures_util::future::join_all(requests).await;
        let mut logged = Vec::new();
        let mut refused = 0;
        for (code, body) in answers {
            match code {
                StatusCode::CREATED => logged.push(body["eventId"].as_str().unwrap().to_owned()),
                StatusCode::CONFLICT => {
                    assert_eq!(body["code"], "already_exists", "{body}");
                    refused += 1;
                }
                other => panic!("{other}: {body}"),
            }
        }
        assert_eq!((logged.len(), refused), (33, 7));
        assert_eq!(logged.iter().filter(|id| *id == "shared-event").count(), 1);
        // Every answered decision is in the store: its reward is taken.
        for event in &logged {
            let (code, body) = reward(&app, &token, event, json!(1.0)).await;
            assert_eq!(code, StatusCode::NO_CONTENT, "{event}: {body}");
        }
    });
}

#[tokio::test]
async fn deferred_decisions_are_learned_only_once_activated() {
    each_backend!(|app| {
        surface(&app, "home_hero", json!({ "rewardWindowSeconds": 1 })).await;
        items(&app, "home_hero", three_items()).await;
        let token = app.token("placement", None).await;
        let (_, ranked) = rank(
            &app,
            &token,
            "home_hero",
            json!({ "context": {}, "deferActivation": true }),
        )
        .await;
        let event = ranked["eventId"].as_str().unwrap().to_owned();
        let mut driver = PlacementDriver::new(60_000, 0);
        app.clock.advance(5_000);
        assert_eq!(
            driver.tick(&app.state().placements).await.unwrap().learned,
            0
        );
        let (code, _) = app
            .request(
                Method::POST,
                &format!("/api/v1/placements/events/{event}/activate"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(code, StatusCode::NO_CONTENT);
        app.clock.advance(5_000);
        assert_eq!(
            driver.tick(&app.state().placements).await.unwrap().learned,
            1
        );
        let (code, _) = app
            .request(
                Method::POST,
                "/api/v1/placements/events/nope/activate",
                Some(&token),
                None,
            )
            .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
    });
}

#[tokio::test]
async fn one_replica_learns_at_a_time_and_another_takes_over() {
    each_backend!(|app| {
        surface(
            &app,
            "home_hero",
            json!({ "rewardWindowSeconds": 1, "learner": { "holdout": 0.5 } }),
        )
        .await;
        items(&app, "home_hero", three_items()).await;
        let token = app.token("placement", None).await;
        let mut first = PlacementDriver::new(10_000, 0);
        let mut second = PlacementDriver::new(10_000, 0);
        rewarded_decisions(&app, &token, 20, 1.0).await;
        let report = first.tick(&app.state().placements).await.unwrap();
        assert_eq!(
            (report.leading, report.learned, report.saved),
            (true, 20, 1),
            "{report:?}"
        );
        assert!(!second.tick(&app.state().placements).await.unwrap().leading);
        rewarded_decisions(&app, &token, 10, 0.5).await;
        // The first learner stops; once its lease expires the second learns what is left,
        // and nothing twice.
        drop(first);
        app.clock.advance(10_001);
        let report = second.tick(&app.state().placements).await.unwrap();
        assert_eq!((report.leading, report.learned), (true, 10), "{report:?}");
        let (_, state) = app
            .admin(Method::GET, &format!("{SURFACES}/home_hero"), None)
            .await;
        let lift = &state["lift"];
        let decisions = lift["personalized"]["decisions"].as_u64().unwrap()
            + lift["holdout"]["decisions"].as_u64().unwrap();
        assert!(decisions >= 20, "{state}");
        assert!(
            lift["holdout"]["decisions"].as_u64().unwrap() > 0,
            "{state}"
        );
    });
}

#[tokio::test]
async fn a_settings_change_while_learning_loses_no_decision() {
    each_backend!(|app| {
        surface(&app, "home_hero", json!({ "rewardWindowSeconds": 1 })).await;
        items(&app, "home_hero", three_items()).await;
        let token = app.token("placement", None).await;
        // Saves at most hourly: the first save is at once, the next waits.
        let mut driver = PlacementDriver::new(3_600_000, 3_600_000);
        rewarded_decisions(&app, &token, 10, 1.0).await;
        assert_eq!(driver.tick(&app.state().placements).await.unwrap().saved, 1);
        rewarded_decisions(&app, &token, 5, 1.0).await;
        let report = driver.tick(&app.state().placements).await.unwrap();
        assert_eq!((report.learned, report.saved), (5, 0));
        // The settings change replaces the learner: the five unsaved decisions are
        // learned again into the new one, not marked learned without being in any model.
        surface(&app, "home_hero", json!({ "learner": { "holdout": 0.2 } })).await;
        assert_eq!(
            driver.tick(&app.state().placements).await.unwrap().learned,
            5
        );
        app.clock.advance(3_600_000);
        assert_eq!(driver.tick(&app.state().placements).await.unwrap().saved, 1);
        let (_, state) = app
            .admin(Method::GET, &format!("{SURFACES}/home_hero"), None)
            .await;
        let impressions: u64 = state["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["impressions"].as_u64().unwrap())
            .sum();
        assert_eq!(impressions, 15, "{state}");
        assert_eq!(state["settings"]["learner"]["holdout"], 0.2);
    });
}
