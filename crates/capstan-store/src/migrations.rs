//! Versioned schema migrations, each written once for both backends.
//!
//! A migration is never edited once released: a database created by an older Capstan
//! upgrades by running the migrations it has not seen, in order, in one transaction each.
//!
//! SQLite and PostgreSQL read the same SQL but for two column types, written as
//! placeholders that [`Migration::sql`] renders for the backend: `{identity}`, a
//! generated integer key, and `{blob}`, bytes.

use crate::Backend;

pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) description: &'static str,
    /// The migration's SQL, in parts run one after another, placeholders unrendered.
    pub(crate) parts: &'static [&'static str],
}

impl Migration {
    /// The parts as `backend` runs them.
    pub(crate) fn sql(&self, backend: Backend) -> Vec<String> {
        self.parts
            .iter()
            .map(|part| render(part, backend))
            .collect()
    }
}

/// Puts the backend's column types in place of the placeholders.
fn render(part: &str, backend: Backend) -> String {
    let (identity, blob) = match backend {
        Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
        Backend::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
    };
    part.replace("{identity}", identity).replace("{blob}", blob)
}

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

const AUDIT: &str = "
CREATE TABLE audit (
    id {identity},
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
        parts: &[CORE_TABLES, AUDIT],
    },
    Migration {
        version: 2,
        description: "scheduled flag changes",
        parts: &["
CREATE TABLE scheduled_changes (
    id {identity},
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
        parts: &["
CREATE TABLE events (
    id {identity},
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
        parts: &["
CREATE TABLE rollouts (
    id {identity},
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
    id {identity},
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
        parts: &["
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
    model {blob} NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (project, surface)
);
"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

    /// FNV-1a over the parts, each followed by a zero byte: a digest that, unlike std's
    /// hasher, stays the same across Rust releases.
    fn fingerprint(parts: &[String]) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in parts.iter().flat_map(|part| part.bytes().chain([0])) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }

    /// Released migrations run, to the byte, the SQL they ran when they were released
    /// (when each backend still had its own copy of the text), so a database never sees
    /// a migration change under it. A new migration adds its own line.
    #[test]
    fn released_migrations_render_to_the_text_they_were_released_with() {
        let released: [(i64, u64, u64); 5] = [
            (1, 0xa692_5bfa_4540_0c14, 0xb7c7_104a_da3a_2888),
            (2, 0x55d3_e305_a525_3a1b, 0xa7ee_9353_aa78_0dc7),
            (3, 0xe25b_2b37_0dee_b257, 0xc457_e59c_2aa3_347b),
            (4, 0x76ce_dc99_9b35_3617, 0xcc08_2e1a_fd9a_9b47),
            (5, 0xd6fe_daa3_3bc6_f0b5, 0xa13d_3b9e_2e48_903d),
        ];
        for (version, sqlite, postgres) in released {
            let migration = MIGRATIONS
                .iter()
                .find(|migration| migration.version == version)
                .expect("a released migration is never removed");
            assert_eq!(
                fingerprint(&migration.sql(Backend::Sqlite)),
                sqlite,
                "migration {version} on SQLite"
            );
            assert_eq!(
                fingerprint(&migration.sql(Backend::Postgres)),
                postgres,
                "migration {version} on PostgreSQL"
            );
        }
    }

    #[test]
    fn every_placeholder_renders_to_the_backend_type() {
        for migration in MIGRATIONS {
            let source = migration.parts.concat();
            for backend in BACKENDS {
                let rendered = migration.sql(backend).concat();
                assert!(
                    !rendered.contains('{') && !rendered.contains('}'),
                    "migration {} left a placeholder on {backend:?}",
                    migration.version
                );
                let (identity, blob, foreign) = match backend {
                    Backend::Sqlite => (
                        "INTEGER PRIMARY KEY AUTOINCREMENT",
                        "BLOB",
                        ["BIGSERIAL", "BYTEA"],
                    ),
                    Backend::Postgres => {
                        ("BIGSERIAL PRIMARY KEY", "BYTEA", ["AUTOINCREMENT", "BLOB"])
                    }
                };
                assert_eq!(
                    rendered.matches(identity).count(),
                    source.matches("{identity}").count(),
                    "identity columns of migration {} on {backend:?}",
                    migration.version
                );
                assert_eq!(
                    rendered.matches(blob).count(),
                    source.matches("{blob}").count(),
                    "byte columns of migration {} on {backend:?}",
                    migration.version
                );
                for word in foreign {
                    assert!(
                        !rendered.contains(word),
                        "migration {} uses {word} on {backend:?}",
                        migration.version
                    );
                }
            }
        }
    }

    #[test]
    fn versions_count_up_from_one() {
        let versions: Vec<i64> = MIGRATIONS
            .iter()
            .map(|migration| migration.version)
            .collect();
        let expected: Vec<i64> = (1..=versions.len() as i64).collect();
        assert_eq!(versions, expected);
    }
}
