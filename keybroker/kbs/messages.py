"""KBS protocol messages (kbs-types): Request, Challenge, Attestation. Unknown fields are ignored."""

from __future__ import annotations

from typing import Any

import rfc8785
from pydantic import BaseModel, ConfigDict, Field, field_validator

from attestation.jcs import canonical_json

PROTOCOL_VERSIONS = ("0.4.0", "0.1.1", "0.1.0")   # 0.4.0 is Trustee's; older clients send 0.1.x
SUPPORTED_TEES = ("tdx", "snp")


class _Msg(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class KbsRequest(_Msg):
    version: str = Field(max_length=32)
    tee: str = Field(max_length=32)
    extra_params: Any = Field(default="", alias="extra-params")


class Challenge(_Msg):
    nonce: str
    extra_params: Any = Field(default="", alias="extra-params")


class RuntimeData(_Msg):
    nonce: str = Field(max_length=128)
    tee_pubkey: dict[str, Any] = Field(alias="tee-pubkey")

    @field_validator("nonce", "tee_pubkey")
    @classmethod
    def _canonical(cls, value: Any) -> Any:
        """Both are hashed as RFC 8785 JSON (the binding); NaN, ±Infinity, integers beyond ±2^53 and lone
        surrogates have no canonical form, and would otherwise fail only after the evidence verified."""
        try:
            canonical_json(value)
        except rfc8785.CanonicalizationError as exc:
            raise ValueError(f"has no RFC 8785 canonical form ({exc})") from None
        return value


class InitData(_Msg):
    format: str
    body: str


class KbsAttestation(_Msg):
    runtime_data: RuntimeData = Field(alias="runtime-data")
    tee_evidence: Any = Field(alias="tee-evidence")
    init_data: InitData | None = Field(default=None, alias="init-data")


class TokenResponse(_Msg):
    token: str


class CertificateRequest(_Msg):
    """POST /kbs/v0/certificate: the resource whose release policy must allow the enclave, the DNS names."""

    resource: str = Field(max_length=512)
    names: list[str] | None = Field(default=None, max_length=8)
