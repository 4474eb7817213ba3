//! Devices and out-of-band licenses (issue 7): registered device keys, the bundles made for them, and the
//! revocations that factory resets leave behind (the signed revocation list is built from them).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    TenantId,
    /// The id the app chose (random), unique per tenant.
    DeviceId,
    UserId,
    Name,
    /// The device's public P-256 JWK (JSON); empty after a reset until the device registers its new key.
    PublicKey,
    /// Starts at 1; every reset increments it, so bundles name the key they were made for.
    Generation,
    /// `active` or `reset` (waiting for a new key).
    State,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeviceRevocations {
    Table,
    Id,
    TenantId,
    DeviceId,
    Generation,
    RevokedAt,
}

#[derive(DeriveIden)]
enum DeviceBundles {
    Table,
    Id,
    TenantId,
    DeviceId,
    ContentId,
    Generation,
    /// The compact JWE (encrypted to the device key, so storing it reveals no key).
    Jwe,
    ExpiresAt,
    CreatedAt,
}

fn tenant_fk(name: &str, table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Tenants::Table, Tenants::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .col(uuid(Devices::Id).primary_key())
                    .col(uuid(Devices::TenantId))
                    .col(string(Devices::DeviceId))
                    .col(string(Devices::UserId))
                    .col(string(Devices::Name))
                    .col(text(Devices::PublicKey))
                    .col(integer(Devices::Generation))
                    .col(string(Devices::State))
                    .col(timestamp_with_time_zone(Devices::CreatedAt))
                    .col(timestamp_with_time_zone(Devices::UpdatedAt))
                    .foreign_key(&mut tenant_fk("fk_devices_tenant", Devices::Table, Devices::TenantId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_devices_tenant_device")
                    .table(Devices::Table)
                    .col(Devices::TenantId)
                    .col(Devices::DeviceId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_devices_tenant_user")
                    .table(Devices::Table)
                    .col(Devices::TenantId)
                    .col(Devices::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeviceRevocations::Table)
                    .col(uuid(DeviceRevocations::Id).primary_key())
                    .col(uuid(DeviceRevocations::TenantId))
                    .col(string(DeviceRevocations::DeviceId))
                    .col(integer(DeviceRevocations::Generation))
                    .col(timestamp_with_time_zone(DeviceRevocations::RevokedAt))
                    .foreign_key(&mut tenant_fk(
                        "fk_device_revocations_tenant",
                        DeviceRevocations::Table,
                        DeviceRevocations::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_device_revocations_tenant")
                    .table(DeviceRevocations::Table)
                    .col(DeviceRevocations::TenantId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(DeviceBundles::Table)
                    .col(uuid(DeviceBundles::Id).primary_key())
                    .col(uuid(DeviceBundles::TenantId))
                    .col(string(DeviceBundles::DeviceId))
                    .col(string(DeviceBundles::ContentId))
                    .col(integer(DeviceBundles::Generation))
                    .col(text(DeviceBundles::Jwe))
                    .col(timestamp_with_time_zone(DeviceBundles::ExpiresAt))
                    .col(timestamp_with_time_zone(DeviceBundles::CreatedAt))
                    .foreign_key(&mut tenant_fk(
                        "fk_device_bundles_tenant",
                        DeviceBundles::Table,
                        DeviceBundles::TenantId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_device_bundles_tenant_device_content")
                    .table(DeviceBundles::Table)
                    .col(DeviceBundles::TenantId)
                    .col(DeviceBundles::DeviceId)
                    .col(DeviceBundles::ContentId)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DeviceBundles::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(DeviceRevocations::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Devices::Table).to_owned()).await
    }
}
