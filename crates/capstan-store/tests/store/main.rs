//! One store test suite, run against every backend this run has: SQLite always,
//! PostgreSQL when `CAPSTAN_TEST_DATABASE_URL` is set.

mod catalog;
mod helpers;

mod events;
mod flags;
mod leases;
mod placements;
mod projects;
mod rollouts;
mod schedules;
mod schema;
mod tokens;
mod webhooks;
