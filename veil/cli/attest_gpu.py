"""`veil attest verify|inspect` for NVIDIA GPU and composite evidence; `veil attest emulate gpu`.

GPU evidence: hex/binary SPDM report with `--certs` (PEM chain), or the JSON
device_evidence_list form. Composite: the veil-composite-evidence envelope
(auto-detected), checked against `--nonce` (the KBS nonce string) and
`--tee-pubkey` (a JWK file). Exit codes as everywhere: 0 verified, 1 not
verified, 2 unreadable input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from attestation.anchors import TrustAnchors
from attestation.collateral import ChainedCollateral, CollateralSource
from attestation.collateral.nvidia import LocalRims
from attestation.errors import ParseError
from attestation.nvidia.evidence import GpuEvidence, parse_evidence_list
from attestation.options import VerifyOptions

from . import attest_emulate
from .output import EXIT_FAILED, EXIT_OK, console, fail, print_json


def gpu_anchors(base: TrustAnchors, emulated_anchors: Path | None) -> TrustAnchors:
    if emulated_anchors is None:
        return base
    from attestation.emulated import load_nvidia_anchors
    return base + load_nvidia_anchors(emulated_anchors)


def gpu_collateral(base: CollateralSource, rims: list[Path]) -> CollateralSource:
    return ChainedCollateral((LocalRims(rims), base)) if rims else base


def read_gpu_evidence(path: Path, certs: list[Path], *, need_certs: bool = True) -> tuple[GpuEvidence, ...]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read evidence {path}: {exc.strerror}")
    try:
        if raw.lstrip().startswith(b"{"):
            return parse_evidence_list(raw)
    except ParseError as exc:
        fail(f"{path}: {exc.message}")
    if not certs and need_certs:
        fail("GPU evidence needs its certificate chain", hint="pass --certs CHAIN.pem (NVML's attestation chain)")
    try:
        chain = b"".join(p.read_bytes() for p in certs)
    except OSError as exc:
        fail(f"cannot read certificate file: {exc.strerror}")
    return (GpuEvidence(report=raw, certificates=chain),)


def _nonce_bytes(nonce: str | None) -> bytes:
    if nonce is None:
        fail("GPU evidence is verified against the nonce the verifier chose", hint="pass --nonce HEX (32 bytes)")
    try:
        value = bytes.fromhex(nonce)
    except ValueError:
        fail("--nonce is not hex")
    if len(value) != 32:
        fail(f"--nonce must be 32 bytes (64 hex digits), got {len(value)}")
    return value


def gpu_document(result) -> dict:
    first = result.gpus[0] if result.gpus else None
    return {"verified": result.verified, "tee": "nvidia", "tcb_status": None,
            "anchor": first.anchor.model_dump() if first else None, "advisory_ids": [],
            "claims": {"gpus": [g.model_dump(mode="json") for g in result.gpus]},
            "errors": [{"code": f.code, "message": f.message, "expected": f.expected, "actual": f.actual}
                       for f in result.errors],
            "warnings": list(result.warnings),
            "checks": [_explained(trail) for trail in result.checks]}


def _explained(trail) -> list[dict]:
    """Every GPU check in order: pass, fail, skipped, or "not reached" after an earlier failure."""
    from attestation.nvidia.verify import CHECKS

    done = {c.code: c for c in trail}
    return [{"check": code, "outcome": done[code].outcome if code in done else "not reached",
             "detail": done[code].detail if code in done else ""} for code in CHECKS]


OUTCOME_STYLE = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "skipped": "[yellow]skipped[/]",
                 "not reached": "[dim]not reached[/]"}


def _print_gpu(doc: dict, *, explain: bool = False) -> None:
    state = "[bold green]verified[/]" if doc["verified"] else "[bold red]NOT verified[/]"
    console.print(f"{state} NVIDIA GPU evidence", highlight=False)
    for e in doc["errors"]:
        line = f"  [red]✗ {e['code']}[/]: {e['message']}"
        if e["expected"] is not None or e["actual"] is not None:
            line += f" [dim](expected {e['expected']}, actual {e['actual']})[/]"
        console.print(line, highlight=False)
    for gpu in doc["claims"]["gpus"]:
        console.print(f"  GPU-{gpu['index']}: {gpu['architecture']} driver {gpu['driver_version']} VBIOS "
                      f"{gpu['vbios_version']} measurements {gpu['measurement_result']} anchor "
                      f"{gpu['anchor']['name']} ({gpu['anchor']['kind']})", highlight=False)
    for w in doc["warnings"]:
        console.print(f"  [yellow]! {w}[/]", highlight=False)
    if explain:
        for index, checks in enumerate(doc["checks"]):
            console.print(f"  checks of GPU-{index}:", highlight=False)
            for c in checks:
                detail = f" [dim]({c['detail']})[/]" if c["detail"] else ""
                console.print(f"    {c['check']}: {OUTCOME_STYLE[c['outcome']]}{detail}", highlight=False)


def verify_gpu(evidence: Path, *, certs: list[Path], nonce: str | None, opts: VerifyOptions, json_out: bool,
               explain: bool = False) -> None:
    from attestation.verify import verify_gpu_evidence

    gpus = read_gpu_evidence(evidence, certs)
    expected = _nonce_bytes(nonce)
    try:
        result = verify_gpu_evidence(gpus, opts, nonce=expected)
    except ParseError as exc:
        fail(f"{evidence}: {exc.message}")
    doc = gpu_document(result)
    print_json(doc) if json_out else _print_gpu(doc, explain=explain)
    raise typer.Exit(EXIT_OK if result.verified else EXIT_FAILED)


def verify_composite(evidence: Path, *, nonce: str | None, tee_pubkey: Path | None, opts: VerifyOptions,
                     json_out: bool, no_revocation: bool, explain: bool = False) -> None:
    from attestation.verify import verify_composite_evidence

    from .attest import emit_result

    if nonce is None or tee_pubkey is None:
        fail("composite evidence is checked against the session's binding",
             hint="pass --nonce (the KBS nonce string) and --tee-pubkey JWKFILE")
    try:
        key = json.loads(tee_pubkey.read_text())
        data = evidence.read_bytes()
    except (OSError, ValueError) as exc:
        fail(f"cannot read composite evidence or --tee-pubkey: {exc}")
    try:
        result = verify_composite_evidence(data, opts, nonce=nonce, tee_pubkey=key)
    except ParseError as exc:
        fail(f"{evidence}: {exc.message}")
    emit_result(result, json_out=json_out, no_revocation=no_revocation)
    if explain and not json_out:
        console.print("[dim]--explain lists the checks of GPU evidence given alone (--tee nvidia); composite "
                      "verification reports its first failed check, shown above[/]", highlight=False)
    raise typer.Exit(EXIT_OK if result.verified else EXIT_FAILED)


def inspect_gpu(evidence: Path, *, json_out: bool) -> None:
    from attestation.nvidia.spdm import describe, parse_report

    from . import render

    gpus = read_gpu_evidence(evidence, [], need_certs=False)
    try:
        documents = [describe(parse_report(g.report)) for g in gpus]
    except ParseError as exc:
        fail(f"{evidence}: {exc.message}")
    document = {"gpus": documents}
    if json_out:
        print_json({"tee": "nvidia", "verified": False, **document})
    else:
        render.inspection("nvidia", document)
    raise typer.Exit(EXIT_OK)


@attest_emulate.app.command("gpu")
def emulate_gpu(
    out: Annotated[Path, typer.Option(help="Where to write the evidence (JSON device_evidence_list).")],
    nonce: Annotated[Optional[str], typer.Option(help="32-byte SPDM nonce, hex.")] = None,
    gpus: Annotated[int, typer.Option(min=1, max=8, help="Number of emulated GPUs.")] = 1,
    composite: Annotated[Optional[str], typer.Option(
        help="Write composite evidence for this KBS nonce string instead (needs --tee-pubkey).")] = None,
    tee_pubkey: Annotated[Optional[Path], typer.Option(help="JWK file of the TEE key (composite).")] = None,
    cpu: Annotated[str, typer.Option(help="CPU TEE of composite evidence: tdx or snp.")] = "tdx",
    rims_out: Annotated[Optional[Path], typer.Option(help="Write the matching signed RIMs into this directory.")] = None,
    anchors_out: Annotated[Optional[Path], typer.Option(help="Export the emulated anchors (incl. NVIDIA) here.")] = None,
    vendor_dir: attest_emulate.VendorDir = None,
) -> None:
    """Write emulated GPU evidence (or CPU + GPU composite evidence) under the emulated NVIDIA roots."""
    from attestation.composite import CompositeEvidence, cpu_report_data, gpu_nonce
    from attestation.emulated import write_nvidia_anchors
    from attestation.nvidia.evidence import evidence_list_json

    vendor = attest_emulate.open_vendor(vendor_dir)
    if composite is not None:
        if tee_pubkey is None or cpu not in ("tdx", "snp"):
            fail("--composite needs --tee-pubkey JWKFILE and --cpu tdx|snp")
        key = json.loads(tee_pubkey.read_text())
        evidence = [vendor.nvidia.evidence(gpu_nonce(composite, key), gpu=i) for i in range(gpus)]
        additional, report_data = cpu_report_data(evidence, composite, key)
        text = CompositeEvidence(vendor.evidence(cpu, report_data), additional).to_json()
    else:
        raw = attest_emulate.hex_field("nonce", nonce or "", 32)
        text = evidence_list_json([vendor.nvidia.evidence(raw, gpu=i) for i in range(gpus)])
    out.write_text(text)
    console.print(f"wrote emulated {'composite' if composite else 'GPU'} evidence ({gpus} GPU) to {out}")
    if rims_out is not None:
        rims_out.mkdir(parents=True, exist_ok=True)
        for rim_id, xml in vendor.nvidia.rims().items():
            (rims_out / f"{rim_id}.swidtag").write_bytes(xml)
        console.print(f"wrote emulated RIMs to {rims_out}")
    if anchors_out is not None:
        vendor.export_anchors(anchors_out)
        write_nvidia_anchors(vendor.nvidia_anchors(), anchors_out)
        console.print(f"exported emulated anchors to {anchors_out} (NOT Intel's, AMD's or NVIDIA's roots)")


__all__ = ["emulate_gpu", "inspect_gpu", "verify_composite", "verify_gpu"]
