use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::each_backend;
use crate::helpers::{Options, TestApp, all_backends};

async fn typed_flags(app: &TestApp) {
    app.create_flag(json!({ "key": "colour", "type": "string", "variants": { "red": "red", "blue": "blue" }, "defaultVariant": "red" }))
        .await;
    app.create_flag(json!({ "key": "limit", "type": "number", "variants": { "low": 10, "high": 100 }, "defaultVariant": "low" }))
        .await;
    app.create_flag(json!({
        "key": "layout", "type": "object",
        "variants": { "grid": { "columns": 3 }, "list": { "columns": 1 } }, "defaultVariant": "grid"
    }))
    .await;
    for key in ["colour", "limit", "layout"] {
        app.enable("production", key).await;
    }
}

#[tokio::test]
async fn single_evaluation_of_every_type() {
    each_backend!(|app| {
        typed_flags(&app).await;
        let sdk = app.token("sdk", Some("production")).await;
        let (status, colour) = app
            .ofrep("colour", &sdk, json!({ "targetingKey": "u1" }))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            colour,
            json!({ "key": "colour", "reason": "STATIC", "variant": "red", "value": "red", "metadata": {} })
        );
        assert_eq!(app.ofrep("limit", &sdk, json!({})).await.1["value"], 10);
        assert_eq!(
            app.ofrep("layout", &sdk, json!({})).await.1["value"],
            json!({ "columns": 3 })
        );
    });
}

#[tokio::test]
async fn targeting_and_splits_report_their_reason() {
    each_backend!(|app| {
        typed_flags(&app).await;
        app.patch_config(
            "production",
            "colour",
            json!({ "targeting": { "if": [{ "in": [{ "var": "country" }, ["de", "fr"]] }, "blue", null] } }),
        )
        .await;
        app.patch_config(
            "production",
            "limit",
            json!({ "targeting": { "fractional": [["low", 50], ["high", 50]] } }),
        )
        .await;
        let sdk = app.token("sdk", Some("production")).await;
        let (_, matched) = app
            .ofrep(
                "colour",
                &sdk,
                json!({ "targetingKey": "u1", "country": "de" }),
            )
            .await;
        assert_eq!(
            (matched["value"].clone(), matched["reason"].clone()),
            (json!("blue"), json!("TARGETING_MATCH"))
        );
        let (_, fallback) = app
            .ofrep(
                "colour",
                &sdk,
                json!({ "targetingKey": "u1", "country": "us" }),
            )
            .await;
        assert_eq!(
            (fallback["value"].clone(), fallback["reason"].clone()),
            (json!("red"), json!("DEFAULT"))
        );
        // A split is stable per user and spreads users over both variants.
        let mut seen = std::collections::BTreeSet::new();
        for user in 0..40 {
            let context = json!({ "targetingKey": format!("user-{user}") });
            let (_, first) = app.ofrep("limit", &sdk, context.clone()).await;
            let (_, again) = app.ofrep("limit", &sdk, context).await;
            assert_eq!(first["reason"], "SPLIT");
            assert_eq!(first["value"], again["value"]);
            seen.insert(first["variant"].as_str().unwrap().to_owned());
        }
        assert_eq!(seen.len(), 2);
    });
}

#[tokio::test]
async fn errors_use_ofrep_shapes_and_codes() {
    each_backend!(|app| {
        typed_flags(&app).await;
        let sdk = app.token("sdk", Some("production")).await;
        let (status, missing) = app.ofrep("no-such-flag", &sdk, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(missing["key"], "no-such-flag");
        assert_eq!(missing["errorCode"], "FLAG_NOT_FOUND");

        let response = app
            .http
            .post(format!("{}/ofrep/v1/evaluate/flags/colour", app.address))
            .bearer_auth(&sdk)
            .header("content-type", "application/json")
            .body("{\"context\": ")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errorCode"], "PARSE_ERROR");
        assert_eq!(body["key"], "colour");

        let (status, invalid) = app
            .request(
                Method::POST,
                "/ofrep/v1/evaluate/flags/colour",
                Some(&sdk),
                Some(json!({ "context": [1, 2] })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(invalid["errorCode"], "INVALID_CONTEXT");
        let (status, invalid) = app
            .ofrep("colour", &sdk, json!({ "targetingKey": 12 }))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(invalid["errorCode"], "INVALID_CONTEXT");

        // A split needs someone to split: without a targeting key there is none.
        app.patch_config(
            "production",
            "limit",
            json!({ "targeting": { "fractional": [["low", 50], ["high", 50]] } }),
        )
        .await;
        let (status, no_key) = app.ofrep("limit", &sdk, json!({})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{no_key}");
        assert_eq!(no_key["errorCode"], "TARGETING_KEY_MISSING");
    });
}

#[tokio::test]
async fn client_keys_see_only_client_visible_flags() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "public", "clientVisible": true }))
            .await;
        app.create_flag(json!({ "key": "internal" })).await;
        let client = app.token("client", Some("production")).await;
        assert_eq!(
            app.ofrep("public", &client, json!({})).await.0,
            StatusCode::OK
        );
        let (status, hidden) = app.ofrep("internal", &client, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(hidden["errorCode"], "FLAG_NOT_FOUND");
        let (_, bulk) = app
            .request(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(&client),
                Some(json!({ "context": {} })),
            )
            .await;
        let keys: Vec<&str> = bulk["flags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, ["public"]);
        // An sdk key of the same environment sees both.
        let sdk = app.token("sdk", Some("production")).await;
        let (_, bulk) = app
            .request(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(&sdk),
                Some(json!({ "context": {} })),
            )
            .await;
        assert_eq!(bulk["flags"].as_array().unwrap().len(), 2);
        // Keys are scoped to their environment.
        app.enable("production", "public").await;
        let staging = app.token("client", Some("staging")).await;
        assert_eq!(
            app.ofrep("public", &staging, json!({})).await.1["reason"],
            "DISABLED"
        );
        assert_eq!(
            app.ofrep("public", &client, json!({})).await.1["reason"],
            "STATIC"
        );
    });
}

#[tokio::test]
async fn bulk_evaluation_answers_304_while_nothing_changed() {
    each_backend!(|app| {
        typed_flags(&app).await;
        let sdk = app.token("sdk", Some("production")).await;
        let body = json!({ "context": { "targetingKey": "u1" } });
        let first = app
            .raw(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(&sdk),
                Some(body.clone()),
                &[],
            )
            .await;
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let flags: Value = first.json().await.unwrap();
        assert_eq!(flags["flags"].as_array().unwrap().len(), 3);
        let again = app
            .raw(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(&sdk),
                Some(body.clone()),
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        app.patch_config("production", "colour", json!({ "defaultVariant": "blue" }))
            .await;
        let changed = app
            .raw(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(&sdk),
                Some(body),
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);
    });
}

#[tokio::test]
async fn rate_limited_keys_get_429_with_retry_after() {
    for backend in all_backends() {
        let app = TestApp::spawn_with(
            &backend,
            Options {
                rate_limit_per_second: 1,
                rate_limit_burst: 2,
                ..Default::default()
            },
        )
        .await;
        app.create_flag(json!({ "key": "f" })).await;
        let sdk = app.token("sdk", Some("production")).await;
        assert_eq!(app.ofrep("f", &sdk, json!({})).await.0, StatusCode::OK);
        assert_eq!(app.ofrep("f", &sdk, json!({})).await.0, StatusCode::OK);
        let limited = app
            .raw(
                Method::POST,
                "/ofrep/v1/evaluate/flags/f",
                Some(&sdk),
                Some(json!({})),
                &[],
            )
            .await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers()["retry-after"], "1");
        // The clock the server reads refills the bucket.
        app.clock.advance(1_000);
        assert_eq!(app.ofrep("f", &sdk, json!({})).await.0, StatusCode::OK);
    }
}

#[tokio::test]
async fn bulk_evaluation_offers_an_event_stream_that_says_when_to_refetch() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "watched", "clientVisible": true }))
            .await;
        let client = app.token("client", Some("production")).await;
        let (_, bulk) = app
            .request(
                Method::POST,
                "/ofrep/v1/evaluate/flags",
                Some(&client),
                Some(json!({ "context": {} })),
            )
            .await;
        let streams = bulk["eventStreams"].as_array().unwrap();
        assert_eq!(streams[0]["type"], "sse");
        let url = streams[0]["url"].as_str().unwrap();
        assert_eq!(url, format!("{}/ofrep/v1/event-stream", app.address));

        let response = reqwest::Client::new()
            .get(url)
            .bearer_auth(&client)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let mut events = crate::sdk::EventReader::new(response);
        app.enable("production", "watched").await;
        let event = events.next().await.unwrap();
        let data: Value = serde_json::from_str(&event.data).unwrap();
        assert_eq!(data["type"], "refetchEvaluation");
        let snapshot = app
            .state()
            .flags
            .environments
            .cached("default", "production")
            .unwrap();
        assert_eq!(event.id.unwrap(), snapshot.revision().to_string());
        // The refetch it asks for sees the change (and accepts OFREP's SSE query metadata).
        let path = format!(
            "/ofrep/v1/evaluate/flags?sseEtag={}&sseLastModified={}",
            data["etag"].as_str().unwrap(),
            data["lastModified"]
        );
        let (status, after) = app
            .request(
                Method::POST,
                &path,
                Some(&client),
                Some(json!({ "context": {} })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(after["flags"][0]["value"], true);
        assert_eq!(
            app.request(Method::GET, "/ofrep/v1/event-stream", None, None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    });
}
