"""NVIDIA remote attestation (NRAS) tokens: an EAT in array form, verified against a JWKS.

Token: `[["JWT", <overall JWT>], {"GPU-0": <JWT>, …}]` (nvtrust attestation SDK). Checks:
(1) every JWT is ES384 and signed by the JWKS key its `kid` names; `exp`/`nbf`
at opts.at; (2) overall `eat_nonce` equals the expected nonce; (3)
`x-nvidia-overall-att-result` is true; (4) each `submods` entry
["DIGEST", ["SHA256", hex]] equals SHA-256 of that GPU's JWT string and every
GPU token is listed; (5) each GPU token's `measres` is "success".
The JWKS is passed in (fetched by the caller from the NRAS well-known URL).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import jwt

from ..anchors import Anchor
from ..claims import AnchorRef, GpuClaims
from ..errors import ParseError, VerificationError

ALGORITHM = "ES384"


def parse_token(data: str | bytes) -> tuple[str, dict[str, str]]:
    """(overall JWT, {"GPU-i": JWT}) from the array form."""
    try:
        doc = json.loads(data)
        kind, overall = doc[0]
        gpus = doc[1]
    except (ValueError, TypeError, KeyError, IndexError):
        raise ParseError("NRAS token", "array", None, 'expected [["JWT", overall], {"GPU-0": jwt, …}]') from None
    if kind != "JWT" or not isinstance(overall, str) or not isinstance(gpus, dict) or \
            not all(isinstance(k, str) and isinstance(v, str) for k, v in gpus.items()):
        raise ParseError("NRAS token", "array", None, "entries must be JWT strings")
    return overall, gpus


def _decode(token: str, jwks: jwt.PyJWKSet, at: datetime, what: str) -> dict[str, Any]:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in jwks.keys if k.key_id == kid), None)
        if key is None:
            raise VerificationError("nvidia.nras_signature", f"{what}: no JWKS key with kid {kid!r}")
        return jwt.decode(token, key=key.key, algorithms=[ALGORITHM],
                          options={"verify_aud": False, "verify_iat": False, "verify_exp": False,
                                   "verify_nbf": False})
    except jwt.PyJWTError as exc:
        raise VerificationError("nvidia.nras_signature", f"{what}: {exc}") from None


def _check_time(claims: dict, at: datetime, what: str) -> None:
    now = at.timestamp()
    if "exp" in claims and now > float(claims["exp"]) or "nbf" in claims and now < float(claims["nbf"]):
        raise VerificationError("nvidia.nras_expired", f"{what} is not valid at {at.isoformat()}")


def _check_submods(overall: dict, gpus: dict[str, str]) -> None:
    submods = overall.get("submods")
    if not isinstance(submods, dict) or set(submods) != set(gpus):
        raise VerificationError("nvidia.nras_submods", "submods do not list exactly the GPU tokens",
                                expected=",".join(sorted(gpus)), actual=str(sorted(submods or {})))
    for name, token in gpus.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        if submods[name] != ["DIGEST", ["SHA256", digest]]:
            raise VerificationError("nvidia.nras_submods", f"{name}: digest does not match its token",
                                    expected=digest, actual=json.dumps(submods[name]))


def verify_nras_token(data: str | bytes, jwks: dict, *, nonce: bytes, at: datetime,
                      anchor: AnchorRef | Anchor | None = None) -> tuple[GpuClaims, ...]:
    """Verify an NRAS EAT; return one GpuClaims (source "nras") per GPU token."""
    overall_jwt, gpu_jwts = parse_token(data)
    try:
        keys = jwt.PyJWKSet.from_dict(jwks)
    except jwt.PyJWTError as exc:
        raise ParseError("NRAS JWKS", "keys", None, str(exc)) from None
    overall = _decode(overall_jwt, keys, at, "overall token")
    _check_time(overall, at, "overall token")
    if not hmac.compare_digest(str(overall.get("eat_nonce", "")).lower(), nonce.hex()):
        raise VerificationError("nvidia.nonce", "eat_nonce is not the expected nonce", expected=nonce.hex(),
                                actual=str(overall.get("eat_nonce")))
    if overall.get("x-nvidia-overall-att-result") is not True:
        raise VerificationError("nvidia.nras_result", "x-nvidia-overall-att-result is not true",
                                expected="true", actual=str(overall.get("x-nvidia-overall-att-result")))
    _check_submods(overall, gpu_jwts)
    ref = anchor.ref() if isinstance(anchor, Anchor) else anchor or AnchorRef(
        kind="vendor", name="nvidia-nras-jwks", sha256=hashlib.sha256(json.dumps(jwks, sort_keys=True).encode())
        .hexdigest())
    return tuple(_gpu_claims(i, name, _decode(tok, keys, at, name), nonce, ref)
                 for i, (name, tok) in enumerate(sorted(gpu_jwts.items())))


def _gpu_claims(index: int, name: str, claims: dict, nonce: bytes, ref: AnchorRef) -> GpuClaims:
    result = claims.get("measres")
    if result != "success":
        raise VerificationError("nvidia.measurements", f"{name}: measres is {result!r}",
                                expected="success", actual=str(result))
    return GpuClaims(index=index, architecture=str(claims.get("x-nvidia-gpu-arch-check") and "hopper"),
                     anchor=ref, source="nras", driver_version=str(claims.get("x-nvidia-gpu-driver-version", "")),
                     vbios_version=str(claims.get("x-nvidia-gpu-vbios-version", "")).lower(),
                     certificate_serial=claims.get("ueid") if isinstance(claims.get("ueid"), str) else None,
                     nonce=nonce.hex(), cc_mode="unknown", measurement_result="success",
                     warnings=("claims asserted by NVIDIA's remote verifier, not checked locally",))
