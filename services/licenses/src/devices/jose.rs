//! The JOSE pieces of device bundles, on josekit (OpenSSL): the tenant's Ed25519 license-signing key, compact JWS
//! (EdDSA) over bundle payloads and revocation lists, compact JWE (ECDH-ES+A256KW, A256GCM) to a device's P-256 key,
//! and the parsers of what devices send (their public JWK, their ES256-signed reset proof). Everything a device or
//! an attacker supplies is refused with a reason, never a panic.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwe::{ECDH_ES_A256KW, JweHeader};
use josekit::jwk::Jwk;
use josekit::jwk::alg::ed::{EdCurve, EdKeyPair};
use josekit::jws::{ES256, EdDSA, JwsHeader};
use zeroize::Zeroizing;

/// Largest compact JWS/JWE accepted from a client (a bundle for 64 contents' keys is far below).
pub const MAX_COMPACT_BYTES: usize = 64 * 1024;

/// The `typ` of a bundle's inner JWS.
pub const BUNDLE_TYP: &str = "clavis-bundle+jwt";
/// The `typ` of a revocation list.
pub const REVOCATIONS_TYP: &str = "clavis-revocations+jwt";

/// A tenant's Ed25519 license-signing key.
pub struct SigningKey {
    pair: EdKeyPair,
    kid: String,
}

impl SigningKey {
    pub fn generate() -> Result<SigningKey, String> {
        let pair = EdKeyPair::generate(EdCurve::Ed25519).map_err(|e| e.to_string())?;
        Ok(SigningKey::with_kid(pair))
    }

    /// From the PKCS#8 DER the vault holds.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
        let pair = EdKeyPair::from_der(der).map_err(|e| e.to_string())?;
        if pair.curve() != EdCurve::Ed25519 {
            return Err("not an Ed25519 key".to_owned());
        }
        Ok(SigningKey::with_kid(pair))
    }

    fn with_kid(pair: EdKeyPair) -> SigningKey {
        use josekit::jwk::KeyPair;
        // The key id is derived from the public key, so every instance names the same key the same way.
        let digest = openssl::sha::sha256(&pair.to_der_public_key());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..12]);
        SigningKey { pair, kid }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn pkcs8(&self) -> Zeroizing<Vec<u8>> {
        use josekit::jwk::KeyPair;
        Zeroizing::new(self.pair.to_der_private_key())
    }

    /// The public key as published in the tenant's JWKS.
    pub fn public_jwk(&self) -> Jwk {
        use josekit::jwk::KeyPair;
        let mut jwk = self.pair.to_jwk_public_key();
        jwk.set_key_id(&self.kid);
        jwk.set_algorithm("EdDSA");
        jwk.set_key_use("sig");
        jwk
    }

    /// A compact JWS (EdDSA) over `payload`.
    pub fn sign(&self, payload: &[u8], typ: &str) -> Result<String, String> {
        let mut header = JwsHeader::new();
        header.set_token_type(typ);
        header.set_key_id(&self.kid);
        let der = self.pkcs8();
        let signer = EdDSA.signer_from_der(der.as_slice()).map_err(|e| e.to_string())?;
        josekit::jws::serialize_compact(payload, &header, &signer).map_err(|e| e.to_string())
    }
}

/// A device's public key as registered: a P-256 JWK with only `kty`, `crv`, `x`, `y` kept. Refuses private keys,
/// other curves and points not on the curve.
pub fn parse_device_jwk(value: &serde_json::Value) -> Result<Jwk, String> {
    let object = value.as_object().ok_or("public_key must be a JWK object")?;
    if object.contains_key("d") {
        return Err("public_key must not hold the private part `d`".to_owned());
    }
    let text = |name: &str| object.get(name).and_then(serde_json::Value::as_str);
    if text("kty") != Some("EC") || text("crv") != Some("P-256") {
        return Err("public_key must be an EC P-256 JWK (kty EC, crv P-256)".to_owned());
    }
    let coordinate = |name: &str| -> Result<String, String> {
        let raw = text(name).ok_or_else(|| format!("public_key.{name} is missing"))?;
        match URL_SAFE_NO_PAD.decode(raw) {
            Ok(bytes) if bytes.len() == 32 => Ok(raw.to_owned()),
            _ => Err(format!("public_key.{name} must be 32 bytes, base64url without padding")),
        }
    };
    let normalized = serde_json::json!({"kty": "EC", "crv": "P-256", "x": coordinate("x")?, "y": coordinate("y")?});
    let map = match normalized {
        serde_json::Value::Object(map) => map,
        _ => return Err("public_key must be a JWK object".to_owned()),
    };
    let jwk = Jwk::from_map(map).map_err(|e| format!("public_key: {e}"))?;
    // Building an encrypter checks the point is on the curve (OpenSSL refuses it otherwise).
    ECDH_ES_A256KW.encrypter_from_jwk(&jwk).map_err(|_| "public_key is not a point on P-256".to_owned())?;
    Ok(jwk)
}

/// A compact JWE (ECDH-ES+A256KW, A256GCM) of `payload` to the device key.
pub fn encrypt_to_device(device_key: &Jwk, payload: &[u8]) -> Result<String, String> {
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_content_type("JWT");
    let encrypter = ECDH_ES_A256KW.encrypter_from_jwk(device_key).map_err(|e| e.to_string())?;
    josekit::jwe::serialize_compact(payload, &header, &encrypter).map_err(|e| e.to_string())
}

/// The payload of a compact JWS, unverified: only to find which tenant's key verifies it.
pub fn unverified_payload(compact: &str) -> Option<serde_json::Value> {
    if compact.len() > MAX_COMPACT_BYTES {
        return None;
    }
    let mut parts = compact.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else { return None };
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// The payload of a compact JWS verified with an Ed25519 public JWK, with the `typ` it must carry.
pub fn verify_eddsa(public: &Jwk, compact: &str, typ: &str) -> Result<Vec<u8>, String> {
    if compact.len() > MAX_COMPACT_BYTES {
        return Err("too large".to_owned());
    }
    let verifier = EdDSA.verifier_from_jwk(public).map_err(|e| e.to_string())?;
    let (payload, header) = josekit::jws::deserialize_compact(compact, &verifier).map_err(|e| e.to_string())?;
    if header.token_type() != Some(typ) {
        return Err(format!("typ must be {typ}"));
    }
    Ok(payload)
}

/// The payload of a device's compact JWS (ES256) verified with its registered key.
pub fn verify_device_proof(device_key: &Jwk, compact: &str) -> Result<Vec<u8>, String> {
    if compact.len() > MAX_COMPACT_BYTES {
        return Err("too large".to_owned());
    }
    let verifier = ES256.verifier_from_jwk(device_key).map_err(|e| e.to_string())?;
    let (payload, _) = josekit::jws::deserialize_compact(compact, &verifier).map_err(|e| e.to_string())?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jwk::KeyPair;
    use josekit::jwk::alg::ec::{EcCurve, EcKeyPair};
    use openssl::bn::BigNum;
    use openssl::derive::Deriver;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use proptest::prelude::*;

    fn device() -> (EcKeyPair, Jwk) {
        let pair = EcKeyPair::generate(EcCurve::P256).unwrap();
        let public = parse_device_jwk(&serde_json::to_value(pair.to_jwk_public_key()).unwrap()).unwrap();
        (pair, public)
    }

    /// Decrypt a compact ECDH-ES+A256KW / A256GCM JWE with bare OpenSSL primitives (RFC 7518 4.6 and 4.4), a path
    /// independent of josekit: ECDH, Concat KDF with SHA-256, AES key unwrap, AES-256-GCM.
    fn decrypt_independently(device: &EcKeyPair, compact: &str) -> Vec<u8> {
        let parts: Vec<&str> = compact.split('.').collect();
        assert_eq!(parts.len(), 5);
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ECDH-ES+A256KW");
        assert_eq!(header["enc"], "A256GCM");
        let epk = &header["epk"];
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let coord =
            |name: &str| BigNum::from_slice(&URL_SAFE_NO_PAD.decode(epk[name].as_str().unwrap()).unwrap()).unwrap();
        let peer = EcKey::from_public_key_affine_coordinates(&group, &coord("x"), &coord("y")).unwrap();
        let ours = PKey::private_key_from_der(&device.to_der_private_key()).unwrap();
        let peer = PKey::from_ec_key(peer).unwrap();
        let mut deriver = Deriver::new(&ours).unwrap();
        deriver.set_peer(&peer).unwrap();
        let z = deriver.derive_to_vec().unwrap();
        // Concat KDF: round 1 || Z || AlgorithmID || PartyUInfo || PartyVInfo || SuppPubInfo (keydatalen 256).
        let alg = b"ECDH-ES+A256KW";
        let mut info = Vec::new();
        info.extend_from_slice(&1u32.to_be_bytes());
        info.extend_from_slice(&z);
        info.extend_from_slice(&(alg.len() as u32).to_be_bytes());
        info.extend_from_slice(alg);
        info.extend_from_slice(&0u32.to_be_bytes());
        info.extend_from_slice(&0u32.to_be_bytes());
        info.extend_from_slice(&256u32.to_be_bytes());
        let kek = openssl::sha::sha256(&info);
        let wrapped = URL_SAFE_NO_PAD.decode(parts[1]).unwrap();
        let kek = openssl::aes::AesKey::new_decrypt(&kek).unwrap();
        let mut cek = vec![0u8; wrapped.len() - 8];
        openssl::aes::unwrap_key(&kek, None, &mut cek, &wrapped).unwrap();
        let iv = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        let ciphertext = URL_SAFE_NO_PAD.decode(parts[3]).unwrap();
        let tag = URL_SAFE_NO_PAD.decode(parts[4]).unwrap();
        openssl::symm::decrypt_aead(
            openssl::symm::Cipher::aes_256_gcm(),
            &cek,
            Some(&iv),
            parts[0].as_bytes(),
            &ciphertext,
            &tag,
        )
        .unwrap()
    }

    /// Verify an EdDSA compact JWS with bare OpenSSL, from the published JWK's `x`.
    fn verify_independently(public: &Jwk, compact: &str) -> Vec<u8> {
        let parts: Vec<&str> = compact.split('.').collect();
        let x = URL_SAFE_NO_PAD.decode(public.parameter("x").unwrap().as_str().unwrap()).unwrap();
        let key = PKey::public_key_from_raw_bytes(&x, openssl::pkey::Id::ED25519).unwrap();
        let mut verifier = openssl::sign::Verifier::new_without_digest(&key).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert!(verifier.verify_oneshot(&signature, signed.as_bytes()).unwrap(), "signature must verify");
        URL_SAFE_NO_PAD.decode(parts[1]).unwrap()
    }

    #[test]
    fn a_bundle_decrypts_and_verifies_without_josekit() {
        let signing = SigningKey::generate().unwrap();
        let (device_pair, device_public) = device();
        let payload = br#"{"keys":[{"kty":"oct","k":"tQ0bJVWb6b0KPL6KtZIy_A","kid":"LwVHf8JLtPrv2GUXFW2v_A"}]}"#;
        let jws = signing.sign(payload, BUNDLE_TYP).unwrap();
        let jwe = encrypt_to_device(&device_public, jws.as_bytes()).unwrap();
        let inner = decrypt_independently(&device_pair, &jwe);
        assert_eq!(inner, jws.as_bytes());
        assert_eq!(verify_independently(&signing.public_jwk(), &jws), payload);
        // And the published key verifies it through josekit too, after a round trip through the vault's DER.
        let reopened = SigningKey::from_pkcs8(&signing.pkcs8()).unwrap();
        assert_eq!(reopened.kid(), signing.kid());
        assert_eq!(verify_eddsa(&reopened.public_jwk(), &jws, BUNDLE_TYP).unwrap(), payload);
    }

    #[test]
    fn tampered_or_foreign_signatures_are_refused() {
        let signing = SigningKey::generate().unwrap();
        let other = SigningKey::generate().unwrap();
        let jws = signing.sign(br#"{"a":1}"#, BUNDLE_TYP).unwrap();
        let parts: Vec<&str> = jws.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(br#"{"a":2}"#), parts[2]);
        assert!(verify_eddsa(&signing.public_jwk(), &forged, BUNDLE_TYP).is_err());
        assert!(verify_eddsa(&other.public_jwk(), &jws, BUNDLE_TYP).is_err());
        assert!(verify_eddsa(&signing.public_jwk(), &jws, REVOCATIONS_TYP).is_err(), "typ is bound");
    }

    #[test]
    fn device_keys_other_than_public_p256_are_refused() {
        let (pair, public) = device();
        let private = serde_json::to_value(pair.to_jwk_private_key()).unwrap();
        assert!(parse_device_jwk(&private).unwrap_err().contains("`d`"));
        let p384 = EcKeyPair::generate(EcCurve::P384).unwrap();
        assert!(parse_device_jwk(&serde_json::to_value(p384.to_jwk_public_key()).unwrap()).is_err());
        let mut off_curve = serde_json::to_value(&public).unwrap();
        off_curve["y"] = serde_json::Value::String(URL_SAFE_NO_PAD.encode([7u8; 32]));
        assert_eq!(parse_device_jwk(&off_curve).unwrap_err(), "public_key is not a point on P-256");
    }

    #[test]
    fn device_proofs_verify_with_the_device_key_only() {
        let (pair, public) = device();
        let (_, other_public) = device();
        let signer = ES256.signer_from_jwk(&pair.to_jwk_private_key()).unwrap();
        let proof = josekit::jws::serialize_compact(br#"{"action":"reset"}"#, &JwsHeader::new(), &signer).unwrap();
        assert_eq!(verify_device_proof(&public, &proof).unwrap(), br#"{"action":"reset"}"#);
        assert!(verify_device_proof(&other_public, &proof).is_err());
    }

    proptest! {
        #[test]
        fn device_jwk_parser_never_panics(json in "\\PC{0,200}", x in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&json) {
                let _ = parse_device_jwk(&value);
            }
            let value = serde_json::json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(&x), "y": URL_SAFE_NO_PAD.encode(&x)});
            let _ = parse_device_jwk(&value);
        }

        #[test]
        fn jws_parsers_never_panic(input in "[A-Za-z0-9_.\\-]{0,300}") {
            let signing = SigningKey::generate().unwrap();
            let (_, device_public) = device();
            let _ = unverified_payload(&input);
            prop_assert!(verify_eddsa(&signing.public_jwk(), &input, BUNDLE_TYP).is_err());
            prop_assert!(verify_device_proof(&device_public, &input).is_err());
        }
    }
}
