"""schemathesis hooks for Clavis's API check (tests/integration/schemathesis.rs sets SCHEMATHESIS_HOOKS to this file).

A device's reset proof is a compact JWS sent as `application/jose` (RFC 7515), a media type schemathesis has no
serializer for; its body is plain ASCII text, so the text/plain serializer sends it as it is.
"""

import schemathesis

schemathesis.serializer.alias("application/jose", "text/plain")
