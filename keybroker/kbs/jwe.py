"""Wrap a released resource to the TEE's key as a JWE (kbs-protocol.md §4), with joserfc.

The flattened JSON members are the compact serialization's five parts: `epk`
sits in the protected header as Trustee puts it, and the AAD is the ASCII of
`protected` (no `aad` member), so Trustee's guest components can decrypt it.
"""

from __future__ import annotations

from typing import Any

from joserfc import jwe
from joserfc.errors import DecodeError
from joserfc.jwk import ECKey, RSAKey

ALGORITHMS = ["ECDH-ES+A256KW", "RSA-OAEP-256", "A256GCM"]
PARTS = ("protected", "encrypted_key", "iv", "ciphertext", "tag")


def _public_key(jwk: dict[str, Any]):
    if jwk.get("kty") == "EC":
        return ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")}), "ECDH-ES+A256KW"
    return RSAKey.import_key({k: jwk[k] for k in ("kty", "n", "e")}), "RSA-OAEP-256"


def wrap(tee_pubkey: dict[str, Any], plaintext: bytes) -> dict[str, str]:
    key, alg = _public_key(tee_pubkey)
    compact = jwe.encrypt_compact({"alg": alg, "enc": "A256GCM"}, plaintext, key, algorithms=ALGORITHMS)
    return dict(zip(PARTS, compact.split(".")))


def unwrap(response: dict[str, str], private_key) -> bytes:
    """The guest side: decrypt a KBS resource response with the ephemeral private key.

    Raises:
        joserfc.errors.JoseError: the response is not a flattened JWE of five string members, or does not
            decrypt under this key.
    """
    if not isinstance(response, dict) or not all(isinstance(response.get(p), str) and response[p].isascii()
                                                 for p in PARTS):
        raise DecodeError("the response is not a JWE: it needs the base64url string members " + ", ".join(PARTS))
    compact = ".".join(response[p] for p in PARTS)
    try:
        return jwe.decrypt_compact(compact, private_key, algorithms=ALGORITHMS).plaintext
    except (ValueError, TypeError, KeyError) as exc:   # joserfc lets malformed headers through (epk off curve, bad crv)
        raise DecodeError(f"the response is not a JWE for this key ({exc})") from None
