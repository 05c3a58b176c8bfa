"""The attack matrix runs against the same real broker processes as tests/keybroker (its fixtures are
reused), with a collateral bundle that also holds what the attacks need: a PCK CRL that revokes one
platform's PCK, collateral for another platform that expired 45 days ago, and AMD CRLs that revoke one
chip's VCEK.

`@pytest.mark.attack(title, reason)` names the attack and the reason code it must be denied with.
With VEIL_ATTACK_REPORT=FILE set, the run writes each attack's outcome to FILE (JSON) at the end;
bench/attack_matrix.py turns that into the table in docs/attack-matrix.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.keybroker.conftest import broker, policy_docs, vendor  # noqa: F401 - fixtures reused as they are

REVOKED_FMSPC = "90c06f0000a1"           # a platform whose PCK certificate the PCK CRL lists
EXPIRED_FMSPC = "90c06f0000a2"           # a platform whose collateral's window ended 45 days ago
REVOKED_CHIP = bytes([0xA5]) * 64        # an SNP chip (Milan) whose VCEK the VCEK CRL lists
DAY = dt.timedelta(days=1)


def pytest_configure(config):
    config.addinivalue_line("markers", "attack(title, reason): an attack on the release path and the reason "
                                       "code it must be denied with (docs/attack-matrix.md)")


def revoking_crl(issuer: x509.Certificate, issuer_key, serials: list[int], *, at: dt.datetime) -> bytes:
    """A current DER CRL from `issuer` listing `serials` (signed as the emulated vendor signs its CRLs)."""
    from attestation.emulated.pki import _sign
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
               .last_update(at - 15 * DAY).next_update(at + 15 * DAY)
               .add_extension(x509.CRLNumber(2), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                              critical=False))
    for serial in serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at - DAY).build())
    return _sign(builder, issuer_key).public_bytes(Encoding.DER)


@pytest.fixture(scope="session")
def trust_dirs(vendor, tmp_path_factory):  # noqa: F811 - the broker fixture takes this one here
    """(exported emulated anchors, offline bundle): the keybroker tests' collateral plus the attacks'."""
    from attestation.collateral.bundle import BundleWriter
    base = tmp_path_factory.mktemp("attack-trust")
    now = dt.datetime.now(dt.timezone.utc)
    anchors = vendor.export_anchors(base / "anchors")
    intel = vendor._intel
    _, revoked_pck = vendor._pck_for(vendor.platform(REVOKED_FMSPC))
    report, vcek = vendor.snp_report(bytes(64), chip_id=REVOKED_CHIP)
    vcek_serial = x509.load_der_x509_certificate(vcek).serial_number
    ark = vendor._amd_keys("Milan")
    with BundleWriter(base / "bundle") as writer:
        writer.add_tdx(vendor.tdx_collateral(at=now))
        vendor.nvidia.add_collateral(writer, at=now)           # RIMs and OCSP answers for emulated GPUs
        revoked = vendor.tdx_collateral(REVOKED_FMSPC, at=now)
        writer.add_tdx(dataclasses.replace(revoked, pck_crl=revoking_crl(
            intel.pck_ca, intel.pck_ca_key, [revoked_pck.serial_number], at=now)))
        writer.add_tdx(vendor.tdx_collateral(EXPIRED_FMSPC, at=now - 60 * DAY))
        writer.add_snp_crl("Milan", "vcek", revoking_crl(ark.ark, ark.ark_key, [vcek_serial], at=now))
    return anchors, base / "bundle"


_OUTCOMES: list[dict] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    mark = item.get_closest_marker("attack")
    if mark is None or not (report.when == "call" or (report.when == "setup" and report.outcome != "passed")):
        return
    title, reason = mark.args
    state = "xfail" if hasattr(report, "wasxfail") else report.outcome
    _OUTCOMES.append({"test": item.originalname or item.name, "id": item.nodeid.split("::")[-1],
                      "title": title, "reason": reason, "outcome": state,
                      "doc": (item.function.__doc__ or "").strip()})


def pytest_sessionfinish(session):
    target = os.environ.get("VEIL_ATTACK_REPORT")
    if target and _OUTCOMES:
        Path(target).write_text(json.dumps(_OUTCOMES, indent=2) + "\n")
