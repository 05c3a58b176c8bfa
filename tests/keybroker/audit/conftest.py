"""A small signed log of attestations, releases, denials and an admin action."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from keybroker.audit.checkpoint import NoteSigner
from keybroker.audit.entry import LogEntry, Reason
from keybroker.audit.export import export_log
from keybroker.audit.log import AuditLog, InMemoryLogStore

ORIGIN = "veil.test/keybroker/audit"
T0 = datetime(2025, 7, 1, 12, 0, tzinfo=timezone.utc)


def sample_entry(i: int) -> LogEntry:
    """Entry i of a repeating pattern: attestation, release, denial, admin."""
    at = T0 + timedelta(minutes=i)
    common = dict(time=at, tenant="acme", session_id=f"s-{i // 4}", tee="tdx", policy_id="llama-prod",
                  policy_version=3, policy_digest="ab" * 32, verification_time=at)
    kind = ("attestation", "release", "denial", "admin")[i % 4]
    if kind == "attestation":
        return LogEntry.record(kind=kind, evidence=b"quote-%d" % i, claims={"tdx": {"mrtd": "11" * 48}},
                               decision="allow", **common)
    if kind == "release":
        return LogEntry.record(kind=kind, decision="allow", resource=f"models/llama-{i}/dek", **common)
    if kind == "denial":
        return LogEntry.record(kind=kind, decision="deny", resource="models/secret/dek",
                               reasons=(Reason(code="policy.tdx.mrtd", message="not allowed",
                                               expected="one of 11…", actual="22…"),), **common)
    return LogEntry(time=at, kind="admin", actor="alice@example", action="policy.push", resource="llama-prod")


@pytest.fixture
def signer() -> NoteSigner:
    return NoteSigner.generate("veil-test-log")


def make_log(signer: NoteSigner, n: int) -> AuditLog:
    log = AuditLog(InMemoryLogStore(), signer, ORIGIN)
    for i in range(n):
        log.append(sample_entry(i))
    return log


@pytest.fixture
def log(signer) -> AuditLog:
    return make_log(signer, 13)


@pytest.fixture
def log_of(signer):
    """A factory: log_of(n) is a fresh log of n sample entries signed by `signer`."""
    return lambda n: make_log(signer, n)


@pytest.fixture
def entry_at():
    return sample_entry


@pytest.fixture
def exported(log, tmp_path):
    return export_log(log, tmp_path / "export")
