"""`veil attest …`: verify, inspect and emulate TEE evidence; manage collateral."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from attestation.anchors import TrustAnchors, vendor_anchors
from attestation.collateral import ChainedCollateral, CollateralSource, StaticCollateral
from attestation.errors import AttestationError, ParseError
from attestation.evidence import Evidence, decode_blob, detect_tee
from attestation.options import VerifyOptions
from attestation.verify import VerificationResult, verify
from attestation.x509util import load_certificates

from . import attest_collateral, attest_emulate, attest_gpu, render
from .output import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, console, fail, print_json

app = typer.Typer(help="Verify, inspect and emulate TDX, SEV-SNP, NVIDIA GPU and composite evidence.",
                  no_args_is_help=True)
app.add_typer(attest_emulate.app, name="emulate")
app.add_typer(attest_collateral.app, name="collateral")


class TeeChoice(StrEnum):
    auto = "auto"
    tdx = "tdx"
    snp = "snp"
    nvidia = "nvidia"
    composite = "composite"


def parse_time(value: str | None) -> datetime:
    """An ISO-8601 instant (UTC when no offset is given); now when None."""
    if value is None:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--at {value!r} is not an ISO-8601 time", hint="for example 2025-07-01T00:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def read_evidence(path: Path, tee: TeeChoice) -> tuple[str, bytes]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        fail(f"cannot read evidence {path}: {exc.strerror}")
    try:
        report = decode_blob(raw)
        return (detect_tee(report) if tee == TeeChoice.auto else tee.value), report
    except ParseError as exc:
        fail(f"{path}: {exc.message}")


def read_certificates(paths: list[Path]) -> tuple[bytes, ...]:
    """DER certificates from PEM or DER files, in any order."""
    from cryptography.hazmat.primitives.serialization import Encoding

    ders: list[bytes] = []
    for path in paths:
        try:
            certs = load_certificates(path.read_bytes())
        except OSError as exc:
            fail(f"cannot read certificate file {path}: {exc.strerror}")
        except ValueError:
            fail(f"{path} holds no PEM or DER certificate")
        ders.extend(c.public_bytes(Encoding.DER) for c in certs)
    return tuple(ders)


def build_collateral(collateral: Path | Sequence[Path] | None, certs: tuple[bytes, ...],
                     offline: bool) -> CollateralSource:
    """Supplied certificates first, then each --collateral in the order given; online only without any."""
    sources: list[CollateralSource] = []
    if certs:
        sources.append(StaticCollateral(snp_endorsements=certs))
    paths = [collateral] if isinstance(collateral, Path) else list(collateral or ())
    if paths:
        sources.append(attest_collateral.open_collateral(paths))
    elif not offline:
        sources.append(attest_collateral.online_source())
    return ChainedCollateral(tuple(sources)) if sources else StaticCollateral()


def build_anchors(emulated_anchors: Path | None) -> TrustAnchors:
    anchors = vendor_anchors()
    if emulated_anchors is not None:
        anchors = anchors + attest_emulate.load_anchors(emulated_anchors)
    return anchors


@app.command("verify")
def verify_cmd(
    evidence: Annotated[Path, typer.Argument(help="Quote or report: raw binary, hex or base64 text.")],
    tee: Annotated[TeeChoice, typer.Option(help="TEE type; auto detects it from the header.")] = TeeChoice.auto,
    collateral: Annotated[list[Path], typer.Option(
        help="Offline bundle directory, Intel collateral JSON (nine-field form), or loose collateral "
             "files: TCB info, QE identity, CRLs, issuer chains (repeatable; asked in turn).")] = [],
    certs: Annotated[list[Path], typer.Option(
        "--certs", help="PEM/DER file(s) with VCEK/VLEK, ASK/ASVK, ARK in any order (repeatable).")] = [],
    at: Annotated[Optional[str], typer.Option(help="Verify as of this ISO-8601 instant (default: now).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    allow_debug: Annotated[bool, typer.Option(help="Accept a debug TD / SNP guest (host can read its memory).")] = False,
    no_revocation: Annotated[bool, typer.Option(
        "--no-revocation", help="Skip CRL checks (reported as a warning). Default: checked.")] = False,
    offline: Annotated[bool, typer.Option(help="Never contact Intel PCS or AMD KDS.")] = False,
    emulated_anchors: Annotated[Optional[Path], typer.Option(
        help="Also trust the emulated vendor anchors exported to this directory (development only).")] = None,
    nonce: Annotated[Optional[str], typer.Option(
        help="GPU: the 32-byte SPDM nonce (hex). Composite: the KBS nonce string.")] = None,
    rim: Annotated[list[Path], typer.Option(
        "--rim", help="NVIDIA RIM swidtag file or directory (repeatable).")] = [],
    tee_pubkey: Annotated[Optional[Path], typer.Option(
        help="Composite: JWK file of the TEE public key bound in the evidence.")] = None,
    explain: Annotated[bool, typer.Option(
        "--explain", help="GPU: list every check with pass, fail, skipped or not reached.")] = False,
) -> None:
    """Verify evidence. Exit 0 verified, 1 not verified (reasons printed), 2 unreadable input."""
    moment = parse_time(at)
    if tee in (TeeChoice.nvidia, TeeChoice.composite) or (tee == TeeChoice.auto and _is_composite(evidence)):
        _verify_gpu_or_composite(evidence, tee, certs=certs, collateral=collateral, at=moment, json_out=json_out,
                                 no_revocation=no_revocation, offline=offline, emulated_anchors=emulated_anchors,
                                 nonce=nonce, rim=rim, tee_pubkey=tee_pubkey, allow_debug=allow_debug,
                                 explain=explain)
    tee_name, report = read_evidence(evidence, tee)
    supplied = read_certificates(certs)
    opts = VerifyOptions(anchors=build_anchors(emulated_anchors),
                         collateral=build_collateral(collateral, supplied, offline),
                         at=moment, check_revocation=not no_revocation, allow_debug=allow_debug)
    try:
        result = verify(Evidence(tee=tee_name, report=report, certificates=supplied), opts)  # type: ignore[arg-type]
    except ParseError as exc:
        fail(f"{evidence}: {exc.message}")
    emit_result(result, json_out=json_out, no_revocation=no_revocation)
    if explain and not json_out:
        console.print(f"[dim]--explain lists the checks of GPU evidence; {tee_name.upper()} verification stops "
                      "at its first failed check (shown above), and passes only when every check does[/]",
                      highlight=False)
    raise typer.Exit(EXIT_OK if result.verified else EXIT_FAILED)


def _is_composite(path: Path) -> bool:
    from attestation.composite import looks_composite
    try:
        with path.open("rb") as f:
            return looks_composite(f.read(4096))
    except OSError:
        return False


def _verify_gpu_or_composite(evidence: Path, tee: TeeChoice, *, certs: list[Path], collateral: list[Path],
                             at: datetime, json_out: bool, no_revocation: bool, offline: bool,
                             emulated_anchors: Path | None, nonce: str | None, rim: list[Path],
                             tee_pubkey: Path | None, allow_debug: bool, explain: bool = False) -> None:
    anchors = attest_gpu.gpu_anchors(build_anchors(emulated_anchors), emulated_anchors)
    composite = tee != TeeChoice.nvidia
    supplied = read_certificates(certs) if composite else ()
    source = attest_gpu.gpu_collateral(build_collateral(collateral, supplied, offline), rim)
    opts = VerifyOptions(anchors=anchors, collateral=source, at=at, check_revocation=not no_revocation,
                         allow_debug=allow_debug)
    if composite:
        attest_gpu.verify_composite(evidence, nonce=nonce, tee_pubkey=tee_pubkey, opts=opts, json_out=json_out,
                                    no_revocation=no_revocation, explain=explain)
    attest_gpu.verify_gpu(evidence, certs=certs, nonce=nonce, opts=opts, json_out=json_out, explain=explain)


def result_document(result: VerificationResult) -> dict:
    claims = result.claims
    return {
        "verified": result.verified,
        "tee": result.tee,
        "tcb_status": claims.tcb_status.value if claims else None,
        "anchor": claims.anchor.model_dump() if claims else None,
        "advisory_ids": list(claims.advisory_ids) if claims else [],
        "claims": claims.model_dump(mode="json") if claims else None,
        "errors": [{"code": f.code, "message": f.message, "expected": f.expected, "actual": f.actual}
                   for f in result.errors],
        "warnings": list(result.warnings),
    }


def emit_result(result: VerificationResult, *, json_out: bool, no_revocation: bool) -> None:
    if json_out:
        print_json(result_document(result))
    else:
        render.verification(result, revocation_skipped=no_revocation)


@app.command("inspect")
def inspect_cmd(
    evidence: Annotated[Path, typer.Argument(help="Quote or report: raw binary, hex or base64 text.")],
    tee: Annotated[TeeChoice, typer.Option(help="TEE type; auto detects it.")] = TeeChoice.auto,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Decode every field of a quote or report. Nothing is verified."""
    if tee == TeeChoice.nvidia:
        attest_gpu.inspect_gpu(evidence, json_out=json_out)
    tee_name, report = read_evidence(evidence, tee)
    try:
        if tee_name == "tdx":
            from attestation.tdx.abi import parse_quote
            from attestation.tdx.inspect import describe
            document = describe(parse_quote(report))
        else:
            from attestation.snp.abi import describe, parse_report
            document = describe(parse_report(report))
    except AttestationError as exc:
        fail(f"{evidence}: {exc.message}")
    if json_out:
        print_json({"tee": tee_name, "verified": False, **document})
    else:
        render.inspection(tee_name, document)
    raise typer.Exit(EXIT_OK)


__all__ = ["app", "EXIT_BAD_INPUT"]


@app.command("collect")
def collect_cmd(
    report_data: Annotated[str, typer.Option(help="64 bytes of report data, hex (shorter is zero-padded).")],
    out: Annotated[Path, typer.Option(help="Where to write the quote or report (binary).")],
    tee: Annotated[TeeChoice, typer.Option(help="Restrict detection to one TEE.")] = TeeChoice.auto,
    certs_out: Annotated[Optional[Path], typer.Option(
        help="SNP: write the host-supplied certificates (VCEK/VLEK, ASK, ARK) as PEM.")] = None,
) -> None:
    """Inside a confidential VM: collect evidence from configfs-tsm or the TEE guest device."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from attestation.attesters import detect_attester

    data = attest_emulate.hex_field("report_data", report_data, 64, pad=True)
    try:
        attester = detect_attester(tee=None if tee == TeeChoice.auto else tee.value)
        evidence = attester.collect(data)
    except AttestationError as exc:
        fail(exc.message, code=EXIT_FAILED,
             hint="run this inside a TDX or SEV-SNP guest; for development use `veil attest emulate`")
    out.write_bytes(evidence.report)
    console.print(f"wrote {evidence.tee.upper()} evidence ({len(evidence.report)} bytes) to {out}")
    if certs_out is not None and evidence.certificates:
        certs_out.write_bytes(b"".join(x509.load_der_x509_certificate(d).public_bytes(Encoding.PEM)
                                       for d in evidence.certificates))
        console.print(f"wrote {len(evidence.certificates)} certificates to {certs_out}")
