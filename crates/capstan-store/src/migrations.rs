//! Versioned schema migrations, one SQL text per backend.
//!
//! A migration is never edited once released: a database created by an older Capstan
//! upgrades by running the migrations it has not seen, in order, in one transaction each.

use crate::Backend;

pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    /// The migration's SQL for SQLite, in parts run one after another.
    pub(crate) sqlite: &'static [&'static str],
    pub(crate) postgres: &'static [&'static str],
}

impl Migration {
    pub(crate) fn sql(&self, backend: Backend) -> &'static [&'static str] {
        match backend {
            Backend::Sqlite => self.sqlite,
            Backend::Postgres => self.postgres,
        }
    }
}

/// The columns and keys are the same on both backends; only identity columns differ.
const CORE_TABLES: &str = "
CREATE TABLE projects (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE environments (
    project TEXT NOT NULL REFERENCES projects (key),
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE TABLE flags (
    project TEXT NOT NULL REFERENCES projects (key),
    key TEXT NOT NULL,
    flag_type TEXT NOT NULL,
    description TEXT NOT NULL,
    client_visible BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE TABLE flag_configs (
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag TEXT NOT NULL,
    config TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, environment, flag),
    FOREIGN KEY (project, environment) REFERENCES environments (project, key),
    FOREIGN KEY (project, flag) REFERENCES flags (project, key)
);
CREATE TABLE flag_versions (
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag TEXT NOT NULL,
    version BIGINT NOT NULL,
    config TEXT,
    audit_id BIGINT NOT NULL,
    PRIMARY KEY (project, environment, flag, version)
);
CREATE TABLE segments (
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    key TEXT NOT NULL,
    description TEXT NOT NULL,
    rule TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, environment, key),
    FOREIGN KEY (project, environment) REFERENCES environments (project, key)
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    project TEXT,
    environment TEXT,
    hash TEXT NOT NULL UNIQUE,
    hint TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    created_by TEXT NOT NULL
);
";

const AUDIT_SQLITE: &str = "
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    project TEXT,
    environment TEXT,
    resource_kind TEXT NOT NULL,
    resource_key TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT
);
CREATE INDEX audit_resource ON audit (project, environment, resource_kind, resource_key);
";

const AUDIT_POSTGRES: &str = "
CREATE TABLE audit (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    project TEXT,
    environment TEXT,
    resource_kind TEXT NOT NULL,
    resource_key TEXT NOT NULL,
    before_state TEXT,
    after_state TEXT
);
CREATE INDEX audit_resource ON audit (project, environment, resource_kind, resource_key);
";

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "projects, environments, flags, segments, tokens, audit",
        sqlite: &[CORE_TABLES, AUDIT_SQLITE],
        postgres: &[CORE_TABLES, AUDIT_POSTGRES],
    },
    Migration {
        version: 2,
        description: "scheduled flag changes",
        sqlite: &["
CREATE TABLE scheduled_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    settled_at BIGINT,
    error TEXT
);
CREATE INDEX scheduled_changes_due ON scheduled_changes (status, run_at);
"],
        postgres: &["
CREATE TABLE scheduled_changes (
    id BIGSERIAL PRIMARY KEY,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    settled_at BIGINT,
    error TEXT
);
CREATE INDEX scheduled_changes_due ON scheduled_changes (status, run_at);
"],
    },
    Migration {
        version: 3,
        description: "evaluation and metric events from SDKs",
        sqlite: &["
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    kind TEXT NOT NULL,
    flag TEXT,
    variant TEXT,
    metric TEXT,
    targeting_key TEXT NOT NULL,
    value DOUBLE PRECISION,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX events_by_flag ON events (project, environment, flag, at);
CREATE INDEX events_by_metric ON events (project, environment, metric, at);
"],
        postgres: &["
CREATE TABLE events (
    id BIGSERIAL PRIMARY KEY,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    kind TEXT NOT NULL,
    flag TEXT,
    variant TEXT,
    metric TEXT,
    targeting_key TEXT NOT NULL,
    value DOUBLE PRECISION,
    at BIGINT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX events_by_flag ON events (project, environment, flag, at);
CREATE INDEX events_by_metric ON events (project, environment, metric, at);
"],
    },
    Migration {
        version: 4,
        description: "guarded rollouts, leases and webhooks",
        sqlite: &["
CREATE TABLE rollouts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag TEXT NOT NULL,
    status TEXT NOT NULL,
    plan TEXT NOT NULL,
    progress TEXT NOT NULL,
    timeline TEXT NOT NULL,
    latest TEXT,
    version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX rollouts_one_active_per_flag ON rollouts (project, environment, flag)
    WHERE status IN ('running', 'paused');
CREATE INDEX rollouts_by_status ON rollouts (status);
CREATE TABLE rollout_buckets (
    rollout_id BIGINT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    arm TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    exposures BIGINT NOT NULL,
    new_units BIGINT NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (rollout_id, arm, bucket_start)
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects (key),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    settled_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX events_by_time ON events (at);
"],
        postgres: &["
CREATE TABLE rollouts (
    id BIGSERIAL PRIMARY KEY,
    project TEXT NOT NULL,
    environment TEXT NOT NULL,
    flag TEXT NOT NULL,
    status TEXT NOT NULL,
    plan TEXT NOT NULL,
    progress TEXT NOT NULL,
    timeline TEXT NOT NULL,
    latest TEXT,
    version BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX rollouts_one_active_per_flag ON rollouts (project, environment, flag)
    WHERE status IN ('running', 'paused');
CREATE INDEX rollouts_by_status ON rollouts (status);
CREATE TABLE rollout_buckets (
    rollout_id BIGINT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
    arm TEXT NOT NULL,
    bucket_start BIGINT NOT NULL,
    exposures BIGINT NOT NULL,
    new_units BIGINT NOT NULL,
    metrics TEXT NOT NULL,
    PRIMARY KEY (rollout_id, arm, bucket_start)
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL REFERENCES projects (key),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    settled_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX events_by_time ON events (at);
"],
    },
    Migration {
        version: 5,
        description: "placement surfaces, items, decisions and models",
        sqlite: &["
CREATE TABLE surfaces (
    project TEXT NOT NULL REFERENCES projects (key),
    key TEXT NOT NULL,
    description TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE TABLE surface_items (
    project TEXT NOT NULL,
    surface TEXT NOT NULL,
    id TEXT NOT NULL,
    features TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, surface, id),
    FOREIGN KEY (project, surface) REFERENCES surfaces (project, key)
);
CREATE TABLE decisions (
    event_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    surface TEXT NOT NULL,
    context TEXT NOT NULL,
    candidates TEXT NOT NULL,
    shown BIGINT NOT NULL,
    probabilities TEXT NOT NULL,
    policy TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    reward DOUBLE PRECISION,
    reward_count BIGINT NOT NULL,
    learned_at BIGINT
);
CREATE INDEX decisions_to_learn ON decisions (project, surface, learned_at, created_at);
CREATE TABLE surface_models (
    project TEXT NOT NULL,
    surface TEXT NOT NULL,
    model BLOB NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, surface)
);
"],
        postgres: &["
CREATE TABLE surfaces (
    project TEXT NOT NULL REFERENCES projects (key),
    key TEXT NOT NULL,
    description TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE TABLE surface_items (
    project TEXT NOT NULL,
    surface TEXT NOT NULL,
    id TEXT NOT NULL,
    features TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, surface, id),
    FOREIGN KEY (project, surface) REFERENCES surfaces (project, key)
);
CREATE TABLE decisions (
    event_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    surface TEXT NOT NULL,
    context TEXT NOT NULL,
    candidates TEXT NOT NULL,
    shown BIGINT NOT NULL,
    probabilities TEXT NOT NULL,
    policy TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    activated_at BIGINT,
    reward DOUBLE PRECISION,
    reward_count BIGINT NOT NULL,
    learned_at BIGINT
);
CREATE INDEX decisions_to_learn ON decisions (project, surface, learned_at, created_at);
CREATE TABLE surface_models (
    project TEXT NOT NULL,
    surface TEXT NOT NULL,
    model BYTEA NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, surface)
);
"],
    },
];
