//! The walking skeleton's tables: tenants and their people and keys, contents and content keys, token signing keys,
//! and the license log. Every tenant-owned table carries `tenant_id` and is indexed by it first.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    SiteId,
    Status,
    DefaultPolicy,
    AllowedOrigins,
    ClockSkewSeconds,
    TokenTtlSeconds,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TenantId,
    Email,
    PasswordHash,
    Role,
    EmailVerifiedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum StaffAccounts {
    Table,
    Id,
    Email,
    PasswordHash,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    TenantId,
    Name,
    Prefix,
    KeyHash,
    CreatedAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Contents {
    Table,
    Id,
    TenantId,
    ContentId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum ContentKeys {
    Table,
    Id,
    TenantId,
    ContentRef,
    Ordinal,
    TrackType,
    Kid,
    KeySealed,
    Iv,
    Source,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TokenSigningKeys {
    Table,
    Id,
    TenantId,
    Kid,
    Algorithm,
    SecretSealed,
    Status,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LicenseLog {
    Table,
    Id,
    TenantId,
    AtMs,
    Drm,
    UserId,
    ContentId,
    Kids,
    Outcome,
    ErrorCode,
    Rule,
    Detail,
    LatencyUs,
    ClientIp,
    Origin,
    RequestId,
}

fn fk(
    name: &str,
    from: (impl IntoIden + 'static, impl IntoIden + 'static),
    to: (impl IntoIden + 'static, impl IntoIden + 'static),
) -> ForeignKeyCreateStatement {
    ForeignKey::create().name(name).from(from.0, from.1).to(to.0, to.1).on_delete(ForeignKeyAction::Cascade).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(uuid(Tenants::Id).primary_key())
                    .col(string(Tenants::Name))
                    .col(string_uniq(Tenants::SiteId))
                    .col(string(Tenants::Status))
                    .col(text(Tenants::DefaultPolicy))
                    .col(text(Tenants::AllowedOrigins))
                    .col(integer(Tenants::ClockSkewSeconds))
                    .col(integer(Tenants::TokenTtlSeconds))
                    .col(timestamp_with_time_zone(Tenants::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid(Users::Id).primary_key())
                    .col(uuid(Users::TenantId))
                    .col(string_uniq(Users::Email))
                    .col(string_null(Users::PasswordHash))
                    .col(string(Users::Role))
                    .col(timestamp_with_time_zone_null(Users::EmailVerifiedAt))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_users_tenant",
                        (Users::Table, Users::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name("ix_users_tenant").table(Users::Table).col(Users::TenantId).to_owned())
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(StaffAccounts::Table)
                    .col(uuid(StaffAccounts::Id).primary_key())
                    .col(string_uniq(StaffAccounts::Email))
                    .col(string(StaffAccounts::PasswordHash))
                    .col(timestamp_with_time_zone(StaffAccounts::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(uuid(ApiKeys::Id).primary_key())
                    .col(uuid(ApiKeys::TenantId))
                    .col(string(ApiKeys::Name))
                    .col(string(ApiKeys::Prefix))
                    .col(string_uniq(ApiKeys::KeyHash))
                    .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .foreign_key(&mut fk(
                        "fk_api_keys_tenant",
                        (ApiKeys::Table, ApiKeys::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("ix_api_keys_tenant").table(ApiKeys::Table).col(ApiKeys::TenantId).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Contents::Table)
                    .col(uuid(Contents::Id).primary_key())
                    .col(uuid(Contents::TenantId))
                    .col(string(Contents::ContentId))
                    .col(timestamp_with_time_zone(Contents::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_contents_tenant",
                        (Contents::Table, Contents::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_contents_tenant_content")
                    .table(Contents::Table)
                    .col(Contents::TenantId)
                    .col(Contents::ContentId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ContentKeys::Table)
                    .col(uuid(ContentKeys::Id).primary_key())
                    .col(uuid(ContentKeys::TenantId))
                    .col(uuid(ContentKeys::ContentRef))
                    .col(integer(ContentKeys::Ordinal))
                    .col(string(ContentKeys::TrackType))
                    .col(string(ContentKeys::Kid))
                    .col(blob(ContentKeys::KeySealed))
                    .col(string(ContentKeys::Iv))
                    .col(string(ContentKeys::Source))
                    .col(timestamp_with_time_zone(ContentKeys::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_content_keys_content",
                        (ContentKeys::Table, ContentKeys::ContentRef),
                        (Contents::Table, Contents::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_content_keys_tenant_kid")
                    .table(ContentKeys::Table)
                    .col(ContentKeys::TenantId)
                    .col(ContentKeys::Kid)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_content_keys_content")
                    .table(ContentKeys::Table)
                    .col(ContentKeys::TenantId)
                    .col(ContentKeys::ContentRef)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TokenSigningKeys::Table)
                    .col(uuid(TokenSigningKeys::Id).primary_key())
                    .col(uuid(TokenSigningKeys::TenantId))
                    .col(string(TokenSigningKeys::Kid))
                    .col(string(TokenSigningKeys::Algorithm))
                    .col(blob(TokenSigningKeys::SecretSealed))
                    .col(string(TokenSigningKeys::Status))
                    .col(timestamp_with_time_zone(TokenSigningKeys::CreatedAt))
                    .foreign_key(&mut fk(
                        "fk_token_signing_keys_tenant",
                        (TokenSigningKeys::Table, TokenSigningKeys::TenantId),
                        (Tenants::Table, Tenants::Id),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_token_signing_keys_tenant_kid")
                    .table(TokenSigningKeys::Table)
                    .col(TokenSigningKeys::TenantId)
                    .col(TokenSigningKeys::Kid)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LicenseLog::Table)
                    .col(big_pk_auto(LicenseLog::Id))
                    .col(uuid(LicenseLog::TenantId))
                    .col(big_integer(LicenseLog::AtMs))
                    .col(string(LicenseLog::Drm))
                    .col(string_null(LicenseLog::UserId))
                    .col(string_null(LicenseLog::ContentId))
                    .col(text(LicenseLog::Kids))
                    .col(string(LicenseLog::Outcome))
                    .col(integer_null(LicenseLog::ErrorCode))
                    .col(string_null(LicenseLog::Rule))
                    .col(text_null(LicenseLog::Detail))
                    .col(big_integer(LicenseLog::LatencyUs))
                    .col(string_null(LicenseLog::ClientIp))
                    .col(string_null(LicenseLog::Origin))
                    .col(string_null(LicenseLog::RequestId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_license_log_tenant_at")
                    .table(LicenseLog::Table)
                    .col(LicenseLog::TenantId)
                    .col(LicenseLog::AtMs)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LicenseLog::Table.into_iden(),
            TokenSigningKeys::Table.into_iden(),
            ContentKeys::Table.into_iden(),
            Contents::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            StaffAccounts::Table.into_iden(),
            Users::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
