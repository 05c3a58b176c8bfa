"""Build an offline bundle on a connected machine (`veil attest collateral fetch`).

    summary = fetch_bundle("bundle/", source=OnlineCollateral(IntelPcs(), AmdKds()),
                           fmspcs=["90c06f000000"], snp_products=["Milan"],
                           progress=lambda what: print("fetching", what))

Everything is fetched first and written with one BundleWriter commit, so a
failed fetch leaves the output as it was (unless `keep_going`, which writes
what was fetched and lists the rest in the summary). An existing bundle at
`out_dir` is updated: fetched items replace older ones with the same keys.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

from ..errors import AttestationError, CollateralError
from . import PckCa, SnpSigner, SnpTcbParts, TdxCollateral
from .amd import endorsement_item, kds_product
from .bundle import BundleWriter
from .cache import Clock, utc_now

SnpTarget = tuple[str, bytes, SnpTcbParts]          # (product, CHIP_ID, reported TCB)
Step = tuple[str, Callable[[BundleWriter], object]]


class FetchSource(Protocol):
    """What fetch needs: a CollateralSource that also hands out AMD certificate chains."""

    def tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral: ...
    def snp_endorsement(self, product: str, signer: SnpSigner, chip_id: bytes,
                        tcb: SnpTcbParts) -> bytes: ...
    def snp_crl(self, product: str, signer: SnpSigner) -> bytes: ...
    def snp_cert_chain(self, product: str, signer: SnpSigner) -> bytes: ...


@dataclass(frozen=True, slots=True)
class FetchSummary:
    """What a fetch wrote: item descriptions, and (with keep_going) what failed and why."""

    path: Path
    fetched: tuple[str, ...]
    failed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failed


def _tdx_steps(source: FetchSource, fmspcs: Iterable[str], cas: Sequence[PckCa]) -> list[Step]:
    steps: list[Step] = []
    for fmspc in dict.fromkeys(f.strip().lower() for f in fmspcs):
        for ca in cas:
            steps.append((f"TDX collateral for FMSPC {fmspc} ({ca} PCK CA)",
                          lambda w, f=fmspc, c=ca: w.add_tdx(source.tdx(f, c), ca=c)))
    return steps


def _snp_steps(source: FetchSource, targets: Sequence[SnpTarget], products: Iterable[str],
               signers: Sequence[SnpSigner]) -> list[Step]:
    hierarchies = {(kds_product(p), s) for p in products for s in signers}
    hierarchies |= {(kds_product(p), "vcek") for p, _, _ in targets}
    steps: list[Step] = []
    for product, signer in sorted(hierarchies):
        steps.append((f"AMD {product} {signer.upper()} certificate chain",
                       lambda w, p=product, s=signer: w.add_snp_cert_chain(p, s, source.snp_cert_chain(p, s))))
        steps.append((f"CRL for the AMD {product} {signer.upper()} hierarchy",
                       lambda w, p=product, s=signer: w.add_snp_crl(p, s, source.snp_crl(p, s))))
    for product, chip_id, tcb in targets:
        steps.append((endorsement_item(product, "vcek", chip_id, tcb),
                      lambda w, p=product, c=chip_id, t=tcb: w.add_snp_endorsement(
                          p, "vcek", c, t, source.snp_endorsement(p, "vcek", c, t))))
    return steps


def fetch_bundle(out_dir: str | os.PathLike[str], *, source: FetchSource,
                 fmspcs: Iterable[str] = (), pck_cas: Sequence[PckCa] = ("platform",),
                 snp: Sequence[SnpTarget] = (), snp_products: Iterable[str] = (),
                 snp_signers: Sequence[SnpSigner] = ("vcek",),
                 progress: Callable[[str], None] | None = None,
                 on_total: Callable[[int], None] | None = None,
                 keep_going: bool = False, now: Clock = utc_now) -> FetchSummary:
    """Fetch collateral into an offline bundle at `out_dir` (created or updated).

    `fmspcs`: TDX platforms (TCB info per FMSPC and PCK CA, plus QE identity and CRLs);
    `snp`: (product, CHIP_ID, reported TCB) whose VCEKs to fetch; `snp_products`: AMD
    products whose certificate chain and CRL to fetch for each of `snp_signers`
    (products named in `snp` always get their VCEK chain and CRL). `progress` is
    called with a description before each item; `on_total` once with the item count.

    Raises:
        CollateralError: an item could not be fetched (nothing is written), or with
            `keep_going`, none could.
    """
    steps = _tdx_steps(source, fmspcs, pck_cas) + _snp_steps(source, snp, snp_products, snp_signers)
    if not steps:
        raise CollateralError("collateral fetch", "nothing to fetch",
                              hint="name at least one --fmspc, --snp-product or SNP chip")
    if on_total:
        on_total(len(steps))
    fetched: list[str] = []
    failed: list[str] = []
    writer = BundleWriter(out_dir, now=now)
    for description, step in steps:
        if progress:
            progress(description)
        try:
            step(writer)
        except AttestationError as exc:     # CollateralError, or a ParseError of what was served
            if not keep_going:
                raise
            failed.append(str(exc))
            continue
        fetched.append(description)
    if not fetched:
        raise CollateralError("collateral fetch", "no item could be fetched: " + "; ".join(failed))
    return FetchSummary(path=writer.commit(), fetched=tuple(fetched), failed=tuple(failed))
