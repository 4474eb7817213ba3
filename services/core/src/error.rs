//! The error catalog: the single source of every error Clavis can answer.
//!
//! Each entry has a stable numeric code, an HTTP status, a title and a remedy line. The same entry renders as
//! `application/problem+json` for the JSON APIs, as the `X-Clavis-Error` header (license endpoints read it from
//! browsers), as the docs page and as the console's error-code browser. Codes are promises to tenants: never renumber
//! an entry, only add new ones. Ranges: 1xxx request and platform, 2xxx tenants and authentication, 3xxx keys,
//! 4xxx tokens and policy, 5xxx licenses.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// The header that carries the numeric catalog code on every error response.
pub const ERROR_HEADER: HeaderName = HeaderName::from_static("x-clavis-error");

macro_rules! catalog {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:ident, $title:literal, $remedy:literal; )*) => {
        /// Every error Clavis can answer, with its stable numeric code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// The whole catalog in code order, for the docs page and the console's browser.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            pub const fn code(self) -> u16 {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// The code as text, without allocating (metric labels, headers).
            pub const fn code_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => stringify!($code), )* }
            }

            pub fn status(self) -> StatusCode {
                match self { $( ErrorCode::$variant => StatusCode::$status, )* }
            }

            pub const fn title(self) -> &'static str {
                match self { $( ErrorCode::$variant => $title, )* }
            }

            pub const fn remedy(self) -> &'static str {
                match self { $( ErrorCode::$variant => $remedy, )* }
            }

            /// A stable snake-case-free identifier (the variant name) for logs and machine matching.
            pub const fn name(self) -> &'static str {
                match self { $( ErrorCode::$variant => stringify!($variant), )* }
            }
        }
    };
}

catalog! {
    // 1xxx: the request itself and the platform
    Internal = 1000, INTERNAL_SERVER_ERROR, "Internal error",
        "Retry later; if it persists, report the request id (X-Request-Id) to the platform operator.";
    DatabaseUnavailable = 1001, SERVICE_UNAVAILABLE, "Database unavailable",
        "The platform cannot reach its database; retry with backoff and alert the operator.";
    RouteNotFound = 1002, NOT_FOUND, "No such endpoint",
        "Check the path and method against the API reference at /api-docs/.";
    MethodNotAllowed = 1003, METHOD_NOT_ALLOWED, "Method not allowed",
        "Use the HTTP method the API reference lists for this path.";
    MalformedJson = 1010, BAD_REQUEST, "Malformed JSON",
        "Send a syntactically valid JSON document in the request body.";
    InvalidField = 1011, UNPROCESSABLE_ENTITY, "Invalid field",
        "Correct the field named in `field` (see `detail` for what it must look like).";
    PayloadTooLarge = 1012, PAYLOAD_TOO_LARGE, "Request body too large",
        "Send a smaller body; the limit for this endpoint is given in `detail`.";
    UnsupportedMediaType = 1013, UNSUPPORTED_MEDIA_TYPE, "Unsupported media type",
        "Send the body with the Content-Type the endpoint expects (usually application/json).";
    MalformedRequest = 1014, BAD_REQUEST, "Malformed request",
        "Check the path parameters and query string against the API reference.";
    RateLimited = 1020, TOO_MANY_REQUESTS, "Too many requests",
        "Slow down and retry after the number of seconds in Retry-After.";

    // 2xxx: tenants and authentication
    ApiKeyMissing = 2001, UNAUTHORIZED, "API key missing",
        "Send the tenant API key as `Authorization: Bearer <api_key>`.";
    ApiKeyInvalid = 2002, UNAUTHORIZED, "API key invalid",
        "The key is unknown or revoked; create a new key in the console or with `clavis tenant create`.";
    TenantSuspended = 2003, FORBIDDEN, "Tenant suspended",
        "This account is suspended by the platform operator; contact support.";
    TenantNotFound = 2004, NOT_FOUND, "Tenant not found",
        "Check the site id; it is shown in the console and was printed by `clavis tenant create`.";
    TenantExists = 2005, CONFLICT, "Tenant already exists",
        "An account with this email already exists; sign in instead or use another email.";
    NotSignedIn = 2020, UNAUTHORIZED, "Not signed in",
        "Sign in to the console at /login; sessions end after 12 hours without use or when you log out.";
    CsrfRejected = 2021, FORBIDDEN, "Form token missing or wrong",
        "Reload the page and submit the form again; forms only work from the page Clavis served.";
    LoginFailed = 2022, UNAUTHORIZED, "Email or password wrong",
        "Check the email and password; after repeated failures sign-in is locked for a while.";
    EmailNotVerified = 2023, FORBIDDEN, "Email address not verified",
        "Open the link in the verification mail, or ask for a new one on the sign-in page.";
    AccountLocked = 2024, TOO_MANY_REQUESTS, "Sign-in temporarily locked",
        "Too many failed sign-ins for this account or address; wait 15 minutes or reset the password.";
    LinkInvalid = 2025, BAD_REQUEST, "Link invalid or expired",
        "The link was already used or has expired; ask for a new mail.";
    RoleForbidden = 2026, FORBIDDEN, "Your role does not allow this",
        "Ask an owner or admin of the account to do it, or to give you a role that may.";
    SignUpLimited = 2027, TOO_MANY_REQUESTS, "Too many sign-ups",
        "Too many accounts were created from this address; wait an hour and try again.";
    ApiKeyNotFound = 2028, NOT_FOUND, "API key not found",
        "The key does not exist in this account; reload the API keys page.";
    MemberExists = 2029, CONFLICT, "Member already exists",
        "That email already has an account; each email belongs to one account.";
    MemberNotFound = 2030, NOT_FOUND, "Member not found",
        "The member is not in this account (or was removed); reload the team page.";

    // 3xxx: contents and keys
    ContentNotFound = 3001, NOT_FOUND, "Content not found",
        "Create the content's keys first with POST /api/v1/keys.";
    KeysAlreadyExist = 3002, CONFLICT, "Content already has keys",
        "Import keys only for content that has none; read the existing keys with GET /api/v1/keys/{content_id}.";
    KidInUse = 3003, CONFLICT, "Key id already in use",
        "Each KID belongs to one content of a tenant; import a different KID or use the content that owns it.";
    KeySeedNotSet = 3004, CONFLICT, "Key seed not set",
        "Set a PlayReady key seed for the tenant before asking for `\"source\": \"key_seed\"`.";
    CpixMalformed = 3010, UNPROCESSABLE_ENTITY, "CPIX document malformed",
        "Send a well-formed CPIX document (root `CPIX` in namespace urn:dashif:org:cpix) within the size limit; the detail names the element or attribute at fault.";
    CpixInvalid = 3011, UNPROCESSABLE_ENTITY, "CPIX request invalid",
        "Correct the CPIX document as the detail says (for SPEKE v2: CPIX@contentId, ContentKey@commonEncryptionScheme and ContentKeyUsageRule@intendedTrackType are required).";
    CpixVersionUnsupported = 3012, UNPROCESSABLE_ENTITY, "CPIX or SPEKE version unsupported",
        "SPEKE v2 requests must be CPIX@version=\"2.3\" with X-Speke-Version: 2.0; older packagers use /speke/v1.0/copyProtection.";
    CpixRecipientRejected = 3013, UNPROCESSABLE_ENTITY, "CPIX recipient certificate rejected",
        "Name recipients with an X.509 certificate holding an RSA key of at least 2048 bits, signed with SHA-256 or stronger.";
    CpixKeyConflict = 3014, CONFLICT, "CPIX key differs from the stored key",
        "A ContentKey in the document carries a value for a KID that already has a different key; leave the value out to receive the stored key.";
    CpixSignatureInvalid = 3015, UNPROCESSABLE_ENTITY, "CPIX signature invalid",
        "A ds:Signature in the document does not verify; `detail` names the signature, the element it covers and whether the digest (content changed after signing) or the SignatureValue (SignedInfo changed or wrong key) failed. Sign again after the last change, or send the document unsigned.";
    CpixSignatureUnsupported = 3016, UNPROCESSABLE_ENTITY, "CPIX signature algorithm unsupported",
        "Sign with RSA PKCS#1 v1.5 (rsa-sha256/384/512) or ECDSA (P-256/384/521), SHA-256/384/512 digests, C14N 1.0/1.1 or exclusive C14N, enveloped-signature, references to the document or to an element id, and the signer certificate in KeyInfo/X509Data.";
    WidevineSignatureInvalid = 3020, FORBIDDEN, "Widevine key request signature invalid",
        "Sign with the key registered for the signer: the packager's --aes_signing_key and --aes_signing_iv (or --rsa_signing_key_path) must match PUT /api/v1/widevine/signers/{name}.";
    WidevineSignerUnknown = 3021, FORBIDDEN, "Widevine signer unknown",
        "Register the signer the packager names (--signer) with PUT /api/v1/widevine/signers/{name}, and sign every key request.";
    WidevineKeyRequestMalformed = 3022, BAD_REQUEST, "Widevine key request malformed",
        "Send what Shaka Packager sends: {\"request\": base64 JSON, \"signature\": base64, \"signer\": name}, the request naming content_id and tracks; `detail` names the fault.";
    WidevineSignerTaken = 3023, CONFLICT, "Widevine signer name taken",
        "Key requests name only the signer, so each signer name belongs to one tenant platform-wide; choose another name.";
    WidevineSignerNotFound = 3024, NOT_FOUND, "Widevine signer not found",
        "List the tenant's signers with GET /api/v1/widevine/signers.";

    // 4xxx: tokens and policy
    TokenMissing = 4001, UNAUTHORIZED, "License token missing",
        "Send the token in the X-Clavis-Token header or the `token` query parameter.";
    TokenMalformed = 4002, UNAUTHORIZED, "License token malformed",
        "Send the token exactly as the token API returned it (a JWT with three base64url parts).";
    TokenSignatureInvalid = 4003, UNAUTHORIZED, "License token signature invalid",
        "Sign the token with the tenant's current signing key, or mint it with POST /api/v1/tokens.";
    TokenKeyUnknown = 4004, UNAUTHORIZED, "Token signing key unknown",
        "The JWT `kid` names no active signing key of this tenant; use a current key id.";
    TokenExpired = 4005, UNAUTHORIZED, "License token expired",
        "Mint a fresh token; tokens are valid only until `exp` (plus the tenant's clock-skew window).";
    TokenNotYetValid = 4006, UNAUTHORIZED, "License token not yet valid",
        "The token's `nbf`/`iat` is in the future; check the clock of the system that signed it.";
    TokenIssuerUnknown = 4007, UNAUTHORIZED, "Token issuer unknown",
        "The token's `iss` must be the tenant's site id.";
    TokenContentMismatch = 4008, FORBIDDEN, "Token is for another content",
        "Mint the token for the content being played (`cid` must match the requested keys' content).";
    TokenDrmMismatch = 4009, FORBIDDEN, "Token is for another DRM",
        "The token's `drm` claim limits it to one DRM system; mint a token without it or for this DRM.";
    PolicyInvalid = 4010, UNPROCESSABLE_ENTITY, "Policy invalid",
        "Correct the policy field named in `field`; see the policy reference in the API docs.";
    TokenReplayed = 4011, FORBIDDEN, "License token already used",
        "The token is single use (its policy says so, or its format requires it) and was already used for a license; mint a new token per license request.";
    TokenFormatNotEnabled = 4012, NOT_FOUND, "Token format not configured",
        "The tenant has not configured this token format (PallyCon, DRMtoday or Axinom); set its secrets under /api/v1/integrations first.";
    IntegrationInvalid = 4013, UNPROCESSABLE_ENTITY, "Integration settings invalid",
        "Correct the integration field named in `field` (site ids are 4 capital letters, keys have the documented length).";
    IssuerTaken = 4014, CONFLICT, "Issuer already claimed",
        "Another tenant already uses this site id, merchant or key id for its tokens; each belongs to one tenant.";

    // 5xxx: licenses
    LicenseRequestMalformed = 5001, BAD_REQUEST, "License request malformed",
        "Pass the CDM's license message to the license endpoint unchanged as the request body.";
    KidNotInContent = 5002, FORBIDDEN, "Requested key id not in content",
        "The license request asked for a KID that is not a key of the token's content; check what the content was packaged with.";
    OriginNotAllowed = 5003, FORBIDDEN, "Origin not allowed",
        "Add the player's origin to the tenant's allowed origins for license requests.";
    PersistenceNotAllowed = 5004, FORBIDDEN, "Persistent license not allowed",
        "The policy does not allow persistent (offline) licenses; request a temporary session or change the policy.";
    ContentHasNoKeys = 5005, NOT_FOUND, "Content has no keys",
        "Create the content's keys with POST /api/v1/keys before requesting licenses.";
    TrackNotAllowed = 5006, FORBIDDEN, "Track type not allowed",
        "The policy's `allowed_tracks` does not include the track type of a requested key; request only allowed tracks or widen the tenant's policy.";
    ClientNotAllowed = 5007, FORBIDDEN, "Client address not allowed",
        "The policy's `allowed_client_networks` does not include the player's IP address.";
    PolicyExpired = 5008, FORBIDDEN, "Policy expired",
        "The policy's `expires_at` has passed; no more licenses are issued under it.";
    FairplaySpcMalformed = 5010, BAD_REQUEST, "FairPlay SPC malformed",
        "Post the SPC the player produced, unchanged (raw bytes, base64, or an `spc=<base64>` form field); `detail` says what did not parse.";
    FairplayCertificateUnknown = 5011, BAD_REQUEST, "FairPlay certificate unknown",
        "The SPC was made for a certificate the tenant has not uploaded (it names certificates by SHA-1); serve the player the certificate from /license/fairplay/certificate/{site_id} or upload the one it uses.";
    FairplaySpcUndecryptable = 5012, BAD_REQUEST, "FairPlay SPC key undecryptable",
        "The SPC key does not decrypt with the private key of the certificate it names: the SPC is corrupt or was made for another key pair.";
    FairplayIntegrityFailed = 5013, BAD_REQUEST, "FairPlay SPC integrity check failed",
        "The [SK..R1] integrity value does not match: check the ASk and the D function of the uploaded credentials (development credentials use `apple-sample`), or the SPC was tampered with.";
    FairplayNotConfigured = 5014, NOT_FOUND, "FairPlay not configured",
        "Upload the FairPlay certificate, private key and ASk with PUT /api/v1/fairplay/credentials first.";
    FairplayCredentialsInvalid = 5015, UNPROCESSABLE_ENTITY, "FairPlay credentials invalid",
        "Correct the field named in `field`: a base64 DER certificate with an RSA 1024/2048 key, its PEM private key (and password when encrypted), a 32-hex ASk, and d_function apple-sample or fixed (with a 32-hex dask).";
    CallbackNotEnabled = 5020, NOT_FOUND, "Callback mode not enabled",
        "The tenant has no callback settings, or their mode is `token`; set them with PUT /api/v1/integrations/callback and mode `callback`.";
    CallbackSettingsInvalid = 5021, UNPROCESSABLE_ENTITY, "Callback settings invalid",
        "Correct the field named in `field`: an https URL (http only where the operator allows private targets), a shared secret of at least 32 bytes in base64 (or omit it to have one generated), timeout_ms 100 to 2000.";
    CallbackTargetForbidden = 5022, UNPROCESSABLE_ENTITY, "Callback URL names a forbidden address",
        "The URL is a loopback, private, link-local, CGNAT, multicast, unspecified or cloud-metadata address; use your backend's public address (the operator may allow private targets with callback_allow_private_networks).";
    CallbackAddressForbidden = 5023, BAD_GATEWAY, "Callback host resolves to a forbidden address",
        "The callback host's DNS answer holds only loopback, private, link-local, CGNAT, multicast, unspecified or cloud-metadata addresses; point the name at your backend's public address.";
    CallbackUnreachable = 5024, BAD_GATEWAY, "Callback backend unreachable",
        "The callback host did not resolve, refused the connection or failed the TLS handshake; check the URL and that the backend is up with a certificate for that name.";
    CallbackTimeout = 5025, GATEWAY_TIMEOUT, "Callback backend too slow",
        "The backend did not answer within the callback's timeout_ms (at most 2 s, connection included); answer faster or raise timeout_ms.";
    CallbackStatusRefused = 5026, BAD_GATEWAY, "Callback backend answered with an error status",
        "The backend answered a status other than 2xx (redirects are not followed); answer 200 with the signed decision, or `{\"allow\": false}` to refuse.";
    CallbackAnswerMalformed = 5027, BAD_GATEWAY, "Callback answer malformed",
        "Answer JSON `{\"allow\": true, \"nonce\": ..., \"policy\": {...}}` (or `{\"allow\": false, \"nonce\": ..., \"reason\": ...}`) with X-Clavis-Timestamp and X-Clavis-Signature headers; see docs/callback.md.";
    CallbackSignatureInvalid = 5028, BAD_GATEWAY, "Callback answer signature invalid",
        "Sign the answer as Clavis signs the request: hex HMAC-SHA256 with the shared secret over `timestamp + \".\" + body`, in X-Clavis-Signature, the Unix timestamp in X-Clavis-Timestamp.";
    CallbackNonceMismatch = 5029, BAD_GATEWAY, "Callback answer nonce wrong or missing",
        "Echo the `nonce` of the request Clavis sent in the answer's `nonce` field; each request has a fresh one.";
    CallbackDenied = 5030, FORBIDDEN, "Callback backend refused the license",
        "Your backend answered `allow: false`; its `reason` is in `detail`.";
    CallbackValueMalformed = 5031, BAD_REQUEST, "Callback session value malformed",
        "Send `X-Clavis-Callback: <site_id>.<session>` (or `?callback=`): the tenant's four-letter site id, a dot, and 1 to 1024 printable ASCII characters.";
    DeviceRegistrationInvalid = 5040, UNPROCESSABLE_ENTITY, "Device registration invalid",
        "Send `device_id` (1 to 128 characters of letters, digits, `-`, `_`, `.`) and `public_key`, a public P-256 JWK (kty EC, crv P-256, x, y; never `d`); `detail` says what is wrong.";
    DeviceLimitReached = 5041, FORBIDDEN, "Device limit reached",
        "The user already has as many registered devices as the policy's `max_devices` allows; remove one with DELETE /api/v1/devices/{device_id} first.";
    DeviceNotFound = 5042, NOT_FOUND, "Device not found",
        "No device with this id is registered for the tenant; register it with POST /license/devices.";
    DeviceAlreadyRegistered = 5043, CONFLICT, "Device already registered",
        "This device id is registered with another key or for another user; reset the device (which revokes its key) before registering a new key, or use a new random device id.";
    DeviceBundleInvalid = 5044, BAD_REQUEST, "Device license bundle invalid",
        "The bundle is not a compact JWS signed by the tenant's device-license key (or was altered); fetch a fresh bundle.";
    DeviceBundleExpired = 5045, FORBIDDEN, "Device license bundle expired",
        "The bundle's `exp` has passed; ask the tenant backend for a new bundle.";
    DeviceBundleRevoked = 5046, FORBIDDEN, "Device license bundle revoked",
        "The bundle was made for a key generation of the device that was since reset; register the device's new key and fetch new bundles.";
    DeviceBundleWrongDevice = 5047, FORBIDDEN, "Device license bundle for another device",
        "The bundle names another device than the one presenting it; each device must use bundles made for it.";
    DeviceProofInvalid = 5048, UNAUTHORIZED, "Device proof invalid",
        "Sign the reset request as a compact JWS (ES256) with the device's registered private key, with payload {\"device_id\", \"action\": \"reset\", \"iat\"} within five minutes of now.";
    DeviceBundleRequestInvalid = 5049, UNPROCESSABLE_ENTITY, "Device bundle request invalid",
        "Send `content_ids` (1 to 64 content ids with keys) and optionally `policy`; the device must have an active key; `detail` says what is wrong.";
    DeviceBundleNotFound = 5050, NOT_FOUND, "Device license bundle not found",
        "No bundle was made for this device and content; create one with POST /api/v1/devices/{device_id}/bundles.";
    // 506x: license rules that remember (seed documents 000, 002, 004)
    LicenseRequestReplayed = 5060, FORBIDDEN, "License request already used",
        "Each license request message is used once; let the DRM client make a new request (a new session) instead of resending a recorded one.";
    LicenseRequestTimeOutOfWindow = 5061, FORBIDDEN, "License request time outside the window",
        "The request's timestamp is further from the server clock than the tenant's message_time_tolerance_seconds; correct the device clock.";
    ClientStateRolledBack = 5062, FORBIDDEN, "Client state rolled back",
        "The device's client state counter is lower than one it showed before (a restored backup or a cloned device); the request is flagged in the license log. Reset the device's DRM state and register it again.";
    StreamLimitReached = 5063, FORBIDDEN, "Concurrent stream limit reached",
        "The user already plays as many streams as the policy's max_concurrent_streams; stop one (its slot frees when its renewals stop) or end it with DELETE /api/v1/users/{user_id}/streams/{stream_id}.";
    StreamNotFound = 5064, NOT_FOUND, "Stream not found",
        "List the user's streams with GET /api/v1/users/{user_id}/streams.";
    // 507x: license proxies to the tenant's upstream Widevine and PlayReady license servers (seed document 004)
    UpstreamNotConfigured = 5070, NOT_FOUND, "License proxy not configured",
        "Set the upstream license server with PUT /api/v1/integrations/widevine or /api/v1/integrations/playready.";
    UpstreamSettingsInvalid = 5071, UNPROCESSABLE_ENTITY, "License proxy settings invalid",
        "Correct the field named in `field`.";
    UpstreamTargetForbidden = 5072, UNPROCESSABLE_ENTITY, "Upstream URL names a forbidden address",
        "Use a public https URL; loopback, private, link-local and metadata addresses are refused unless the operator allows private networks.";
    UpstreamAddressForbidden = 5073, BAD_GATEWAY, "Upstream host resolves to a forbidden address",
        "The upstream license server's name resolves to a loopback, private, link-local or metadata address; fix its DNS or use another host.";
    UpstreamUnreachable = 5074, BAD_GATEWAY, "Upstream license server unreachable",
        "Clavis could not connect to the upstream license server after its retries; check that it is up and reachable.";
    UpstreamTimeout = 5075, GATEWAY_TIMEOUT, "Upstream license server too slow",
        "The upstream license server did not answer within the proxy's time budget; check its health or raise timeout_ms.";
    UpstreamRefused = 5076, BAD_GATEWAY, "Upstream license server refused",
        "The upstream license server answered an error; `detail` carries its status. Check the provider, signing key and the challenge.";
    UpstreamAnswerMalformed = 5077, BAD_GATEWAY, "Upstream answer malformed",
        "The upstream license server's answer is not what its protocol says (or larger than 256 KiB).";
    WidevineChallengeMalformed = 5080, BAD_REQUEST, "Widevine challenge malformed",
        "Send the CDM's license request (the `message` of the EME session) as the raw request body.";
    PlayReadyChallengeMalformed = 5081, BAD_REQUEST, "PlayReady challenge malformed",
        "Send the PlayReady SOAP AcquireLicense challenge (or the EME PlayReadyKeyMessage that wraps it) as the body.";
}

impl ErrorCode {
    pub fn by_code(code: u16) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|entry| entry.code() == code)
    }

    /// The problem `type` URI: a relative reference to the error's page in the docs served by Clavis.
    pub fn type_uri(self) -> String {
        format!("/errors/{}", self.code())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.title())
    }
}

/// The one error type every Clavis function returns.
#[derive(Debug, Clone)]
pub struct ClavisError {
    pub code: ErrorCode,
    pub detail: Cow<'static, str>,
    /// The request field at fault, for validation errors.
    pub field: Option<Cow<'static, str>>,
}

pub type Result<T, E = ClavisError> = std::result::Result<T, E>;

impl ClavisError {
    pub fn new(code: ErrorCode, detail: impl Into<Cow<'static, str>>) -> Self {
        ClavisError { code, detail: detail.into(), field: None }
    }

    /// A validation error naming the field at fault.
    pub fn field(code: ErrorCode, field: impl Into<Cow<'static, str>>, detail: impl Into<Cow<'static, str>>) -> Self {
        ClavisError { code, detail: detail.into(), field: Some(field.into()) }
    }

    /// An invalid-field error (1011).
    pub fn invalid(field: impl Into<Cow<'static, str>>, detail: impl Into<Cow<'static, str>>) -> Self {
        Self::field(ErrorCode::InvalidField, field, detail)
    }

    /// An internal failure: the cause is logged here, never sent to the caller.
    pub fn internal(context: &str, cause: impl fmt::Display) -> Self {
        tracing::error!(error.cause = %cause, "internal error: {context}");
        ClavisError::new(ErrorCode::Internal, "An internal error occurred; it has been logged.")
    }

    pub fn problem(&self) -> Problem<'_> {
        Problem {
            kind: self.code.type_uri(),
            title: self.code.title(),
            status: self.code.status().as_u16(),
            detail: &self.detail,
            code: self.code.code(),
            error: self.code.name(),
            field: self.field.as_deref(),
            remedy: self.code.remedy(),
        }
    }
}

impl fmt::Display for ClavisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.detail)
    }
}

impl std::error::Error for ClavisError {}

/// RFC 9457 problem details, with Clavis's catalog code.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// A relative reference to the error's documentation page.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'a str,
    pub status: u16,
    pub detail: &'a str,
    /// The numeric catalog code (also sent as `X-Clavis-Error`).
    pub code: u16,
    /// The catalog entry's name.
    pub error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
    pub remedy: &'a str,
}

impl ResponseError for ClavisError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json")));
        response.insert_header((ERROR_HEADER, HeaderValue::from_static(self.code.code_str())));
        if self.code == ErrorCode::RateLimited {
            response.insert_header((header::RETRY_AFTER, 1));
        }
        response.body(body)
    }
}

impl From<sea_orm::DbErr> for ClavisError {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::DbErr;
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                tracing::error!(error.cause = %err, "database unreachable");
                ClavisError::new(ErrorCode::DatabaseUnavailable, "The database is unreachable; retry later.")
            }
            _ => ClavisError::internal("database", err),
        }
    }
}

impl From<serde_json::Error> for ClavisError {
    fn from(err: serde_json::Error) -> Self {
        match err.classify() {
            serde_json::error::Category::Data => ClavisError::new(ErrorCode::InvalidField, err.to_string()),
            _ => ClavisError::new(ErrorCode::MalformedJson, err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_in_their_range() {
        let mut seen = HashSet::new();
        for entry in ErrorCode::ALL {
            assert!(seen.insert(entry.code()), "duplicate code {}", entry.code());
            assert!((1000..6000).contains(&entry.code()));
            assert!(!entry.title().is_empty() && !entry.remedy().is_empty());
            assert_eq!(ErrorCode::by_code(entry.code()), Some(*entry));
        }
    }

    #[test]
    fn only_internal_and_upstream_failures_are_5xx() {
        use ErrorCode::*;
        for entry in ErrorCode::ALL {
            match entry.status() {
                StatusCode::INTERNAL_SERVER_ERROR | StatusCode::SERVICE_UNAVAILABLE => {
                    assert!(matches!(entry, Internal | DatabaseUnavailable), "{entry:?}")
                }
                // Clavis as a gateway: the tenant's own backend failed or broke the protocol, not the request.
                StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => assert!(
                    matches!(
                        entry,
                        CallbackAddressForbidden
                            | CallbackUnreachable
                            | CallbackTimeout
                            | CallbackStatusRefused
                            | CallbackAnswerMalformed
                            | CallbackSignatureInvalid
                            | CallbackNonceMismatch
                            | UpstreamAddressForbidden
                            | UpstreamUnreachable
                            | UpstreamTimeout
                            | UpstreamRefused
                            | UpstreamAnswerMalformed
                    ),
                    "{entry:?}"
                ),
                status => assert!(!status.is_server_error(), "{entry:?}"),
            }
        }
    }

    #[test]
    fn problem_json_carries_code_and_header() {
        let err = ClavisError::invalid("content_id", "must not be empty");
        let response = err.error_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers().get(ERROR_HEADER).and_then(|v| v.to_str().ok()), Some("1011"));
        let problem = serde_json::to_value(err.problem()).unwrap();
        assert_eq!(problem["code"], 1011);
        assert_eq!(problem["field"], "content_id");
        assert_eq!(problem["type"], "/errors/1011");
    }
}
