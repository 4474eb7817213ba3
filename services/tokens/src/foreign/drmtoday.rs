//! castLabs DRMtoday upfront authorization tokens (`x-dt-auth-token`).
//!
//! A JWT signed with HS256, HS384 or HS512; its header `kid` names one of the merchant's shared secrets. Claims:
//!
//! * `jti`: required; the token is single use, which the caller enforces with the returned [`DrmtodayClaims::jti`].
//! * `iat`: required; a future `iat` (beyond the clock skew) is refused.
//! * `exp`, `nbf`: optional, checked with the same skew.
//! * `optData`: a JSON string `{"merchant","userId","sessionId"}` ([`OptData`]).
//! * `crt`: a JSON string holding the customer rights, one object or an array of them ([`CrtRight`]):
//!   `assetId`, `variantId`, `profile` (`{"purchase":{}}` or `{"rental":{"relativeExpiration":"PT10M",
//!   "playDuration":...}}`), `storeLicense`, `outputProtection{digital, analogue, enforce}` and
//!   `op.config.{UHD|HD|SD|AUDIO}.{WidevineM|PlayReadyM|FairPlayM|*}{requireHDCP, minSL, deny}`.
//!
//! `optData` and `crt` are also accepted as JSON values rather than strings. Unknown claims and right fields are
//! tolerated; known fields of the wrong type are refused, naming their path (`crt[0].profile.rental...`).
//!
//! Durations are ISO 8601 (`PnDTnHnMnS`, see [`parse_iso8601_duration`]); `playDuration` is also accepted as a number
//! of milliseconds, as DRMtoday's own documentation gives it.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use clavis_core::{ClavisError, ErrorCode};
use serde::{Deserialize, Deserializer};

use super::{CompactJwt, FieldError, HmacAlgorithm, numeric_date, parse_embedded_json, parse_json_at};

/// The algorithms DRMtoday signs with.
pub const ACCEPTED_ALGORITHMS: [HmacAlgorithm; 3] = [HmacAlgorithm::Hs256, HmacAlgorithm::Hs384, HmacAlgorithm::Hs512];

/// A verified upfront token.
#[derive(Clone, Debug, PartialEq)]
pub struct DrmtodayClaims {
    /// The header `kid`: which shared secret signed it.
    pub kid: String,
    pub algorithm: HmacAlgorithm,
    /// `jti`: the caller must refuse a second use.
    pub jti: String,
    /// `iat`.
    pub issued_at: DateTime<Utc>,
    /// `exp`, when present.
    pub expires_at: Option<DateTime<Utc>>,
    /// `nbf`, when present.
    pub not_before: Option<DateTime<Utc>>,
    /// `optData`.
    pub opt_data: OptData,
    /// `crt`: the rights, in order (one when `crt` was a single object).
    pub rights: Vec<CrtRight>,
}

/// `optData`: who is playing.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptData {
    /// The merchant (tenant) name.
    pub merchant: String,
    pub user_id: String,
    #[serde(default)]
    pub session_id: Option<String>,
}

/// One customer right from `crt`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrtRight {
    /// The content (asset) id.
    pub asset_id: String,
    /// The variant of the asset, when the merchant uses variants.
    #[serde(default)]
    pub variant_id: Option<String>,
    pub profile: Profile,
    /// Persistent (offline) licence allowed.
    #[serde(default)]
    pub store_license: bool,
    #[serde(default)]
    pub output_protection: Option<OutputProtection>,
    /// Output policy per quality and DRM.
    #[serde(default)]
    pub op: Option<OutputPolicy>,
    /// Fields Clavis does not type (e.g. `type`, `ref`).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The right's licence profile: exactly one of `purchase` or `rental`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Profile {
    /// An unlimited licence (`{"purchase": {}}`).
    Purchase(Purchase),
    /// A time-limited licence.
    Rental(Rental),
}

/// `profile.purchase` (no fields Clavis reads).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Purchase {}

/// `profile.rental`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rental {
    /// Licence validity from issuance (ISO 8601 duration, e.g. `PT10M`).
    #[serde(default, deserialize_with = "opt_iso_duration")]
    pub relative_expiration: Option<Duration>,
    /// Absolute licence end (RFC 3339).
    #[serde(default)]
    pub absolute_expiration: Option<DateTime<Utc>>,
    /// Playback window after first play (ISO 8601 duration, or a number of milliseconds).
    #[serde(default, deserialize_with = "opt_play_duration")]
    pub play_duration: Option<Duration>,
}

/// `outputProtection`: legacy output protection switches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct OutputProtection {
    /// Require digital output protection (HDCP).
    pub digital: bool,
    /// Require analogue output protection (CGMS-A).
    pub analogue: bool,
    /// Refuse playback when the protection cannot be applied (rather than best effort).
    pub enforce: bool,
}

/// `op`: the output policy.
///
/// The output policy fails closed: an unknown quality, DRM or rule field is refused rather than ignored, since
/// ignoring a restriction would grant more than the merchant meant.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputPolicy {
    pub config: OpConfig,
}

/// `op.config`: rules per track quality.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpConfig {
    #[serde(rename = "UHD")]
    pub uhd: Option<OpDrmRules>,
    #[serde(rename = "HD")]
    pub hd: Option<OpDrmRules>,
    #[serde(rename = "SD")]
    pub sd: Option<OpDrmRules>,
    #[serde(rename = "AUDIO")]
    pub audio: Option<OpDrmRules>,
}

/// `op.config.<quality>`: rules per DRM; `*` applies to DRMs without their own.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpDrmRules {
    #[serde(rename = "WidevineM")]
    pub widevine: Option<OpRule>,
    #[serde(rename = "PlayReadyM")]
    pub playready: Option<OpRule>,
    #[serde(rename = "FairPlayM")]
    pub fairplay: Option<OpRule>,
    #[serde(rename = "*")]
    pub any: Option<OpRule>,
}

/// One output rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpRule {
    /// The HDCP version required (DRMtoday's names, e.g. `HDCP_V2_2`; `HDCP_NONE` for none).
    #[serde(rename = "requireHDCP")]
    pub require_hdcp: Option<String>,
    /// The minimum security level (Widevine 1-5, PlayReady 150/2000/3000, FairPlay per DRMtoday).
    #[serde(rename = "minSL")]
    pub min_sl: Option<u32>,
    /// Refuse this quality for this DRM.
    pub deny: bool,
}

fn opt_iso_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.map(|text| parse_iso8601_duration(&text).map_err(serde::de::Error::custom)).transpose()
}

fn opt_play_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    // An untagged enum would hide the reason; decode by hand from a Value instead.
    let value: Option<serde_json::Value> = Option::deserialize(deserializer)?;
    match value {
        None => Ok(None),
        Some(serde_json::Value::String(text)) => {
            parse_iso8601_duration(&text).map(Some).map_err(serde::de::Error::custom)
        }
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|ms| Some(Duration::from_millis(ms)))
            .ok_or_else(|| serde::de::Error::custom("expected an ISO 8601 duration or a whole number of milliseconds")),
        Some(_) => Err(serde::de::Error::custom("expected an ISO 8601 duration or a whole number of milliseconds")),
    }
}

/// Parse the ISO 8601 durations DRMtoday uses: `PnDTnHnMnS` with any subset of the parts, in that order (`P1D`,
/// `PT10M`, `P2DT1H30M`, `PT1.5S`). Only seconds may have a fraction (up to nanoseconds). Years, months and weeks
/// are refused: their length is not fixed (and DRMtoday does not use them).
pub fn parse_iso8601_duration(text: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("{text:?} is not an ISO 8601 duration PnDTnHnMnS: {why}");
    if text.len() > 64 {
        return Err(bad("too long"));
    }
    let rest = text.strip_prefix('P').ok_or_else(|| bad("it must start with P"))?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (rest, None),
    };
    let mut total = Duration::ZERO;
    let mut parts = 0;
    for (part, units) in [(date, &[('D', 86_400u64)][..]), (time.unwrap_or(""), &[('H', 3_600), ('M', 60), ('S', 1)])] {
        let mut next_unit = 0;
        let mut chars = part.char_indices().peekable();
        while chars.peek().is_some() {
            let start = chars.peek().map_or(0, |(i, _)| *i);
            let mut end = start;
            let mut fraction_at = None;
            while let Some((i, c)) = chars.peek().copied() {
                if c.is_ascii_digit() {
                    end = i + 1;
                } else if (c == '.' || c == ',') && fraction_at.is_none() && end > start {
                    fraction_at = Some(i);
                    end = i + 1;
                } else {
                    break;
                }
                chars.next();
            }
            let Some((_, unit)) = chars.next() else { return Err(bad("a number must be followed by its unit")) };
            let number = part.get(start..end).unwrap_or_default();
            if number.is_empty() {
                return Err(bad(&format!("{unit} has no number")));
            }
            let Some(index) = units.iter().skip(next_unit).position(|(u, _)| *u == unit).map(|i| i + next_unit) else {
                return Err(bad(&format!("unit {unit} is not allowed here (Y, M and W dates are not supported)")));
            };
            next_unit = index + 1;
            let seconds_per_unit = units.get(index).map_or(1, |(_, s)| *s);
            let (whole, fraction) = match fraction_at {
                Some(at) => {
                    (number.get(..at - start).unwrap_or_default(), number.get(at - start + 1..).unwrap_or_default())
                }
                None => (number, ""),
            };
            if fraction_at.is_some() && (unit != 'S' || fraction.is_empty() || fraction.len() > 9) {
                return Err(bad("only seconds may have a fraction, of 1 to 9 digits"));
            }
            if whole.len() > 18 {
                return Err(bad("a number is too large"));
            }
            let whole: u64 = whole.parse().map_err(|_| bad("a number is not a whole number"))?;
            let seconds = whole.checked_mul(seconds_per_unit).ok_or_else(|| bad("too long a duration"))?;
            let nanos: u32 = if fraction.is_empty() {
                0
            } else {
                let padded = format!("{fraction:0<9}");
                padded.parse().map_err(|_| bad("the fraction is not digits"))?
            };
            total = total.checked_add(Duration::new(seconds, nanos)).ok_or_else(|| bad("too long a duration"))?;
            parts += 1;
            if fraction_at.is_some() && chars.peek().is_some() {
                return Err(bad("the fraction must be the last part"));
            }
        }
    }
    if time == Some("") {
        return Err(bad("T must be followed by hours, minutes or seconds"));
    }
    if parts == 0 {
        return Err(bad("it has no part"));
    }
    Ok(total)
}

/// The claims as presented.
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    iat: Option<serde_json::Number>,
    #[serde(default)]
    exp: Option<serde_json::Number>,
    #[serde(default)]
    nbf: Option<serde_json::Number>,
    #[serde(default, rename = "optData")]
    opt_data: Option<serde_json::Value>,
    #[serde(default)]
    crt: Option<serde_json::Value>,
}

fn malformed(field: &str, detail: impl Into<String>) -> ClavisError {
    ClavisError::field(ErrorCode::TokenMalformed, field.to_owned(), detail.into())
}

fn from_field_error(code: ErrorCode, prefix: &str) -> impl Fn(FieldError) -> ClavisError {
    move |err| {
        let field = if err.field.is_empty() { prefix.to_owned() } else { err.field };
        ClavisError::field(code, field, format!("DRMtoday token: {}", err.detail))
    }
}

fn date(number: Option<serde_json::Number>, claim: &str) -> Result<Option<DateTime<Utc>>, ClavisError> {
    number
        .map(|n| {
            numeric_date(&n).ok_or_else(|| malformed(claim, format!("`{claim}` is not a date in seconds since 1970")))
        })
        .transpose()
}

/// Verify an upfront token at `now`. `lookup` returns the shared secret a `kid` names (its raw bytes), or `None`
/// for an unknown `kid`; `skew_seconds` is the clock skew allowed on `iat`, `nbf` and `exp`.
pub fn verify<K: AsRef<[u8]>>(
    token: &str,
    lookup: impl Fn(&str) -> Option<K>,
    now: DateTime<Utc>,
    skew_seconds: u32,
) -> Result<DrmtodayClaims, ClavisError> {
    let jwt = CompactJwt::parse(token, "DRMtoday token")?;
    let algorithm = jwt.hmac_algorithm(&ACCEPTED_ALGORITHMS)?;
    let kid = jwt
        .header
        .kid
        .clone()
        .ok_or_else(|| ClavisError::new(ErrorCode::TokenKeyUnknown, "the DRMtoday token header has no `kid`"))?;
    let secret = lookup(&kid)
        .ok_or_else(|| ClavisError::new(ErrorCode::TokenKeyUnknown, format!("no shared secret {kid:?}")))?;
    algorithm.verify(secret.as_ref(), jwt.signed.as_bytes(), &jwt.signature)?;

    let claims: RawClaims =
        parse_json_at(&jwt.payload, "").map_err(from_field_error(ErrorCode::TokenMalformed, "claims"))?;
    let jti = claims.jti.filter(|jti| !jti.is_empty()).ok_or_else(|| malformed("jti", "the token has no `jti`"))?;
    let issued_at = date(claims.iat, "iat")?.ok_or_else(|| malformed("iat", "the token has no `iat`"))?;
    let expires_at = date(claims.exp, "exp")?;
    let not_before = date(claims.nbf, "nbf")?;

    let skew = TimeDelta::seconds(i64::from(skew_seconds));
    if issued_at.signed_duration_since(now) > skew {
        return Err(ClavisError::new(ErrorCode::TokenNotYetValid, "the token's `iat` is in the future"));
    }
    if not_before.is_some_and(|nbf| nbf.signed_duration_since(now) > skew) {
        return Err(ClavisError::new(ErrorCode::TokenNotYetValid, "the token's `nbf` is in the future"));
    }
    if expires_at.is_some_and(|exp| now.signed_duration_since(exp) > skew) {
        return Err(ClavisError::new(ErrorCode::TokenExpired, "the token's `exp` has passed"));
    }

    let opt_data = claims.opt_data.ok_or_else(|| malformed("optData", "the token has no `optData`"))?;
    let opt_data: OptData =
        parse_embedded_json(opt_data, "optData").map_err(from_field_error(ErrorCode::TokenMalformed, "optData"))?;
    let crt =
        claims.crt.ok_or_else(|| ClavisError::field(ErrorCode::PolicyInvalid, "crt", "the token has no `crt`"))?;
    let rights = parse_rights(crt)?;
    Ok(DrmtodayClaims { kid, algorithm, jti, issued_at, expires_at, not_before, opt_data, rights })
}

/// The merchant an upfront token names (`optData.merchant`), read **without verifying anything**: it only says whose
/// shared secrets to verify the token with, so nothing else may be trusted from it. Parsing is as bounded as
/// [`verify`]'s (the same length limit and decoders); only `optData` is decoded.
pub fn peek_merchant(token: &str) -> Result<String, ClavisError> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default, rename = "optData")]
        opt_data: Option<serde_json::Value>,
    }
    #[derive(Deserialize)]
    struct MerchantProbe {
        merchant: String,
    }
    let jwt = CompactJwt::parse(token, "DRMtoday token")?;
    let probe: Probe =
        parse_json_at(&jwt.payload, "").map_err(from_field_error(ErrorCode::TokenMalformed, "claims"))?;
    let opt_data = probe.opt_data.ok_or_else(|| malformed("optData", "the token has no `optData`"))?;
    let probe: MerchantProbe =
        parse_embedded_json(opt_data, "optData").map_err(from_field_error(ErrorCode::TokenMalformed, "optData"))?;
    Ok(probe.merchant)
}

/// Sign claims as an upfront token (for tests, fuzzing and the migration docs). DRMtoday's own tooling produces the
/// same: a compact JWS whose header names the secret's `kid`.
pub fn sign_token(algorithm: HmacAlgorithm, kid: &str, secret: &[u8], claims: &serde_json::Value) -> String {
    super::sign_compact(algorithm, Some(kid), secret, claims)
}

/// `crt`: one right or an array of them, as a JSON string or value.
fn parse_rights(crt: serde_json::Value) -> Result<Vec<CrtRight>, ClavisError> {
    let invalid = from_field_error(ErrorCode::PolicyInvalid, "crt");
    let crt = match crt {
        serde_json::Value::String(text) => {
            parse_json_at::<serde_json::Value>(text.as_bytes(), "crt").map_err(&invalid)?
        }
        other => other,
    };
    let rights = match crt {
        serde_json::Value::Array(_) => super::parse_value_at::<Vec<CrtRight>>(crt, "crt").map_err(&invalid)?,
        serde_json::Value::Object(_) => vec![super::parse_value_at::<CrtRight>(crt, "crt").map_err(&invalid)?],
        _ => {
            return Err(ClavisError::field(
                ErrorCode::PolicyInvalid,
                "crt",
                "`crt` is a rights object or an array of them",
            ));
        }
    };
    if rights.is_empty() {
        return Err(ClavisError::field(ErrorCode::PolicyInvalid, "crt", "`crt` grants no right"));
    }
    Ok(rights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use proptest::prelude::*;
    use serde_json::json;

    const SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_700_000_000;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(NOW, 0).unwrap()
    }

    fn lookup(kid: &str) -> Option<Vec<u8>> {
        (kid == "key-1").then(|| SECRET.to_vec())
    }

    fn sign_with(alg: Algorithm, kid: Option<&str>, secret: &[u8], claims: &serde_json::Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
    }

    fn sign(claims: &serde_json::Value) -> String {
        sign_with(Algorithm::HS256, Some("key-1"), SECRET, claims)
    }

    fn claims() -> serde_json::Value {
        let crt = json!([{
            "assetId": "bigbuckbunny",
            "variantId": "hd",
            "profile": {"rental": {"relativeExpiration": "PT10M", "playDuration": "PT1M"}},
            "storeLicense": true,
            "outputProtection": {"digital": true, "analogue": false, "enforce": true},
            "op": {"config": {
                "UHD": {"WidevineM": {"requireHDCP": "HDCP_V2_2", "minSL": 5}, "*": {"deny": true}},
                "HD": {"PlayReadyM": {"minSL": 3000}, "FairPlayM": {"requireHDCP": "HDCP_V1"}},
                "SD": {"*": {}},
                "AUDIO": {"*": {"deny": false}}
            }},
            "type": "lic"
        }]);
        json!({
            "jti": "c0ffee",
            "iat": NOW - 5,
            "exp": NOW + 600,
            "optData": json!({"merchant": "acme", "userId": "user-1", "sessionId": "s-1"}).to_string(),
            "crt": crt.to_string(),
        })
    }

    fn verify_claims(claims: &serde_json::Value) -> Result<DrmtodayClaims, ClavisError> {
        verify(&sign(claims), lookup, now(), 30)
    }

    #[test]
    fn round_trip_with_every_field() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let token = sign_with(alg, Some("key-1"), SECRET, &claims());
            let verified = verify(&token, lookup, now(), 30).unwrap();
            assert_eq!(verified.algorithm.jose_name(), format!("{alg:?}"));
            assert_eq!(verified.kid, "key-1");
            assert_eq!(verified.jti, "c0ffee");
            assert_eq!(verified.issued_at.timestamp(), NOW - 5);
            assert_eq!(verified.expires_at.unwrap().timestamp(), NOW + 600);
            assert_eq!(verified.not_before, None);
            assert_eq!(
                verified.opt_data,
                OptData { merchant: "acme".into(), user_id: "user-1".into(), session_id: Some("s-1".into()) }
            );
            let [right] = verified.rights.as_slice() else { panic!("one right") };
            assert_eq!(right.asset_id, "bigbuckbunny");
            assert_eq!(right.variant_id.as_deref(), Some("hd"));
            assert_eq!(
                right.profile,
                Profile::Rental(Rental {
                    relative_expiration: Some(Duration::from_secs(600)),
                    absolute_expiration: None,
                    play_duration: Some(Duration::from_secs(60)),
                })
            );
            assert!(right.store_license);
            assert_eq!(
                right.output_protection,
                Some(OutputProtection { digital: true, analogue: false, enforce: true })
            );
            let config = &right.op.as_ref().unwrap().config;
            let uhd = config.uhd.as_ref().unwrap();
            assert_eq!(
                uhd.widevine,
                Some(OpRule { require_hdcp: Some("HDCP_V2_2".into()), min_sl: Some(5), deny: false })
            );
            assert_eq!(uhd.any, Some(OpRule { require_hdcp: None, min_sl: None, deny: true }));
            assert_eq!(uhd.playready, None);
            let hd = config.hd.as_ref().unwrap();
            assert_eq!(hd.playready.as_ref().unwrap().min_sl, Some(3000));
            assert_eq!(hd.fairplay.as_ref().unwrap().require_hdcp.as_deref(), Some("HDCP_V1"));
            assert_eq!(config.sd.as_ref().unwrap().any, Some(OpRule::default()));
            assert!(config.audio.is_some());
            assert_eq!(right.other.get("type"), Some(&json!("lic")));
        }
    }

    #[test]
    fn crt_as_object_purchase_and_embedded_values() {
        let mut claims = claims();
        claims["crt"] = json!({"assetId": "a", "profile": {"purchase": {}}}).to_string().into();
        let rights = verify_claims(&claims).unwrap().rights;
        assert_eq!(rights.len(), 1);
        assert_eq!(rights[0].profile, Profile::Purchase(Purchase {}));
        assert!(!rights[0].store_license);
        assert_eq!(rights[0].output_protection, None);

        // JSON values instead of strings, an absolute expiry and playDuration in milliseconds.
        claims["crt"] = json!([
            {"assetId": "a", "profile": {"purchase": {}}},
            {"assetId": "b", "profile": {"rental": {"absoluteExpiration": "2030-01-01T00:00:00Z", "playDuration": 90000}}}
        ]);
        claims["optData"] = json!({"merchant": "acme", "userId": "u"});
        let verified = verify_claims(&claims).unwrap();
        assert_eq!(verified.opt_data.session_id, None);
        assert_eq!(
            verified.rights[1].profile,
            Profile::Rental(Rental {
                relative_expiration: None,
                absolute_expiration: Some("2030-01-01T00:00:00Z".parse().unwrap()),
                play_duration: Some(Duration::from_secs(90)),
            })
        );
    }

    #[test]
    fn sign_token_matches_jsonwebtoken() {
        for (alg, ours) in [(Algorithm::HS256, HmacAlgorithm::Hs256), (Algorithm::HS512, HmacAlgorithm::Hs512)] {
            let token = sign_token(ours, "key-1", SECRET, &claims());
            let theirs =
                jsonwebtoken::decode::<serde_json::Value>(&token, &jsonwebtoken::DecodingKey::from_secret(SECRET), &{
                    let mut validation = jsonwebtoken::Validation::new(alg);
                    validation.validate_exp = false;
                    validation.required_spec_claims.clear();
                    validation
                })
                .unwrap();
            assert_eq!(theirs.header.kid.as_deref(), Some("key-1"));
            assert_eq!(verify(&token, lookup, now(), 30).unwrap().algorithm, ours);
        }
    }

    #[test]
    fn unknown_or_missing_kid_is_refused() {
        let token = sign_with(Algorithm::HS256, Some("key-2"), SECRET, &claims());
        assert_eq!(verify(&token, lookup, now(), 30).unwrap_err().code, ErrorCode::TokenKeyUnknown);
        let token = sign_with(Algorithm::HS256, None, SECRET, &claims());
        assert_eq!(verify(&token, lookup, now(), 30).unwrap_err().code, ErrorCode::TokenKeyUnknown);
    }

    #[test]
    fn bad_signatures_are_refused() {
        let token = sign_with(Algorithm::HS256, Some("key-1"), b"another secret of thirty-two b..", &claims());
        assert_eq!(verify(&token, lookup, now(), 30).unwrap_err().code, ErrorCode::TokenSignatureInvalid);

        // A payload swapped under a valid signature.
        let good = sign(&claims());
        let mut other = claims();
        other["jti"] = "replayed".into();
        let other = sign(&other);
        let head = good.split('.').next().unwrap();
        let sig = good.rsplit('.').next().unwrap();
        let swapped = format!("{head}.{}.{sig}", other.split('.').nth(1).unwrap());
        assert_eq!(verify(&swapped, lookup, now(), 30).unwrap_err().code, ErrorCode::TokenSignatureInvalid);
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        for header in [
            json!({"alg": "none", "kid": "key-1"}),
            json!({"alg": "None", "kid": "key-1"}),
            json!({"alg": "hs256", "kid": "key-1"}),
            json!({"alg": "RS256", "kid": "key-1"}),
            json!({"alg": "EdDSA", "kid": "key-1"}),
        ] {
            let header = URL_SAFE_NO_PAD.encode(header.to_string());
            for token in [format!("{header}.{payload}."), format!("{header}.{payload}.AAAA")] {
                assert_eq!(
                    verify(&token, lookup, now(), 30).unwrap_err().code,
                    ErrorCode::TokenSignatureInvalid,
                    "{token}"
                );
            }
        }
    }

    #[test]
    fn missing_jti_and_iat_are_refused() {
        for (claim, field) in [("jti", "jti"), ("iat", "iat"), ("optData", "optData")] {
            let mut claims = claims();
            claims.as_object_mut().unwrap().remove(claim);
            let err = verify_claims(&claims).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::TokenMalformed, Some(field)), "{claim}");
        }
        let mut claims = claims();
        claims["jti"] = "".into();
        assert_eq!(verify_claims(&claims).unwrap_err().field.as_deref(), Some("jti"));
        claims["jti"] = 5.into();
        assert_eq!(verify_claims(&claims).unwrap_err().field.as_deref(), Some("jti"));
    }

    #[test]
    fn time_claims_are_checked() {
        let with = |claim: &str, value: serde_json::Value| {
            let mut claims = claims();
            claims[claim] = value;
            verify_claims(&claims)
        };
        assert!(with("iat", (NOW + 30).into()).is_ok(), "within the skew");
        assert_eq!(with("iat", (NOW + 31).into()).unwrap_err().code, ErrorCode::TokenNotYetValid);
        assert!(with("exp", (NOW - 30).into()).is_ok(), "within the skew");
        assert_eq!(with("exp", (NOW - 31).into()).unwrap_err().code, ErrorCode::TokenExpired);
        assert_eq!(with("nbf", (NOW + 31).into()).unwrap_err().code, ErrorCode::TokenNotYetValid);
        assert!(with("iat", json!(1_699_999_990.5)).is_ok(), "fractional NumericDate");
        assert_eq!(with("iat", "yesterday".into()).unwrap_err().field.as_deref(), Some("iat"));
        assert_eq!(with("exp", json!(1e300)).unwrap_err().field.as_deref(), Some("exp"));
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove("exp");
        assert_eq!(verify_claims(&claims).unwrap().expires_at, None);
    }

    #[test]
    fn malformed_crt_is_refused_naming_the_field() {
        let cases = [
            (json!("not json"), "crt"),
            (json!(5), "crt"),
            (json!("[]"), "crt"),
            (json!("\"a string\""), "crt"),
            (json!([{"profile": {"purchase": {}}}]).to_string().into(), "crt[0].assetId"),
            (json!([{"assetId": "a"}]).to_string().into(), "crt[0].profile"),
            (json!({"assetId": "a", "profile": {"lease": {}}}), "crt.profile"),
            (json!({"assetId": "a", "profile": {"purchase": {}, "rental": {}}}), "crt.profile"),
            (
                json!([{"assetId": "a", "profile": {"purchase": {}}}, {"assetId": "b", "profile": {"rental": {"relativeExpiration": "10 minutes"}}}]),
                "crt[1].profile.rental.relativeExpiration",
            ),
            (json!({"assetId": "a", "profile": {"rental": {"playDuration": -1}}}), "crt.profile.rental.playDuration"),
            (json!({"assetId": "a", "profile": {"purchase": {}}, "storeLicense": "yes"}), "crt.storeLicense"),
            (
                json!({"assetId": "a", "profile": {"purchase": {}}, "outputProtection": {"digital": 1}}),
                "crt.outputProtection.digital",
            ),
            (
                json!({"assetId": "a", "profile": {"purchase": {}}, "op": {"config": {"HD": {"WidevineM": {"minSL": "1"}}}}}),
                "crt.op.config.HD.WidevineM.minSL",
            ),
            (
                json!({"assetId": "a", "profile": {"purchase": {}}, "op": {"config": {"UHD1": {}}}}),
                "crt.op.config.UHD1",
            ),
            (
                json!({"assetId": "a", "profile": {"purchase": {}}, "op": {"config": {"HD": {"WidevineL1": {}}}}}),
                "crt.op.config.HD.WidevineL1",
            ),
            (
                json!({"assetId": "a", "profile": {"purchase": {}}, "op": {"config": {"HD": {"*": {"requireCGMS": true}}}}}),
                "crt.op.config.HD.*.requireCGMS",
            ),
        ];
        for (crt, field) in cases {
            let mut claims = claims();
            claims["crt"] = crt.clone();
            let err = verify_claims(&claims).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::PolicyInvalid, Some(field)), "{crt}: {err}");
        }
        let mut claims = claims();
        claims.as_object_mut().unwrap().remove("crt");
        assert_eq!(verify_claims(&claims).unwrap_err().code, ErrorCode::PolicyInvalid);
        claims["crt"] = json!({"assetId": "a", "profile": {"purchase": {}}});
        claims["optData"] = json!("{\"merchant\": \"acme\"}");
        assert_eq!(verify_claims(&claims).unwrap_err().field.as_deref(), Some("optData.userId"));
    }

    #[test]
    fn the_merchant_is_peeked_without_the_secret() {
        let token = sign_with(Algorithm::HS256, Some("key-9"), b"a secret nobody configured.......", &claims());
        assert_eq!(peek_merchant(&token).unwrap(), "acme");
        let mut embedded = claims();
        embedded["optData"] = json!({"merchant": "other", "userId": "u"});
        assert_eq!(peek_merchant(&sign(&embedded)).unwrap(), "other");
        for (opt_data, field) in
            [(None, "optData"), (Some(json!("{}")), "optData.merchant"), (Some(json!(5)), "optData")]
        {
            let mut claims = claims();
            match opt_data {
                None => {
                    claims.as_object_mut().unwrap().remove("optData");
                }
                Some(value) => claims["optData"] = value,
            }
            let err = peek_merchant(&sign(&claims)).unwrap_err();
            assert_eq!((err.code, err.field.as_deref()), (ErrorCode::TokenMalformed, Some(field)), "{err}");
        }
        for raw in ["", "abc", "a.b.c", "e30.e30.e30"] {
            assert_eq!(peek_merchant(raw).unwrap_err().code, ErrorCode::TokenMalformed, "{raw}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for raw in ["", "abc", "a.b.c", "e30.e30.e30", "a.b.c.d"] {
            assert_eq!(verify(raw, lookup, now(), 30).unwrap_err().code, ErrorCode::TokenMalformed, "{raw}");
        }
    }

    #[test]
    fn iso8601_durations() {
        let ok = [
            ("PT10M", 600, 0),
            ("PT1M", 60, 0),
            ("P1D", 86_400, 0),
            ("P2DT1H30M", 2 * 86_400 + 5_400, 0),
            ("PT36H", 129_600, 0),
            ("PT0S", 0, 0),
            ("PT1.5S", 1, 500_000_000),
            ("PT0,25S", 0, 250_000_000),
            ("P1DT2H3M4.000000005S", 93_784, 5),
            ("PT90M", 5_400, 0),
        ];
        for (text, seconds, nanos) in ok {
            assert_eq!(parse_iso8601_duration(text), Ok(Duration::new(seconds, nanos)), "{text}");
        }
        let bad = [
            "",
            "P",
            "PT",
            "T10M",
            "10M",
            "pt10m",
            "PT10",
            "PTM",
            "P1Y",
            "P1M",
            "P1W",
            "PT10M5H",
            "PT1M1M",
            "P1DT",
            "PT1.5M",
            "PT1.S",
            "PT.5S",
            "PT1.0000000001S",
            "P-1D",
            "PT+1S",
            "P1D1D",
            "PT1H1D",
            "P1T1H",
            "PT99999999999999999999S",
            "P999999999999999999D",
            "PT1.5S1S",
            "P1.5D",
            "PT 1S",
            "PT1S ",
        ];
        for text in bad {
            assert!(parse_iso8601_duration(text).is_err(), "{text:?} parsed");
        }
    }

    proptest! {
        #[test]
        fn verify_never_panics(raw in ".{0,400}") {
            let _ = verify(&raw, lookup, now(), 30);
            let _ = peek_merchant(&raw);
        }

        #[test]
        fn verify_never_panics_on_signed_garbage(payload in ".{0,300}", crt in ".{0,200}") {
            // Signed, so parsing goes past the signature check.
            use base64::Engine;
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","kid":"key-1"}"#), URL_SAFE_NO_PAD.encode(&payload));
            let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET), signed.as_bytes());
            let _ = verify(&format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)), lookup, now(), 30);
            let mut claims = claims();
            claims["crt"] = crt.into();
            let _ = verify_claims(&claims);
        }

        #[test]
        fn durations_never_panic(text in "P?[0-9DTHMSYW.,]{0,20}") {
            let _ = parse_iso8601_duration(&text);
        }

        #[test]
        fn durations_round_trip(d in 0u64..10_000, h in 0u64..100, m in 0u64..100, s in 0u64..100) {
            let text = format!("P{d}DT{h}H{m}M{s}S");
            prop_assert_eq!(parse_iso8601_duration(&text), Ok(Duration::from_secs(d * 86_400 + h * 3_600 + m * 60 + s)));
        }
    }
}
