//! Authentication of tenant backends: `Authorization: Bearer <api_key>` (and HTTP Basic with the site id as user,
//! which packagers such as SPEKE clients can only send).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use base64::Engine;
use clavis_core::ids::SiteId;
use clavis_core::{ClavisError, ErrorCode};
use tracing_actix_web::RootSpan;

use crate::directory::{ApiKeyIdentity, Directory};
use crate::model::Tenant;

/// A request authenticated by a tenant API key. Extracting it is the first line of every tenant API handler.
#[derive(Clone, Debug)]
pub struct TenantAuth {
    pub tenant: Arc<Tenant>,
    pub key: ApiKeyIdentity,
}

impl FromRequest for TenantAuth {
    type Error = ClavisError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let directory = req.app_data::<web::Data<Directory>>().cloned();
        let credentials = presented_credentials(req);
        let root_span = req.extensions_root_span();
        Box::pin(async move {
            let directory = directory.ok_or_else(|| ClavisError::internal("auth", "tenant directory not mounted"))?;
            let (api_key, basic_site) = credentials?;
            let (tenant, key) = directory.authenticate(&api_key).await?;
            if let Some(site) = basic_site
                && site != tenant.site_id
            {
                return Err(ClavisError::new(ErrorCode::ApiKeyInvalid, "the API key does not belong to that site id"));
            }
            if let Some(span) = root_span {
                span.record("tenant_id", tracing::field::display(tenant.id));
            }
            tenant.ensure_active()?;
            Ok(TenantAuth { tenant, key })
        })
    }
}

trait RootSpanExt {
    fn extensions_root_span(&self) -> Option<RootSpan>;
}

impl RootSpanExt for HttpRequest {
    fn extensions_root_span(&self) -> Option<RootSpan> {
        use actix_web::HttpMessage;
        self.extensions().get::<RootSpan>().cloned()
    }
}

/// The API key from `Authorization`, and the site id when it came as HTTP Basic.
fn presented_credentials(req: &HttpRequest) -> Result<(String, Option<SiteId>), ClavisError> {
    let missing = || ClavisError::new(ErrorCode::ApiKeyMissing, "send `Authorization: Bearer <api_key>`");
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    if let Some(token) = strip_scheme(value, "bearer") {
        return Ok((token.trim().to_owned(), None));
    }
    if let Some(encoded) = strip_scheme(value, "basic") {
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).map_err(|_| missing())?;
        let decoded = String::from_utf8(decoded).map_err(|_| missing())?;
        let (user, password) = decoded.split_once(':').ok_or_else(missing)?;
        let site = SiteId::parse(user)
            .map_err(|_| ClavisError::new(ErrorCode::ApiKeyInvalid, "the Basic user must be the site id"))?;
        return Ok((password.to_owned(), Some(site)));
    }
    Err(missing())
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}
