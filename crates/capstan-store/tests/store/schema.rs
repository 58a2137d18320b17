//! Migrations: the schema each backend ends up with, and upgrades from older versions.

use std::collections::{BTreeMap, BTreeSet};

use capstan_store::testing::{TestBackend, TestDatabase, backends};
use capstan_store::*;

use crate::catalog::{self, Column, ForeignKey, Index, Schema, Table};
use crate::helpers::{bootstrapped, create_flag, env, project};

/// A database left at any version, the newest included, opens, upgrades to the newest
/// schema and keeps what it held.
#[tokio::test]
async fn an_older_schema_upgrades_and_keeps_its_data() {
    assert!(SqlStore::latest_schema_version() >= 2);
    for backend in backends() {
        for version in 1..=SqlStore::latest_schema_version() {
            let database = TestDatabase::new(&backend).await;
            let old = SqlStore::open_with(
                &database.url,
                OpenOptions {
                    migrate_up_to: Some(version),
                },
            )
            .await
            .unwrap();
            assert_eq!(old.schema_version().await.unwrap(), version);
            bootstrapped(&old).await;
            old.apply(create_flag("kept", 0)).await.unwrap();
            drop(old);

            let upgraded = SqlStore::open(&database.url).await.unwrap();
            assert_eq!(
                upgraded.schema_version().await.unwrap(),
                SqlStore::latest_schema_version()
            );
            let state = upgraded
                .load_environment(&project(), &env("production"))
                .await
                .unwrap();
            assert_eq!(state.configs.len(), 1);
            assert_eq!(state.configs[0].flag.as_str(), "kept");
            // The table the second migration adds works.
            assert!(upgraded.due_schedules(i64::MAX).await.unwrap().is_empty());
        }
    }
}

fn backend_name(backend: &TestBackend) -> &'static str {
    match backend {
        TestBackend::Sqlite => "SQLite",
        TestBackend::Postgres(_) => "PostgreSQL",
    }
}

/// A fresh database, migrated to the newest schema, and that schema as its catalog says.
async fn fresh_schema(backend: &TestBackend) -> Schema {
    let database = TestDatabase::new(backend).await;
    SqlStore::open(&database.url).await.unwrap();
    catalog::read(backend, &database).await
}

/// Facts of the newest schema, one of each kind the comparison looks at, so that a
/// reader that misses a kind cannot make two schemas look alike.
fn assert_reads_every_kind_of_fact(schema: &Schema, backend: &TestBackend) {
    let name = backend_name(backend);
    let table = |key: &str| {
        schema
            .get(key)
            .unwrap_or_else(|| panic!("{name}: no table {key}"))
    };
    let column = |table_key: &str, column_key: &str| {
        table(table_key)
            .columns
            .iter()
            .find(|column| column.name == column_key)
            .cloned()
            .unwrap_or_else(|| panic!("{name}: no column {table_key}.{column_key}"))
    };
    assert_eq!(table("flags").primary_key, ["project", "key"], "{name}");
    assert_eq!(
        column("audit", "id"),
        Column {
            name: "id".to_owned(),
            family: "integer".to_owned(),
            not_null: true,
            generated: true,
        },
        "{name}"
    );
    assert_eq!(column("decisions", "reward").family, "real", "{name}");
    assert!(!column("decisions", "reward").not_null, "{name}");
    assert_eq!(column("surface_models", "model").family, "bytes", "{name}");
    assert_eq!(
        table("tokens").indexes.get("UNIQUE (hash)"),
        Some(&Index {
            columns: vec!["hash".to_owned()],
            unique: true,
            partial: false,
        }),
        "{name}"
    );
    assert_eq!(
        table("rollouts")
            .indexes
            .get("rollouts_one_active_per_flag"),
        Some(&Index {
            columns: vec![
                "project".to_owned(),
                "environment".to_owned(),
                "flag".to_owned()
            ],
            unique: true,
            partial: true,
        }),
        "{name}"
    );
    assert!(
        table("rollout_buckets").foreign_keys.contains(&ForeignKey {
            columns: vec!["rollout_id".to_owned()],
            table: "rollouts".to_owned(),
            references: vec!["id".to_owned()],
            on_delete: "cascade".to_owned(),
        }),
        "{name}: {:?}",
        table("rollout_buckets").foreign_keys
    );
}

/// Every table, column, primary key, index and foreign key the migrations make is the
/// same on every backend this run has, as each backend's own catalog describes it.
#[tokio::test]
async fn every_backend_migrates_to_the_same_schema() {
    let mut schemas = Vec::new();
    for backend in backends() {
        schemas.push((backend.clone(), fresh_schema(&backend).await));
    }
    let (first_backend, first) = &schemas[0];
    for (backend, schema) in &schemas[1..] {
        let found = catalog::differences(
            first,
            schema,
            [backend_name(first_backend), backend_name(backend)],
        );
        assert!(
            found.is_empty(),
            "the schemas differ:\n{}",
            found.join("\n")
        );
    }
    for (backend, schema) in &schemas {
        assert_reads_every_kind_of_fact(schema, backend);
    }
}

/// Upgrading from any older version ends in the schema a fresh database gets.
#[tokio::test]
async fn an_upgraded_database_has_the_schema_of_a_fresh_one() {
    for backend in backends() {
        let fresh = fresh_schema(&backend).await;
        for version in 1..SqlStore::latest_schema_version() {
            let database = TestDatabase::new(&backend).await;
            let options = OpenOptions {
                migrate_up_to: Some(version),
            };
            drop(SqlStore::open_with(&database.url, options).await.unwrap());
            drop(SqlStore::open(&database.url).await.unwrap());
            let upgraded = catalog::read(&backend, &database).await;
            let from = format!("{} upgraded from version {version}", backend_name(&backend));
            let found = catalog::differences(&fresh, &upgraded, ["a fresh database", &from]);
            assert!(
                found.is_empty(),
                "the schemas differ:\n{}",
                found.join("\n")
            );
        }
    }
}

/// A table `things (id, name, note)` with an index on `name`.
fn things() -> Schema {
    let column = |name: &str, not_null| Column {
        name: name.to_owned(),
        family: "text".to_owned(),
        not_null,
        generated: false,
    };
    let table = Table {
        columns: vec![
            column("id", true),
            column("name", true),
            column("note", false),
        ],
        primary_key: vec!["id".to_owned()],
        indexes: BTreeMap::from([(
            "things_by_name".to_owned(),
            Index {
                columns: vec!["name".to_owned()],
                unique: false,
                partial: false,
            },
        )]),
        foreign_keys: BTreeSet::new(),
    };
    Schema::from([("things".to_owned(), table)])
}

fn changed(change: impl FnOnce(&mut Table)) -> Vec<String> {
    let mut other = things();
    change(other.get_mut("things").unwrap());
    catalog::differences(&things(), &other, ["left", "right"])
}

#[test]
fn a_schema_does_not_differ_from_itself() {
    assert_eq!(
        catalog::differences(&things(), &things(), ["left", "right"]),
        Vec::<String>::new()
    );
}

#[test]
fn a_missing_column_or_index_is_a_difference() {
    assert_eq!(
        changed(|table| {
            table.columns.pop();
        }),
        ["column things.note is only in left"]
    );
    assert_eq!(
        changed(|table| table.indexes.clear()),
        ["index things_by_name on things is only in left"]
    );
}

#[test]
fn a_changed_column_key_index_or_table_is_a_difference() {
    let found = changed(|table| table.columns[2].not_null = true);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("column things.note is"), "{found:?}");
    let found = changed(|table| table.columns[2].family = "bytes".to_owned());
    assert!(found[0].starts_with("column things.note is"), "{found:?}");
    let found = changed(|table| table.columns.swap(1, 2));
    assert_eq!(
        found,
        [
            "the column order of things is [\"id\", \"name\", \"note\"] in left \
             but [\"id\", \"note\", \"name\"] in right"
        ]
    );
    let found = changed(|table| table.primary_key.push("name".to_owned()));
    assert_eq!(
        found,
        ["the primary key of things is [\"id\"] in left but [\"id\", \"name\"] in right"]
    );
    let found = changed(|table| table.indexes.get_mut("things_by_name").unwrap().unique = true);
    assert!(
        found[0].starts_with("index things_by_name on things is"),
        "{found:?}"
    );
    let found = changed(|table| {
        table.foreign_keys.insert(ForeignKey {
            columns: vec!["name".to_owned()],
            table: "names".to_owned(),
            references: vec!["key".to_owned()],
            on_delete: "cascade".to_owned(),
        });
    });
    assert!(found[0].starts_with("foreign key"), "{found:?}");
    let mut more = things();
    more.insert("extra".to_owned(), Table::default());
    assert_eq!(
        catalog::differences(&things(), &more, ["left", "right"]),
        ["table extra is only in right"]
    );
}
