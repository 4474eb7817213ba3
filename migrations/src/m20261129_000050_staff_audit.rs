//! Platform support staff: their browser sessions (only the SHA-256 of the session id is stored, as for the tenant
//! console) and the audit log of everything staff do and look at. An audit row names the tenant it concerns (none
//! for sign-in and the cross-tenant list), and that tenant can read it; rows are never updated or deleted by the
//! application, and have no foreign keys so they outlive the accounts they name.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum StaffAccounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum StaffSessions {
    Table,
    /// Hex SHA-256 of the session id the cookie carries.
    IdHash,
    StaffId,
    CreatedAt,
    LastSeenAt,
    UserAgent,
    Ip,
}

#[derive(DeriveIden)]
enum StaffAudit {
    Table,
    Id,
    At,
    StaffId,
    /// The staff member's email at the time (kept even if the account changes).
    StaffEmail,
    /// The tenant the action or view concerns; null for sign-in, sign-out and cross-tenant lists.
    TenantId,
    /// `view_tenant`, `suspend`, `resume`, `view_tenants`, `view_audit`, `sign_in`, `sign_out`.
    Action,
    Detail,
}

const AUDIT_BY_TENANT: &str = "ix_staff_audit_tenant_at";
const AUDIT_BY_AT: &str = "ix_staff_audit_at";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(StaffSessions::Table)
                    .col(string(StaffSessions::IdHash).primary_key())
                    .col(uuid(StaffSessions::StaffId))
                    .col(timestamp_with_time_zone(StaffSessions::CreatedAt))
                    .col(timestamp_with_time_zone(StaffSessions::LastSeenAt))
                    .col(string_null(StaffSessions::UserAgent))
                    .col(string_null(StaffSessions::Ip))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_staff_sessions_staff")
                            .from(StaffSessions::Table, StaffSessions::StaffId)
                            .to(StaffAccounts::Table, StaffAccounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StaffAudit::Table)
                    .col(big_pk_auto(StaffAudit::Id))
                    .col(timestamp_with_time_zone(StaffAudit::At))
                    .col(uuid(StaffAudit::StaffId))
                    .col(string(StaffAudit::StaffEmail))
                    .col(uuid_null(StaffAudit::TenantId))
                    .col(string(StaffAudit::Action))
                    .col(text_null(StaffAudit::Detail))
                    .to_owned(),
            )
            .await?;
        // A tenant reads its own rows newest first; staff read all rows newest first.
        manager
            .create_index(
                Index::create()
                    .name(AUDIT_BY_TENANT)
                    .table(StaffAudit::Table)
                    .col(StaffAudit::TenantId)
                    .col(StaffAudit::At)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(Index::create().name(AUDIT_BY_AT).table(StaffAudit::Table).col(StaffAudit::At).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(StaffAudit::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(StaffSessions::Table).to_owned()).await
    }
}
