//! A database's schema as its own catalog describes it (SQLite's pragmas, PostgreSQL's
//! `information_schema` and `pg_catalog`), in one spelling for both backends, and the
//! differences between two schemas in words.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use capstan_store::testing::{TestBackend, TestDatabase};
use sqlx::any::{AnyConnectOptions, AnyRow};
use sqlx::{AnyConnection, ConnectOptions, Row};

/// Tables by name.
pub(crate) type Schema = BTreeMap<String, Table>;

#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Table {
    /// In the order the table declares them.
    pub(crate) columns: Vec<Column>,
    pub(crate) primary_key: Vec<String>,
    /// By name; an index a `UNIQUE` constraint made has no name of its own that the two
    /// backends share, so it goes by its columns (`UNIQUE (hash)`).
    pub(crate) indexes: BTreeMap<String, Index>,
    pub(crate) foreign_keys: BTreeSet<ForeignKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub(crate) name: String,
    /// `integer`, `real`, `text` or `bytes`; a type outside these keeps its own spelling.
    pub(crate) family: String,
    pub(crate) not_null: bool,
    /// The database picks its value (SQLite's rowid alias, a PostgreSQL sequence).
    pub(crate) generated: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Index {
    pub(crate) columns: Vec<String>,
    pub(crate) unique: bool,
    /// Whether it has a `WHERE` clause. The clause itself is not compared: each backend
    /// prints it back in its own words.
    pub(crate) partial: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ForeignKey {
    pub(crate) columns: Vec<String>,
    pub(crate) table: String,
    pub(crate) references: Vec<String>,
    /// `cascade`, `no action`, ...
    pub(crate) on_delete: String,
}

/// Reads the schema of a test database.
pub(crate) async fn read(backend: &TestBackend, database: &TestDatabase) -> Schema {
    sqlx::any::install_default_drivers();
    let url = match backend {
        TestBackend::Sqlite => format!("sqlite://{}", database.url),
        TestBackend::Postgres(_) => database.url.clone(),
    };
    let mut connection = AnyConnectOptions::from_str(&url)
        .expect("invalid test database URL")
        .connect()
        .await
        .expect("failed to connect to the test database");
    let schema = match backend {
        TestBackend::Sqlite => read_sqlite(&mut connection).await,
        TestBackend::Postgres(_) => read_postgres(&mut connection).await,
    };
    schema.expect("failed to read the schema")
}

/// The family a declared type belongs to, whichever backend spells it.
pub(crate) fn type_family(declared: &str) -> String {
    let declared = declared.to_ascii_lowercase();
    match declared.as_str() {
        "integer" | "bigint" => "integer",
        "double precision" | "real" => "real",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        other => other,
    }
    .to_owned()
}

/// A primary key column counts as not null on both backends. PostgreSQL makes it so;
/// SQLite, for old compatibility, lets NULL into a primary key that is not an `INTEGER
/// PRIMARY KEY` unless the column says `NOT NULL`, but the store never writes a NULL key.
fn settle_not_null(table: &mut Table) {
    for column in &mut table.columns {
        column.not_null |= table.primary_key.contains(&column.name);
    }
}

fn words(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every row a catalog query gives about one table or index, named as `$1`.
async fn rows_about(
    connection: &mut AnyConnection,
    sql: &str,
    object: &str,
) -> sqlx::Result<Vec<AnyRow>> {
    sqlx::query(sql).bind(object).fetch_all(connection).await
}

/// The `name` column of every row.
fn names(rows: &[AnyRow]) -> sqlx::Result<Vec<String>> {
    rows.iter().map(|row| row.try_get("name")).collect()
}

fn unique_constraint_key(columns: &[String]) -> String {
    format!("UNIQUE ({})", columns.join(", "))
}

async fn read_sqlite(connection: &mut AnyConnection) -> sqlx::Result<Schema> {
    let tables = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(&mut *connection)
    .await?;
    let mut schema = Schema::new();
    for name in names(&tables)? {
        let mut table = Table::default();
        let mut key_positions = Vec::new();
        let sql = "SELECT name, type, \"notnull\" AS not_null, pk \
                   FROM pragma_table_info($1) ORDER BY cid";
        let columns = rows_about(connection, sql, &name).await?;
        for row in &columns {
            let column: String = row.try_get("name")?;
            let declared: String = row.try_get("type")?;
            let position: i64 = row.try_get("pk")?;
            if position > 0 {
                key_positions.push((position, column.clone()));
            }
            table.columns.push(Column {
                name: column,
                family: type_family(&declared),
                not_null: row.try_get::<i64, _>("not_null")? != 0,
                generated: position > 0 && declared.eq_ignore_ascii_case("integer"),
            });
        }
        key_positions.sort();
        table.primary_key = key_positions.into_iter().map(|(_, name)| name).collect();
        // Only a lone `INTEGER PRIMARY KEY` is the rowid, which SQLite picks.
        let lone_key = table.primary_key.len() == 1;
        for column in &mut table.columns {
            column.generated &= lone_key;
        }
        let sql =
            "SELECT name, \"unique\" AS is_unique, origin, partial FROM pragma_index_list($1)";
        let indexes = rows_about(connection, sql, &name).await?;
        for row in &indexes {
            let index_name: String = row.try_get("name")?;
            let origin: String = row.try_get("origin")?;
            if origin == "pk" {
                continue;
            }
            let sql = "SELECT name FROM pragma_index_info($1) ORDER BY seqno";
            let columns = names(&rows_about(connection, sql, &index_name).await?)?;
            let key = if origin == "u" {
                unique_constraint_key(&columns)
            } else {
                index_name
            };
            table.indexes.insert(
                key,
                Index {
                    columns,
                    unique: row.try_get::<i64, _>("is_unique")? != 0,
                    partial: row.try_get::<i64, _>("partial")? != 0,
                },
            );
        }
        let sql = "SELECT id, \"table\" AS referenced_table, \"from\" AS column_name, \
                   \"to\" AS referenced_column, on_delete \
                   FROM pragma_foreign_key_list($1) ORDER BY id, seq";
        let references = rows_about(connection, sql, &name).await?;
        let mut foreign_keys: BTreeMap<i64, ForeignKey> = BTreeMap::new();
        for row in &references {
            let foreign_key =
                foreign_keys
                    .entry(row.try_get("id")?)
                    .or_insert_with(|| ForeignKey {
                        columns: Vec::new(),
                        table: String::new(),
                        references: Vec::new(),
                        on_delete: String::new(),
                    });
            foreign_key.columns.push(row.try_get("column_name")?);
            foreign_key
                .references
                .push(row.try_get("referenced_column")?);
            foreign_key.table = row.try_get("referenced_table")?;
            foreign_key.on_delete = row.try_get::<String, _>("on_delete")?.to_ascii_lowercase();
        }
        table.foreign_keys = foreign_keys.into_values().collect();
        settle_not_null(&mut table);
        schema.insert(name, table);
    }
    Ok(schema)
}

/// Attribute names of a `pg_index` or `pg_constraint` column list, in order, joined
/// by commas.
fn pg_attribute_names(attributes: &str, relation: &str) -> String {
    format!(
        "array_to_string(ARRAY(SELECT a.attname FROM unnest({attributes}) WITH ORDINALITY \
         AS k(attnum, ord) JOIN pg_attribute a ON a.attrelid = {relation} AND a.attnum = k.attnum \
         ORDER BY k.ord), ',')"
    )
}

async fn read_postgres(connection: &mut AnyConnection) -> sqlx::Result<Schema> {
    let tables = sqlx::query(
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut *connection)
    .await?;
    let mut schema = Schema::new();
    for name in names(&tables)? {
        let mut table = Table::default();
        let sql = "SELECT column_name::text AS name, data_type::text AS type, \
                   is_nullable::text AS nullable, \
                   COALESCE(column_default::text, '') AS default_value \
                   FROM information_schema.columns \
                   WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position";
        let columns = rows_about(connection, sql, &name).await?;
        for row in &columns {
            let declared: String = row.try_get("type")?;
            let default: String = row.try_get("default_value")?;
            table.columns.push(Column {
                name: row.try_get("name")?,
                family: type_family(&declared),
                not_null: row.try_get::<String, _>("nullable")? == "NO",
                generated: default.starts_with("nextval("),
            });
        }
        let sql = format!(
            "SELECT i.relname::text AS name, x.indisprimary AS is_primary, \
             x.indisunique AS is_unique, x.indpred IS NOT NULL AS partial, \
             EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid \
             AND c.contype = 'u') AS from_constraint, {} AS columns \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
             JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = 'public' AND t.relname = $1",
            pg_attribute_names("x.indkey", "x.indrelid")
        );
        let indexes = rows_about(connection, &sql, &name).await?;
        for row in &indexes {
            let columns = words(&row.try_get::<String, _>("columns")?);
            if row.try_get("is_primary")? {
                table.primary_key = columns;
                continue;
            }
            let key = if row.try_get("from_constraint")? {
                unique_constraint_key(&columns)
            } else {
                row.try_get("name")?
            };
            table.indexes.insert(
                key,
                Index {
                    columns,
                    unique: row.try_get("is_unique")?,
                    partial: row.try_get("partial")?,
                },
            );
        }
        let sql = format!(
            "SELECT r.relname::text AS referenced_table, {} AS columns, {} AS referenced_columns, \
             c.confdeltype::text AS on_delete FROM pg_constraint c \
             JOIN pg_class t ON t.oid = c.conrelid JOIN pg_class r ON r.oid = c.confrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE c.contype = 'f' AND n.nspname = 'public' AND t.relname = $1",
            pg_attribute_names("c.conkey", "c.conrelid"),
            pg_attribute_names("c.confkey", "c.confrelid")
        );
        let references = rows_about(connection, &sql, &name).await?;
        for row in &references {
            let action: String = row.try_get("on_delete")?;
            table.foreign_keys.insert(ForeignKey {
                columns: words(&row.try_get::<String, _>("columns")?),
                table: row.try_get("referenced_table")?,
                references: words(&row.try_get::<String, _>("referenced_columns")?),
                on_delete: match action.as_str() {
                    "a" => "no action",
                    "r" => "restrict",
                    "c" => "cascade",
                    "n" => "set null",
                    "d" => "set default",
                    other => other,
                }
                .to_owned(),
            });
        }
        settle_not_null(&mut table);
        schema.insert(name, table);
    }
    Ok(schema)
}

/// Everything that differs between two schemas, one sentence each; empty when they are
/// the same. `names` says what to call each side.
pub(crate) fn differences(left: &Schema, right: &Schema, names: [&str; 2]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, left_table, right_table) in paired(left, right) {
        let (Some(left), Some(right)) = (left_table, right_table) else {
            found.extend(compare(
                &format!("table {name}"),
                left_table,
                right_table,
                names,
            ));
            continue;
        };
        let by_name = |table: &Table| -> BTreeMap<String, Column> {
            table
                .columns
                .iter()
                .map(|column| (column.name.clone(), column.clone()))
                .collect()
        };
        for (column, a, b) in paired(&by_name(left), &by_name(right)) {
            found.extend(compare(&format!("column {name}.{column}"), a, b, names));
        }
        let order = |table: &Table| -> Vec<String> {
            table
                .columns
                .iter()
                .map(|column| column.name.clone())
                .collect()
        };
        if by_name(left).keys().eq(by_name(right).keys()) {
            found.extend(compare(
                &format!("the column order of {name}"),
                Some(&order(left)),
                Some(&order(right)),
                names,
            ));
        }
        found.extend(compare(
            &format!("the primary key of {name}"),
            Some(&left.primary_key),
            Some(&right.primary_key),
            names,
        ));
        for (index, a, b) in paired(&left.indexes, &right.indexes) {
            found.extend(compare(&format!("index {index} on {name}"), a, b, names));
        }
        let [left_name, right_name] = names;
        for key in left.foreign_keys.difference(&right.foreign_keys) {
            found.push(format!(
                "foreign key {key:?} of {name} is only in {left_name}"
            ));
        }
        for key in right.foreign_keys.difference(&left.foreign_keys) {
            found.push(format!(
                "foreign key {key:?} of {name} is only in {right_name}"
            ));
        }
    }
    found
}

/// Every key of either map, with its value on each side.
fn paired<'a, V>(
    left: &'a BTreeMap<String, V>,
    right: &'a BTreeMap<String, V>,
) -> Vec<(&'a String, Option<&'a V>, Option<&'a V>)> {
    let keys: BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    keys.into_iter()
        .map(|key| (key, left.get(key), right.get(key)))
        .collect()
}

/// What differs about `what` between the two sides, if anything.
fn compare<V: PartialEq + std::fmt::Debug>(
    what: &str,
    left: Option<&V>,
    right: Option<&V>,
    [left_name, right_name]: [&str; 2],
) -> Option<String> {
    match (left, right) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "{what} is {a:?} in {left_name} but {b:?} in {right_name}"
        )),
        (Some(_), None) => Some(format!("{what} is only in {left_name}")),
        (None, Some(_)) => Some(format!("{what} is only in {right_name}")),
        _ => None,
    }
}
