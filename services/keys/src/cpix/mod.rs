//! CPIX 2.3 (DASH-IF Content Protection Information Exchange) and AWS SPEKE v1/v2: the key exchange with packagers.
//!
//! * [`document`]: the CPIX document model, the parts of CPIX a key server reads and answers.
//! * [`parse`]: bytes to [`document::Document`] with quick-xml (any namespace prefixes, UTF-8 or UTF-16, strict bounds).
//! * [`write`]: [`document::Document`] back to XML (the answer: the request filled in).
//! * [`delivery`]: DeliveryData: the document key and MAC key wrapped to each recipient certificate (RSA-OAEP), content
//!   keys as AES-256-CBC `EncryptedValue` with an HMAC-SHA512 `ValueMAC`.
//! * [`signature`]: XML-DSig verification of signed documents (document and list signatures).
//! * [`speke`]: `POST /speke/v2.0/copyProtection` and `POST /speke/v1.0/copyProtection`.

pub mod delivery;
pub mod document;
pub mod parse;
pub mod signature;
pub mod speke;
pub mod write;

use uuid::Uuid;

pub const CPIX_NS: &str = "urn:dashif:org:cpix";
pub const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const ENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
pub const SPEKE_NS: &str = "urn:aws:amazon:com:speke";

pub const ALG_AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
pub const ALG_RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
pub const ALG_HMAC_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512";

pub const WIDEVINE: Uuid = Uuid::from_u128(0xedef8ba9_79d6_4ace_a3c8_27dcd51d21ed);
pub const PLAYREADY: Uuid = Uuid::from_u128(0x9a04f079_9840_4286_ab92_e65be0885f95);
pub const FAIRPLAY: Uuid = Uuid::from_u128(0x94ce86fb_07ff_4f43_adb8_93d2fa968ca2);
pub const COMMON: Uuid = Uuid::from_u128(0x1077efec_c0b2_4d02_ace3_3c1e52e2fb4b);
/// AWS's id for HLS AES-128 (whole-segment encryption); "implementation specific" in SPEKE, used by MediaPackage.
pub const HLS_AES128: Uuid = Uuid::from_u128(0x81376844_f976_481e_a84e_cc25d39b0b33);

/// Why a CPIX document was refused. Each kind maps onto one catalog code; the message is the plain text SPEKE
/// clients show (`Missing CPIX@contentId`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CpixError {
    /// Not well-formed XML, not a CPIX document, over a bound, or an attribute of the wrong form.
    Malformed(String),
    /// Well-formed CPIX that asks for something a key server cannot answer (missing or contradictory fields).
    Invalid(String),
    /// A CPIX or SPEKE version this endpoint does not speak.
    Version(String),
    /// A recipient certificate that cannot (or must not) be used to wrap the document key.
    Recipient(String),
    /// A `ds:Signature` that does not verify: a digest or the SignatureValue does not match.
    Signature(String),
    /// A `ds:Signature` using an algorithm, transform, reference or key form the verifier does not support.
    SignatureUnsupported(String),
}

impl CpixError {
    pub fn message(&self) -> &str {
        match self {
            CpixError::Malformed(m)
            | CpixError::Invalid(m)
            | CpixError::Version(m)
            | CpixError::Recipient(m)
            | CpixError::Signature(m)
            | CpixError::SignatureUnsupported(m) => m,
        }
    }
}

impl std::fmt::Display for CpixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for CpixError {}

impl From<CpixError> for clavis_core::ClavisError {
    fn from(e: CpixError) -> Self {
        use clavis_core::ErrorCode;
        let code = match &e {
            CpixError::Malformed(_) => ErrorCode::CpixMalformed,
            CpixError::Invalid(_) => ErrorCode::CpixInvalid,
            CpixError::Version(_) => ErrorCode::CpixVersionUnsupported,
            CpixError::Recipient(_) => ErrorCode::CpixRecipientRejected,
            CpixError::Signature(_) => ErrorCode::CpixSignatureInvalid,
            CpixError::SignatureUnsupported(_) => ErrorCode::CpixSignatureUnsupported,
        };
        clavis_core::ClavisError::new(code, e.message().to_owned())
    }
}
