//! Hourly license counts per tenant, DRM, outcome and catalog code, kept by the license log's writer in the same
//! transaction as the rows it counts. The dashboard and the error-code browser read these few rows instead of
//! aggregating the raw log on every view (with 100 000 rows a day that took hundreds of milliseconds); existing
//! log rows are counted in once here.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LicenseStats {
    Table,
    TenantId,
    /// The hour's start, Unix milliseconds.
    HourMs,
    Drm,
    Outcome,
    /// The refusal's catalog code; 0 for issued licenses (0 rather than NULL so it can be in the key).
    ErrorCode,
    Requests,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LicenseStats::Table)
                    .col(uuid(LicenseStats::TenantId))
                    .col(big_integer(LicenseStats::HourMs))
                    .col(string(LicenseStats::Drm))
                    .col(string(LicenseStats::Outcome))
                    .col(integer(LicenseStats::ErrorCode))
                    .col(big_integer(LicenseStats::Requests))
                    .primary_key(
                        Index::create()
                            .col(LicenseStats::TenantId)
                            .col(LicenseStats::HourMs)
                            .col(LicenseStats::Drm)
                            .col(LicenseStats::Outcome)
                            .col(LicenseStats::ErrorCode),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO license_stats (tenant_id, hour_ms, drm, outcome, error_code, requests) \
                 SELECT tenant_id, (at_ms / 3600000) * 3600000, drm, outcome, COALESCE(error_code, 0), COUNT(*) \
                 FROM license_log \
                 GROUP BY tenant_id, (at_ms / 3600000) * 3600000, drm, outcome, COALESCE(error_code, 0)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(LicenseStats::Table).to_owned()).await
    }
}
