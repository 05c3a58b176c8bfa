"""Measurements as a `ReferenceValues` document (veil.dev/v1), the format policies name with `{ref: NAME}`.

Each value carries its provenance: `source` names the tool and the SHA-256 of
every input, `note` the parameters; the YAML file starts with a comment that
repeats both in full. The document is built as plain data here (attestation/
does not depend on policies/); callers validate it with
`policies.schema.ReferenceValues` before writing it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import yaml

from .errors import MeasureError

MAX_TEXT = 1000                 # ReferenceValue.source and .note limits


@dataclass(frozen=True, slots=True)
class InputDigest:
    """One measured input: its role (firmware, kernel, …), file name and SHA-256."""

    role: str
    name: str
    sha256: str
    size: int

    @classmethod
    def of(cls, role: str, name: str, data: bytes) -> "InputDigest":
        return cls(role, name, hashlib.sha256(data).hexdigest(), len(data))

    @classmethod
    def of_file(cls, role: str, path: Path, data: bytes) -> "InputDigest":
        return cls.of(role, path.name, data)


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """What produced a set of measurements: the command, the tool versions, the inputs and parameters."""

    command: str
    inputs: tuple[InputDigest, ...]
    parameters: tuple[tuple[str, str], ...] = ()
    tools: tuple[tuple[str, str], ...] = field(default_factory=lambda: tool_versions())

    def source(self) -> str:
        tools = ", ".join(f"{name} {version}" for name, version in self.tools)
        inputs = "; ".join(f"{i.role} {i.name[:80]} sha256:{i.sha256}" for i in self.inputs)
        return _fit(f"{self.command} ({tools}) from {inputs}", "source")

    def note(self) -> str | None:
        if not self.parameters:
            return None
        return _fit("parameters: " + "; ".join(f"{k}={v}" for k, v in self.parameters), "note")

    def as_dict(self) -> dict:
        return {"command": self.command, "tools": dict(self.tools),
                "inputs": [{"role": i.role, "name": i.name, "sha256": i.sha256, "size": i.size} for i in self.inputs],
                "parameters": dict(self.parameters)}


def _fit(text: str, what: str) -> str:
    if len(text) > MAX_TEXT:
        raise MeasureError(what, f"provenance text is {len(text)} characters; a reference value holds {MAX_TEXT}")
    return text


def tool_versions() -> tuple[tuple[str, str], ...]:
    """Versions of veil and sev-snp-measure as installed."""
    out = []
    for name in ("veil", "sev-snp-measure"):
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "unknown"))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class MeasuredValue:
    """One reference set to emit: its name, what it is compared with, the value."""

    set_name: str
    description: str
    value: bytes


def _instant(value: datetime) -> str:
    if value.tzinfo is None:
        raise MeasureError("time", f"{value.isoformat()} has no time zone")
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def reference_values(*, name: str, description: str, values: list[MeasuredValue], provenance: Provenance,
                     added_by: str, added_at: datetime, expires: datetime, build_id: str | None = None) -> dict:
    """A ReferenceValues document (plain data) with one set per measured value."""
    if expires <= added_at:
        raise MeasureError("expires", "must be after added_at")
    entry: dict = {"source": provenance.source()}
    if build_id:
        entry["build_id"] = build_id
    entry |= {"added_by": added_by, "added_at": _instant(added_at), "expires": _instant(expires)}
    if provenance.note():
        entry["note"] = provenance.note()
    sets = [{"name": v.set_name, "description": v.description, "values": [{"value": v.value.hex(), **entry}]}
            for v in values]
    return {"apiVersion": "veil.dev/v1", "kind": "ReferenceValues",
            "metadata": {"name": name, "description": description}, "spec": {"sets": sets}}


def render_yaml(document: dict, provenance: Provenance) -> str:
    """The document as YAML, after a comment header carrying the full provenance."""
    header = ["Expected measurements computed from a build by `" + provenance.command + "`.",
              "Provenance (inputs by SHA-256, parameters, tool versions):"]
    header += yaml.safe_dump(provenance.as_dict(), sort_keys=False, width=1 << 16).splitlines()
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header)
    return comment + yaml.safe_dump(document, sort_keys=False, width=1 << 16)
