//! A content's own license parameters (seed document 004: the policy stored with each video, such as its security
//! level and HDCP) and a view of the content without its key values.
//!
//! The effective policy of a license is the tenant default, narrowed by the content's policy, narrowed by the token's.

use actix_web::{HttpResponse, get, put, web};
use clavis_core::http::ValidJson;
use clavis_core::ids::{ContentId, TrackType};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_tenant::TenantAuth;
use serde::Serialize;

use crate::model::{ContentKeySet, KeySource};
use crate::store::KeyStore;

/// A content as the API and the console show it: KIDs, never key values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContentView {
    pub content_id: String,
    /// The content's own policy; absent when the tenant default applies unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    pub keys: Vec<ContentKeyInfo>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContentKeyInfo {
    #[schema(value_type = String, example = "HD")]
    pub track_type: TrackType,
    pub kid: String,
    pub source: KeySource,
}

impl ContentView {
    fn of(set: &ContentKeySet) -> ContentView {
        ContentView {
            content_id: set.content_id.to_string(),
            policy: set.policy.clone(),
            keys: set
                .keys
                .iter()
                .map(|k| ContentKeyInfo { track_type: k.track_type, kid: k.kid.to_hex(), source: k.source })
                .collect(),
        }
    }
}

fn not_found(content_id: &ContentId) -> ClavisError {
    ClavisError::new(ErrorCode::ContentNotFound, format!("no content {content_id:?} for this tenant"))
}

/// A content's policy and key ids (no key values).
#[utoipa::path(
    get, path = "/api/v1/contents/{content_id}", tag = "keys",
    security(("api_key" = [])),
    params(("content_id" = String, Path, description = "The tenant's content id")),
    responses(
        (status = 200, body = ContentView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "3001 content not found", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/contents/{content_id}")]
pub async fn read_content(
    auth: TenantAuth,
    store: web::Data<KeyStore>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let content_id = ContentId::parse(&path)?;
    let set = store.get(auth.tenant.id, &content_id).await?.ok_or_else(|| not_found(&content_id))?;
    Ok(HttpResponse::Ok().json(ContentView::of(&set)))
}

/// Set the content's own policy (its license parameters). It may narrow the tenant default, never widen it; `{}`
/// clears it. Licenses apply it between the tenant default and the token's policy.
#[utoipa::path(
    put, path = "/api/v1/contents/{content_id}/policy", tag = "keys",
    security(("api_key" = [])),
    params(("content_id" = String, Path, description = "The tenant's content id")),
    request_body = Policy,
    responses(
        (status = 200, body = ContentView),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "3001 content not found", body = clavis_core::error::Problem),
        (status = 422, description = "1011 invalid field, 4010 policy invalid or wider than the tenant default", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/contents/{content_id}/policy")]
pub async fn put_content_policy(
    auth: TenantAuth,
    store: web::Data<KeyStore>,
    path: web::Path<String>,
    body: ValidJson<Policy>,
) -> Result<HttpResponse> {
    let content_id = ContentId::parse(&path)?;
    let policy = body.into_inner();
    auth.tenant.settings.default_policy.check_narrows(&policy)?;
    let policy = (policy != Policy::default()).then_some(policy);
    if !store.set_policy(auth.tenant.id, &content_id, policy.as_ref()).await? {
        return Err(not_found(&content_id));
    }
    let set = store.get(auth.tenant.id, &content_id).await?.ok_or_else(|| not_found(&content_id))?;
    Ok(HttpResponse::Ok().json(ContentView::of(&set)))
}

/// One row of the tenant's content list (the console's contents page).
#[derive(Debug, Clone)]
pub struct ContentSummary {
    pub content_id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub has_policy: bool,
    pub key_count: u64,
}

/// Contents per page of the list.
pub const PAGE_SIZE: u64 = 50;

/// The tenant's contents in content-id order, `PAGE_SIZE` at a time after `after`, whose ids start with `prefix`.
/// Two indexed queries whatever the tenant's size: the page of contents (the `(tenant_id, content_id)` unique index),
/// then their key counts.
pub async fn list_contents(
    db: &impl sea_orm::ConnectionTrait,
    tenant_id: clavis_core::ids::TenantId,
    prefix: &str,
    after: Option<&str>,
) -> Result<Vec<ContentSummary>> {
    use crate::entity::{content_keys, contents};
    use sea_orm::sea_query::{Expr, Func, SimpleExpr};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

    let mut select = contents::Entity::find()
        .filter(contents::Column::TenantId.eq(tenant_id.0))
        .order_by_asc(contents::Column::ContentId)
        .limit(PAGE_SIZE);
    if !prefix.is_empty() {
        // A range instead of LIKE: no wildcard escaping, and the index serves it on both databases.
        select = select.filter(contents::Column::ContentId.gte(prefix));
        select = select.filter(contents::Column::ContentId.lt(format!("{prefix}\u{10FFFF}")));
    }
    if let Some(after) = after {
        select = select.filter(contents::Column::ContentId.gt(after));
    }
    let rows = select.all(db).await?;
    let refs: Vec<uuid::Uuid> = rows.iter().map(|r| r.id).collect();
    let counts: Vec<(uuid::Uuid, i64)> = if refs.is_empty() {
        Vec::new()
    } else {
        content_keys::Entity::find()
            .select_only()
            .column(content_keys::Column::ContentRef)
            .column_as(SimpleExpr::from(Func::count(Expr::col(content_keys::Column::Id))), "n")
            .filter(content_keys::Column::TenantId.eq(tenant_id.0))
            .filter(content_keys::Column::ContentRef.is_in(refs))
            .group_by(content_keys::Column::ContentRef)
            .into_tuple()
            .all(db)
            .await?
    };
    Ok(rows
        .into_iter()
        .map(|row| ContentSummary {
            key_count: counts.iter().find(|(r, _)| *r == row.id).map_or(0, |(_, n)| u64::try_from(*n).unwrap_or(0)),
            content_id: row.content_id,
            created_at: row.created_at,
            has_policy: row.policy.is_some(),
        })
        .collect())
}
