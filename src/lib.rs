//! The `clavis` binary's library half: starting the platform (configuration, master key, database, migrations) and
//! mounting the chosen services on one HTTP server. The test suite starts the same `Application` on port 0.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod app;
pub mod openapi;
mod platform_routes;
pub mod startup;

pub use app::{Application, ServiceSet};
