//! Capstan's control plane: the HTTP API, OFREP evaluation, auth, audit, metrics and
//! the background controllers. See ARCHITECTURE.md for the map.
//!
//! Handlers hold no logic of their own beyond parsing and authorisation: writes go
//! through [`mutations::mutate`], reads through the compiled [`environments`].

pub mod core;
pub mod flags;
pub mod placements;
pub mod rollouts;
pub mod state;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use capstan_model::{EnvironmentKey, ProjectKey, Role, TokenName};
use capstan_store::{Bootstrap, BootstrapOutcome, SqlStore, Store, TokenRecord};
use secrecy::ExposeSecret;
use state::AppState;

use crate::core::clock::Clock;
pub use crate::core::config::ServeConfig;
use crate::core::error::ApiError;
use crate::core::state::Settings;
use crate::core::{auth, background, health, rate_limit};
use crate::flags::{changes, scheduler};

/// The OpenAPI document's frame; the paths are collected from the handlers' own
/// annotations as the routers are built, so the document cannot drift from the code.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Capstan API", description = "Capstan's management API. Evaluation is OFREP, under /ofrep/v1."),
    modifiers(&BearerAuth),
    components(schemas(crate::core::error::ErrorBody)),
    tags(
        (name = "flags", description = "Feature flags and their configuration per environment"),
        (name = "projects", description = "Projects and environments"),
        (name = "segments", description = "Reusable targeting rules"),
        (name = "schedules", description = "Scheduled flag changes"),
        (name = "flagd", description = "flagd file import and export"),
        (name = "tokens", description = "API tokens"),
        (name = "audit", description = "The audit trail"),
        (name = "ofrep", description = "OpenFeature Remote Evaluation Protocol"),
        (name = "sdk", description = "Configuration and live updates for SDKs that evaluate locally"),
        (name = "rollouts", description = "Guarded rollouts: a flag change stepped out and judged against its control"),
        (name = "placements", description = "Personalised placement: surfaces, items, ranking, rewards and the decision log"),
        (name = "personalizer", description = "Azure Personalizer's Rank and Reward API, for Personalizer's clients"),
        (name = "webhooks", description = "Signed messages about rollouts, and their deliveries")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The management and evaluation routes, with the OpenAPI document that describes them.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(core::projects::router())
        .merge(core::tokens::router())
        .merge(core::audit::router())
        .merge(flags::router())
        .merge(rollouts::router())
        .merge(placements::router())
        .merge(webhooks::router())
        .split_for_parts()
}

/// The whole HTTP application. Tests drive it without a socket; `start` serves it.
pub fn app(state: AppState) -> Router {
    let (routes, document) = api();
    let document = Arc::new(document);
    Router::new()
        .merge(health::router())
        .merge(routes)
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(16 * 1024 * 1024))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_request,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("route", "this path")
}

async fn record_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = match *request.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        _ => "OTHER",
    };
    let response = next.run(request).await;
    state.core.metrics.record_request(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The project and environments an empty store starts with.
const DEFAULT_PROJECT: &str = "default";
const DEFAULT_ENVIRONMENTS: [&str; 3] = ["development", "staging", "production"];

/// Creates the default project, environments and admin token in an empty store.
/// Returns the admin token when this call generated it (so it can be shown once).
pub async fn bootstrap(
    store: &dyn Store,
    clock: &dyn Clock,
    token: Option<&str>,
) -> anyhow::Result<Option<String>> {
    if !store.is_empty().await.context("failed to read store")? {
        return Ok(None);
    }
    let (secret, generated) = match token {
        Some(token) if !token.trim().is_empty() => (token.trim().to_owned(), false),
        _ => (auth::generate_secret(), true),
    };
    let now = clock.now_ms();
    let outcome = store
        .bootstrap(Bootstrap {
            project: ProjectKey::parse(DEFAULT_PROJECT)?,
            project_name: "Default".to_owned(),
            environments: DEFAULT_ENVIRONMENTS
                .iter()
                .map(|key| EnvironmentKey::parse(*key))
                .collect::<Result<_, _>>()?,
            admin_token: TokenRecord {
                id: auth::new_token_id(),
                name: TokenName::parse("bootstrap-admin")?,
                role: Role::Admin,
                project: None,
                environment: None,
                hash: auth::hash_secret(&secret),
                hint: auth::hint(&secret),
                created_at: now,
                expires_at: None,
                revoked_at: None,
                created_by: "capstan".to_owned(),
            },
            at: now,
        })
        .await
        .context("failed to bootstrap store")?;
    Ok((outcome == BootstrapOutcome::Created && generated).then_some(secret))
}

/// A server that is running; dropping it does not stop it, [`RunningServer::shutdown`] does.
pub struct RunningServer {
    pub address: SocketAddr,
    pub state: AppState,
    /// The admin token, when this start generated it.
    pub generated_admin_token: Option<String>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl RunningServer {
    /// Stops accepting connections, lets in-flight requests finish, and waits.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.state.core.shutdown.send_replace(true);
        self.task
            .await
            .context("server task failed")?
            .context("server failed")?;
        Ok(())
    }

    /// Waits until the server stops by itself (it only does on error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.task)
            .await
            .context("server task failed")?
            .context("server failed")
    }
}

/// Serves HTTP/1.1 connections until `stopped` turns true, then lets in-flight requests
/// finish. Connections are served by hyper directly rather than `axum::serve` so their
/// buffers can be sized: an idle SDK stream then costs a few KiB less, which matters with
/// tens of thousands of them. Every connection shares the one router.
async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The smallest read buffer hyper allows; requests to Capstan are small, and a larger
    // body is read through it in pieces.
    http.max_buf_size(8 * 1024);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // Running out of file descriptors and the like pass; pause so as not to
            // spin, then keep accepting.
            Err(error) => {
                tracing::warn!(error = %error, "failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %error, "connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// Opens the store, bootstraps it if empty, and starts serving on `config.listen`.
pub async fn start(config: &ServeConfig, clock: Arc<dyn Clock>) -> anyhow::Result<RunningServer> {
    let store = SqlStore::open(&config.database)
        .await
        .context("failed to open store")?;
    let store: Arc<dyn Store> = Arc::new(store);
    let bootstrap_token = config
        .bootstrap_token
        .as_ref()
        .map(|token| token.expose_secret().to_owned());
    let generated = bootstrap(store.as_ref(), clock.as_ref(), bootstrap_token.as_deref()).await?;
    let state = AppState::new(
        store,
        clock,
        Settings {
            rotation_grace_seconds: config.rotation_grace_seconds,
            sse_keep_alive_seconds: config.sse_keep_alive_seconds,
            event_retention_hours: config.event_retention_hours,
        },
        rate_limit::RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst),
    );
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", config.listen))?;
    let address = listener
        .local_addr()
        .context("failed to read listen address")?;
    // Listening starts before the server serves, so no change committed after this
    // replica answers its first request can go unheard.
    if let Some(feed) = state
        .core
        .store
        .changes()
        .await
        .context("failed to listen for changes")?
    {
        tokio::spawn(changes::follow(state.flags.clone(), feed));
    }
    let stopped = state.core.shutdown.subscribe();
    if config.scheduler_interval_ms > 0 {
        tokio::spawn(background::every(
            scheduler::Scheduler,
            state.flags.clone(),
            Duration::from_millis(config.scheduler_interval_ms),
            state.core.shutdown.subscribe(),
        ));
    }
    if config.rollout_interval_ms > 0 {
        let interval = Duration::from_millis(config.rollout_interval_ms);
        // A replica that misses this many ticks hands rollouts and webhooks to another.
        let lease_ttl_ms = (config.rollout_interval_ms as i64)
            .saturating_mul(10)
            .max(5_000);
        tokio::spawn(background::every(
            rollouts::driver::RolloutDriver::new(lease_ttl_ms),
            state.flags.clone(),
            interval,
            state.core.shutdown.subscribe(),
        ));
        tokio::spawn(background::every(
            webhooks::Deliverer::new(lease_ttl_ms),
            state.core.clone(),
            interval,
            state.core.shutdown.subscribe(),
        ));
    }
    if config.placement_interval_ms > 0 {
        let lease_ttl_ms = (config.placement_interval_ms as i64)
            .saturating_mul(20)
            .max(5_000);
        // A learning replica saves its models at most every two seconds.
        tokio::spawn(background::every(
            placements::driver::PlacementDriver::new(lease_ttl_ms, 2_000),
            state.placements.clone(),
            Duration::from_millis(config.placement_interval_ms),
            state.core.shutdown.subscribe(),
        ));
    }
    let app = app(state.clone());
    let task = tokio::spawn(serve(listener, app, stopped));
    Ok(RunningServer {
        address,
        state,
        generated_admin_token: generated,
        task,
    })
}
