//! The Widevine key server: which tenant owns each signer name (a key request names only its signer, so the name must
//! lead to one tenant; the signer's key itself is sealed in the tenant's secrets vault), and key periods for live key
//! rotation (a content key may belong to one crypto period; null for keys that do not rotate).

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
enum WidevineSigners {
    Table,
    /// The signer name the packager sends (`--signer`); the primary key makes a second tenant's claim fail.
    Name,
    TenantId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ContentKeys {
    Table,
    /// The crypto period (key rotation) the key belongs to; null for a key that does not rotate.
    PeriodIndex,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WidevineSigners::Table)
                    .col(string(WidevineSigners::Name).primary_key())
                    .col(uuid(WidevineSigners::TenantId))
                    .col(timestamp_with_time_zone(WidevineSigners::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_widevine_signers_tenant")
                            .from(WidevineSigners::Table, WidevineSigners::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_widevine_signers_tenant")
                    .table(WidevineSigners::Table)
                    .col(WidevineSigners::TenantId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ContentKeys::Table)
                    .add_column(big_integer_null(ContentKeys::PeriodIndex))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(ContentKeys::Table).drop_column(ContentKeys::PeriodIndex).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(WidevineSigners::Table).to_owned()).await
    }
}
