//! The FairPlay credentials page: upload the certificate (.der or .cer, DER or PEM), the private key (.pem, with its
//! password) and the ASk, choose the D function; see what was validated in plain words; replace and delete.
//!
//! The upload is a multipart form (files, no JavaScript). It is read with hard size limits before anything else,
//! then its CSRF token is checked, then it goes through `clavis_licenses::fairplay::save_credentials`, the function
//! behind `PUT /api/v1/fairplay/credentials`, so the checks and codes are the API's. Admins and owners upload and
//! delete; everyone reads.

use std::collections::HashMap;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{get, post, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::{ClavisError, ErrorCode};
use clavis_keys::KeyStore;
use clavis_licenses::fairplay::{CredentialView, CredentialsBody, credential_views, save_credentials};
use clavis_tenant::{Role, SecretKind, SecretVault};
use futures_util::StreamExt;
use serde::Deserialize;

use super::pages::{Page, html, when};
use super::{Shell, SignedIn};

/// Largest file or field the form takes (an FPS certificate is about 1 KiB, its key under 2 KiB).
const MAX_PART_BYTES: usize = 64 * 1024;
const MAX_PARTS: usize = 12;

struct Row {
    sha1: String,
    subject: String,
    validity: String,
    expired: bool,
    summary: String,
    certificate_url: String,
}

impl From<CredentialView> for Row {
    fn from(v: CredentialView) -> Self {
        Row {
            validity: format!("{} to {}", when(v.not_before), when(v.not_after)),
            summary: summary(&v),
            sha1: v.sha1,
            subject: v.subject,
            expired: v.expired,
            certificate_url: v.certificate_url,
        }
    }
}

/// What was checked, in plain words.
fn summary(v: &CredentialView) -> String {
    format!(
        "{} {}; the private key matches the certificate ({}-bit RSA, so players send SPC version {}); the ASk is 16 \
         bytes; D function: {}.",
        if v.expired { "The certificate expired on" } else { "The certificate is valid until" },
        when(v.not_after),
        v.key_bits,
        v.spc_version,
        if v.d_function == "fixed" { "a fixed DASk" } else { "Apple's sample (development credentials)" },
    )
}

#[derive(Template)]
#[template(path = "console/fairplay.html")]
struct FairplayPage {
    shell: Shell,
    can_edit: bool,
    rows: Vec<Row>,
    /// The upload's result: (ok, message).
    outcome: Option<(bool, String)>,
}

async fn render(session: &SignedIn, vault: &SecretVault, outcome: Option<(bool, String)>, status: StatusCode) -> Page {
    let rows = credential_views(vault, session.tenant.id).await?.into_iter().map(Row::from).collect();
    html(status, &FairplayPage { shell: session.shell(), can_edit: session.member.role >= Role::Admin, rows, outcome })
}

#[get("/console/fairplay")]
async fn fairplay(session: SignedIn, vault: web::Data<SecretVault>) -> Page {
    session.require(Role::Viewer)?;
    render(&session, &vault, None, StatusCode::OK).await
}

fn too_large() -> ClavisError {
    ClavisError::new(ErrorCode::PayloadTooLarge, format!("each file or field may be at most {MAX_PART_BYTES} bytes"))
}

/// The form's parts by name, each bounded.
pub(super) async fn read_parts(mut form: Multipart) -> Result<HashMap<String, Vec<u8>>, ClavisError> {
    let malformed = |e: actix_multipart::MultipartError| {
        ClavisError::new(ErrorCode::MalformedRequest, format!("the upload could not be read: {e}"))
    };
    let mut parts = HashMap::new();
    while let Some(field) = form.next().await {
        let mut field = field.map_err(malformed)?;
        if parts.len() >= MAX_PARTS {
            return Err(ClavisError::new(ErrorCode::MalformedRequest, "the upload has too many parts"));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(malformed)?;
            if bytes.len() + chunk.len() > MAX_PART_BYTES {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        parts.insert(name, bytes);
    }
    Ok(parts)
}

/// The certificate as the API takes it (base64 DER), from a DER file or a PEM one.
fn certificate_base64(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.split_once("-----BEGIN CERTIFICATE-----") {
        Some((_, rest)) => {
            rest.split("-----END CERTIFICATE-----").next().unwrap_or_default().split_whitespace().collect()
        }
        None => STANDARD.encode(bytes),
    }
}

pub(super) fn text(parts: &HashMap<String, Vec<u8>>, name: &str) -> String {
    parts.get(name).map(|b| String::from_utf8_lossy(b).trim().to_owned()).unwrap_or_default()
}

#[post("/console/fairplay")]
async fn upload(session: SignedIn, vault: web::Data<SecretVault>, keys: web::Data<KeyStore>, form: Multipart) -> Page {
    session.require(Role::Admin)?;
    let parts = read_parts(form).await?;
    session.check_csrf(&text(&parts, "csrf"))?;
    let certificate = parts.get("certificate").filter(|b| !b.is_empty());
    let private_key = parts.get("private_key").filter(|b| !b.is_empty());
    let result = match (certificate, private_key) {
        (None, _) => Err(ClavisError::invalid("certificate", "choose the certificate file (.der or .cer)")),
        (_, None) => Err(ClavisError::invalid("private_key", "choose the private key file (.pem)")),
        (Some(certificate), Some(private_key)) => {
            let password = text(&parts, "private_key_password");
            let d_function = text(&parts, "d_function");
            let dask = text(&parts, "dask");
            let body = CredentialsBody {
                certificate: certificate_base64(certificate),
                private_key: String::from_utf8_lossy(private_key).into_owned(),
                private_key_password: (!password.is_empty()).then_some(password),
                ask: text(&parts, "ask"),
                d_function: (!d_function.is_empty()).then_some(d_function),
                dask: (!dask.is_empty()).then_some(dask),
            };
            save_credentials(&vault, &keys.public_url(), &session.tenant, body).await
        }
    };
    match result {
        Ok(view) => {
            let message = format!("Uploaded {} (SHA-1 {}). {}", view.subject, view.sha1, summary(&view));
            render(&session, &vault, Some((true, message)), StatusCode::OK).await
        }
        Err(e) if !matches!(e.code, ErrorCode::Internal | ErrorCode::DatabaseUnavailable) => {
            let field = e.field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default();
            let message = format!("Not uploaded: {} ({}): {field}{}", e.code.title(), e.code.code(), e.detail);
            render(&session, &vault, Some((false, message)), e.code.status()).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[post("/console/fairplay/{sha1}/delete")]
async fn delete(
    session: SignedIn,
    vault: web::Data<SecretVault>,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Page {
    session.require(Role::Admin)?;
    session.check_csrf(&form.csrf)?;
    let sha1 = path.into_inner().to_ascii_lowercase();
    if !vault.delete(session.tenant.id, SecretKind::FairplayCredentials, &sha1).await? {
        return Err(ClavisError::new(ErrorCode::FairplayNotConfigured, "no such FairPlay credential").into());
    }
    let message = format!("Deleted the credential {sha1}; SPCs made for its certificate are refused from now on.");
    render(&session, &vault, Some((true, message)), StatusCode::OK).await
}

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(fairplay).service(upload).service(delete);
}
