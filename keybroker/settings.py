"""Broker settings: one frozen model, built by the CLI (or a test) and handed to `create_app`.

Nothing here is secret: the KEK is named by a file path or a Vault URL and key
name; a Vault token is read from the environment by the KEK provider itself.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ENV_VAR = "VEIL_BROKER_SETTINGS"


class KekSettings(BaseModel):
    """Where the key-encryption key lives: a local file (development) or Vault transit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["file", "vault"] = "file"
    file: Path = Path("broker-kek.key")
    vault_url: str | None = None
    vault_key: str = "veil-broker"
    vault_mount: str = "transit"
    vault_namespace: str | None = None


class BrokerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    db_url: str = "sqlite:///veil-broker.db"
    issuer: str = "veil-broker"
    allow_emulated: bool = False
    emulated_anchors: Path | None = None          # exported emulated anchors (public certificates)
    collateral: Path | None = None                # offline bundle; None = online (Intel PCS, AMD KDS)
    collateral_cache: Path = Path(".veil-broker-cache")
    kek: KekSettings = Field(default_factory=KekSettings)
    session_ttl_s: int = Field(default=300, ge=5, le=3600)
    token_ttl_s: int = Field(default=300, ge=5, le=3600)
    admin_audience: str = "veil-broker-admin"
    admin_token_max_ttl_s: int = Field(default=600, ge=10, le=3600)
    policy_deny_status: Literal[401, 403] = 401   # Trustee answers 401; 403 is the KBS doc's word
    policy_engine: str = "keybroker.policy:default_engine"   # "module:attribute"
    log_origin: str = "veil-broker/attestation-log"
    migrate: bool = True                          # upgrade the schema on start, else refuse if behind
    threads: int = Field(default=4, ge=1, le=256)  # per worker: threads for blocking work (verify, database)
    # KBS error answers per client address and minute before it gets 429 (0: off); keybroker/denials.py
    denials_per_minute: int = Field(default=120, ge=0, le=1_000_000)
    denial_storage: str = "memory://"             # `limits` storage URI: memory:// per worker, redis://… shared
    enclave_cert_ttl_s: int = Field(default=86400, ge=300, le=30 * 86400)   # broker-issued enclave TLS certificates

    def to_env(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_env(cls) -> BrokerSettings:
        raw = os.environ.get(ENV_VAR)
        return cls.model_validate(json.loads(raw)) if raw else cls()
