#!/usr/bin/env node
// Sign a Clavis license token with Node's standard library: HS256 with the tenant's secret (hex), or EdDSA with
// its Ed25519 private key (a PEM file).
// usage: sign_token.js SITE_ID KID SECRET_HEX|KEY.pem USER_ID CONTENT_ID [POLICY_JSON]
const crypto = require("crypto");
const fs = require("fs");

const b64url = (data) => Buffer.from(data).toString("base64url");

function sign({ siteId, kid, key, userId, contentId, policy = {}, ttl = 600 }) {
  const now = Math.floor(Date.now() / 1000);
  const alg = key.startsWith("-----BEGIN") ? "EdDSA" : "HS256";
  const header = { alg, typ: "JWT", kid };
  const claims = { iss: siteId, sub: userId, cid: contentId, iat: now, nbf: now, exp: now + ttl,
                   jti: crypto.randomUUID(), policy };
  const input = b64url(JSON.stringify(header)) + "." + b64url(JSON.stringify(claims));
  const signature = alg === "HS256"
    ? crypto.createHmac("sha256", Buffer.from(key, "hex")).update(input).digest()
    : crypto.sign(null, Buffer.from(input), crypto.createPrivateKey(key));
  return input + "." + b64url(signature);
}

const [siteId, kid, keyArg, userId, contentId, policy] = process.argv.slice(2);
const key = fs.existsSync(keyArg) ? fs.readFileSync(keyArg, "utf8") : keyArg;
console.log(sign({ siteId, kid, key, userId, contentId, policy: policy ? JSON.parse(policy) : {} }));
