use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::each_backend;
use crate::helpers::TestApp;

/// Reads Server-Sent Events from a response, one complete event at a time.
pub(crate) struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug)]
pub(crate) struct ServerEvent {
    pub(crate) event: String,
    pub(crate) id: Option<String>,
    pub(crate) data: String,
}

impl EventReader {
    pub(crate) fn new(response: reqwest::Response) -> EventReader {
        EventReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or None when the stream ends. A test that
    /// waits longer than ten seconds for an event has failed.
    pub(crate) async fn next(&mut self) -> Option<ServerEvent> {
        tokio::time::timeout(Duration::from_secs(10), self.read())
            .await
            .expect("no event within 10 s")
    }

    async fn read(&mut self) -> Option<ServerEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = ServerEvent {
                    event: "message".into(),
                    id: None,
                    data: String::new(),
                };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        event.event = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("id:") {
                        event.id = Some(value.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event
                            .data
                            .push_str(value.strip_prefix(' ').unwrap_or(value));
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
                continue;
            }
            let chunk = self.response.chunk().await.ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Opens an SDK stream on any server, by its base URL.
async fn open_stream_at(base: &str, key: &str) -> EventReader {
    let response = reqwest::Client::new()
        .get(format!("{base}/api/v1/sdk/stream"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    EventReader::new(response)
}

pub(crate) async fn open_stream(
    app: &TestApp,
    key: &str,
    last_event_id: Option<&str>,
) -> EventReader {
    let mut headers = vec![];
    if let Some(id) = last_event_id {
        headers.push(("last-event-id", id));
    }
    let response = app
        .raw(Method::GET, "/api/v1/sdk/stream", Some(key), None, &headers)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    EventReader::new(response)
}

#[tokio::test]
async fn the_sdk_config_has_every_flag_and_an_etag() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "local", "type": "string", "variants": { "a": "A", "b": "B" }, "defaultVariant": "a" }))
            .await;
        let sdk = app.token("sdk", Some("production")).await;
        let first = app
            .raw(Method::GET, "/api/v1/sdk/config", Some(&sdk), None, &[])
            .await;
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let config: Value = first.json().await.unwrap();
        assert_eq!(config["environment"], "production");
        assert_eq!(config["types"]["local"], "string");
        assert_eq!(
            config["flags"]["local"]["variants"],
            json!({ "a": "A", "b": "B" })
        );
        let revision = config["revision"].as_i64().unwrap();
        // The document served from its cache has the shape the OpenAPI document gives it.
        let typed: capstan_server::flags::wire::SdkConfig =
            serde_json::from_value(config.clone()).unwrap();
        assert_eq!(typed.revision, revision);
        assert_eq!(typed.types["local"], "string");

        let again = app
            .raw(
                Method::GET,
                "/api/v1/sdk/config",
                Some(&sdk),
                None,
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        app.enable("production", "local").await;
        let changed = app
            .raw(
                Method::GET,
                "/api/v1/sdk/config",
                Some(&sdk),
                None,
                &[("if-none-match", &etag)],
            )
            .await;
        assert_eq!(changed.status(), StatusCode::OK);
        let config: Value = changed.json().await.unwrap();
        assert_eq!(config["revision"].as_i64().unwrap(), revision + 1);
        assert_eq!(config["flags"]["local"]["state"], "ENABLED");

        // Only sdk keys read the whole configuration.
        let client = app.token("client", Some("production")).await;
        assert_eq!(
            app.request(Method::GET, "/api/v1/sdk/config", Some(&client), None)
                .await
                .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.request(
                Method::GET,
                "/api/v1/sdk/config",
                Some(crate::helpers::ADMIN_TOKEN),
                None
            )
            .await
            .0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            app.request(Method::GET, "/api/v1/sdk/stream", None, None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    });
}

#[tokio::test]
async fn a_stream_sends_a_snapshot_then_every_change() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "live" })).await;
        let sdk = app.token("sdk", Some("production")).await;
        let mut stream = open_stream(&app, &sdk, None).await;
        let first = stream.next().await.unwrap();
        assert_eq!(first.event, "snapshot");
        let snapshot: Value = serde_json::from_str(&first.data).unwrap();
        assert_eq!(
            first.id.as_deref(),
            Some(snapshot["revision"].to_string().as_str())
        );
        assert_eq!(snapshot["flags"]["live"]["state"], "DISABLED");

        app.enable("production", "live").await;
        let second = stream.next().await.unwrap();
        let snapshot: Value = serde_json::from_str(&second.data).unwrap();
        assert_eq!(snapshot["flags"]["live"]["state"], "ENABLED");
        assert!(
            second.id.unwrap().parse::<i64>().unwrap() > first.id.unwrap().parse::<i64>().unwrap()
        );

        // A change in another environment is not this stream's business.
        app.enable("staging", "live").await;
        app.patch_config("production", "live", json!({ "defaultVariant": "off" }))
            .await;
        let third: Value = serde_json::from_str(&stream.next().await.unwrap().data).unwrap();
        assert_eq!(third["flags"]["live"]["defaultVariant"], "off");
    });
}

#[tokio::test]
async fn a_stream_resumed_at_the_current_revision_sends_only_what_is_new() {
    each_backend!(|app| {
        app.create_flag(json!({ "key": "resumed" })).await;
        let sdk = app.token("sdk", Some("production")).await;
        let mut stream = open_stream(&app, &sdk, None).await;
        let current = stream.next().await.unwrap().id.unwrap();
        drop(stream);
        let mut resumed = open_stream(&app, &sdk, Some(&current)).await;
        app.enable("production", "resumed").await;
        let next = resumed.next().await.unwrap();
        assert_eq!(
            next.id.unwrap().parse::<i64>().unwrap(),
            current.parse::<i64>().unwrap() + 1
        );
        // A client behind by a revision or more gets the current snapshot at once.
        let mut behind = open_stream(&app, &sdk, Some(&current)).await;
        let caught_up: Value = serde_json::from_str(&behind.next().await.unwrap().data).unwrap();
        assert_eq!(caught_up["flags"]["resumed"]["state"], "ENABLED");
    });
}

#[tokio::test]
async fn shutdown_ends_open_streams() {
    for backend in capstan_store::testing::backends() {
        let mut app = TestApp::spawn(&backend).await;
        let sdk = app.token("sdk", Some("production")).await;
        let mut stream = open_stream(&app, &sdk, None).await;
        assert!(stream.next().await.is_some());
        let server = app.server.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), server.shutdown())
            .await
            .expect("graceful shutdown waited for an open stream")
            .unwrap();
        assert!(stream.next().await.is_none());
    }
}

#[tokio::test]
async fn a_change_through_one_replica_reaches_the_streams_of_another() {
    for backend in capstan_store::testing::backends() {
        // Replicas share a database only on PostgreSQL; SQLite is one process.
        if !matches!(backend, capstan_store::testing::TestBackend::Postgres(_)) {
            continue;
        }
        let a = TestApp::spawn(&backend).await;
        let clock = std::sync::Arc::new(capstan_server::core::clock::ManualClock::new(
            crate::helpers::START_MS,
        ));
        let b = capstan_server::start(
            &crate::helpers::config(&a.database.url, &Default::default()),
            clock,
        )
        .await
        .unwrap();
        let b_url = format!("http://{}", b.address);
        a.create_flag(json!({ "key": "shared" })).await;
        let sdk = a.token("sdk", Some("production")).await;

        let mut on_b = open_stream_at(&b_url, &sdk).await;
        let first: Value = serde_json::from_str(&on_b.next().await.unwrap().data).unwrap();
        assert_eq!(first["flags"]["shared"]["state"], "DISABLED");
        a.enable("production", "shared").await;
        let second: Value = serde_json::from_str(&on_b.next().await.unwrap().data).unwrap();
        assert_eq!(second["flags"]["shared"]["state"], "ENABLED");
        assert_eq!(
            second["revision"].as_i64().unwrap(),
            first["revision"].as_i64().unwrap() + 1
        );

        // B evaluates the new configuration too, and B's writes reach A's streams.
        let on_b_ofrep: Value = reqwest::Client::new()
            .post(format!("{b_url}/ofrep/v1/evaluate/flags/shared"))
            .bearer_auth(&sdk)
            .json(&json!({ "context": {} }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(on_b_ofrep["value"], true);
        let mut on_a = open_stream(&a, &sdk, None).await;
        on_a.next().await.unwrap();
        let response = reqwest::Client::new()
            .post(format!(
                "{b_url}/api/v1/projects/default/environments/production/flags/shared/disable"
            ))
            .bearer_auth(crate::helpers::ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let third: Value = serde_json::from_str(&on_a.next().await.unwrap().data).unwrap();
        assert_eq!(third["flags"]["shared"]["state"], "DISABLED");
        b.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_idle_stream_sends_keep_alives() {
    let options = crate::helpers::Options {
        sse_keep_alive_seconds: 1,
        ..Default::default()
    };
    let app = TestApp::spawn_with(&capstan_store::testing::TestBackend::Sqlite, options).await;
    let sdk = app.token("sdk", Some("production")).await;
    let mut response = app
        .raw(Method::GET, "/api/v1/sdk/stream", Some(&sdk), None, &[])
        .await;
    let mut text = String::new();
    // The snapshot comes first; a comment line follows while nothing changes.
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while !text.contains("\n\n:") {
            let chunk = response.chunk().await.unwrap().expect("the stream ended");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await;
    assert!(seen.is_ok(), "no keep-alive within 10 s: {text}");
    assert!(text.starts_with("event: snapshot"), "{text}");
}
