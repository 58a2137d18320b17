//! The server's integration tests: each starts the real server on port 0 with a fresh
//! database (SQLite, and PostgreSQL when `CAPSTAN_TEST_DATABASE_URL` is set) and talks to
//! it over HTTP.

mod helpers;

mod audit;
mod auth;
mod events;
mod flagd;
mod flags;
mod health;
mod ofrep;
mod openapi;
mod placements;
mod rollouts;
mod schedules;
mod sdk;
mod tokens;
