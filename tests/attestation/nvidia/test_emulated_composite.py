"""Emulated GPUs through the production verifier, and composite CPU + GPU binding."""

from __future__ import annotations

import base64
import os
from datetime import datetime, timezone

import pytest

from attestation import binding
from attestation.anchors import vendor_anchors
from attestation.collateral import ChainedCollateral
from attestation.composite import CompositeEvidence, cpu_report_data, gpu_nonce, parse_composite
from attestation.emulated import EmulatedCollateral, EmulatedRims
from attestation.nvidia.evidence import evidence_list_json, parse_evidence_list
from attestation.nvidia.verify import verify_gpus
from attestation.options import VerifyOptions
from attestation.verify import verify_composite_evidence

TEE_KEY = {"kty": "EC", "crv": "P-256", "alg": "ECDH-ES+A256KW",
           "x": "uGo3n2Gi9NzYsmJGDOYr04e79LFKY4jP_tSnDSETWOg", "y": "Kh8jDg_OQcha40pxZ06sEO_0t4NxJw_I0N-d-TXTzs0"}
NONCE = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def test_emulated_gpu_round_trips(vendor, emulated_opts):
    nonce = os.urandom(32)
    result = verify_gpus([vendor.nvidia.evidence(nonce)], emulated_opts, nonce=nonce)
    assert result.verified, result.errors
    gpu = result.gpus[0]
    assert gpu.anchor.kind == "emulated" and gpu.measurement_result == "success"
    assert gpu.cc_mode == "on" and any("NVML" in w for w in gpu.warnings)
    assert gpu.fwid == vendor.nvidia.fwid().hex()


def test_emulated_gpu_fails_under_the_real_nvidia_roots(vendor, emulated_opts):
    nonce = os.urandom(32)
    opts = VerifyOptions(anchors=vendor_anchors(), collateral=emulated_opts.collateral, at=emulated_opts.at,
                         check_revocation=False)
    result = verify_gpus([vendor.nvidia.evidence(nonce)], opts, nonce=nonce)
    assert [e.code for e in result.errors] == ["nvidia.device_chain"]


def test_emulated_gpu_with_another_nonce_is_rejected(vendor, emulated_opts):
    result = verify_gpus([vendor.nvidia.evidence(bytes(32))], emulated_opts, nonce=b"\1" * 32)
    assert [e.code for e in result.errors] == ["nvidia.nonce"]


def test_changed_firmware_reports_the_mismatching_index(vendor, emulated_opts):
    nonce = os.urandom(32)
    measurements = vendor.nvidia.measurements()
    measurements[14] = bytes(48)                        # RIM index 13 (driver RIM)
    result = verify_gpus([vendor.nvidia.evidence(nonce, measurements=measurements)], emulated_opts, nonce=nonce)
    assert result.gpus[0].mismatching_indices == (13,)
    assert [e.code for e in result.errors] == ["nvidia.measurements"]


def test_mixing_mpt_and_spt_fails(vendor, emulated_opts):
    nonce = os.urandom(32)
    gpus = [vendor.nvidia.evidence(nonce, gpu=0, feature_flag=0), vendor.nvidia.evidence(nonce, gpu=1, feature_flag=1)]
    result = verify_gpus(gpus, emulated_opts, nonce=nonce)
    assert [e.code for e in result.errors] == ["nvidia.feature_flag_mix"]


def test_evidence_list_json_round_trips(vendor):
    gpus = (vendor.nvidia.evidence(bytes(32)), vendor.nvidia.evidence(bytes(32), gpu=1))
    assert parse_evidence_list(evidence_list_json(gpus)) == gpus


# ------------------------------------------------------------------ composite

@pytest.fixture(scope="module")
def composite_opts(vendor):
    at = datetime.now(timezone.utc)
    collateral = ChainedCollateral((EmulatedCollateral(vendor, clock=lambda: at), EmulatedRims(vendor.nvidia.rims())))
    return VerifyOptions(anchors=vendor.anchors() + vendor.nvidia_anchors(), collateral=collateral, at=at,
                         check_revocation=False)


def make_composite(vendor, *, tee="tdx", gpu_nonce_value=None, report_data=None, gpus=2):
    nonce = gpu_nonce_value or gpu_nonce(NONCE, TEE_KEY)
    evidence = [vendor.nvidia.evidence(nonce, gpu=i) for i in range(gpus)]
    additional, data = cpu_report_data(evidence, NONCE, TEE_KEY)
    return CompositeEvidence(vendor.evidence(tee, report_data or data), additional)


def test_gpu_nonce_follows_the_kbs_test_vector():
    assert gpu_nonce(NONCE, TEE_KEY).hex() == "832e0f69dd336e01bd0cbaf5d28284b1cb679ddcd3f5761dc6687404d2eb322a"


@pytest.mark.parametrize("tee", ["tdx", "snp"])
def test_composite_evidence_verifies_and_fills_gpus(vendor, composite_opts, tee):
    composite = make_composite(vendor, tee=tee)
    result = verify_composite_evidence(composite.to_json(), composite_opts, nonce=NONCE, tee_pubkey=TEE_KEY)
    assert result.verified, result.errors
    assert result.claims.tee == tee and len(result.claims.gpus) == 2
    assert parse_composite(composite.to_json()) == composite


def test_gpu_nonce_not_bound_to_the_cpu_report_is_rejected(vendor, composite_opts):
    composite = make_composite(vendor, gpu_nonce_value=os.urandom(32))
    result = verify_composite_evidence(composite.to_json(), composite_opts, nonce=NONCE, tee_pubkey=TEE_KEY)
    assert not result.verified
    assert {e.code for e in result.errors} == {"composite.gpu_nonce"}


def test_cpu_report_not_covering_the_gpu_evidence_is_rejected(vendor, composite_opts):
    stale = binding.report_data(NONCE, TEE_KEY, additional_evidence="")      # GPUs left out of the CPU report
    composite = make_composite(vendor, report_data=stale)
    result = verify_composite_evidence(composite.to_json(), composite_opts, nonce=NONCE, tee_pubkey=TEE_KEY)
    assert [e.code for e in result.errors] == ["composite.report_data"]


def test_swapped_gpu_evidence_is_rejected(vendor, composite_opts):
    composite = make_composite(vendor)
    other = make_composite(vendor, gpus=1)
    swapped = CompositeEvidence(composite.cpu, other.additional_evidence)
    result = verify_composite_evidence(swapped.to_json(), composite_opts, nonce=NONCE, tee_pubkey=TEE_KEY)
    assert [e.code for e in result.errors] == ["composite.report_data"]


def test_another_tee_key_is_rejected(vendor, composite_opts):
    composite = make_composite(vendor)
    key = dict(TEE_KEY, x=base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode())
    result = verify_composite_evidence(composite.to_json(), composite_opts, nonce=NONCE, tee_pubkey=key)
    assert {e.code for e in result.errors} == {"composite.report_data", "composite.gpu_nonce"}
