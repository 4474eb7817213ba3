#!/bin/sh
# Sign a Clavis license token with openssl: HS256 with the tenant's secret (hex), or EdDSA with an Ed25519 private
# key (a PEM file). User and content ids are written into JSON as given: keep them to letters, digits, - _ . /
# usage: sign_token.sh SITE_ID KID SECRET_HEX|KEY.pem USER_ID CONTENT_ID
set -eu
site=$1 kid=$2 key=$3 user=$4 content=$5
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
if [ -f "$key" ]; then alg=EdDSA; else alg=HS256; fi
header=$(printf '{"alg":"%s","typ":"JWT","kid":"%s"}' "$alg" "$kid" | b64url)
claims=$(printf '{"iss":"%s","sub":"%s","cid":"%s","iat":%s,"nbf":%s,"exp":%s,"jti":"%s"}' \
  "$site" "$user" "$content" "$now" "$now" $((now + 600)) "$(openssl rand -hex 16)" | b64url)
input="$header.$claims"
if [ "$alg" = HS256 ]; then
  sig=$(printf '%s' "$input" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$key" -binary | b64url)
else
  tmp=$(mktemp)
  printf '%s' "$input" >"$tmp"
  sig=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$tmp" | b64url)
  rm -f "$tmp"
fi
printf '%s.%s\n' "$input" "$sig"
