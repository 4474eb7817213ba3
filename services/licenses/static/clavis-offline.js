/*
 * Clavis offline reference client (docs/offline.md). Plain JavaScript, WebCrypto only, no framework.
 *
 *   const device = await ClavisOffline.device();                       // key pair + id, kept in IndexedDB
 *   await ClavisOffline.register(clavisUrl, licenseToken, device);      // POST /license/devices
 *   const bundle = await ClavisOffline.openBundle(device, jweText, { jwksUrl, revocationsUrl });
 *   await ClavisOffline.attach(video, bundle.license);                 // EME ClearKey, then set src and play
 *
 * The device key: WebCrypto binds a key to one algorithm, and the same P-256 key must decrypt bundles (ECDH) and
 * sign reset proofs (ECDSA). So the pair is generated extractable once, its PKCS#8 imported twice as NON-extractable
 * keys (ECDH and ECDSA), and the PKCS#8 bytes dropped; only the non-extractable CryptoKeys are stored (IndexedDB
 * stores CryptoKey objects without exposing their bytes).
 */
(function (global) {
  'use strict';

  const DB_NAME = 'clavis-offline';
  const STORE = 'device';
  const enc = new TextEncoder();
  const dec = new TextDecoder();

  function b64urlDecode(text) {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function b64urlEncode(bytes) {
    let bin = '';
    for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function concat(...parts) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  function u32(n) {
    return new Uint8Array([(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  }

  function lengthPrefixed(bytes) {
    return concat(u32(bytes.length), bytes);
  }

  function idb(mode, fn) {
    return new Promise((resolve, reject) => {
      const open = indexedDB.open(DB_NAME, 1);
      open.onupgradeneeded = () => open.result.createObjectStore(STORE);
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const tx = open.result.transaction(STORE, mode);
        const request = fn(tx.objectStore(STORE));
        tx.oncomplete = () => { open.result.close(); resolve(request.result); };
        tx.onerror = () => reject(tx.error);
      };
    });
  }

  /** Make a new device: random id, P-256 keys (non-extractable), stored in IndexedDB (replacing any previous one). */
  async function createDevice() {
    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, true, ['deriveBits']);
    const pkcs8 = await crypto.subtle.exportKey('pkcs8', pair.privateKey);
    const publicJwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
    const ecdh = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    const ecdsa = await crypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    new Uint8Array(pkcs8).fill(0);
    const device = {
      id: crypto.randomUUID(),
      ecdh,
      ecdsa,
      publicJwk: { kty: 'EC', crv: 'P-256', x: publicJwk.x, y: publicJwk.y },
    };
    await idb('readwrite', (store) => store.put(device, 'current'));
    return device;
  }

  /** The stored device, or a new one. */
  async function device() {
    const stored = await idb('readonly', (store) => store.get('current'));
    return stored || createDevice();
  }

  /** A new key for the same device id (after a factory reset), stored in place of the old one. */
  async function renewKey(current) {
    const fresh = await createDevice();
    fresh.id = current.id;
    await idb('readwrite', (store) => store.put(fresh, 'current'));
    return fresh;
  }

  async function problem(response) {
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    const error = new Error(`${response.status} ${body.code || ''} ${body.detail || body.title || ''}`.trim());
    error.code = body.code;
    return error;
  }

  /** POST /license/devices with a license token naming the user. */
  async function register(clavisUrl, licenseToken, dev, name) {
    const response = await fetch(`${clavisUrl}/license/devices`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Clavis-Token': licenseToken },
      body: JSON.stringify({ device_id: dev.id, public_key: dev.publicJwk, name }),
    });
    if (!response.ok) throw await problem(response);
    return response.json();
  }

  /** Reset this device: a JWS (ES256) over {device_id, action, iat} signed with its key. */
  async function reset(clavisUrl, siteId, dev) {
    const header = b64urlEncode(enc.encode(JSON.stringify({ alg: 'ES256' })));
    const payload = b64urlEncode(enc.encode(JSON.stringify({
      device_id: dev.id, action: 'reset', iat: Math.floor(Date.now() / 1000),
    })));
    const signature = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, dev.ecdsa, enc.encode(`${header}.${payload}`));
    const response = await fetch(`${clavisUrl}/license/devices/${siteId}/${encodeURIComponent(dev.id)}/reset`, {
      method: 'POST', body: `${header}.${payload}.${b64urlEncode(signature)}`,
    });
    if (!response.ok) throw await problem(response);
    return response.json();
  }

  /** Decrypt a compact JWE (ECDH-ES+A256KW, A256GCM) with the device's ECDH key. */
  async function decrypt(dev, jwe) {
    const parts = jwe.trim().split('.');
    if (parts.length !== 5) throw new Error('not a compact JWE');
    const header = JSON.parse(dec.decode(b64urlDecode(parts[0])));
    if (header.alg !== 'ECDH-ES+A256KW' || header.enc !== 'A256GCM') throw new Error('unsupported JWE algorithms');
    const epk = await crypto.subtle.importKey('jwk', { kty: 'EC', crv: 'P-256', x: header.epk.x, y: header.epk.y },
      { name: 'ECDH', namedCurve: 'P-256' }, false, []);
    const z = new Uint8Array(await crypto.subtle.deriveBits({ name: 'ECDH', public: epk }, dev.ecdh, 256));
    // Concat KDF (RFC 7518 4.6.2), one SHA-256 round for a 256-bit key-wrapping key.
    const otherInfo = concat(
      lengthPrefixed(enc.encode(header.alg)),
      lengthPrefixed(header.apu ? b64urlDecode(header.apu) : new Uint8Array(0)),
      lengthPrefixed(header.apv ? b64urlDecode(header.apv) : new Uint8Array(0)),
      u32(256),
    );
    const kekBytes = await crypto.subtle.digest('SHA-256', concat(u32(1), z, otherInfo));
    const kek = await crypto.subtle.importKey('raw', kekBytes, 'AES-KW', false, ['unwrapKey']);
    const cek = await crypto.subtle.unwrapKey('raw', b64urlDecode(parts[1]), kek, 'AES-KW', 'AES-GCM', false, ['decrypt']);
    const plaintext = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: b64urlDecode(parts[2]), additionalData: enc.encode(parts[0]), tagLength: 128 },
      cek,
      concat(b64urlDecode(parts[3]), b64urlDecode(parts[4])),
    );
    return dec.decode(plaintext);
  }

  /** Verify a compact JWS (EdDSA, Ed25519) with a JWKS; answers the payload. */
  async function verify(jws, jwks, typ) {
    const parts = jws.trim().split('.');
    if (parts.length !== 3) throw new Error('not a compact JWS');
    const header = JSON.parse(dec.decode(b64urlDecode(parts[0])));
    if (header.alg !== 'EdDSA' || header.typ !== typ) throw new Error('unexpected JWS header');
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    if (!jwk) throw new Error('unknown signing key');
    const key = await crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, { name: 'Ed25519' }, false, ['verify']);
    const ok = await crypto.subtle.verify({ name: 'Ed25519' }, key, b64urlDecode(parts[2]), enc.encode(`${parts[0]}.${parts[1]}`));
    if (!ok) throw new Error('bad signature');
    return JSON.parse(dec.decode(b64urlDecode(parts[1])));
  }

  /**
   * Open a bundle: decrypt, verify with the tenant's JWKS, check device, expiry and the signed revocation list
   * (refusing a list older than the newest one seen). Answers the payload; `payload.license` goes to EME.
   */
  async function openBundle(dev, jwe, { jwksUrl, revocationsUrl }) {
    const jwks = await (await fetch(jwksUrl)).json();
    const claims = await verify(await decrypt(dev, jwe), jwks, 'clavis-bundle+jwt');
    if (claims.sub !== dev.id) throw new Error('the bundle is for another device');
    if (claims.exp <= Date.now() / 1000) throw new Error('the bundle has expired');
    const list = await verify(await (await fetch(revocationsUrl)).text(), jwks, 'clavis-revocations+jwt');
    const seenKey = `clavis-revocations-version:${list.iss}`;
    const seen = Number(localStorage.getItem(seenKey) || 0);
    if (list.version < seen) throw new Error('the revocation list is older than one already seen');
    localStorage.setItem(seenKey, String(list.version));
    if (list.iss !== claims.iss) throw new Error('the revocation list is another tenant\'s');
    if (list.revoked.some((r) => r.device_id === claims.sub && r.generation === claims.generation)) {
      throw new Error('the bundle was revoked (device reset)');
    }
    return claims;
  }

  /**
   * Give `video` the bundle's ClearKey license: once this resolves, set its source (file or MediaSource) and play.
   * Every `encrypted` event opens a session that is answered with the bundle's keys, without any network request.
   */
  async function attach(video, license, { videoType = 'video/mp4; codecs="avc1.42E01E"', audioType } = {}) {
    const configuration = { initDataTypes: ['cenc', 'keyids'], videoCapabilities: [{ contentType: videoType }] };
    if (audioType) configuration.audioCapabilities = [{ contentType: audioType }];
    const access = await navigator.requestMediaKeySystemAccess('org.w3.clearkey', [configuration]);
    const mediaKeys = await access.createMediaKeys();
    await video.setMediaKeys(mediaKeys);
    const body = enc.encode(JSON.stringify({ keys: license.keys, type: 'temporary' }));
    video.addEventListener('encrypted', async (event) => {
      const session = mediaKeys.createSession('temporary');
      session.addEventListener('message', () => session.update(body));
      await session.generateRequest(event.initDataType, event.initData);
    });
  }

  global.ClavisOffline = { device, createDevice, renewKey, register, reset, decrypt, verify, openBundle, attach };
})(typeof window !== 'undefined' ? window : globalThis);
