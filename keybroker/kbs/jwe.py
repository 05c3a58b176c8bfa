"""Wrap a released resource to the TEE's key as a JWE (KBS protocol resource response), with joserfc.

The flattened JSON members are the compact serialization's five parts: `epk`
sits in the protected header as Trustee puts it, and the AAD is the ASCII of
`protected` (no `aad` member), so Trustee's guest components can decrypt it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwe
from joserfc.errors import DecodeError
from joserfc.jwk import ECKey, RSAKey
from joserfc.util import urlsafe_b64decode

ALGORITHMS = ["ECDH-ES+A256KW", "RSA-OAEP-256", "A256GCM"]
PARTS = ("protected", "encrypted_key", "iv", "ciphertext", "tag")
CURVES = {"P-256": (ec.SECP256R1(), 32), "P-384": (ec.SECP384R1(), 48), "P-521": (ec.SECP521R1(), 66)}
MIN_RSA_BITS = 2048


def tee_key(jwk: dict[str, Any]) -> tuple[ECKey | RSAKey, str]:
    """The TEE's public JWK as a joserfc key, with the key-management algorithm releases to it use: EC P-256/384/521
    (alg absent or ECDH-ES+A256KW) or RSA of at least 2048 bits (alg RSA-OAEP-256). ValueError otherwise.

    This runs twice per release (the attest checks the key, the release wraps to it), on the same worker for a
    client on one connection: EC keys are remembered by their members (`_ec_key`)."""
    kty, alg = jwk.get("kty"), jwk.get("alg")
    if kty == "EC" and alg in (None, "ECDH-ES+A256KW") and jwk.get("crv") in CURVES:
        x, y = jwk.get("x"), jwk.get("y")
        if not (isinstance(x, str) and isinstance(y, str)):
            raise ValueError("EC coordinates must be base64url strings")
        return _ec_key(jwk["crv"], x, y), "ECDH-ES+A256KW"
    if kty == "RSA" and alg == "RSA-OAEP-256":
        key = RSAKey.import_key({k: jwk[k] for k in ("kty", "n", "e")})
        if key.raw_value.key_size >= MIN_RSA_BITS:
            return key, "RSA-OAEP-256"
    raise ValueError(f"unsupported TEE key kty={kty} alg={alg}")


@lru_cache(maxsize=1024)
def _ec_key(crv: str, x: str, y: str) -> ECKey:
    """An EC public key built from its point, which `cryptography` checks lies on the curve, after checking that
    each coordinate is the curve's full size (RFC 7518 §6.2.1.2): a third of the time of joserfc's import from a
    dict. Only keys that pass are remembered (an exception is not cached)."""
    curve, size = CURVES[crv]
    xb, yb = urlsafe_b64decode(x.encode("ascii")), urlsafe_b64decode(y.encode("ascii"))
    if len(xb) != size or len(yb) != size:
        raise ValueError(f"EC coordinates must be {size} bytes each on {crv}")
    point = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + xb + yb)
    return ECKey(point, {"kty": "EC", "crv": crv, "x": x, "y": y})


def wrap(tee_pubkey: dict[str, Any], plaintext: bytes) -> dict[str, str]:
    key, alg = tee_key(tee_pubkey)
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
