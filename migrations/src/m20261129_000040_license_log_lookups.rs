//! Indexes for the console's license-log lookups: a content's history (when each of its keys was last used) and a
//! user's history (the log search), each as a newest-first range scan within the tenant, so neither page slows down
//! as the tenant's log grows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LicenseLog {
    Table,
    TenantId,
    ContentId,
    UserId,
    AtMs,
}

const BY_CONTENT: &str = "ix_license_log_tenant_content_at";
const BY_USER: &str = "ix_license_log_tenant_user_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, column) in [(BY_CONTENT, LicenseLog::ContentId), (BY_USER, LicenseLog::UserId)] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(LicenseLog::Table)
                        .col(LicenseLog::TenantId)
                        .col(column)
                        .col(LicenseLog::AtMs)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in [BY_CONTENT, BY_USER] {
            manager.drop_index(Index::drop().name(name).table(LicenseLog::Table).to_owned()).await?;
        }
        Ok(())
    }
}
