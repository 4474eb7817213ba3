//! The tenant's own REST surface: who am I, and the settings that tokens and licenses depend on.

use actix_web::{HttpResponse, get, patch, web};
use clavis_core::Result;
use clavis_core::http::ValidJson;
use clavis_core::ids::{SiteId, TenantId};
use serde::Serialize;

use crate::auth::TenantAuth;
use crate::directory::Directory;
use crate::model::{SettingsPatch, TenantSettings, TenantStatus};

#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantView {
    #[schema(value_type = String, format = Uuid)]
    pub tenant_id: TenantId,
    #[schema(value_type = String, example = "ABCD")]
    pub site_id: SiteId,
    pub name: String,
    pub status: TenantStatus,
    pub settings: TenantSettings,
}

/// The tenant the API key belongs to, with its settings.
#[utoipa::path(
    get, path = "/api/v1/tenant", tag = "tenant",
    security(("api_key" = [])),
    responses(
        (status = 200, body = TenantView),
        (status = 401, description = "2001 API key missing, 2002 API key invalid", body = clavis_core::error::Problem),
        (status = 403, description = "2003 tenant suspended", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/tenant")]
pub async fn get_tenant(auth: TenantAuth) -> Result<HttpResponse> {
    let tenant = &auth.tenant;
    Ok(HttpResponse::Ok().json(TenantView {
        tenant_id: tenant.id,
        site_id: tenant.site_id,
        name: tenant.name.clone(),
        status: tenant.status,
        settings: tenant.settings.clone(),
    }))
}

/// Change the tenant's license settings; absent fields stay unchanged.
#[utoipa::path(
    patch, path = "/api/v1/tenant/settings", tag = "tenant",
    security(("api_key" = [])),
    request_body = SettingsPatch,
    responses(
        (status = 200, body = TenantSettings),
        (status = 400, description = "1010 malformed JSON", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 4010 policy invalid", body = clavis_core::error::Problem),
    )
)]
#[patch("/api/v1/tenant/settings")]
pub async fn patch_settings(
    auth: TenantAuth,
    directory: web::Data<Directory>,
    body: ValidJson<SettingsPatch>,
) -> Result<HttpResponse> {
    let next = body.into_inner().apply(&auth.tenant.settings)?;
    let tenant = directory.update_settings(auth.tenant.id, &next).await?;
    Ok(HttpResponse::Ok().json(&tenant.settings))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// Rows to return, newest first (1 to 1000, default 100).
    pub limit: Option<u64>,
}

/// One thing platform support staff did with or looked at in this account.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    /// RFC 3339 with milliseconds.
    pub at: String,
    /// Who: the support person's email.
    pub staff_email: String,
    /// `view_tenant` (settings, license log and refusals viewed), `suspend` or `resume`.
    pub action: String,
    /// The reason given for a suspension or resumption, if any.
    pub detail: Option<String>,
}

/// What platform support staff did with or looked at in this account, newest first.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "tenant",
    security(("api_key" = [])),
    params(AuditParams),
    responses(
        (status = 200, body = Vec<AuditEntryView>),
        (status = 400, description = "1014 malformed query", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/audit")]
pub async fn audit_log(
    auth: TenantAuth,
    directory: web::Data<Directory>,
    params: web::Query<AuditParams>,
) -> Result<HttpResponse> {
    // Out-of-range limits are clamped, as the license log does.
    let rows = directory.staff_audit(auth.tenant.id, params.limit.unwrap_or(100)).await?;
    Ok(HttpResponse::Ok().json(
        rows.into_iter()
            .map(|row| AuditEntryView {
                id: row.id,
                at: row.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                staff_email: row.staff_email,
                action: row.action,
                detail: row.detail,
            })
            .collect::<Vec<_>>(),
    ))
}
