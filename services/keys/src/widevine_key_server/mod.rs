//! The Widevine key-server API that Shaka Packager's `--key_server_url` speaks: `POST /key-server/widevine`.
//!
//! The packager sends `{"request": base64(JSON), "signature": base64, "signer": name}`. Clavis finds the tenant from
//! the signer name (each name belongs to one tenant, see [`signers`]), checks the signature over the exact request
//! bytes, reads the request (content id, tracks, protection scheme, key-rotation periods) and answers
//! `{"response": base64(JSON)}` with one key per track (and per crypto period when rotating), each with its Widevine
//! PSSH data. The keys are slots of the content's one key set ([`crate::KeySlot`]): the same request always gets the
//! same keys, and the ClearKey license path and `GET /api/v1/keys/{content_id}` see them.
//!
//! Refusals follow Google's key server: HTTP 200 with a non-OK `status` inside the response (Shaka Packager reads
//! only that, and prints the body; an HTTP error would reach it as a bare curl failure), plus the catalog code in
//! `X-Clavis-Error` and an `error` object beside `response` for people and monitoring. `INTERNAL_ERROR` is reserved
//! for trouble on Clavis's side, because it is the one status the packager retries.

pub mod request;
pub mod signature;
pub mod signers;

use actix_web::{HttpResponse, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clavis_core::error::ERROR_HEADER;
use clavis_core::ids::ContentId;
use clavis_core::{ClavisError, ErrorCode, Platform};
use clavis_tenant::{Directory, SecretVault};
use serde_json::{Value, json};

pub use request::{Envelope, KeyRequest, Malformed, Status, parse_envelope, parse_key_request};
pub use signature::{SignerKey, aes_signature};

use crate::model::{ContentKey, KeySource};
use crate::store::{KeySlot, KeyStore};
use crate::widevine_pssh::WidevinePsshData;

/// A refusal: the status the packager reads and the catalog error behind it.
struct Refusal {
    status: Status,
    error: ClavisError,
}

impl Refusal {
    fn new(status: Status, code: ErrorCode, detail: impl Into<String>) -> Refusal {
        Refusal { status, error: ClavisError::new(code, detail.into()) }
    }
}

impl From<Malformed> for Refusal {
    fn from(m: Malformed) -> Refusal {
        Refusal::new(m.status, ErrorCode::WidevineKeyRequestMalformed, m.detail)
    }
}

impl From<ClavisError> for Refusal {
    fn from(error: ClavisError) -> Refusal {
        let status = match error.code {
            ErrorCode::Internal | ErrorCode::DatabaseUnavailable => Status::InternalError,
            ErrorCode::TenantSuspended => Status::AccessDenied,
            _ => Status::MalformedRequest,
        };
        Refusal { status, error }
    }
}

/// Answer a Widevine key request (Shaka Packager's `--key_server_url`).
///
/// The body is `{"request": "<base64 JSON>", "signature": "<base64>", "signer": "<name>"}`; the answer is
/// `{"response": "<base64 JSON>"}` whose JSON has `status` (`OK`, or `SIGNATURE_FAILED`, `ACCESS_DENIED`,
/// `CONTENT_ID_MISSING`, `TRACK_TYPE_MISSING`, `TRACK_TYPE_UNKNOWN`, `MALFORMED_REQUEST`,
/// `NO_REQUESTED_CRYPTO_PERIODS`, `INTERNAL_ERROR`) and, when OK, `tracks`: per requested track (and per crypto
/// period when the request asks for key rotation) `type`, `key_id`, `key`, `pssh` and `crypto_period_index`.
/// Refusals also carry the catalog code in `X-Clavis-Error` and an `error` object beside `response`.
#[utoipa::path(
    post, path = "/key-server/widevine", tag = "widevine",
    request_body(content = String, content_type = "application/json",
        description = "{\"request\": base64(JSON key request), \"signature\": base64, \"signer\": name}"),
    responses(
        (status = 200, description = "Keys (status OK), or a refusal with a non-OK status and X-Clavis-Error: \
            3020 signature invalid, 3021 signer unknown, 3022 request malformed, 2003 tenant suspended, 1000/1001 \
            internal (status INTERNAL_ERROR, which the packager retries)", body = Object),
        (status = 413, description = "1012 body too large", body = clavis_core::error::Problem),
    )
)]
#[post("/key-server/widevine")]
pub async fn key_server(
    platform: web::Data<Platform>,
    vault: web::Data<SecretVault>,
    directory: web::Data<Directory>,
    store: web::Data<KeyStore>,
    body: web::Bytes,
) -> HttpResponse {
    match serve(&platform, &vault, &directory, &store, &body).await {
        Ok(answer) => HttpResponse::Ok().json(json!({ "response": STANDARD.encode(answer.to_string()) })),
        Err(refusal) => {
            let code = refusal.error.code;
            tracing::info!(error.code = code.code(), status = refusal.status.as_str(), "widevine key request refused");
            let inner = json!({ "status": refusal.status.as_str() });
            HttpResponse::Ok().insert_header((ERROR_HEADER, code.code_str())).json(json!({
                "response": STANDARD.encode(inner.to_string()),
                "error": { "code": code.code(), "title": code.title(), "detail": refusal.error.detail },
            }))
        }
    }
}

/// One straight path: read the envelope, find the signer's tenant, verify, read the request, get the keys, answer.
async fn serve(
    platform: &Platform,
    vault: &SecretVault,
    directory: &Directory,
    store: &KeyStore,
    body: &[u8],
) -> Result<Value, Refusal> {
    let envelope = parse_envelope(body)?;
    if envelope.signer.is_empty() || envelope.signature.is_empty() {
        return Err(Refusal::new(
            Status::AccessDenied,
            ErrorCode::WidevineSignerUnknown,
            "the request is not signed; run the packager with --signer and --aes_signing_key/--aes_signing_iv \
             (or --rsa_signing_key_path)",
        ));
    }
    let unknown = || {
        Refusal::new(
            Status::AccessDenied,
            ErrorCode::WidevineSignerUnknown,
            format!(
                "no tenant has registered the Widevine signer {:?}",
                envelope.signer.chars().take(64).collect::<String>()
            ),
        )
    };
    let tenant_id = signers::owner(platform, &envelope.signer).await?.ok_or_else(unknown)?;
    let signer = signers::load(vault, tenant_id, &envelope.signer).await?.ok_or_else(unknown)?;
    if !signer.verify(&envelope.request, &envelope.signature) {
        return Err(Refusal::new(
            Status::SignatureFailed,
            ErrorCode::WidevineSignatureInvalid,
            format!("the signature does not match signer {:?}'s key", envelope.signer),
        ));
    }
    directory.get(tenant_id).await?.ensure_active()?;

    let request = parse_key_request(&envelope.request)?;
    let content_id = ContentId::from_wire_bytes(&request.content_id).map_err(|e| {
        Refusal::new(
            Status::MalformedRequest,
            ErrorCode::WidevineKeyRequestMalformed,
            format!("content_id: {}", e.detail),
        )
    })?;
    let periods: Vec<Option<u32>> = match request.rotation {
        None => vec![None],
        Some(rotation) => rotation.periods().map(Some).collect(),
    };
    // Period by period, tracks in request order: Shaka Packager reads the answer in exactly this order.
    let slots: Vec<KeySlot> = periods
        .iter()
        .flat_map(|&period| request.tracks.iter().map(move |&track_type| KeySlot { track_type, period }))
        .collect();
    let (keys, _) = store.ensure_slots(tenant_id, &content_id, &slots, KeySource::Random).await?;
    Ok(answer(&envelope.signer, &request, &slots, &keys))
}

fn answer(signer: &str, request: &KeyRequest, slots: &[KeySlot], keys: &[ContentKey]) -> Value {
    let tracks: Vec<Value> = slots
        .iter()
        .zip(keys)
        .map(|(slot, key)| {
            let pssh = WidevinePsshData {
                key_ids: vec![key.kid],
                provider: Some(signer.to_owned()),
                content_id: Some(request.content_id.clone()),
                crypto_period_index: slot.period,
                protection_scheme: Some(request.scheme.fourcc()),
                crypto_period_seconds: slot.period.and(request.rotation.and_then(|r| r.seconds)),
                ..WidevinePsshData::default()
            };
            let mut track = json!({
                "type": slot.track_type.as_str(),
                "key_id": STANDARD.encode(key.kid.0),
                "key": STANDARD.encode(*key.key),
                "pssh": [{ "drm_type": "WIDEVINE", "data": STANDARD.encode(pssh.encode()) }],
            });
            if let (Some(period), Value::Object(fields)) = (slot.period, &mut track) {
                fields.insert("crypto_period_index".into(), json!(period));
            }
            track
        })
        .collect();
    json!({ "status": Status::Ok.as_str(), "tracks": tracks })
}
