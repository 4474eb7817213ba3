//! The one migration set for SQLite and PostgreSQL. `clavis migrate` runs it; `clavis serve` runs it itself only
//! for the embedded default, because sea-orm-migration takes no lock and two instances must not migrate at once.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_initial;
mod m20261127_000001_secrets_and_replay;
mod m20261128_000001_console_sessions;
mod m20261128_000010_wvks_widevine_signers_and_key_periods;
mod m20261129_000030_devices;
mod m20261129_000040_license_log_lookups;
mod m20261129_000050_staff_audit;
mod m20261129_000060_license_stats;
mod m20261203_000010_license_rules;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_initial::Migration),
            Box::new(m20261127_000001_secrets_and_replay::Migration),
            Box::new(m20261128_000001_console_sessions::Migration),
            Box::new(m20261128_000010_wvks_widevine_signers_and_key_periods::Migration),
            Box::new(m20261129_000030_devices::Migration),
            Box::new(m20261129_000040_license_log_lookups::Migration),
            Box::new(m20261129_000050_staff_audit::Migration),
            Box::new(m20261129_000060_license_stats::Migration),
            Box::new(m20261203_000010_license_rules::Migration),
        ]
    }
}
