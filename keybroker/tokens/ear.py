"""The Veil attestation token: EAR claims (draft-fv-rats-ear) in an ES256 JWT, and its verification."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt
import orjson

from attestation.claims import Claims, TcbStatus

from .. import __version__
from ..errors import Unauthenticated
from .keys import SigningKeys

PROFILE = "tag:github.com,2024:confidential-containers/Trustee"
VECTOR_KEYS = ("instance-identity", "configuration", "executables", "file-system", "hardware",
               "runtime-opaque", "storage-opaque", "sourced-data")


def _tier(value: int) -> str:
    value = abs(value) if value < 0 else value
    if value >= 96:
        return "contraindicated"
    if value >= 32:
        return "warning"
    return "affirming" if value >= 2 else "none"


def _status(vector: dict[str, int]) -> str:
    order = ("none", "affirming", "warning", "contraindicated")
    tiers = [_tier(v) for v in vector.values() if v not in (0, 1, -1)]
    return max(tiers, key=order.index) if tiers else "none"


def trust_vector(claims: Claims) -> dict[str, int]:
    """AR4SI values for verified claims; measurements are judged later by the resource's policy."""
    vector = dict.fromkeys(VECTOR_KEYS, 0)
    vector["hardware"] = 2 if claims.tcb_status == TcbStatus.UP_TO_DATE else 32
    vector["configuration"] = 96 if claims.debug else 2
    vector["runtime-opaque"] = 2
    return vector


def _cpu_submod(claims: Claims, runtime_data: dict[str, Any], policy_id: str, document: dict[str, Any]) -> dict:
    vector = trust_vector(claims)
    annotated = {
        claims.tee: document.get(claims.tee) or {},
        "tcb_status": str(claims.tcb_status), "advisory_ids": list(claims.advisory_ids),
        "report_data": claims.report_data, "runtime_data_claims": runtime_data,
        "trust_anchor": "emulated" if claims.anchor.kind == "emulated" else claims.anchor.name,
    }
    return {"ear.status": _status(vector), "ear.trustworthiness-vector": vector,
            "ear.appraisal-policy-id": policy_id, "ear.veraison.annotated-evidence": annotated}


def _gpu_submod(gpu, gpu_document: dict[str, Any]) -> dict:
    ok = gpu.measurement_result == "success" and gpu.cc_mode == "on"
    vector = {"hardware": 2, "configuration": 2 if gpu.cc_mode == "on" else 96,
              "executables": 2 if ok else 33}
    return {"ear.status": _status(vector), "ear.trustworthiness-vector": vector,
            "ear.veraison.annotated-evidence": {"nvidia": gpu_document}}


def issue(keys: SigningKeys, *, issuer: str, jti: str, claims: Claims, runtime_data: dict[str, Any],
          now: datetime, ttl: timedelta, document: dict[str, Any], policy_id: str = "veil-broker") -> str:
    """The signed token. `document` is `claims.model_dump(mode="json")`, which the caller has made already (for
    the attestation's log entry)."""
    submods = {"cpu0": _cpu_submod(claims, runtime_data, policy_id, document)}
    for i, (gpu, gpu_document) in enumerate(zip(claims.gpus, document["gpus"], strict=True)):
        submods[f"gpu{i}"] = _gpu_submod(gpu, gpu_document)
    payload = {"eat_profile": PROFILE, "iss": issuer, "iat": int(now.timestamp()),
               "exp": int((now + ttl).timestamp()), "jti": jti,
               "ear.verifier-id": {"developer": "veil", "build": f"veil {__version__}"},
               "submods": submods}
    # PyJWS signs the payload bytes as given: serialised by orjson, a third of the time of PyJWT's json.dumps
    return jwt.api_jws.encode(orjson.dumps(payload), keys.token_key, algorithm="ES256",
                              headers={"kid": keys.token_kid, "typ": "JWT"})


def verify(keys: SigningKeys, token: str, *, issuer: str) -> dict[str, Any]:
    """A relying party's checks (§7): allowed alg, key by kid, iat/exp, profile, issuer."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = keys.public_token_key(kid) if isinstance(kid, str) else None
        if key is None:
            raise Unauthenticated("token.kid", "attestation token names no key of this broker")
        payload = jwt.decode(token, key, algorithms=["ES256"], issuer=issuer,
                             options={"require": ["iat", "exp", "jti", "iss"]}, leeway=5)
    except (jwt.PyJWTError, UnicodeError) as exc:      # a str that is not UTF-8 encodable is no token either
        raise Unauthenticated("token.invalid", f"attestation token rejected: {type(exc).__name__}") from None
    if payload.get("eat_profile") != PROFILE:
        raise Unauthenticated("token.profile", "attestation token has an unexpected eat_profile")
    return payload
