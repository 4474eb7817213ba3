#!/usr/bin/env node
// A PallyCon (DoveRunner) license token, written the way PallyCon's token sample writes it, with Node's standard
// library only. This is the code a PallyCon customer's backend already runs: Clavis accepts its tokens unchanged.
// usage: pallycon_token.js SITE_ID SITE_KEY ACCESS_KEY USER_ID CID [POLICY_JSON] [DRM_TYPE]
const crypto = require("crypto");

const IV = "0123456789abcdef"; // PallyCon's fixed policy IV

function pallyconToken({ siteId, siteKey, accessKey, userId, cid, policy, drmType = "Widevine" }) {
  // policy: AES-256-CBC (PKCS#7) under the 32-character site key, base64
  const cipher = crypto.createCipheriv("aes-256-cbc", Buffer.from(siteKey, "utf8"), Buffer.from(IV, "utf8"));
  const encPolicy = Buffer.concat([cipher.update(JSON.stringify(policy), "utf8"), cipher.final()]).toString("base64");
  const timestamp = new Date().toISOString().replace(/\.\d{3}Z$/, "Z"); // yyyy-mm-ddThh:mm:ssZ, GMT
  const hash = crypto.createHash("sha256")
    .update(accessKey + drmType + siteId + userId + cid + encPolicy + timestamp)
    .digest("base64");
  const token = { drm_type: drmType, site_id: siteId, user_id: userId, cid, policy: encPolicy, timestamp, hash,
                  response_format: "original", key_rotation: false };
  return Buffer.from(JSON.stringify(token)).toString("base64");
}

const [siteId, siteKey, accessKey, userId, cid, policy, drmType] = process.argv.slice(2);
const defaultPolicy = { policy_version: 2, playback_policy: { persistent: false, license_duration: 3600 } };
console.log(pallyconToken({ siteId, siteKey, accessKey, userId, cid, drmType,
                            policy: policy ? JSON.parse(policy) : defaultPolicy }));
