#!/usr/bin/env python3
"""Sign a Clavis license token (HS256) with the tenant's secret, using only the standard library.

usage: sign_token.py SITE_ID KID SECRET_HEX USER_ID CONTENT_ID [POLICY_JSON]
"""
import base64, hashlib, hmac, json, sys, time, uuid


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(site_id, kid, secret_hex, user_id, content_id, policy=None, ttl=600):
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    claims = {"iss": site_id, "sub": user_id, "cid": content_id, "iat": now, "nbf": now,
              "exp": now + ttl, "jti": str(uuid.uuid4()), "policy": policy or {}}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(bytes.fromhex(secret_hex), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


if __name__ == "__main__":
    site_id, kid, secret_hex, user_id, content_id = sys.argv[1:6]
    policy = json.loads(sys.argv[6]) if len(sys.argv) > 6 else None
    print(sign(site_id, kid, secret_hex, user_id, content_id, policy))
