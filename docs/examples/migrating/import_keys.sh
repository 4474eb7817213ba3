#!/bin/sh
# Import a content's existing keys (as exported from the previous DRM service or the packager's key store) into
# Clavis, so that content packaged before the move keeps playing. One TRACK:KID:KEY per key, KID and KEY in hex.
# usage: CLAVIS=https://drm.example.com CLAVIS_API_KEY=... import_keys.sh CONTENT_ID TRACK:KID:KEY [...]
set -eu
content=$1; shift
keys=""
for entry in "$@"; do
  track=${entry%%:*} rest=${entry#*:}
  keys="$keys${keys:+,}{\"track_type\":\"$track\",\"kid\":\"${rest%%:*}\",\"key\":\"${rest#*:}\"}"
done
curl -sS --fail-with-body -X POST "$CLAVIS/api/v1/keys" -H "Authorization: Bearer $CLAVIS_API_KEY" \
  -H 'Content-Type: application/json' -d "{\"content_id\":\"$content\",\"keys\":[$keys]}"
