//! What every Clavis service shares: configuration, the database connection, the error catalog, envelope
//! encryption, the policy model, domain identifiers, HTTP plumbing and telemetry.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod http;
pub mod ids;
pub mod platform;
pub mod policy;
pub mod rekey;
pub mod telemetry;

pub use error::{ClavisError, ErrorCode, Result};
pub use platform::Platform;
