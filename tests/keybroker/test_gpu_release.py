"""Composite (TDX + GPU) evidence against a real broker: the GPUs' SPDM nonce is derived from the
session nonce and the TEE key, and the CPU report data covers the exact GPU evidence."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest

from attestation.attesters.emulated import EmulatedAttester, EmulatedGpuAttester
from attestation.collateral.bundle import OfflineBundle
from attestation.emulated import load_anchors
from attestation.options import VerifyOptions
from keybroker.audit.entry import LogEntry
from keybroker.audit.reverify import reverify_entry
from keybroker.client import KbsClient, KbsError

from .test_release import denied

GPU_POLICY = """
apiVersion: veil.dev/v1
kind: ReleasePolicy
metadata:
  name: dev-gpu
spec:
  resources: ["dev/gpu/**"]
  platforms:
    - tee: tdx
      anchor: emulated
      tcb_status: [UpToDate]
      tdx: {mrtd: any, rtmr0: any, rtmr1: any, rtmr2: any, mrseam: any}
      gpus:
        count: 1
        architectures: [hopper]
        cc_mode: ["on"]
        require_rim_match: true
"""


@pytest.fixture(scope="module")
def gpu_setup(broker):
    broker.admin.push_policy("dev-gpu", GPU_POLICY)
    broker.admin.create_key("dev/gpu/dek", value=b"G" * 32, policy="dev-gpu")


def gpu_client(broker, vendor, **gpu) -> KbsClient:
    return KbsClient(broker.url, EmulatedAttester(vendor, "tdx"), gpus=EmulatedGpuAttester(vendor, **gpu))


def test_composite_evidence_releases_the_key(broker, vendor, gpu_setup):
    assert gpu_client(broker, vendor).get_resource("dev/gpu/dek") == b"G" * 32
    release = broker.last_log()
    attestation = next(e for e in broker.log() if e["kind"] == "attestation"
                       and e["session_id"] == release["session_id"])
    (gpu,) = attestation["claims"]["gpus"]
    assert gpu["architecture"] == "hopper" and gpu["measurement_result"] == "success"


def test_the_token_annotates_each_gpu_with_its_logged_claims(broker, vendor, gpu_setup):
    c = gpu_client(broker, vendor)
    payload = jwt.decode(c.attest(), options={"verify_signature": False})
    attestation = broker.last_log()
    assert attestation["kind"] == "attestation"
    (gpu,) = attestation["claims"]["gpus"]
    submod = payload["submods"]["gpu0"]
    assert submod["ear.veraison.annotated-evidence"] == {"nvidia": gpu}
    assert submod["ear.status"] == "affirming" and "gpu1" not in payload["submods"]


def test_cpu_evidence_alone_does_not_satisfy_a_gpu_policy(broker, vendor, gpu_setup):
    c = KbsClient(broker.url, EmulatedAttester(vendor, "tdx"))
    denied(broker, lambda: c.get_resource("dev/gpu/dek"), 401, "policy.gpu.count")


def test_gpu_not_in_cc_mode_is_denied(broker, vendor, gpu_setup):
    denied(broker, lambda: gpu_client(broker, vendor, cc_mode="off").get_resource("dev/gpu/dek"), 401,
           "policy.gpu.cc_mode")


def test_gpu_measurement_off_the_rim_is_denied(broker, vendor, gpu_setup):
    measurements = vendor.nvidia.measurements() | {14: b"\x01" * 48}        # a driver measurement changed
    c = gpu_client(broker, vendor, measurements=measurements)
    err = denied(broker, c.attest, 401, "nvidia.measurements")
    assert "indices 13" in err.detail


def test_gpu_evidence_for_another_nonce_is_denied(broker, vendor, gpu_setup):
    class StaleGpus(EmulatedGpuAttester):
        def collect(self, nonce: bytes) -> tuple:
            return super().collect(bytes(32))            # answered an earlier (or someone else's) challenge
    c = KbsClient(broker.url, EmulatedAttester(vendor, "tdx"), gpus=StaleGpus(vendor))
    denied(broker, c.attest, 401, "composite.gpu_nonce")


def test_gpu_evidence_swapped_after_the_cpu_signed_is_denied(broker, vendor, gpu_setup):
    """The CPU report data covers the exact GPU evidence string: replacing it breaks the binding."""
    c = gpu_client(broker, vendor)
    original = c.http.request

    def request(method, url, json=None, **kw):
        if url.endswith("/attest"):
            json["tee-evidence"]["additional_evidence"] = json["tee-evidence"]["additional_evidence"].replace(
                '"cc_mode": "on"', '"cc_mode": "off"').replace('"cc_mode":"on"', '"cc_mode":"off"')
        return original(method, url, json=json, **kw)
    c.http.request = request
    with pytest.raises(KbsError) as info:
        c.attest()
    assert info.value.code == "composite.report_data"


def test_composite_log_entries_reverify(broker, vendor, gpu_setup, trust_dirs):
    anchors, bundle = trust_dirs
    opts = VerifyOptions(anchors=load_anchors(anchors), collateral=OfflineBundle(bundle),
                         at=dt.datetime.now(dt.timezone.utc))
    gpu_client(broker, vendor).get_resource("dev/gpu/dek")
    entries = [LogEntry.model_validate(e) for e in broker.log()]
    composite = [e for e in entries if e.kind == "attestation" and e.claims and e.claims.get("gpus")]
    assert composite
    for entry in composite:
        outcome = reverify_entry(entry, opts)
        assert outcome.checked[:2] == ("evidence", "claims") and not outcome.mismatches, outcome
    entry = composite[-1]
    other = LogEntry.record(evidence=entry.evidence(), claims=entry.claims | {"report_data": "00" * 64},
                            **entry.model_dump(exclude={"evidence_b64", "evidence_digest", "claims", "claims_digest"}))
    assert reverify_entry(other, opts).mismatches[0].what == "claims"
