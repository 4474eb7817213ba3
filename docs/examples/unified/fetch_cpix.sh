#!/bin/sh
# Post a CPIX request document to Clavis and write the answer (keys and DRM signalling filled in) for mp4split.
# Authenticates with HTTP Basic: the tenant's site id as user, its API key as password.
# usage: CLAVIS=https://drm.example.com SITE_ID=ABCD CLAVIS_API_KEY=... fetch_cpix.sh CONTENT_ID REQUEST.xml > ANSWER.xml
set -eu
curl -sS --fail-with-body -u "$SITE_ID:$CLAVIS_API_KEY" -H 'Content-Type: application/xml' \
  --data-binary "@$2" "$CLAVIS/speke/v1.0/copyProtection?content_id=$1"
