#!/bin/sh
# Encrypt an MP4 with ffmpeg (CENC, AES-CTR) under the content's key from Clavis: the key API makes the key on the
# first call and answers the same key on every later one. Needs curl, jq and ffmpeg.
# usage: CLAVIS=https://drm.example.com CLAVIS_API_KEY=... package_cenc.sh CONTENT_ID INPUT.mp4 OUTPUT.mp4
set -eu
keys=$(curl -sS --fail-with-body -X POST "$CLAVIS/api/v1/keys" -H "Authorization: Bearer $CLAVIS_API_KEY" \
  -H 'Content-Type: application/json' -d "{\"content_id\":\"$1\"}")
kid=$(printf '%s' "$keys" | jq -r '.keys[0].kid')
key=$(printf '%s' "$keys" | jq -r '.keys[0].key')
ffmpeg -loglevel error -y -i "$2" -c copy -encryption_scheme cenc-aes-ctr \
  -encryption_key "$key" -encryption_kid "$kid" "$3"
echo "$kid"
