"""Attestation tokens: EAR claims in an ES256 JWT, and the broker's signing keys (JWKS)."""
