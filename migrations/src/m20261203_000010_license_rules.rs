//! The license rules of issue 6 (seed documents 000, 002 and 004): the devices each user obtained licenses on
//! (device limits), the stream slots that licenses with a renewal interval hold (concurrent streams), the client
//! state counter per device (rollback detection), and the tenant's server configuration data. The license log
//! gains the device a request came from and a flag for requests worth a look (a rollback).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LicenseDevices {
    Table,
    TenantId,
    UserId,
    DeviceId,
    Drm,
    FirstSeenMs,
    LastSeenMs,
}

#[derive(DeriveIden)]
enum StreamSlots {
    Table,
    TenantId,
    UserId,
    StreamId,
    ContentId,
    DeviceId,
    Drm,
    StartedMs,
    RenewedMs,
    ExpiresMs,
}

#[derive(DeriveIden)]
enum ClientStates {
    Table,
    TenantId,
    DeviceId,
    Counter,
    UpdatedMs,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    ServerConfig,
}

#[derive(DeriveIden)]
enum LicenseLog {
    Table,
    TenantId,
    DeviceId,
    AtMs,
    Flag,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LicenseDevices::Table)
                    .col(uuid(LicenseDevices::TenantId))
                    .col(string(LicenseDevices::UserId))
                    .col(string(LicenseDevices::DeviceId))
                    .col(string(LicenseDevices::Drm))
                    .col(big_integer(LicenseDevices::FirstSeenMs))
                    .col(big_integer(LicenseDevices::LastSeenMs))
                    .primary_key(
                        Index::create()
                            .col(LicenseDevices::TenantId)
                            .col(LicenseDevices::UserId)
                            .col(LicenseDevices::DeviceId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StreamSlots::Table)
                    .col(uuid(StreamSlots::TenantId))
                    .col(string(StreamSlots::UserId))
                    .col(string(StreamSlots::StreamId))
                    .col(string(StreamSlots::ContentId))
                    .col(string_null(StreamSlots::DeviceId))
                    .col(string(StreamSlots::Drm))
                    .col(big_integer(StreamSlots::StartedMs))
                    .col(big_integer(StreamSlots::RenewedMs))
                    .col(big_integer(StreamSlots::ExpiresMs))
                    .primary_key(
                        Index::create().col(StreamSlots::TenantId).col(StreamSlots::UserId).col(StreamSlots::StreamId),
                    )
                    .to_owned(),
            )
            .await?;
        // The sweeper deletes by expiry.
        manager
            .create_index(
                Index::create()
                    .name("idx_stream_slots_expires")
                    .table(StreamSlots::Table)
                    .col(StreamSlots::ExpiresMs)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClientStates::Table)
                    .col(uuid(ClientStates::TenantId))
                    .col(string(ClientStates::DeviceId))
                    .col(big_integer(ClientStates::Counter))
                    .col(big_integer(ClientStates::UpdatedMs))
                    .primary_key(Index::create().col(ClientStates::TenantId).col(ClientStates::DeviceId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(Tenants::Table).add_column(text_null(Tenants::ServerConfig)).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter().table(LicenseLog::Table).add_column(string_null(LicenseLog::DeviceId)).to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(LicenseLog::Table).add_column(string_null(LicenseLog::Flag)).to_owned())
            .await?;
        // The log search by device (console and API), newest first, stays an index range scan with 100k rows.
        manager
            .create_index(
                Index::create()
                    .name("idx_license_log_device")
                    .table(LicenseLog::Table)
                    .col(LicenseLog::TenantId)
                    .col(LicenseLog::DeviceId)
                    .col(LicenseLog::AtMs)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("idx_license_log_device").table(LicenseLog::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(LicenseLog::Table).drop_column(LicenseLog::Flag).to_owned()).await?;
        manager
            .alter_table(Table::alter().table(LicenseLog::Table).drop_column(LicenseLog::DeviceId).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(Tenants::Table).drop_column(Tenants::ServerConfig).to_owned()).await?;
        manager.drop_table(Table::drop().table(ClientStates::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(StreamSlots::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(LicenseDevices::Table).to_owned()).await
    }
}
