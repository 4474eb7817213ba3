//! The one integration-test binary: every test starts a real Clavis server (see `kit`) against SQLite, or against
//! PostgreSQL when `CLAVIS_TEST_DATABASE_URL` is set.

mod browser;
mod callback;
mod clearkey;
mod cli;
mod console;
mod console_pages;
mod cpix;
mod devices;
mod doc_snippets;
mod fairplay;
mod foreign_tokens;
mod helm;
mod hls;
mod inspect;
mod key_seed;
mod keys;
mod kit;
mod license_proxies;
mod license_rules;
mod migrating;
mod packaging_snippets;
mod pallycon;
mod platform;
mod players;
mod policy;
mod rekey;
mod schemathesis;
mod self_signing;
mod staff;
mod standin;
mod tenancy;
mod tokens;
mod widevine_key_server;
