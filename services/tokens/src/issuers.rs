//! The issuer registry: which tenant owns the issuer name another service's token carries.
//!
//! A PallyCon token names its site (`site_id`), and that name must lead to exactly one tenant, so the registry is a
//! table keyed by (format, issuer): the primary key makes a second tenant's claim fail even when two claims race.

use std::time::Duration;

use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, ErrorCode, Result};
use moka::future::Cache;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};

use crate::entity::token_issuers;

const CACHE_TTL: Duration = Duration::from_secs(10);

pub struct Issuers {
    db: DatabaseConnection,
    cache: Cache<(&'static str, String), Option<TenantId>>,
}

impl Issuers {
    pub fn new(db: DatabaseConnection) -> Issuers {
        Issuers { db, cache: Cache::builder().max_capacity(100_000).time_to_live(CACHE_TTL).build() }
    }

    /// Make `issuer` the tenant's one issuer name for `format` (dropping an earlier one). Refused with 4014 when
    /// another tenant owns it.
    pub async fn claim(&self, format: &'static str, issuer: &str, tenant_id: TenantId) -> Result<()> {
        self.claim_many(format, &[issuer.to_owned()], tenant_id).await
    }

    /// Make `issuers` the tenant's issuer names for `format`, all of them at once (a format whose tokens name one of
    /// several keys, like Axinom's `com_key_id`), dropping its earlier names not among them. Refused with 4014, and
    /// nothing changed, when another tenant owns any of them. [`Issuers::claim`] is the one-name case.
    pub async fn claim_many(&self, format: &'static str, issuers: &[String], tenant_id: TenantId) -> Result<()> {
        let txn = clavis_core::db::begin_write(&self.db).await?;
        for issuer in issuers {
            token_issuers::Entity::insert(token_issuers::ActiveModel {
                format: Set(format.to_owned()),
                issuer: Set(issuer.clone()),
                tenant_id: Set(tenant_id.0),
            })
            .on_conflict(
                OnConflict::columns([token_issuers::Column::Format, token_issuers::Column::Issuer])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
            let owner = token_issuers::Entity::find()
                .filter(token_issuers::Column::Format.eq(format))
                .filter(token_issuers::Column::Issuer.eq(issuer.as_str()))
                .one(&txn)
                .await?;
            if owner.is_none_or(|row| row.tenant_id != tenant_id.0) {
                txn.rollback().await?;
                return Err(ClavisError::new(
                    ErrorCode::IssuerTaken,
                    format!("the {format} issuer {issuer:?} belongs to another tenant"),
                ));
            }
        }
        let stale = token_issuers::Entity::find()
            .filter(token_issuers::Column::Format.eq(format))
            .filter(token_issuers::Column::TenantId.eq(tenant_id.0))
            .filter(token_issuers::Column::Issuer.is_not_in(issuers.iter().map(String::as_str)))
            .all(&txn)
            .await?;
        token_issuers::Entity::delete_many()
            .filter(token_issuers::Column::Format.eq(format))
            .filter(token_issuers::Column::TenantId.eq(tenant_id.0))
            .filter(token_issuers::Column::Issuer.is_not_in(issuers.iter().map(String::as_str)))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        for row in stale {
            self.cache.invalidate(&(format, row.issuer)).await;
        }
        for issuer in issuers {
            self.cache.invalidate(&(format, issuer.clone())).await;
        }
        Ok(())
    }

    /// Drop the tenant's issuer names for `format`.
    pub async fn release(&self, format: &'static str, tenant_id: TenantId) -> Result<()> {
        let rows = token_issuers::Entity::find()
            .filter(token_issuers::Column::Format.eq(format))
            .filter(token_issuers::Column::TenantId.eq(tenant_id.0))
            .all(&self.db)
            .await?;
        token_issuers::Entity::delete_many()
            .filter(token_issuers::Column::Format.eq(format))
            .filter(token_issuers::Column::TenantId.eq(tenant_id.0))
            .exec(&self.db)
            .await?;
        for row in rows {
            self.cache.invalidate(&(format, row.issuer)).await;
        }
        Ok(())
    }

    /// The tenant that owns `issuer` for `format`.
    pub async fn owner(&self, format: &'static str, issuer: &str) -> Result<Option<TenantId>> {
        let key = (format, issuer.to_owned());
        if let Some(hit) = self.cache.get(&key).await {
            return Ok(hit);
        }
        let owner = token_issuers::Entity::find()
            .filter(token_issuers::Column::Format.eq(format))
            .filter(token_issuers::Column::Issuer.eq(issuer))
            .one(&self.db)
            .await?
            .map(|row| TenantId(row.tenant_id));
        self.cache.insert(key, owner).await;
        Ok(owner)
    }
}
