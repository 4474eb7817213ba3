//! From configuration to a ready platform: master key, database connection, migrations.

use std::sync::Arc;

use anyhow::{Context, bail};
use clavis_core::Platform;
use clavis_core::config::Config;
use clavis_core::crypto::MasterKey;
use clavis_migrations::{Migrator, MigratorTrait};
use sea_orm::DatabaseConnection;
use secrecy::ExposeSecret;

/// What to do about pending migrations when opening the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migrations {
    /// Apply them (`clavis migrate`, and every command on the embedded default).
    Apply,
    /// Refuse to start while any are pending (a shared database is migrated by `clavis migrate` alone, because
    /// sea-orm-migration takes no lock and two instances must not migrate at once).
    RequireApplied,
}

impl Migrations {
    /// The embedded default migrates itself; a configured database is migrated by `clavis migrate` only.
    pub fn for_serving(config: &Config) -> Migrations {
        if config.is_embedded() { Migrations::Apply } else { Migrations::RequireApplied }
    }
}

/// The master key from `CLAVIS_MASTER_KEY`, or in embedded mode from (or into) `data_dir/master.key`, with the
/// previous keys of `CLAVIS_MASTER_KEY_PREVIOUS` accepted for reading during a rotation.
pub fn master_key(config: &Config) -> anyhow::Result<MasterKey> {
    let current = current_master_key(config)?;
    let Some(previous) = &config.master_key_previous else { return Ok(current) };
    let previous = MasterKey::parse_list(previous.expose_secret()).context("CLAVIS_MASTER_KEY_PREVIOUS")?;
    Ok(current.with_previous(previous))
}

fn current_master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(encoded) = &config.master_key {
        return MasterKey::from_base64(encoded.expose_secret()).context("CLAVIS_MASTER_KEY");
    }
    if !config.is_embedded() {
        bail!(
            "CLAVIS_MASTER_KEY is required when CLAVIS_DATABASE_URL is set (base64 of 32 random bytes, e.g. \
             `head -c32 /dev/urandom | base64`); refusing to start without it"
        );
    }
    let path = config.data_dir.join("master.key");
    let (key, created) = MasterKey::load_or_create_file(&path)?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "generated a new master key for the embedded database; back this file up (without it the stored keys \
             cannot be decrypted) and set CLAVIS_MASTER_KEY in production"
        );
    }
    Ok(key)
}

pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    if config.is_embedded() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    }
    clavis_core::db::connect(&config.effective_database_url()).await.context("connecting to the database")
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("applying migrations")
}

/// Open the platform: key, connection, migrations per `policy`.
pub async fn open(config: Config, policy: Migrations, public_url: String) -> anyhow::Result<Platform> {
    let master_key = master_key(&config)?;
    let db = connect(&config).await?;
    match policy {
        Migrations::Apply => migrate(&db).await?,
        Migrations::RequireApplied => {
            let pending = Migrator::get_pending_migrations(&db).await.context("reading the migration state")?;
            if !pending.is_empty() {
                bail!("the database has {} pending migration(s); run `clavis migrate` first", pending.len());
            }
        }
    }
    Ok(Platform { db, master_key: Arc::new(master_key), config: Arc::new(config), public_url: public_url.into() })
}
