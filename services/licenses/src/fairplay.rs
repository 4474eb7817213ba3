//! FairPlay Streaming: the tenant's provider credentials, the certificate players fetch, and the key server (KSM)
//! that answers an SPC with a CKC through the license corridor.
//!
//! Credentials are stored per certificate, named by the SHA-1 of its DER (the SPC names its certificate by that
//! hash), so a tenant may hold a 1024-bit and a 2048-bit certificate at once. The private key (as PKCS#1 DER), the
//! ASk and a fixed DASk are sealed in the tenant's vault; the certificate and what was validated are metadata.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, put, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use clavis_core::http::ValidJson;
use clavis_core::ids::{ContentId, Drm, Kid, SiteId, TrackType};
use clavis_core::policy::Policy;
use clavis_core::{ClavisError, ErrorCode, Result};
use clavis_fairplay::{
    AppleSample, CkcTerms, DFunction, FixedDask, HdcpRequirement, KeyDuration, OaepKey, OfflineKey, Provider,
    SpcContainer, SpcError,
};
use clavis_tenant::secrets::{SecretKind, SecretVault};
use clavis_tenant::{Directory, TenantAuth};
use clavis_tokens::{Credential, VerifiedToken};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::api::{RawToken, token_from};
use crate::cors;
use crate::service::{LicenseService, Story};

/// Largest KSM request body: an SPC is at most 64 KiB, base64 and form encoding add a third and some.
pub const MAX_KSM_BODY: usize = 96 * 1024;

/// Body of `PUT /api/v1/fairplay/credentials`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    /// The FPS certificate from Apple, DER, base64.
    pub certificate: String,
    /// Its RSA private key, PEM (`RSA PRIVATE KEY`, `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, or legacy encrypted
    /// PEM with AES).
    pub private_key: String,
    /// The private key's passphrase, when it is encrypted.
    #[serde(default)]
    pub private_key_password: Option<String>,
    /// The Application Secret key (ASk), 32 hex digits.
    pub ask: String,
    /// `apple-sample` (Apple's sample D function, for the SDK's development credentials) or `fixed` (a fixed DASk).
    #[serde(default)]
    pub d_function: Option<String>,
    /// With `fixed`: the DASk, 32 hex digits.
    #[serde(default)]
    pub dask: Option<String>,
}

/// What was validated and stored (never a secret).
#[derive(Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CredentialView {
    /// SHA-1 of the certificate DER (the SPC names its certificate by it), lowercase hex.
    pub sha1: String,
    pub subject: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// The certificate has expired (development credentials from Apple are; the key server still serves them).
    pub expired: bool,
    /// RSA key size: 1024 (SPC v1) or 2048 (SPC v2).
    pub key_bits: usize,
    pub spc_version: u32,
    /// `apple-sample` or `fixed`.
    pub d_function: String,
    pub private_key_matches_certificate: bool,
    /// Where players fetch the certificate.
    pub certificate_url: String,
}

/// The metadata stored beside the sealed secret: the view and the certificate itself.
#[derive(Serialize, Deserialize)]
struct StoredMeta {
    #[serde(flatten)]
    view: CredentialView,
    certificate: String,
}

/// The sealed part.
#[derive(Serialize, Deserialize)]
struct StoredSecret {
    /// PKCS#1 RSAPrivateKey DER, base64.
    private_key: String,
    ask: String,
    #[serde(default)]
    dask: Option<String>,
}

fn invalid(field: &'static str, detail: impl Into<String>) -> ClavisError {
    ClavisError::field(ErrorCode::FairplayCredentialsInvalid, field, detail.into())
}

fn hex16(value: &str, field: &'static str) -> Result<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(value.trim(), &mut out).map_err(|_| invalid(field, "must be 32 hex digits (16 bytes)"))?;
    Ok(out)
}

fn certificate_url(public_url: &str, site_id: SiteId) -> String {
    format!("{}/license/fairplay/certificate/{site_id}", public_url.trim_end_matches('/'))
}

/// Upload (or replace) a FairPlay credential: certificate, private key, ASk and D function. The certificate must
/// parse and hold an RSA 1024 or 2048-bit key, the private key must be that key (a passphrase opens an encrypted
/// one), the ASk is 16 bytes. Credentials are kept per certificate (by SHA-1), so uploading a second certificate
/// adds it; uploading the same certificate again replaces its key, ASk and D function.
#[utoipa::path(
    put, path = "/api/v1/fairplay/credentials", tag = "fairplay",
    security(("api_key" = [])),
    request_body = CredentialsBody,
    responses(
        (status = 200, body = CredentialView),
        (status = 400, description = "1010 malformed JSON", body = clavis_core::error::Problem),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 422, description = "5015 credentials invalid (the field names the part)", body = clavis_core::error::Problem),
    )
)]
#[put("/api/v1/fairplay/credentials")]
pub async fn put_credentials(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    keys: web::Data<clavis_keys::KeyStore>,
    body: ValidJson<CredentialsBody>,
) -> Result<HttpResponse> {
    let view = save_credentials(&vault, &keys.public_url(), &auth.tenant, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// Validate and store one credential set: what `PUT /api/v1/fairplay/credentials` and the console's upload form do.
/// The private key and ASk (and DASk) are sealed in the tenant's vault; only the view is readable afterwards.
pub async fn save_credentials(
    vault: &SecretVault,
    public_url: &str,
    tenant: &clavis_tenant::Tenant,
    body: CredentialsBody,
) -> Result<CredentialView> {
    let certificate = STANDARD
        .decode(body.certificate.split_whitespace().collect::<String>())
        .map_err(|_| invalid("certificate", "must be the DER certificate in base64"))?;
    let ask = hex16(&body.ask, "ask")?;
    let d_function = body.d_function.as_deref().unwrap_or("apple-sample");
    let dask = match (d_function, body.dask.as_deref()) {
        ("apple-sample", None) => None,
        ("apple-sample", Some(_)) => return Err(invalid("dask", "a DASk goes with d_function \"fixed\" only")),
        ("fixed", Some(dask)) => Some(hex16(dask, "dask")?),
        ("fixed", None) => return Err(invalid("dask", "d_function \"fixed\" needs the DASk (32 hex digits)")),
        _ => return Err(invalid("d_function", "must be \"apple-sample\" or \"fixed\"")),
    };
    let validated =
        clavis_fairplay::credentials::validate(&certificate, &body.private_key, body.private_key_password.as_deref())
            .map_err(|e| invalid(e.field, e.detail))?;
    let info = &validated.certificate;
    let sha1 = hex::encode(info.sha1);
    let view = CredentialView {
        sha1: sha1.clone(),
        subject: info.subject.clone(),
        not_before: info.not_before,
        not_after: info.not_after,
        expired: info.not_after < Utc::now(),
        key_bits: info.key_bits,
        spc_version: if info.key_bits == 1024 { 1 } else { 2 },
        d_function: d_function.to_owned(),
        private_key_matches_certificate: true,
        certificate_url: certificate_url(public_url, tenant.site_id),
    };
    let secret = Zeroizing::new(StoredSecret {
        private_key: STANDARD.encode(&validated.private_key_pkcs1),
        ask: hex::encode(ask),
        dask: dask.map(hex::encode),
    });
    let meta = StoredMeta { view: view.clone(), certificate: STANDARD.encode(&certificate) };
    vault.put_json(tenant.id, SecretKind::FairplayCredentials, &sha1, &meta, &*secret).await?;
    Ok(view)
}

impl zeroize::Zeroize for StoredSecret {
    fn zeroize(&mut self) {
        self.private_key.zeroize();
        self.ask.zeroize();
        self.dask.zeroize();
    }
}

/// The tenant's FairPlay credentials (metadata only: no key, ASk or DASk), newest first.
#[utoipa::path(
    get, path = "/api/v1/fairplay/credentials", tag = "fairplay",
    security(("api_key" = [])),
    responses(
        (status = 200, body = Vec<CredentialView>),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
    )
)]
#[get("/api/v1/fairplay/credentials")]
pub async fn list_credentials(auth: TenantAuth, vault: web::Data<SecretVault>) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(credential_views(&vault, auth.tenant.id).await?))
}

/// The tenant's credentials as shown (no secrets), newest first.
pub async fn credential_views(
    vault: &SecretVault,
    tenant_id: clavis_core::ids::TenantId,
) -> Result<Vec<CredentialView>> {
    Ok(stored_metas(vault, &tenant_id).await?.into_iter().map(|m| m.view).collect())
}

async fn stored_metas(vault: &SecretVault, tenant_id: &clavis_core::ids::TenantId) -> Result<Vec<StoredMeta>> {
    let mut listed = vault.list(*tenant_id, SecretKind::FairplayCredentials).await?;
    listed.sort_by_key(|info| std::cmp::Reverse(info.updated_at));
    listed
        .into_iter()
        .map(|info| serde_json::from_value(info.meta).map_err(|e| ClavisError::internal("fairplay meta", e)))
        .collect()
}

/// Remove one credential (by its certificate's SHA-1); SPCs made for that certificate are refused from then on.
#[utoipa::path(
    delete, path = "/api/v1/fairplay/credentials/{sha1}", tag = "fairplay",
    security(("api_key" = [])),
    params(("sha1" = String, Path, description = "The certificate's SHA-1, 40 hex digits")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "2001, 2002", body = clavis_core::error::Problem),
        (status = 404, description = "5014 no such credential", body = clavis_core::error::Problem),
    )
)]
#[delete("/api/v1/fairplay/credentials/{sha1}")]
pub async fn delete_credentials(
    auth: TenantAuth,
    vault: web::Data<SecretVault>,
    path: web::Path<String>,
) -> Result<HttpResponse> {
    let sha1 = path.into_inner().to_ascii_lowercase();
    if vault.delete(auth.tenant.id, SecretKind::FairplayCredentials, &sha1).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ClavisError::new(ErrorCode::FairplayNotConfigured, format!("no FairPlay credential with SHA-1 {sha1}")))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct CertificateParams {
    /// Which certificate, by SHA-1, when the tenant has several; the newest otherwise.
    pub sha1: Option<String>,
}

/// The tenant's FairPlay certificate (DER), for players (`serverCertificate` in Safari and hls.js). With several
/// certificates the newest is served unless `?sha1=` names one. Readable cross-origin like the license endpoints.
#[utoipa::path(
    get, path = "/license/fairplay/certificate/{site_id}", tag = "fairplay",
    params(("site_id" = String, Path, description = "The tenant's site id"), CertificateParams),
    responses(
        (status = 200, description = "The certificate, DER", content_type = "application/octet-stream"),
        (status = 404, description = "2004 no such site, 5014 FairPlay not configured", body = clavis_core::error::Problem),
    )
)]
pub async fn certificate(
    req: HttpRequest,
    path: web::Path<String>,
    params: web::Query<CertificateParams>,
    directory: web::Data<Directory>,
    vault: web::Data<SecretVault>,
) -> HttpResponse {
    let origin = cors::request_origin(&req);
    let mut allowed = true;
    let result: Result<Vec<u8>> = async {
        let unknown = || ClavisError::new(ErrorCode::TenantNotFound, "no tenant has this site id");
        let site_id = SiteId::parse(&path).map_err(|_| unknown())?;
        let tenant = directory.by_site_id(site_id).await?.ok_or_else(unknown)?;
        allowed = tenant.settings.origin_allowed(origin.as_deref());
        let metas = stored_metas(&vault, &tenant.id).await?;
        let wanted = params.sha1.as_deref().map(str::to_ascii_lowercase);
        let meta = metas.into_iter().find(|m| wanted.as_deref().is_none_or(|w| w == m.view.sha1)).ok_or_else(|| {
            ClavisError::new(ErrorCode::FairplayNotConfigured, "the tenant has no such FairPlay certificate")
        })?;
        STANDARD.decode(meta.certificate).map_err(|e| ClavisError::internal("stored fairplay certificate", e))
    }
    .await;
    let mut response = match result {
        Ok(der) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream")))
            .body(der),
        Err(err) => actix_web::ResponseError::error_response(&err),
    };
    cors::apply(&mut response, origin.as_deref(), allowed);
    response
}

/// The SPC from a KSM request body: `spc=<base64>` (form, as Apple's samples and hls.js post it), the raw SPC,
/// or the SPC in base64 text.
pub fn spc_from_body(body: &[u8]) -> Result<Vec<u8>> {
    let malformed = |detail: &str| ClavisError::new(ErrorCode::FairplaySpcMalformed, detail.to_owned());
    if body.len() >= 4 && body[..3] == [0, 0, 0] {
        return Ok(body.to_vec());
    }
    let text = std::str::from_utf8(body).map_err(|_| malformed("the body is neither an SPC nor base64 text"))?.trim();
    let compact: String = if text.starts_with("spc=") || text.contains("&spc=") {
        // Players often put base64 in the form without percent-encoding it, so a `+` arrives as a space.
        url::form_urlencoded::parse(text.as_bytes())
            .find(|(name, _)| name == "spc")
            .map(|(_, value)| value.trim().replace(' ', "+"))
            .ok_or_else(|| malformed("the form has no `spc` field"))?
    } else {
        text.chars().filter(|c| !c.is_whitespace()).collect()
    };
    // Accept the URL-safe alphabet too.
    let standard = compact.replace('-', "+").replace('_', "/");
    let unpadded = standard.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(unpadded)
        .map_err(|_| malformed("the SPC is not valid base64"))
}

fn spc_error(err: SpcError) -> ClavisError {
    match err {
        SpcError::Malformed(detail) => ClavisError::new(ErrorCode::FairplaySpcMalformed, detail),
        SpcError::KeyUndecryptable => ClavisError::new(ErrorCode::FairplaySpcUndecryptable, err.to_string()),
        SpcError::Integrity => ClavisError::new(ErrorCode::FairplayIntegrityFailed, err.to_string()),
    }
}

/// A credential by tenant and certificate SHA-1 (hex), with the vault version it was opened from.
type OpenedProviders = HashMap<(uuid::Uuid, String), (DateTime<Utc>, Arc<Provider>)>;

/// Opened providers, so the key server parses a private key once per credential version, not per request.
#[derive(Default)]
pub struct Providers {
    opened: Mutex<OpenedProviders>,
}

const MAX_CACHED_PROVIDERS: usize = 10_000;

impl Providers {
    /// The provider for the certificate an SPC names, from the tenant's vault.
    pub async fn get(
        &self,
        vault: &SecretVault,
        tenant_id: clavis_core::ids::TenantId,
        sha1: &[u8; 20],
    ) -> Result<Arc<Provider>> {
        let name = hex::encode(sha1);
        let secret = vault.get(tenant_id, SecretKind::FairplayCredentials, &name).await?.ok_or_else(|| {
            ClavisError::new(
                ErrorCode::FairplayCertificateUnknown,
                format!("the SPC was made for certificate {name}, which this tenant has not uploaded"),
            )
        })?;
        let cache_key = (tenant_id.0, name);
        if let Ok(opened) = self.opened.lock()
            && let Some((version, provider)) = opened.get(&cache_key)
            && *version == secret.updated_at
        {
            return Ok(provider.clone());
        }
        let meta: StoredMeta = secret.meta_as()?;
        let stored: Zeroizing<StoredSecret> = Zeroizing::new(secret.value_as()?);
        let pkcs1 = Zeroizing::new(
            STANDARD.decode(&stored.private_key).map_err(|e| ClavisError::internal("stored fairplay key", e))?,
        );
        let key = OaepKey::from_pkcs1_der(&pkcs1)
            .ok_or_else(|| ClavisError::internal("stored fairplay key", "does not parse"))?;
        let internal = |e: ClavisError| ClavisError::internal("stored fairplay secret", e.detail);
        let ask = hex16(&stored.ask, "ask").map_err(internal)?;
        let d: Box<dyn DFunction> = match (meta.view.d_function.as_str(), stored.dask.as_deref()) {
            ("fixed", Some(dask)) => Box::new(FixedDask(hex16(dask, "dask").map_err(internal)?)),
            _ => Box::new(AppleSample),
        };
        let provider = Arc::new(Provider::new(key, ask, d));
        if let Ok(mut opened) = self.opened.lock() {
            if opened.len() >= MAX_CACHED_PROVIDERS {
                opened.clear();
            }
            opened.insert(cache_key, (secret.updated_at, provider.clone()));
        }
        Ok(provider)
    }
}

/// The CKC terms the effective policy sets. Persistent (offline) keys when the policy allows persistence: with a
/// playback duration, Apple's dual expiry (offline key TLLV: storage = the license duration, playback duration);
/// with only a license duration, a persistent key with that duration; else a persistent key without expiry.
/// Streaming keys: the license duration is the lease, the rental duration the rental. FairPlay's HDCP TLLV follows
/// `fairplay.hdcp_required` (type 0 when required, "none" when the policy says false, absent when it is silent).
pub fn ckc_terms(policy: &Policy, kid: &Kid, now: DateTime<Utc>) -> CkcTerms {
    let secs = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    let lease = policy.license_seconds_at(now).map(secs);
    let rental = policy.rental_duration_seconds.filter(|v| *v != 0).map(secs);
    let playback = policy.playback_duration_seconds.filter(|v| *v != 0).map(secs);
    let (duration, offline) = if policy.allows_persistence() {
        match (playback, lease) {
            (Some(playback), storage) => (
                None,
                Some(OfflineKey {
                    content_id: kid.0,
                    storage_seconds: storage.unwrap_or(0),
                    playback_seconds: playback,
                }),
            ),
            (None, Some(lease)) => (Some(KeyDuration::PersistentWithDuration(lease)), None),
            (None, None) => (Some(KeyDuration::Persistent), None),
        }
    } else {
        let duration = match (lease, rental) {
            (Some(lease), Some(rental)) => Some(KeyDuration::LeaseAndRental { lease, rental }),
            (Some(lease), None) => Some(KeyDuration::Lease(lease)),
            (None, Some(rental)) => Some(KeyDuration::Rental(rental)),
            (None, None) => None,
        };
        (duration, None)
    };
    let hdcp = policy
        .fairplay
        .as_ref()
        .and_then(|f| f.hdcp_required)
        .map(|required| if required { HdcpRequirement::Type0 } else { HdcpRequirement::None });
    CkcTerms { duration, offline, hdcp }
}

/// The track a FairPlay asset's key is taken from when the content has several keys: its `ALL` key, else the first
/// key of a track the policy allows, in the order video tracks from SD up, then audio.
const TRACK_PREFERENCE: [TrackType; 6] =
    [TrackType::All, TrackType::Sd, TrackType::Hd, TrackType::Uhd1, TrackType::Uhd2, TrackType::Audio];

impl LicenseService {
    /// A CKC for the SPC in `body`, or the refusal.
    pub async fn fairplay(
        &self,
        story: &mut Story,
        token: Option<Credential<'_>>,
        vault: &SecretVault,
        body: &[u8],
    ) -> Result<Vec<u8>> {
        // In callback mode the value names the tenant and only the SPC names the content, so the SPC is opened with
        // the tenant's credentials first and the tenant's backend is asked about its asset. A token names both, so
        // in token mode the token is checked before any RSA work.
        let callback_site = story.callback.as_ref().map(|value| value.site_id);
        let (verified, opened, asset) = if let Some(site_id) = callback_site {
            story.set_rule("tenant");
            let tenant = self.callbacks().directory().by_site_id(site_id).await?.ok_or_else(|| {
                ClavisError::new(ErrorCode::TenantNotFound, format!("no tenant has site id {site_id}"))
            })?;
            // Named now so that a refused SPC is in the tenant's log.
            story.tenant = Some(tenant.clone());
            tenant.ensure_active()?;
            let (opened, asset) = self.open_spc(story, vault, tenant.id, body).await?;
            story.content_id = Some(asset.as_str().to_owned());
            (self.authorize(story, None).await?, opened, asset)
        } else {
            let verified = self.authorize(story, token).await?;
            let (opened, asset) = self.open_spc(story, vault, verified.tenant.id, body).await?;
            (verified, opened, asset)
        };
        story.set_rule("content");
        if asset != verified.content_id {
            return Err(ClavisError::new(
                ErrorCode::TokenContentMismatch,
                format!(
                    "the SPC asks for content {:?}; the token is for {:?}",
                    asset.as_str(),
                    verified.content_id.as_str()
                ),
            ));
        }
        let (kid, key, iv) = self.fairplay_key(story, &verified).await?;
        story.set_rule("policy");
        let terms = ckc_terms(&verified.policy, &kid, Utc::now());
        let ckc = clavis_fairplay::build_ckc(&opened, &key, &iv, &terms)
            .map_err(|_| ClavisError::internal("fairplay ckc", "the CSPRNG failed"))?;
        let admission = self.admit(story, &verified).await?;
        self.settle(story, &verified, &admission).await?;
        Ok(ckc)
    }

    /// The SPC in `body`, opened with the tenant's credentials for the certificate it names, and its asset id.
    async fn open_spc(
        &self,
        story: &mut Story,
        vault: &SecretVault,
        tenant_id: clavis_core::ids::TenantId,
        body: &[u8],
    ) -> Result<(clavis_fairplay::OpenedSpc, ContentId)> {
        story.set_rule("request");
        let spc = spc_from_body(body)?;
        let container = SpcContainer::parse(&spc).map_err(spc_error)?;
        story.set_rule("fairplay.certificate");
        let provider = self.fairplay_providers().get(vault, tenant_id, &container.certificate_sha1).await?;
        story.set_rule("fairplay.spc");
        let opened = provider.open(&container).map_err(spc_error)?;
        story.set_rule("content");
        let asset = ContentId::from_wire_bytes(&opened.asset_id)
            .map_err(|e| ClavisError::new(ErrorCode::FairplaySpcMalformed, format!("asset id: {}", e.detail)))?;
        Ok((opened, asset))
    }

    async fn fairplay_key(
        &self,
        story: &mut Story,
        verified: &VerifiedToken,
    ) -> Result<(Kid, Zeroizing<[u8; 16]>, [u8; 16])> {
        if !verified.external_keys.is_empty() {
            return Err(ClavisError::new(
                ErrorCode::KidNotInContent,
                "tokens that carry their own keys carry no IV; FairPlay needs the content's keys in Clavis",
            ));
        }
        let set = self.keys().get(verified.tenant.id, &verified.content_id).await?.ok_or_else(|| {
            ClavisError::new(
                ErrorCode::ContentHasNoKeys,
                format!("content {:?} has no keys", verified.content_id.as_str()),
            )
        })?;
        story.set_rule("kids");
        let chosen = TRACK_PREFERENCE
            .iter()
            .find_map(|track| {
                set.keys.iter().find(|k| k.track_type == *track && verified.policy.allows_track(k.track_type))
            })
            .ok_or_else(|| {
                story.set_rule("policy.allowed_tracks");
                ClavisError::new(ErrorCode::TrackNotAllowed, "the policy allows none of the content's key tracks")
            })?;
        story.set_kids(vec![chosen.kid]);
        Ok((chosen.kid, chosen.key.clone(), chosen.iv))
    }
}

/// The FairPlay key server: the SPC in the body (`spc=<base64>` form, raw bytes or base64 text), the token as for
/// every license endpoint. Answers the CKC in base64, or raw with `Accept: application/octet-stream`.
#[utoipa::path(
    post, path = "/license/fairplay", tag = "fairplay",
    params(("token" = Option<String>, Query, description = "The license token, when not sent in X-Clavis-Token"), ("callback" = Option<String>, Query, description = "Callback mode: `<site_id>.<session>`, when not sent in X-Clavis-Callback")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`spc=<base64 SPC>`, or the raw SPC (application/octet-stream), or the SPC in base64"),
    responses(
        (status = 200, description = "The CKC, base64 (raw with Accept: application/octet-stream)", content_type = "text/plain"),
        (status = 400, description = "5010 SPC malformed, 5011 certificate unknown, 5012 SPC key undecryptable, 5013 integrity check failed", body = clavis_core::error::Problem),
        (status = 401, description = "4001-4007 token missing, malformed, bad signature, unknown key, expired, not yet valid, unknown issuer", body = clavis_core::error::Problem),
        (status = 403, description = "2003 tenant suspended, 4008 token for another content (the SPC's asset id), 4009 token for another DRM, 4011 single-use token already used, 5002 token carries its own keys, 5003 origin not allowed, 5006 track not allowed, 5007 client not allowed, 5008 policy expired", body = clavis_core::error::Problem),
        (status = 404, description = "5005 content has no keys", body = clavis_core::error::Problem),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
    )
)]
pub async fn ksm(
    req: HttpRequest,
    payload: web::Payload,
    service: web::Data<LicenseService>,
    vault: web::Data<SecretVault>,
) -> HttpResponse {
    let body = clavis_core::http::read_body(payload, MAX_KSM_BODY).await;
    ksm_answer(&req, body, &service, &vault).await
}

/// The KSM's answer for a body as read (or the error of reading it).
pub(crate) async fn ksm_answer(
    req: &HttpRequest,
    body: Result<web::Bytes>,
    service: &LicenseService,
    vault: &SecretVault,
) -> HttpResponse {
    let mut story = crate::api::story(req, Drm::FairPlay);
    let token = token_from(req);
    let raw = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/octet-stream"));
    let result = async {
        story.callback = crate::api::callback_from(req)?;
        story.read_facts(req.headers())?;
        service.fairplay(&mut story, token.as_ref().map(RawToken::credential), vault, &body?).await
    }
    .await;
    let (result, content_type) = if raw {
        (result, "application/octet-stream")
    } else {
        (result.map(|ckc| STANDARD.encode(ckc).into_bytes()), "text/plain")
    };
    let mut response = service.finish(story, result, content_type).await;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
