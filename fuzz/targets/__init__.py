"""Fuzz targets: one module per parser, each exposing `test_one_input(data: bytes) -> None`.

A target calls the real parser or verifier entry point and lets only the
package's own documented error types pass. Any other exception propagates:
the fuzzer (or the regression test) reports it as a bug.
"""

from __future__ import annotations

import importlib
from types import ModuleType

TARGETS = (
    "evidence_blob", "tdx_quote", "tdx_verify", "tdx_collateral",
    "snp_report", "snp_certtable", "snp_verify",
    "spdm_report", "gpu_evidence", "rim_xml",
    "certificates", "crl",
    "kbs_json", "jwe", "ear_jwt",
    "policy_yaml", "cel",
    "sealed_manifest", "sealed_blob", "safetensors",
    "audit_entry", "audit_note",
)


def load(name: str) -> ModuleType:
    if name not in TARGETS:
        raise KeyError(f"unknown fuzz target {name!r}; expected one of {', '.join(TARGETS)}")
    return importlib.import_module(f"{__name__}.{name}")
