"""`veil attest collateral …`: build and inspect offline collateral bundles."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from attestation.collateral import CollateralSource, StaticCollateral
from attestation.errors import AttestationError

from . import paths
from .output import EXIT_FAILED, EXIT_OK, console, fail

app = typer.Typer(help="Collateral for verification: online sources, offline bundles.",
                  no_args_is_help=True)


def open_collateral(path: Path) -> CollateralSource:
    """An offline bundle directory, or one Intel nine-field collateral JSON file."""
    from attestation.collateral.bundle import OfflineBundle
    from attestation.collateral.intel import load_intel_collateral_json

    try:
        if path.is_dir():
            return OfflineBundle(path)
        return StaticCollateral(tdx_sets=(load_intel_collateral_json(path.read_bytes()),))
    except OSError as exc:
        fail(f"cannot read collateral {path}: {exc.strerror}")
    except AttestationError as exc:
        fail(f"{path}: {exc.message}")


def online_source(pcs_url: str | None = None, kds_url: str | None = None):
    """Intel PCS (or a PCCS) and AMD KDS, with an on-disk cache that honours each item's next update."""
    from attestation.collateral.cache import CollateralCache
    from attestation.collateral.online import AmdKds, IntelPcs, OnlineCollateral

    cache = CollateralCache(paths.cache() / "collateral")
    pcs = IntelPcs(pcs_url, cache=cache) if pcs_url else IntelPcs(cache=cache)
    kds = AmdKds(kds_url, cache=cache) if kds_url else AmdKds(cache=cache)
    return OnlineCollateral(pcs, kds)


@app.command("fetch")
def fetch(
    out: Annotated[Path, typer.Option(help="Bundle directory to create or extend.")],
    fmspc: Annotated[list[str], typer.Option(help="TDX platform FMSPC, hex (repeatable).")] = [],
    evidence: Annotated[list[Path], typer.Option(
        help="Fetch what this quote or report needs: its FMSPC's collateral, or its VCEK, chain "
             "and CRL (repeatable).")] = [],
    snp_product: Annotated[list[str], typer.Option(
        help="AMD product whose CRLs and certificate chains to fetch (repeatable).")] = [],
    rim: Annotated[list[str], typer.Option(
        help="NVIDIA RIM id to fetch, e.g. NV_GPU_DRIVER_GH100_550.90.07 (repeatable).")] = [],
    rim_url: Annotated[Optional[str], typer.Option(help="NVIDIA RIM service base URL (or a mirror).")] = None,
    pcs_url: Annotated[Optional[str], typer.Option(help="Intel PCS or a PCCS base URL.")] = None,
    kds_url: Annotated[Optional[str], typer.Option(help="AMD KDS base URL.")] = None,
) -> None:
    """On a connected machine: fetch Intel and AMD collateral into one offline bundle."""
    from rich.progress import Progress

    from attestation.collateral.fetch import fetch_bundle
    targets = [needs(path) for path in evidence]
    fmspcs = [*fmspc, *(t for t in targets if isinstance(t, str))]
    snp_targets = [t for t in targets if not isinstance(t, str)]
    if not fmspcs and not snp_product and not snp_targets and not rim:
        fail("nothing to fetch", hint="name at least one --fmspc, --snp-product, --evidence or --rim")
    if not fmspcs and not snp_product and not snp_targets:
        fetch_rims(out, rim, rim_url)
        return
    source = online_source(pcs_url, kds_url)
    with source, Progress(console=console, transient=True) as progress:
        task = progress.add_task("fetching collateral", total=None)

        def step(message: str) -> None:
            progress.update(task, description=message)
            progress.advance(task)

        try:
            summary = fetch_bundle(out, fmspcs=fmspcs, snp=snp_targets, snp_products=snp_product, source=source,
                                   progress=step, on_total=lambda n: progress.update(task, total=n))
        except AttestationError as exc:
            fail(exc.message, code=EXIT_FAILED)
    console.print(f"wrote {len(summary.fetched)} collateral items to {out}")
    if rim:
        fetch_rims(out, rim, rim_url)


def fetch_rims(out: Path, rim_ids: list[str], rim_url: str | None) -> None:
    """Fetch NVIDIA RIMs into the bundle at `out` (created or extended; nothing written on error)."""
    from attestation.collateral.bundle import BundleWriter
    from attestation.collateral.cache import CollateralCache
    from attestation.collateral.nvidia import add_rim
    from attestation.collateral.nvidia_online import NvidiaRimService

    cache = CollateralCache(paths.cache() / "collateral")
    service = NvidiaRimService(rim_url, cache=cache) if rim_url else NvidiaRimService(cache=cache)
    try:
        rims = {rim_id: service.nvidia_rim(rim_id) for rim_id in rim_ids}
        with BundleWriter(out) as writer:
            for rim_id, xml in rims.items():
                add_rim(writer, rim_id, xml)
    except AttestationError as exc:
        fail(exc.message, code=EXIT_FAILED)
    finally:
        service.close()
    console.print(f"wrote {len(rims)} NVIDIA RIMs to {out}")


def needs(path: Path):
    """The FMSPC (TDX) or (product, CHIP_ID, reported TCB) (SNP) that evidence needs collateral for."""
    from attestation.collateral import SnpTcbParts
    from attestation.evidence import decode_blob, detect_tee

    try:
        report = decode_blob(path.read_bytes())
        if detect_tee(report) == "tdx":
            from attestation.tdx.abi import parse_quote
            from attestation.tdx.pck import parse_pck_chain

            quote = parse_quote(report)
            return parse_pck_chain(quote.signature.qe_cert.pck_chain_pem).extension.fmspc.hex()
        from attestation.snp.abi import parse_report
        from attestation.snp.fields import decode_tcb

        parsed = parse_report(report)
    except OSError as exc:
        fail(f"cannot read evidence {path}: {exc.strerror}")
    except AttestationError as exc:
        fail(f"{path}: {exc.message}")
    if parsed.product is None or parsed.chip_id_masked:
        fail(f"{path}: a v2 report or a masked CHIP_ID does not say which VCEK to fetch",
             hint="use --snp-product for the chain and CRL, and take the VCEK from the host")
    tcb = decode_tcb(parsed.reported_tcb, parsed.product)
    return parsed.product, parsed.chip_id, SnpTcbParts(bootloader=tcb.bootloader, tee=tcb.tee, snp=tcb.snp,
                                                      microcode=tcb.microcode, fmc=tcb.fmc)


@app.command("status")
def status(
    bundle: Annotated[Path, typer.Argument(help="Offline bundle directory.")],
    at: Annotated[Optional[str], typer.Option(help="Instant to check (default: now).")] = None,
) -> None:
    """List a bundle's items with their validity; exit 1 if any is outside its window."""
    from rich.table import Table

    from attestation.collateral.bundle import OfflineBundle

    from .attest import parse_time

    moment = parse_time(at) if at else datetime.now(timezone.utc)
    try:
        source = OfflineBundle(bundle)
        stale = {s.item.key for s in source.freshness(moment)}
    except AttestationError as exc:
        fail(f"{bundle}: {exc.message}")
    table = Table(title=f"{bundle} at {moment.isoformat()}")
    for column in ("kind", "keys", "valid from", "valid until", "state"):
        table.add_column(column)
    for item in source.items:
        keys = ", ".join(f"{k}={v}" for k, v in item.keys.items())
        state = "[red]stale[/]" if item.key in stale else "[green]current[/]"
        table.add_row(item.kind, keys, _when(item.not_before), _when(item.not_after), state)
    console.print(table)
    raise typer.Exit(EXIT_FAILED if stale else EXIT_OK)


def _when(value: datetime | None) -> str:
    return value.isoformat() if value else "-"
