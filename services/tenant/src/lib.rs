//! The tenant service: tenants, their users and API keys, and the settings other services read.
//!
//! Other crates use [`Directory`] (find a tenant, authenticate an API key) and the [`TenantAuth`] extractor; the
//! tables are private to this crate.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod accounts;
mod api;
mod auth;
mod directory;
mod entity;
pub mod model;
pub mod password;
pub mod secrets;
pub mod staff;

use actix_web::web;

pub use accounts::{Accounts, LinkPurpose, Member, SessionInfo, SignIn};
pub use auth::TenantAuth;
pub use directory::{ApiKeyIdentity, ApiKeyInfo, CreatedTenant, Directory, NewTenant};
pub use model::{Email, Role, ServerConfig, ServerConfigPatch, SettingsPatch, Tenant, TenantSettings, TenantStatus};
pub use secrets::{Secret, SecretKind, SecretVault};
pub use staff::{AuditAction, AuditEntry, Staff, StaffMember, TenantSummary};

/// Register the tenant service's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(api::get_tenant).service(api::patch_settings).service(api::audit_log);
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(api::get_tenant, api::patch_settings, api::audit_log),
    components(schemas(api::TenantView, api::AuditEntryView, model::TenantSettings, model::SettingsPatch, model::TenantStatus, model::ServerConfig, model::ServerConfigPatch)),
    tags((name = "tenant", description = "The tenant account, its settings and what platform support staff did with it"))
)]
struct ApiDoc;

pub fn openapi() -> utoipa::openapi::OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}
