#!/usr/bin/env node
// An Axinom DRM license service message (X-AxDRM-Message) with the content keys inline, written the way an Axinom
// customer's entitlement service writes it, with Node's standard library only. Clavis accepts it unchanged.
// usage: axinom_message.js COM_KEY_ID COM_KEY_BASE64 KID:KEY_HEX [KID:KEY_HEX ...]   (KID as a UUID)
const crypto = require("crypto");

const b64url = (data) => Buffer.from(data).toString("base64url");
const uuidBytes = (uuid) => Buffer.from(uuid.replace(/-/g, ""), "hex");

// The content key encrypted with the communication key: AES-256-CBC, the KID's bytes as IV, no padding.
function encryptKey(comKey, kid, keyHex) {
  const cipher = crypto.createCipheriv("aes-256-cbc", comKey, uuidBytes(kid)).setAutoPadding(false);
  return Buffer.concat([cipher.update(Buffer.from(keyHex, "hex")), cipher.final()]).toString("base64");
}

function licenseServiceMessage(comKeyId, comKeyBase64, keys) {
  const comKey = Buffer.from(comKeyBase64, "base64");
  const now = Date.now();
  const claims = {
    version: 1,
    com_key_id: comKeyId,
    message: {
      type: "entitlement_message",
      version: 2,
      license: { duration: 3600, allow_persistence: false },
      content_keys_source: {
        inline: keys.map(([kid, keyHex]) => ({ id: kid, encrypted_key: encryptKey(comKey, kid, keyHex) })),
      },
      license_server: { access_control: { prevent_drm_message_reuse: false } },
    },
    begin_date: new Date(now - 5 * 60 * 1000).toISOString(),
    expiration_date: new Date(now + 30 * 60 * 1000).toISOString(),
  };
  const input = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" })) + "." + b64url(JSON.stringify(claims));
  return input + "." + b64url(crypto.createHmac("sha256", comKey).update(input).digest());
}

const [comKeyId, comKey, ...keys] = process.argv.slice(2);
console.log(licenseServiceMessage(comKeyId, comKey, keys.map((pair) => pair.split(":"))));
