"""Emulated evidence through the production verifier (attestation.verify.verify).

Only the trust anchor differs from real hardware: with the emulated anchors the
evidence verifies and the claims name the emulated anchor; with the real
Intel/AMD roots the very same evidence fails.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from attestation.anchors import vendor_anchors
from attestation.claims import TcbStatus
from attestation.emulated import EmulatedCollateral
from attestation.evidence import Evidence
from attestation.verify import verify

TDX_CASES = [pytest.param({"version": 4}, id="v4"),
             pytest.param({"version": 5}, id="v5-td15"),
             pytest.param({"version": 5, "body_type": 2}, id="v5-td10")]
SNP_CASES = [pytest.param({"product": "Milan", "version": 3}, id="milan-v3"),
             pytest.param({"product": "Milan", "version": 2}, id="milan-v2"),
             pytest.param({"product": "Genoa", "version": 5}, id="genoa-v5"),
             pytest.param({"product": "Turin", "version": 5}, id="turin-v5"),
             pytest.param({"product": "Milan", "version": 3, "signer": "vlek"}, id="milan-vlek")]


@pytest.mark.parametrize("params", TDX_CASES)
def test_tdx_quote_verifies_against_the_emulated_anchor(vendor, emulated_opts, report_data, params):
    mrtd, rtmr1 = bytes.fromhex("ab" * 48), bytes.fromhex("cd" * 48)
    evidence = vendor.evidence("tdx", report_data, mrtd=mrtd, rtmr1=rtmr1, **params)
    result = verify(evidence, emulated_opts)
    assert result.verified, result.errors
    claims = result.claims
    assert (claims.anchor.kind, claims.anchor.name) == ("emulated", "emulated-intel")
    assert claims.anchor.sha256 == vendor.intel_anchor().sha256
    assert claims.tcb_status == TcbStatus.UP_TO_DATE
    assert claims.report_data == report_data.hex()
    assert (claims.tdx.mrtd, claims.tdx.rtmr1) == (mrtd.hex(), rtmr1.hex())
    assert claims.tdx.quote_version == params["version"]
    assert not claims.debug


@pytest.mark.parametrize("params", SNP_CASES)
def test_snp_report_verifies_against_the_emulated_anchor(vendor, emulated_opts, report_data, params):
    measurement, host_data = bytes.fromhex("5e" * 48), bytes.fromhex("0d" * 32)
    evidence = vendor.evidence("snp", report_data, measurement=measurement, host_data=host_data,
                               **params)
    result = verify(evidence, emulated_opts)
    assert result.verified, result.errors
    claims = result.claims
    product = params["product"]
    assert (claims.anchor.kind, claims.anchor.name) == ("emulated", f"emulated-amd-{product.lower()}")
    assert claims.report_data == report_data.hex()
    assert (claims.snp.measurement, claims.snp.host_data) == (measurement.hex(), host_data.hex())
    assert claims.snp.product == product
    assert claims.snp.signer_info.signing_key == params.get("signer", "vcek")


@pytest.mark.parametrize("product", ["Milan", "Turin"])
def test_snp_vcek_fetched_from_collateral_when_not_supplied(vendor, emulated_opts, report_data, product):
    evidence = vendor.evidence("snp", report_data, product=product, version=5,
                               include_certificates=False)
    assert evidence.certificates == ()
    result = verify(evidence, emulated_opts)
    assert result.verified, result.errors


@pytest.mark.parametrize("tee,params", [("tdx", {"version": 4}), ("tdx", {"version": 5}),
                                        ("snp", {"product": "Milan"}), ("snp", {"product": "Genoa", "version": 5}),
                                        ("snp", {"product": "Turin", "version": 5}),
                                        ("snp", {"signer": "vlek"})])
def test_real_vendor_roots_reject_emulated_evidence(vendor, emulated_opts, report_data, tee, params):
    evidence = vendor.evidence(tee, report_data, **params)
    opts = dataclasses.replace(emulated_opts, anchors=vendor_anchors())
    result = verify(evidence, opts)
    assert not result.verified
    assert result.claims is None
    assert result.errors


def test_both_anchor_sets_configured_still_names_the_emulated_one(vendor, emulated_opts, report_data):
    opts = dataclasses.replace(emulated_opts, anchors=vendor_anchors() + vendor.anchors())
    result = verify(vendor.evidence("tdx", report_data), opts)
    assert result.verified and result.claims.anchor.kind == "emulated"


# ---------------------------------------------------------------- one change per test

def test_debug_td_is_refused(vendor, emulated_opts, report_data):
    result = verify(vendor.evidence("tdx", report_data, td_attributes=(1 << 28) | 1), emulated_opts)
    assert not result.verified
    assert [e.code for e in result.errors] == ["tdx.debug"]


def test_debug_snp_guest_is_refused(vendor, emulated_opts, report_data):
    result = verify(vendor.evidence("snp", report_data, policy=0xB0000), emulated_opts)
    assert not result.verified
    assert [e.code for e in result.errors] == ["snp.debug"]


def test_lower_tdx_module_svn_is_out_of_date(vendor, emulated_opts, report_data):
    svn = bytes([4, 1, 2]) + bytes(13)          # TDX module ISVSVN 4 < 5
    result = verify(vendor.evidence("tdx", report_data, tee_tcb_svn=svn), emulated_opts)
    assert result.verified, result.errors
    assert result.claims.tcb_status == TcbStatus.OUT_OF_DATE


def test_flipped_report_data_byte_fails(vendor, emulated_opts, report_data):
    for tee, offset in (("tdx", 0x238), ("snp", 0x050)):
        evidence = vendor.evidence(tee, report_data)
        report = bytearray(evidence.report)
        report[offset] ^= 1
        result = verify(Evidence(tee, bytes(report), evidence.certificates), emulated_opts)
        assert not result.verified, tee


def test_collateral_outside_its_window_fails(vendor, emulated_opts, at, report_data):
    stale = EmulatedCollateral(vendor, at - dt.timedelta(days=40))
    result = verify(vendor.evidence("tdx", report_data), dataclasses.replace(emulated_opts, collateral=stale))
    assert not result.verified


def test_quote_for_another_fmspc_needs_its_own_collateral(vendor, emulated_opts, report_data):
    result = verify(vendor.evidence("tdx", report_data, fmspc="00a06f000000"), emulated_opts)
    assert result.verified, result.errors
    assert result.claims.tdx.fmspc == "00a06f000000"
