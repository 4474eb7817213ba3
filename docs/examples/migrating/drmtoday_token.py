#!/usr/bin/env python3
"""A castLabs DRMtoday upfront authorization token (x-dt-auth-token), written the way a merchant's backend writes
it, with the standard library only. Clavis accepts these tokens unchanged.

usage: drmtoday_token.py MERCHANT KID SECRET_HEX USER_ID ASSET_ID [RIGHTS_JSON]
RIGHTS_JSON is merged into the customer right, e.g. '{"storeLicense": true}' or
'{"profile": {"rental": {"relativeExpiration": "PT2H", "playDuration": 7200000}}}'.
"""
import base64, hashlib, hmac, json, sys, time, uuid


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def upfront_token(merchant, kid, secret_hex, user_id, asset_id, rights=None, ttl=600):
    right = {"assetId": asset_id, "profile": {"purchase": {}}}
    right.update(rights or {})
    now = int(time.time())
    claims = {
        "jti": str(uuid.uuid4()),  # DRMtoday tokens are single use
        "iat": now,
        "exp": now + ttl,
        "optData": json.dumps({"merchant": merchant, "userId": user_id, "sessionId": str(uuid.uuid4())}),
        "crt": json.dumps([right]),
    }
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(bytes.fromhex(secret_hex), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


if __name__ == "__main__":
    merchant, kid, secret_hex, user_id, asset_id = sys.argv[1:6]
    rights = json.loads(sys.argv[6]) if len(sys.argv) > 6 else None
    print(upfront_token(merchant, kid, secret_hex, user_id, asset_id, rights))
