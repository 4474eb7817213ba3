//! The handles every service is built from.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::config::Config;
use crate::crypto::MasterKey;

/// The shared platform: database, master key, configuration and the public base URL. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Platform {
    pub db: DatabaseConnection,
    pub master_key: Arc<MasterKey>,
    pub config: Arc<Config>,
    /// Where players and browsers reach this deployment, without a trailing slash.
    pub public_url: Arc<str>,
}
