"""`veil demo`: the most complete real flow that exists, each step saying what it proves.

First attestation: an emulated vendor produces structurally real TDX
and SNP evidence bound to a fresh challenge; the production verifier accepts it
only under the emulated anchor, rejects tampering, replay and the wrong root;
and real evidence from real hardware (the repository's corpus/evidence)
verifies exactly as its README says. Then Veil's main job on the embedded default
(demo_flow.py): a tiny model sealed, a SQLite key broker, the development policy,
an emulated-TDX enclave fetching its key from the broker and serving on real vLLM,
the attested client, and the broker's attestation log verified offline. Exit status is non-zero if any step does
not turn out as expected.
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from attestation import binding
from attestation.anchors import vendor_anchors
from attestation.collateral import StaticCollateral
from attestation.emulated import EmulatedCollateral, EmulatedVendor
from attestation.errors import VerificationError
from attestation.evidence import Evidence, decode_blob
from attestation.options import VerifyOptions
from attestation.verify import VerificationResult, verify

from .demo_procs import console
from .output import fail

Step = Callable[[], str]


class DemoFailed(Exception):
    pass


def expect(result: VerificationResult, verified: bool, code: str | None = None) -> VerificationResult:
    if result.verified != verified:
        raise DemoFailed(f"expected verified={verified}, got {result.verified} {[f.code for f in result.errors]}")
    if code is not None and (not result.errors or result.errors[0].code != code):
        raise DemoFailed(f"expected failure {code}, got {[f.code for f in result.errors]}")
    return result


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


class Demo:
    def __init__(self, workdir: Path, shared: Path | None) -> None:
        self.now = datetime.now(timezone.utc)
        console.print("[bold]1. Emulated vendor[/]: generating a local root that plays Intel and AMD")
        self.vendor = EmulatedVendor.create(workdir / "emulated-vendor")
        self.emulated = VerifyOptions(anchors=vendor_anchors() + self.vendor.anchors(("Genoa",)),
                                      collateral=EmulatedCollateral(self.vendor, self.now), at=self.now)
        self.real_roots_only = replace(self.emulated, anchors=vendor_anchors())
        self.nonce = base64.b64encode(secrets.token_bytes(32)).decode()
        key = ec.generate_private_key(ec.SECP256R1())
        self.tee_jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        self.report_data = binding.report_data(self.nonce, self.tee_jwk)
        self.shared = shared

    def step(self, title: str, proves: str, run: Step) -> None:
        outcome = run()
        console.print(f"  [green]✓[/] {title}: {outcome}\n    [dim]proves: {proves}[/]", highlight=False)

    def tee(self, tee: str, evidence: Evidence, tamper_at: int) -> None:
        name = tee.upper()
        ok = lambda: self._accepted(evidence)  # noqa: E731
        self.step(f"{name} evidence under the emulated anchor", "the production verifier path accepts "
                  "structurally real evidence bound to this challenge", ok)
        self.step(f"{name} evidence under the real vendor roots only", "emulated evidence never passes "
                  "as real hardware", lambda: self._rejected(verify(evidence, self.real_roots_only)))
        tampered = replace(evidence, report=flip(evidence.report, tamper_at))
        self.step(f"{name} evidence with one byte flipped", "signed fields cannot be altered",
                  lambda: self._rejected(verify(tampered, self.emulated)))
        self.step(f"{name} evidence replayed against a new challenge", "evidence is bound to one nonce "
                  "and one TEE key", lambda: self._unbound(evidence))

    def _accepted(self, evidence: Evidence) -> str:
        claims = expect(verify(evidence, self.emulated), True).claims
        binding.check_report_data(claims.report_data, self.nonce, self.tee_jwk)
        return f"verified, anchor {claims.anchor.name}, TCB {claims.tcb_status.value}, report data binds nonce+key"

    @staticmethod
    def _rejected(result: VerificationResult) -> str:
        expect(result, False)
        return f"rejected ({result.errors[0].code})"

    def _unbound(self, evidence: Evidence) -> str:
        claims = expect(verify(evidence, self.emulated), True).claims
        fresh = base64.b64encode(secrets.token_bytes(32)).decode()
        try:
            binding.check_report_data(claims.report_data, fresh, self.tee_jwk)
        except VerificationError as exc:
            return f"rejected ({exc.check})"
        raise DemoFailed("replayed evidence matched a new nonce")

    def real(self) -> None:
        if self.shared is None:
            console.print("[bold]4. Real evidence[/]: skipped (corpus/evidence not found; set VEIL_CORPUS or --corpus)")
            return
        console.print("[bold]4. Real evidence from real hardware[/] (verified at instants inside its "
                      "collateral windows)")
        from attestation.collateral.intel import load_intel_collateral_json

        e = self.shared
        anchors = vendor_anchors()
        tdx_coll = StaticCollateral(tdx_sets=(load_intel_collateral_json(
            (e / "tdx/collateral/dcapqvl_2025-06_b0c06f000000.json").read_bytes()),))
        tdx_opts = VerifyOptions(anchors=anchors, collateral=tdx_coll,
                                 at=datetime(2025, 7, 1, tzinfo=timezone.utc))
        quote = Evidence("tdx", (e / "tdx/quotes/dcapqvl_tdx_quote_v4.dat").read_bytes())
        self.step("Intel TDX quote v4 (FMSPC b0c06f000000)", "real Intel PCK chain, TCB info and QE "
                  "identity verify; TCB level matched", lambda: self._real_ok(quote, tdx_opts))
        vcek = (e / "snp/virtee_milan_v2/vcek_milan.der").read_bytes()
        report = decode_blob((e / "snp/virtee_milan_v2/report_milan.hex").read_bytes())
        snp_opts = VerifyOptions(anchors=anchors, collateral=StaticCollateral(snp_endorsements=(vcek,)),
                                 at=self.now, check_revocation=False)
        snp = Evidence("snp", report, (vcek,))
        self.step("AMD SEV-SNP report v2 (Milan, VCEK)", "real VCEK → ASK → ARK chain and report "
                  "signature verify (no AMD CRL in the corpus: revocation skipped and flagged)",
                  lambda: self._real_ok(snp, snp_opts))
        debug = Evidence("snp", (e / "snp/gosevguest_milan_v2_debug/attestation.bin").read_bytes(),
                         ((e / "snp/gosevguest_milan_v2_debug/vcek.der").read_bytes(),))
        self.step("AMD SEV-SNP report with POLICY.DEBUG", "a debug guest is refused even when "
                  "authentic", lambda: self._rejected(verify(debug, snp_opts)))

    @staticmethod
    def _real_ok(evidence: Evidence, opts: VerifyOptions) -> str:
        claims = expect(verify(evidence, opts), True).claims
        return f"verified, anchor {claims.anchor.name}, TCB {claims.tcb_status.value}"


def find_corpus() -> Path | None:
    """corpus/evidence of VEIL_CORPUS, else of the checkout this module runs from, else None."""
    candidates = [Path(os.environ["VEIL_CORPUS"])] if os.environ.get("VEIL_CORPUS") else []
    candidates.append(Path(__file__).resolve().parents[2] / "corpus")
    return next((c / "evidence" for c in candidates if (c / "evidence").is_dir()), None)


def where_it_is(workdir: Path, *, kept: bool) -> str:
    """Where the audit export (and the rest of the work directory) is, and whether it stays."""
    export = workdir / "audit-export"
    if kept:
        return (f"[bold]Kept[/]: {workdir} (logs, broker database, sealed model); the audit export is {export} "
                f"(check it again with `veil audit verify {export}`)")
    return (f"[bold]Removed[/]: the work directory {workdir}, with the audit export {export}; "
            "run `veil demo --keep DIR` to keep them in DIR")


def run(
    corpus: Annotated[Optional[Path], typer.Option(help="The corpus folder (holding evidence/) with real evidence.")] = None,
    attestation_only: Annotated[bool, typer.Option(
        "--attestation-only", help="Stop after the attestation steps (no broker, enclave or vLLM).")] = False,
    keep: Annotated[Optional[Path], typer.Option(
        help="Work in this new directory and keep it afterwards (logs, database, sealed model, audit export); "
             "default: a temporary directory, removed.")] = None,
) -> None:
    """Run the end-to-end flow that exists today and say what each step proves."""
    evidence_dir = (corpus / "evidence") if corpus else find_corpus()
    if keep is not None:
        try:
            keep.mkdir(parents=True)
        except OSError as exc:
            fail(f"--keep {keep}: {exc.strerror}; give a directory that does not exist yet")
    with tempfile.TemporaryDirectory(prefix="veil-demo-") if keep is None else nullcontext(str(keep)) as tmp:
        try:
            demo = Demo(Path(tmp), evidence_dir)
            console.print(f"[bold]2. Challenge[/]: nonce {demo.nonce[:16]}…, ephemeral TEE key P-256; "
                          f"report data = SHA-384(JCS(nonce, key)) = {demo.report_data[:8].hex()}…")
            tdx_quote = demo.vendor.tdx_quote(demo.report_data, version=5)
            console.print("[bold]3. Emulated confidential VMs[/]")
            demo.tee("tdx", Evidence("tdx", tdx_quote), tamper_at=0x36 + 0x88)  # a byte of MRTD
            snp = demo.vendor.evidence("snp", demo.report_data, product="Genoa", version=5)
            demo.tee("snp", snp, tamper_at=0x90)                                # a byte of MEASUREMENT
            demo.real()
            if not attestation_only:
                from .demo_flow import FlowFailed, run_flow
                try:
                    timings = run_flow(Path(tmp), demo.vendor, Path(tmp) / "emulated-vendor")
                except FlowFailed as exc:
                    raise DemoFailed(str(exc)) from exc
                console.print("[bold]Timings[/]: " + "; ".join(f"{t} {s:.1f}s" for t, s in timings),
                              highlight=False)
                console.print(where_it_is(Path(tmp), kept=keep is not None), highlight=False)
        except DemoFailed as exc:
            console.print(f"[bold red]demo failed:[/] {exc}", highlight=False)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            console.print("[bold red]demo interrupted[/]: every process it started has been stopped")
            raise typer.Exit(130)
    console.print("[bold green]demo complete[/]: every step turned out as expected")
