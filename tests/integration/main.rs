//! The one integration-test binary: every test starts a real Clavis server (see `kit`) against SQLite, or against
//! PostgreSQL when `CLAVIS_TEST_DATABASE_URL` is set.

mod browser;
mod clearkey;
mod cli;
mod console;
mod foreign_tokens;
mod helm;
mod hls;
mod inspect;
mod key_seed;
mod keys;
mod kit;
mod pallycon;
mod platform;
mod policy;
mod rekey;
mod self_signing;
mod tenancy;
mod tokens;
