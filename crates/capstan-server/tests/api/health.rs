use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::each_backend;
use crate::helpers::{ADMIN_TOKEN, TestApp, all_backends, config};

#[tokio::test]
async fn health_readiness_and_metrics() {
    each_backend!(|app| {
        let (status, body) = app.request(Method::GET, "/healthz", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        let (status, body) = app.request(Method::GET, "/readyz", None, None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ready");

        app.create_flag(json!({ "key": "metered" })).await;
        app.enable("production", "metered").await;
        let sdk = app.token("sdk", Some("production")).await;
        for _ in 0..3 {
            let (status, _) = app.ofrep("metered", &sdk, json!({})).await;
            assert_eq!(status, StatusCode::OK);
        }
        let metrics = app.metrics().await;
        assert!(
            metrics.contains(
                "capstan_flag_evaluations_total{project=\"default\",environment=\"production\",flag=\"metered\",reason=\"STATIC\"} 3"
            ),
            "{metrics}"
        );
        assert!(metrics.contains("capstan_http_requests_total{route=\"/ofrep/v1/evaluate/flags/{key}\",method=\"POST\",status=\"200\"} 3"));
        assert!(metrics.contains("capstan_http_request_duration_seconds_count{route=\"/ofrep/v1/evaluate/flags/{key}\"} 3"));
        assert!(metrics.contains("capstan_store_errors_total "));
    });
}

#[tokio::test]
async fn unknown_routes_answer_json_404() {
    each_backend!(|app| {
        let (status, body) = app
            .request(Method::GET, "/api/v1/nothing-here", Some(ADMIN_TOKEN), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not_found");
    });
}

#[tokio::test]
async fn bootstrap_creates_default_project_once() {
    for backend in all_backends() {
        let app = TestApp::spawn(&backend).await;
        let (status, body) = app
            .admin(Method::GET, "/api/v1/projects/default/environments", None)
            .await;
        assert_eq!(status, StatusCode::OK);
        let keys: Vec<&str> = body["environments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys.len(), 3);
        for expected in ["development", "staging", "production"] {
            assert!(keys.contains(&expected), "{keys:?}");
        }
        // A second server on the same store finds it bootstrapped and makes no token.
        let mut second_config = config(&app.database.url, &Default::default());
        second_config.bootstrap_token = None;
        let clock = std::sync::Arc::new(capstan_server::core::clock::SystemClock);
        let second = capstan_server::start(&second_config, clock).await.unwrap();
        assert!(second.generated_admin_token.is_none());
        second.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn an_empty_store_without_a_bootstrap_token_generates_one() {
    for backend in all_backends() {
        let database = capstan_store::testing::TestDatabase::new(&backend).await;
        let mut server_config = config(&database.url, &Default::default());
        server_config.bootstrap_token = None;
        let server = capstan_server::start(
            &server_config,
            std::sync::Arc::new(capstan_server::core::clock::SystemClock),
        )
        .await
        .unwrap();
        let token = server
            .generated_admin_token
            .clone()
            .expect("a generated token");
        assert!(token.starts_with("cps_"));
        let response = reqwest::Client::new()
            .get(format!("http://{}/api/v1/projects", server.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_routes_that_exist() {
    each_backend!(|app| {
        let (status, document) = app
            .request(Method::GET, "/api/v1/openapi.json", None, None)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        let paths = document["paths"].as_object().unwrap();
        let mut operations = 0;
        for (path, item) in paths {
            for method in item.as_object().unwrap().keys() {
                operations += 1;
                // Every documented operation is a real route: without a token it asks
                // for one instead of answering "no such route".
                let concrete = path
                    .split('/')
                    .map(|part| if part.starts_with('{') { "x" } else { part })
                    .collect::<Vec<_>>()
                    .join("/");
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let (status, body) = app
                    .request(method.clone(), &concrete, None, Some(json!({})))
                    .await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            }
        }
        assert!(operations >= 35, "{operations} operations documented");
        assert!(
            paths["/api/v1/projects/{project}/flags"]
                .get("post")
                .is_some()
        );
        assert!(
            paths["/ofrep/v1/evaluate/flags/{key}"]
                .get("post")
                .is_some()
        );
        let create = &paths["/api/v1/projects/{project}/flags"]["post"]["requestBody"];
        assert!(create.to_string().contains("CreateFlag"), "{create}");
        assert!(document["components"]["schemas"]["ErrorBody"]["properties"]["code"].is_object());
        // Every schema the document refers to is in it.
        let text = document.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = &reference[..reference.find('"').unwrap()];
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "dangling reference to {name}"
            );
        }
    });
}

#[tokio::test]
async fn readiness_fails_when_the_store_goes_away() {
    for backend in all_backends() {
        let app = TestApp::spawn(&backend).await;
        // Only a PostgreSQL database can be taken away from under a running server.
        if !app.database.destroy().await {
            continue;
        }
        let (status, body) = app.request(Method::GET, "/readyz", None, None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["status"], "unavailable");
        let metrics = app.metrics().await;
        let errors: u64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix("capstan_store_errors_total "))
            .and_then(|count| count.parse().ok())
            .unwrap();
        assert!(errors >= 1, "{metrics}");
        // Liveness does not depend on the store.
        assert_eq!(
            app.request(Method::GET, "/healthz", None, None).await.0,
            StatusCode::OK
        );
    }
}
