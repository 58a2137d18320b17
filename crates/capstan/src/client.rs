//! A small client of the management API, for the CLI.

use anyhow::{Context, anyhow};
use reqwest::{Method, StatusCode};
use serde_json::Value;

pub(crate) struct ApiClient {
    http: reqwest::Client,
    server: String,
    token: Option<String>,
}

impl ApiClient {
    pub(crate) fn new(server: &str, token: Option<String>) -> ApiClient {
        ApiClient {
            http: reqwest::Client::new(),
            server: server.trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// Sends a request and returns the JSON body of a success, or the API's error
    /// message as one line.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let response = self.respond(method, path, body, headers).await?;
        let status = response.status();
        let text = response.text().await.context("failed to read response")?;
        if status == StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        let json: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(json);
        }
        let message = json
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("request failed");
        let code = json
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
            return Err(anyhow!("{message} (set CAPSTAN_TOKEN or pass --token)"));
        }
        Err(anyhow!("{message} ({code}, HTTP {})", status.as_u16()))
    }

    /// A binary resource, or `None` when it does not exist (404).
    pub(crate) async fn bytes(&self, path: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let response = self.respond(Method::GET, path, None, &[]).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(anyhow!(
                "GET {path} failed: HTTP {}",
                response.status().as_u16()
            ));
        }
        Ok(Some(
            response
                .bytes()
                .await
                .context("failed to read response")?
                .to_vec(),
        ))
    }

    /// Sends a request with the token, if there is one; fails only when the server
    /// cannot be reached.
    async fn respond(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self.http.request(method, format!("{}{path}", self.server));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request
            .send()
            .await
            .with_context(|| format!("failed to reach Capstan at {}", self.server))
    }

    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::GET, path, None, &[]).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(Method::POST, path, Some(body), &[]).await
    }

    pub(crate) async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::DELETE, path, None, &[]).await
    }
}
