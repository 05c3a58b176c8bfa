"""Verifications per second for TDX, SNP, NVIDIA GPU and composite evidence, beside dcap-qvl.

Run: `make bench` or `.venv/bin/python bench/attest_verify.py [--seconds S]`.
Uses the real evidence of corpus/ at a time inside its collateral
window. "Cold" clears every cache before each verification (collateral
signatures, certificate-chain links, parsed extensions are all redone);
"cached" keeps the time-independent results between calls (every
time-dependent check still runs). dcap-qvl is Phala's Rust port of Intel's
QVL, from PyPI, given the same quote and collateral. The process is pinned to
one core so figures compare one core with one core. The last line is JSON.

GPU: the real Hopper 2023 sample with its two test RIMs at 2024-06-01 (SPDM
signature, 5-certificate chain, both RIM XML signatures and chains, 33
measurements; revocation off, the corpus has no OCSP responses). Composite:
an emulated TDX quote + one emulated H100 bound per the KBS rule, everything
(CPU quote, collateral, GPU, RIMs, binding) verified each time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from attestation.anchors import vendor_anchors  # noqa: E402
from attestation.collateral import StaticCollateral  # noqa: E402
from attestation.collateral.intel import load_intel_collateral_json  # noqa: E402
from attestation.evidence import Evidence, decode_blob  # noqa: E402
from attestation.options import VerifyOptions  # noqa: E402
from attestation.snp import verify as snp_verify  # noqa: E402
from attestation.tdx import verify as tdx_verify  # noqa: E402
from attestation.verify import verify_claims  # noqa: E402

EVIDENCE = Path(os.environ.get("VEIL_CORPUS") or ROOT / "corpus") / "evidence"
TDX_QUOTE = EVIDENCE / "tdx/quotes/dcapqvl_tdx_quote_v4.dat"
TDX_COLLATERAL = EVIDENCE / "tdx/collateral/dcapqvl_2025-06_b0c06f000000.json"
TDX_AT = datetime(2025, 7, 1, tzinfo=timezone.utc)
SNP_REPORT = EVIDENCE / "snp/virtee_milan_v2/report_milan.hex"
SNP_VCEK = EVIDENCE / "snp/virtee_milan_v2/vcek_milan.der"
SNP_AT = datetime(2026, 11, 23, tzinfo=timezone.utc)


def rate(call, seconds: float, before=None) -> float:
    """Calls per second of `call`, run for about `seconds` (`before` runs untimed each time)."""
    call()  # warm-up, and proof that it succeeds
    count, spent = 0, 0.0
    while spent < seconds:
        if before is not None:
            before()
        start = time.perf_counter()
        call()
        spent += time.perf_counter() - start
        count += 1
    return count / spent


def tdx_rates(seconds: float) -> dict[str, float]:
    import dcap_qvl

    quote = TDX_QUOTE.read_bytes()
    text = TDX_COLLATERAL.read_text()
    opts = VerifyOptions(anchors=vendor_anchors(),
                         collateral=StaticCollateral(tdx_sets=(load_intel_collateral_json(text),)),
                         at=TDX_AT)
    evidence = Evidence(tee="tdx", report=quote)

    def veil() -> None:
        claims = verify_claims(evidence, opts)
        assert claims.tcb_status.value == "UpToDate"

    qvl_collateral = dcap_qvl.QuoteCollateralV3.from_json(text)
    now = int(TDX_AT.timestamp())

    def independent() -> None:
        report = dcap_qvl.verify(quote, qvl_collateral, now)
        assert report.status == "UpToDate"

    return {
        "veil_cold": rate(veil, seconds, before=tdx_verify.clear_caches),
        "veil_cached": rate(veil, seconds),
        "dcap_qvl": rate(independent, seconds),
    }


def snp_rates(seconds: float) -> dict[str, float]:
    report = decode_blob(SNP_REPORT.read_bytes())
    vcek = SNP_VCEK.read_bytes()
    opts = VerifyOptions(anchors=vendor_anchors(), collateral=StaticCollateral(snp_endorsements=(vcek,)),
                         at=SNP_AT, check_revocation=False)
    evidence = Evidence(tee="snp", report=report, certificates=(vcek,))

    def veil() -> None:
        verify_claims(evidence, opts)

    return {
        "veil_cold": rate(veil, seconds, before=snp_verify.clear_caches),
        "veil_cached": rate(veil, seconds),
    }


GPU_SAMPLE = EVIDENCE / "nvidia/hopper_2023_sample"
GPU_RIMS = ("Driver_RIM_test_no_gpu.swidtag", "1010_0200_882_96005E0001_test_no_gpu.swidtag")
GPU_AT = datetime(2024, 6, 1, tzinfo=timezone.utc)


def gpu_rate(seconds: float) -> float:
    from attestation.collateral.nvidia import LocalRims
    from attestation.nvidia.evidence import GpuEvidence
    from attestation.nvidia.spdm import parse_report
    from attestation.nvidia.verify import verify_gpus

    evidence = GpuEvidence(report=(GPU_SAMPLE / "attestationReport.txt").read_bytes(),
                           certificates=(GPU_SAMPLE / "gpuAkCertChain.txt").read_bytes())
    rims = LocalRims([EVIDENCE / "nvidia/rims" / name for name in GPU_RIMS])
    opts = VerifyOptions(anchors=vendor_anchors(), collateral=rims, at=GPU_AT, check_revocation=False)
    nonce = parse_report(evidence.report).nonce

    def veil() -> None:
        if not verify_gpus([evidence], opts, nonce=nonce).verified:
            raise SystemExit("GPU sample did not verify")

    return rate(veil, seconds)


def composite_rate(seconds: float) -> float:
    import tempfile

    from attestation.collateral import ChainedCollateral
    from attestation.composite import CompositeEvidence, cpu_report_data, gpu_nonce
    from attestation.emulated import EmulatedCollateral, EmulatedRims, EmulatedVendor
    from attestation.verify import verify_composite_evidence

    key = {"kty": "EC", "crv": "P-256", "x": "uGo3n2Gi9NzYsmJGDOYr04e79LFKY4jP_tSnDSETWOg",
           "y": "Kh8jDg_OQcha40pxZ06sEO_0t4NxJw_I0N-d-TXTzs0"}
    with tempfile.TemporaryDirectory() as tmp:
        vendor = EmulatedVendor.open(Path(tmp) / "vendor")
        at = datetime.now(timezone.utc)
        gpus = [vendor.nvidia.evidence(gpu_nonce("bench-nonce", key))]
        additional, report_data = cpu_report_data(gpus, "bench-nonce", key)
        text = CompositeEvidence(vendor.evidence("tdx", report_data), additional).to_json()
        collateral = ChainedCollateral((EmulatedCollateral(vendor, clock=lambda: at),
                                        EmulatedRims(vendor.nvidia.rims())))
        opts = VerifyOptions(anchors=vendor.anchors() + vendor.nvidia_anchors(), collateral=collateral, at=at,
                             check_revocation=False)

        def veil() -> None:
            if not verify_composite_evidence(text, opts, nonce="bench-nonce", tee_pubkey=key).verified:
                raise SystemExit("composite evidence did not verify")

        return rate(veil, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    if not EVIDENCE.is_dir():
        sys.exit(f"evidence corpus not found at {EVIDENCE}; set VEIL_CORPUS to a folder holding evidence/")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

    tdx = tdx_rates(args.seconds)
    snp = snp_rates(args.seconds)
    gpu = gpu_rate(args.seconds)
    composite = composite_rate(args.seconds)
    table = Table(title="Attestation verifications per second (one core)")
    for column in ("evidence", "verifier", "mode", "verifications/s", "vs dcap-qvl"):
        table.add_column(column, justify="right" if column[0] in "v" and column != "verifier" else "left")
    qvl = tdx["dcap_qvl"]
    table.add_row("TDX quote v4", "veil", "cold", f"{tdx['veil_cold']:.0f}", f"{tdx['veil_cold'] / qvl:.2f}x")
    table.add_row("TDX quote v4", "veil", "cached", f"{tdx['veil_cached']:.0f}", f"{tdx['veil_cached'] / qvl:.2f}x")
    table.add_row("TDX quote v4", "dcap-qvl 0.7.0", "full", f"{qvl:.0f}", "1.00x")
    table.add_row("SNP report v2", "veil", "cold", f"{snp['veil_cold']:.0f}", "")
    table.add_row("SNP report v2", "veil", "cached", f"{snp['veil_cached']:.0f}", "")
    table.add_row("H100 SPDM + 2 RIMs", "veil", "full", f"{gpu:.0f}", "")
    table.add_row("TDX + H100 composite", "veil", "full (emulated)", f"{composite:.0f}", "")
    Console().print(table)
    print(json.dumps({
        "tdx_veil_cold_per_s": round(tdx["veil_cold"], 1),
        "tdx_veil_cached_per_s": round(tdx["veil_cached"], 1),
        "tdx_dcap_qvl_per_s": round(qvl, 1),
        "cold_ratio_vs_dcap_qvl": round(tdx["veil_cold"] / qvl, 3),
        "cached_ratio_vs_dcap_qvl": round(tdx["veil_cached"] / qvl, 3),
        "snp_veil_cold_per_s": round(snp["veil_cold"], 1),
        "snp_veil_cached_per_s": round(snp["veil_cached"], 1),
        "gpu_veil_per_s": round(gpu, 1),
        "composite_veil_per_s": round(composite, 1),
    }))


if __name__ == "__main__":
    main()
