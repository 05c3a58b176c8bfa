"""What the boot agent is told: where the model and its key are, which platform, which front ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

from ..engine import EngineSettings

if TYPE_CHECKING:
    from .frontends import FrontEndFactory
    from .platform import Platform


@dataclass(frozen=True, slots=True)
class KeyFile:
    """The data key in a local file of 32 raw bytes (development only)."""

    path: Path


@dataclass(frozen=True, slots=True)
class BrokerKey:
    """The data key released by the key broker at `url` to this enclave's evidence, under `resource`."""

    url: str
    resource: str


KeySource = Union[KeyFile, BrokerKey]


@dataclass(frozen=True, kw_only=True)
class BootConfig:
    sealed: Path
    key: KeySource
    platform: Platform
    front_ends: tuple[FrontEndFactory, ...]
    settings: EngineSettings = field(default_factory=EngineSettings)
    audit_interval: float = 30.0          # seconds between call-audit shipments (with a BrokerKey)
    broker_certificate: bool = False      # also serve a certificate from the broker's enclave CA
    log_level: str | None = None          # vLLM's own logging: debug, info, warning, error (None: vLLM's default)

    @property
    def broker(self) -> BrokerKey | None:
        return self.key if isinstance(self.key, BrokerKey) else None
