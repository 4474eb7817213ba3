//! Tenant secrets (PlayReady key seed, foreign token secrets, and later FairPlay credentials and Widevine signers),
//! one sealed value per (tenant, kind, name); the issuer names other services' tokens carry (a PallyCon site id, a
//! DRMtoday merchant, an Axinom communication key id), each owned by one tenant; and the single-use token ledger
//! behind replay protection. Token signing keys gain a public key column for
//! EdDSA, and contents a policy of their own.

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
enum TenantSecrets {
    Table,
    Id,
    TenantId,
    Kind,
    Name,
    /// Non-secret facts about the value (fingerprint, expiry, parameters), JSON, shown in the console.
    Meta,
    ValueSealed,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum TokenSigningKeys {
    Table,
    /// The Ed25519 public key (32 bytes) of an EdDSA key; null for HS256 secrets.
    PublicKey,
}

#[derive(DeriveIden)]
enum Contents {
    Table,
    /// The content's own policy (JSON), between the tenant default and the token's.
    Policy,
}

#[derive(DeriveIden)]
enum TokenIssuers {
    Table,
    /// `pallycon`, `drmtoday`, `axinom`.
    Format,
    /// The name the token carries for its issuer.
    Issuer,
    TenantId,
}

#[derive(DeriveIden)]
enum UsedTokens {
    Table,
    TenantId,
    /// The token's format and its id (`native:<jti>`, `drmtoday:<jti>`, ...).
    TokenId,
    ExpiresAtMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TokenSigningKeys::Table)
                    .add_column(blob_null(TokenSigningKeys::PublicKey))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(Table::alter().table(Contents::Table).add_column(text_null(Contents::Policy)).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TenantSecrets::Table)
                    .col(uuid(TenantSecrets::Id).primary_key())
                    .col(uuid(TenantSecrets::TenantId))
                    .col(string(TenantSecrets::Kind))
                    .col(string(TenantSecrets::Name))
                    .col(text(TenantSecrets::Meta))
                    .col(blob(TenantSecrets::ValueSealed))
                    .col(timestamp_with_time_zone(TenantSecrets::CreatedAt))
                    .col(timestamp_with_time_zone(TenantSecrets::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_tenant_secrets_tenant")
                            .from(TenantSecrets::Table, TenantSecrets::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_tenant_secrets_tenant_kind_name")
                    .table(TenantSecrets::Table)
                    .col(TenantSecrets::TenantId)
                    .col(TenantSecrets::Kind)
                    .col(TenantSecrets::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TokenIssuers::Table)
                    .col(string(TokenIssuers::Format))
                    .col(string(TokenIssuers::Issuer))
                    .col(uuid(TokenIssuers::TenantId))
                    .primary_key(Index::create().col(TokenIssuers::Format).col(TokenIssuers::Issuer))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_token_issuers_tenant")
                            .from(TokenIssuers::Table, TokenIssuers::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsedTokens::Table)
                    .col(uuid(UsedTokens::TenantId))
                    .col(string(UsedTokens::TokenId))
                    .col(big_integer(UsedTokens::ExpiresAtMs))
                    .primary_key(Index::create().col(UsedTokens::TenantId).col(UsedTokens::TokenId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_used_tokens_tenant")
                            .from(UsedTokens::Table, UsedTokens::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_used_tokens_expires")
                    .table(UsedTokens::Table)
                    .col(UsedTokens::ExpiresAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UsedTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(TokenIssuers::Table).to_owned()).await?;
        manager.alter_table(Table::alter().table(Contents::Table).drop_column(Contents::Policy).to_owned()).await?;
        manager
            .alter_table(
                Table::alter().table(TokenSigningKeys::Table).drop_column(TokenSigningKeys::PublicKey).to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(TenantSecrets::Table).to_owned()).await
    }
}
