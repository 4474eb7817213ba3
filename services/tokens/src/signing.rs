//! Per-tenant token signing keys: HS256 secrets and Ed25519 (EdDSA) key pairs, several at a time so they can rotate.
//!
//! A tenant's first key is made on first use. New keys are added with `POST /api/v1/token-keys`; the newest active
//! key that Clavis can sign with is the *current* one (the token API signs with it), and every active key verifies,
//! so tokens signed with the previous key keep working until the tenant retires it. A tenant that signs its own
//! tokens gets the secret (or private key) once, when the key is made, or registers only an EdDSA public key.
//!
//! Keys are sealed at rest and held opened in a cache; an unknown `kid` reloads the tenant's keys (another instance
//! may have rotated) at most every `RELOAD_AFTER`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clavis_core::crypto;
use clavis_core::ids::TenantId;
use clavis_core::{ClavisError, ErrorCode, Platform, Result};
use jsonwebtoken::{Algorithm, EncodingKey};
use moka::future::Cache;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Serialize;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::entity::token_signing_keys;

const CACHE_TTL: Duration = Duration::from_secs(60);
/// An unknown `kid` reloads the tenant's keys (another instance may have rotated) at most this often.
const RELOAD_AFTER: Duration = Duration::from_secs(5);
const STATUS_ACTIVE: &str = "active";
const STATUS_RETIRED: &str = "retired";
/// Most active keys a tenant may hold (rotation needs two or three; more is a leak waiting to happen).
pub const MAX_ACTIVE_KEYS: usize = 10;

/// PKCS#8 v1 prefix of an Ed25519 private key: the 32-byte seed follows (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/// SubjectPublicKeyInfo prefix of an Ed25519 public key: the 32-byte key follows (RFC 8410).
const ED25519_SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum KeyAlgorithm {
    HS256,
    EdDSA,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::HS256 => "HS256",
            KeyAlgorithm::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<KeyAlgorithm> {
        match s {
            "HS256" => Some(KeyAlgorithm::HS256),
            "EdDSA" => Some(KeyAlgorithm::EdDSA),
            _ => None,
        }
    }
}

/// How a key checks a signature.
pub enum Verifier {
    Hmac(ring::hmac::Key),
    Ed25519([u8; 32]),
}

pub struct SigningKey {
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    /// Present when Clavis holds the secret or private key and can sign with it.
    pub encoding: Option<EncodingKey>,
    /// Ready for verification (building an HMAC key per request is measurable).
    pub verifier: Verifier,
}

impl SigningKey {
    /// Check `signature` over `signed`, constant-time for HMAC.
    pub fn verify(&self, signed: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Hmac(key) => ring::hmac::verify(key, signed, signature).is_ok(),
            Verifier::Ed25519(public) => ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
                .verify(signed, signature)
                .is_ok(),
        }
    }

    pub fn jwt_algorithm(&self) -> Algorithm {
        match self.algorithm {
            KeyAlgorithm::HS256 => Algorithm::HS256,
            KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        }
    }
}

pub struct TenantKeys {
    /// The newest active key Clavis can sign with: new tokens are signed with it.
    pub current: Arc<SigningKey>,
    pub by_kid: HashMap<String, Arc<SigningKey>>,
    loaded_at: Instant,
}

/// A key as listed (never its secret).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenKeyView {
    #[schema(example = "hs-3f2a9c0d1e4b")]
    pub kid: String,
    pub algorithm: KeyAlgorithm,
    /// `active` keys verify tokens; `retired` ones no longer do.
    #[schema(example = "active")]
    pub status: String,
    /// Whether Clavis holds the secret or private key (and so can mint tokens with it).
    pub can_sign: bool,
    /// Whether the token API signs new tokens with this key.
    pub current: bool,
    /// For EdDSA keys, the public key (PEM, SubjectPublicKeyInfo).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A newly made key with what the tenant needs to sign with it, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewTokenKey {
    #[serde(flatten)]
    pub key: TokenKeyView,
    /// HS256: the secret, 64 hex digits (what `openssl dgst -mac HMAC -macopt hexkey:` takes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_hex: Option<String>,
    /// EdDSA made by Clavis: the private key, PEM (PKCS#8).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

/// What to make with `POST /api/v1/token-keys`.
pub enum KeySpec {
    Hs256,
    /// A key pair made by Clavis.
    Ed25519Generated,
    /// A public key the tenant registers; Clavis verifies with it and cannot sign.
    Ed25519Public([u8; 32]),
}

/// A key as made: its algorithm, kid prefix, the sealed-to-be secret or private key, the Ed25519 public key.
type MadeKey = (KeyAlgorithm, &'static str, Option<Zeroizing<Vec<u8>>>, Option<[u8; 32]>);

pub struct SigningKeys {
    platform: Platform,
    cache: Cache<TenantId, Arc<TenantKeys>>,
}

fn seal_context(tenant_id: TenantId, kid: &str) -> String {
    format!("token_key/{tenant_id}/{kid}")
}

/// The signing-secret column, for master-key rotation (`clavis master-key rotate`).
pub const SEALED: clavis_core::rekey::SealedColumn = clavis_core::rekey::SealedColumn {
    table: "token_signing_keys",
    column: "secret_sealed",
    context_columns: &["tenant_id", "kid"],
    context: |row| {
        let tenant: uuid::Uuid = row.try_get("", "tenant_id")?;
        let kid: String = row.try_get("", "kid")?;
        Ok(format!("token_key/{tenant}/{kid}"))
    },
};

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The Ed25519 key in a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as OpenSSL, Node and Python write it.
pub fn parse_ed25519_public_pem(text: &str) -> Result<[u8; 32]> {
    use base64::Engine;
    let invalid =
        || ClavisError::invalid("public_key", "must be an Ed25519 public key in PEM (-----BEGIN PUBLIC KEY-----)");
    let body: String = text
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")
        .and_then(|rest| rest.trim_end().strip_suffix("-----END PUBLIC KEY-----"))
        .ok_or_else(invalid)?
        .split_whitespace()
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| invalid())?;
    let key = der.strip_prefix(&ED25519_SPKI_PREFIX[..]).ok_or_else(invalid)?;
    <[u8; 32]>::try_from(key).map_err(|_| invalid())
}

pub fn ed25519_public_pem(public: &[u8; 32]) -> String {
    pem("PUBLIC KEY", &[&ED25519_SPKI_PREFIX[..], public].concat())
}

fn row_to_key(tenant_id: TenantId, platform: &Platform, row: &token_signing_keys::Model) -> Result<SigningKey> {
    let algorithm = KeyAlgorithm::parse(&row.algorithm)
        .ok_or_else(|| ClavisError::internal("signing key", format!("unknown algorithm {:?}", row.algorithm)))?;
    let secret = if row.secret_sealed.is_empty() {
        None
    } else {
        Some(platform.master_key.open(&seal_context(tenant_id, &row.kid), &row.secret_sealed)?)
    };
    let (encoding, verifier) = match algorithm {
        KeyAlgorithm::HS256 => {
            let secret = secret.ok_or_else(|| ClavisError::internal("signing key", "HS256 key without secret"))?;
            (
                Some(EncodingKey::from_secret(&secret)),
                Verifier::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret)),
            )
        }
        KeyAlgorithm::EdDSA => {
            let public = row
                .public_key
                .as_deref()
                .and_then(|p| <[u8; 32]>::try_from(p).ok())
                .ok_or_else(|| ClavisError::internal("signing key", "EdDSA key without a 32-byte public key"))?;
            (secret.map(|pkcs8| EncodingKey::from_ed_der(&pkcs8)), Verifier::Ed25519(public))
        }
    };
    Ok(SigningKey { kid: row.kid.clone(), algorithm, encoding, verifier })
}

impl SigningKeys {
    pub fn new(platform: Platform) -> SigningKeys {
        SigningKeys { platform, cache: Cache::builder().max_capacity(100_000).time_to_live(CACHE_TTL).build() }
    }

    pub async fn for_tenant(&self, tenant_id: TenantId) -> Result<Arc<TenantKeys>> {
        if let Some(keys) = self.cache.get(&tenant_id).await {
            return Ok(keys);
        }
        self.cache.try_get_with(tenant_id, self.load_or_create(tenant_id)).await.map_err(|e| (*e).clone())
    }

    /// The active key named `kid` (the current key when the token names none), reloading once if this instance may
    /// not have seen it yet.
    pub async fn find(&self, tenant_id: TenantId, kid: Option<&str>) -> Result<Option<Arc<SigningKey>>> {
        let keys = self.for_tenant(tenant_id).await?;
        let Some(kid) = kid else { return Ok(Some(keys.current.clone())) };
        if let Some(key) = keys.by_kid.get(kid) {
            return Ok(Some(key.clone()));
        }
        if keys.loaded_at.elapsed() < RELOAD_AFTER {
            return Ok(None);
        }
        self.cache.invalidate(&tenant_id).await;
        Ok(self.for_tenant(tenant_id).await?.by_kid.get(kid).cloned())
    }

    async fn load_or_create(&self, tenant_id: TenantId) -> Result<Arc<TenantKeys>> {
        if let Some(keys) = self.load(tenant_id).await? {
            return Ok(keys);
        }
        self.insert(tenant_id, KeySpec::Hs256).await?;
        self.load(tenant_id).await?.ok_or_else(|| ClavisError::internal("signing keys", "created key not readable"))
    }

    async fn active_rows(&self, tenant_id: TenantId) -> Result<Vec<token_signing_keys::Model>> {
        Ok(token_signing_keys::Entity::find()
            .filter(token_signing_keys::Column::TenantId.eq(tenant_id.0))
            .filter(token_signing_keys::Column::Status.eq(STATUS_ACTIVE))
            .order_by_desc(token_signing_keys::Column::CreatedAt)
            .order_by_desc(token_signing_keys::Column::Kid)
            .all(&self.platform.db)
            .await?)
    }

    /// The tenant's active keys; `None` when it has none Clavis can sign with (a first one is then made).
    async fn load(&self, tenant_id: TenantId) -> Result<Option<Arc<TenantKeys>>> {
        let mut by_kid = HashMap::new();
        let mut current = None;
        for row in self.active_rows(tenant_id).await? {
            let key = Arc::new(row_to_key(tenant_id, &self.platform, &row)?);
            if key.encoding.is_some() {
                current.get_or_insert_with(|| key.clone());
            }
            by_kid.insert(row.kid, key);
        }
        Ok(current.map(|current| Arc::new(TenantKeys { current, by_kid, loaded_at: Instant::now() })))
    }

    /// Make a key. Returns it with the secret or private key the tenant signs with, when Clavis made one.
    pub async fn insert(&self, tenant_id: TenantId, spec: KeySpec) -> Result<NewTokenKey> {
        if self.active_rows(tenant_id).await?.len() >= MAX_ACTIVE_KEYS {
            return Err(ClavisError::new(
                ErrorCode::InvalidField,
                format!("a tenant may hold {MAX_ACTIVE_KEYS} active signing keys; retire one first"),
            ));
        }
        let made: MadeKey = match spec {
            KeySpec::Hs256 => {
                (KeyAlgorithm::HS256, "hs", Some(Zeroizing::new(crypto::random_array::<32>()?.to_vec())), None)
            }
            KeySpec::Ed25519Generated => {
                let seed = Zeroizing::new(crypto::random_array::<32>()?);
                let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&*seed)
                    .map_err(|e| ClavisError::internal("ed25519 key", e))?;
                let public = <[u8; 32]>::try_from(ring::signature::KeyPair::public_key(&pair).as_ref())
                    .map_err(|e| ClavisError::internal("ed25519 key", e))?;
                let pkcs8 = Zeroizing::new([&ED25519_PKCS8_PREFIX[..], &seed[..]].concat());
                (KeyAlgorithm::EdDSA, "ed", Some(pkcs8), Some(public))
            }
            KeySpec::Ed25519Public(public) => (KeyAlgorithm::EdDSA, "ed", None, Some(public)),
        };
        let (algorithm, prefix, secret, public_key) = made;
        let kid = format!("{prefix}-{}", hex::encode(crypto::random_array::<6>()?));
        let sealed = match &secret {
            Some(secret) => self.platform.master_key.seal(&seal_context(tenant_id, &kid), secret)?,
            None => Vec::new(),
        };
        let row = token_signing_keys::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(tenant_id.0),
            kid: Set(kid.clone()),
            algorithm: Set(algorithm.as_str().to_owned()),
            secret_sealed: Set(sealed),
            public_key: Set(public_key.map(|p| p.to_vec())),
            status: Set(STATUS_ACTIVE.to_owned()),
            created_at: Set(Utc::now()),
        }
        .insert(&self.platform.db)
        .await?;
        self.cache.invalidate(&tenant_id).await;
        tracing::info!(tenant_id = %tenant_id, kid, algorithm = algorithm.as_str(), "token signing key created");
        let can_sign = secret.is_some();
        let view = TokenKeyView {
            kid: row.kid,
            algorithm,
            status: row.status,
            can_sign,
            current: can_sign,
            public_key: public_key.as_ref().map(ed25519_public_pem),
            created_at: row.created_at,
        };
        let (secret_hex, private_key) = match (algorithm, &secret) {
            (KeyAlgorithm::HS256, Some(secret)) => (Some(hex::encode(&**secret)), None),
            (KeyAlgorithm::EdDSA, Some(pkcs8)) => (None, Some(pem("PRIVATE KEY", pkcs8))),
            _ => (None, None),
        };
        Ok(NewTokenKey { key: view, secret_hex, private_key })
    }

    /// Every key of the tenant, newest first (never the secrets).
    pub async fn list(&self, tenant_id: TenantId) -> Result<Vec<TokenKeyView>> {
        let current = self.for_tenant(tenant_id).await?.current.kid.clone();
        let rows = token_signing_keys::Entity::find()
            .filter(token_signing_keys::Column::TenantId.eq(tenant_id.0))
            .order_by_desc(token_signing_keys::Column::CreatedAt)
            .order_by_desc(token_signing_keys::Column::Kid)
            .all(&self.platform.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let public_key = row.public_key.as_deref().and_then(|p| <[u8; 32]>::try_from(p).ok());
                Ok(TokenKeyView {
                    current: row.kid == current && row.status == STATUS_ACTIVE,
                    can_sign: !row.secret_sealed.is_empty(),
                    algorithm: KeyAlgorithm::parse(&row.algorithm).unwrap_or(KeyAlgorithm::HS256),
                    public_key: public_key.as_ref().map(ed25519_public_pem),
                    kid: row.kid,
                    status: row.status,
                    created_at: row.created_at,
                })
            })
            .collect()
    }

    /// Retire a key: tokens signed with it stop verifying at once here and within `CACHE_TTL` elsewhere. The last key
    /// Clavis can sign with cannot be retired (the token API would have nothing to sign with); add another first.
    pub async fn retire(&self, tenant_id: TenantId, kid: &str) -> Result<()> {
        let rows = self.active_rows(tenant_id).await?;
        let Some(row) = rows.iter().find(|r| r.kid == kid) else {
            return Err(ClavisError::new(ErrorCode::TokenKeyUnknown, format!("no active signing key {kid:?}")));
        };
        let signers = rows.iter().filter(|r| !r.secret_sealed.is_empty()).count();
        if !row.secret_sealed.is_empty() && signers <= 1 {
            return Err(ClavisError::new(
                ErrorCode::InvalidField,
                "this is the only key Clavis can sign with; add a new key before retiring it",
            ));
        }
        let mut active: token_signing_keys::ActiveModel = row.clone().into();
        active.status = Set(STATUS_RETIRED.to_owned());
        active.update(&self.platform.db).await?;
        self.cache.invalidate(&tenant_id).await;
        tracing::info!(tenant_id = %tenant_id, kid, "token signing key retired");
        Ok(())
    }
}
