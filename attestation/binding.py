"""Report-data binding: how a verifier's nonce and the TEE's ephemeral key get into evidence.

The rule is the KBS protocol's (confidential-containers/trustee kbs/docs/kbs_attestation_protocol.md), so Trustee
guest components and Veil agree byte for byte:

    P = H(JCS({"additional-evidence": A, "nonce": N, "tee-pubkey": K}))   CPU report data
    D = H(JCS({"nonce": N, "tee-pubkey": K}))                             device (GPU) nonce input

H is SHA-384 by default, JCS is RFC 8785 canonical JSON, N is the nonce as
the broker sent it (a base64 string), K the TEE public key as a JWK object and
A the exact additional-evidence string ("" when there is none). TDX REPORTDATA
and SNP REPORT_DATA hold P zero-padded to 64 bytes; an NVIDIA SPDM nonce is the
first 32 bytes of D. Nothing is silently truncated: a digest longer than its
slot is an error.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Mapping

import rfc8785

from .errors import VerificationError
from .jcs import canonical_json

HASHES = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
REPORT_DATA_SIZE = 64
GPU_NONCE_SIZE = 32


def _digest(obj: Mapping[str, Any], hash_alg: str) -> bytes:
    try:
        hasher = HASHES[hash_alg]
    except KeyError:
        raise ValueError(f"unsupported binding hash {hash_alg!r}; expected one of {sorted(HASHES)}") from None
    try:
        return hasher(canonical_json(dict(obj))).digest()
    except rfc8785.CanonicalizationError as exc:   # NaN, ±Infinity, |int| > 2^53, a lone surrogate
        raise VerificationError("binding.canonical_json",
                                f"the runtime data has no RFC 8785 canonical form ({exc})") from None


def runtime_data_digest(nonce: str, tee_pubkey: Mapping[str, Any], *, additional_evidence: str = "",
                        hash_alg: str = "sha384") -> bytes:
    """P: the digest the CPU evidence must carry in its report data."""
    return _digest({"additional-evidence": additional_evidence, "nonce": nonce,
                    "tee-pubkey": dict(tee_pubkey)}, hash_alg)


def device_nonce_digest(nonce: str, tee_pubkey: Mapping[str, Any], *, hash_alg: str = "sha384") -> bytes:
    """D: the digest whose first 32 bytes are an SPDM GPU nonce."""
    return _digest({"nonce": nonce, "tee-pubkey": dict(tee_pubkey)}, hash_alg)


def report_data(nonce: str, tee_pubkey: Mapping[str, Any], *, additional_evidence: str = "",
                hash_alg: str = "sha384") -> bytes:
    """The 64 bytes of TDX REPORTDATA / SNP REPORT_DATA for this nonce and key."""
    digest = runtime_data_digest(nonce, tee_pubkey, additional_evidence=additional_evidence,
                                 hash_alg=hash_alg)
    return digest.ljust(REPORT_DATA_SIZE, b"\0")


def gpu_nonce(nonce: str, tee_pubkey: Mapping[str, Any], *, hash_alg: str = "sha384") -> bytes:
    return device_nonce_digest(nonce, tee_pubkey, hash_alg=hash_alg)[:GPU_NONCE_SIZE]


def check_report_data(actual_hex: str, nonce: str, tee_pubkey: Mapping[str, Any], *,
                      additional_evidence: str = "", hash_alg: str = "sha384") -> None:
    """Raise VerificationError("binding.report_data") unless the evidence binds nonce and key."""
    expected = report_data(nonce, tee_pubkey, additional_evidence=additional_evidence, hash_alg=hash_alg)
    if not hmac.compare_digest(bytes.fromhex(actual_hex), expected):
        raise VerificationError("binding.report_data",
                                "report data does not bind this nonce and TEE public key",
                                expected=expected.hex(), actual=actual_hex)
