//! The tenant console's sign-in state: browser sessions (only the SHA-256 of the session id is stored, so a database
//! read does not hand out live sessions) and single-use account links (email verification, password reset,
//! invitations), also stored hashed with an expiry.

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
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ConsoleSessions {
    Table,
    /// Hex SHA-256 of the session id the cookie carries.
    IdHash,
    UserId,
    TenantId,
    CreatedAt,
    LastSeenAt,
    UserAgent,
    Ip,
}

#[derive(DeriveIden)]
enum AccountTokens {
    Table,
    /// Hex SHA-256 of the token the mailed link carries.
    TokenHash,
    UserId,
    TenantId,
    /// `verify_email`, `reset_password`, `invite`.
    Purpose,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ConsoleSessions::Table)
                    .col(string(ConsoleSessions::IdHash).primary_key())
                    .col(uuid(ConsoleSessions::UserId))
                    .col(uuid(ConsoleSessions::TenantId))
                    .col(timestamp_with_time_zone(ConsoleSessions::CreatedAt))
                    .col(timestamp_with_time_zone(ConsoleSessions::LastSeenAt))
                    .col(string_null(ConsoleSessions::UserAgent))
                    .col(string_null(ConsoleSessions::Ip))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_console_sessions_user")
                            .from(ConsoleSessions::Table, ConsoleSessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_console_sessions_tenant")
                            .from(ConsoleSessions::Table, ConsoleSessions::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_console_sessions_user")
                    .table(ConsoleSessions::Table)
                    .col(ConsoleSessions::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccountTokens::Table)
                    .col(string(AccountTokens::TokenHash).primary_key())
                    .col(uuid(AccountTokens::UserId))
                    .col(uuid(AccountTokens::TenantId))
                    .col(string(AccountTokens::Purpose))
                    .col(timestamp_with_time_zone(AccountTokens::CreatedAt))
                    .col(timestamp_with_time_zone(AccountTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(AccountTokens::UsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_tokens_user")
                            .from(AccountTokens::Table, AccountTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_tokens_tenant")
                            .from(AccountTokens::Table, AccountTokens::TenantId)
                            .to(Tenants::Table, Tenants::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_account_tokens_user")
                    .table(AccountTokens::Table)
                    .col(AccountTokens::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AccountTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(ConsoleSessions::Table).to_owned()).await
    }
}
