"""`veil attest collateral …`: build and inspect offline collateral bundles."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Sequence
from typing import Annotated, NoReturn, Optional

import typer

from attestation.collateral import ChainedCollateral, CollateralSource
from attestation.collateral.manifest import MANIFEST
from attestation.collateral.windows import format_utc
from attestation.errors import AttestationError

from . import paths
from .output import EXIT_FAILED, EXIT_OK, console, fail, print_json

app = typer.Typer(help="Collateral for verification: online sources, offline bundles.",
                  no_args_is_help=True)


def open_collateral(paths: Path | Sequence[Path]) -> CollateralSource:
    """What `--collateral` names, asked in the order given.

    A directory with a manifest.json is an offline bundle. Every other file or
    directory is loose collateral (nine-field JSON, PCS bodies, CRLs, issuer
    chains); all loose ones together make one source, asked at the place of the
    first of them.
    """
    sources = [s for _, s in collateral_sources([paths] if isinstance(paths, Path) else list(paths))]
    return sources[0] if len(sources) == 1 else ChainedCollateral(tuple(sources))


def collateral_sources(paths: Sequence[Path]) -> list[tuple[str, CollateralSource]]:
    """(description, source) for each bundle and for the loose files together, in order."""
    from attestation.collateral.bundle import OfflineBundle
    from attestation.collateral.importer import static_source

    loose = [p for p in paths if not is_bundle(p)]
    sources: list[tuple[str, CollateralSource]] = []
    for path in paths:
        try:
            if is_bundle(path):
                sources.append((str(path), OfflineBundle(path)))
            elif path == loose[0]:
                sources.append((", ".join(map(str, loose)), static_source(loose_sets(loose))))
        except AttestationError as exc:
            fail(exc.message)
    return sources


def is_bundle(path: Path) -> bool:
    return (path / MANIFEST).is_file()


def loose_sets(paths: Sequence[Path]):
    """Complete TDX sets made of loose files; exit 2 naming the file when one is missing or bad."""
    from attestation.collateral.importer import read_sets

    for path in paths:
        if not path.exists():
            fail(f"cannot read collateral {path}: no such file or directory")
    try:
        return read_sets(paths)[1]
    except AttestationError as exc:
        dirs = [str(p) for p in paths if p.is_dir()]
        hint = (f"{', '.join(dirs)} has no manifest.json, so it was read as loose collateral files"
                if dirs else "")
        fail(exc.message, hint=hint)


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
            fetch_failed(exc)
    console.print(f"wrote {len(summary.fetched)} collateral items to {out}")
    if rim:
        fetch_rims(out, rim, rim_url)


FETCH_ELSEWHERE = ("`collateral fetch` needs network access to the vendor services (Intel PCS or a PCCS, "
                   "AMD KDS, NVIDIA RIM service): run the same command on a connected machine and copy its "
                   "--out directory here (pass it with --collateral), or build a bundle here from collateral "
                   "files you already have with `veil attest collateral import FILE... --out DIR`")


def fetch_failed(exc: AttestationError) -> NoReturn:
    """A fetch that could not get its items: say what failed, and where fetching can work instead."""
    message = exc.message
    hint = getattr(exc, "hint", "")
    if hint and message.endswith(f" ({hint})"):
        message = message[: -len(hint) - 3]
    fail(message, hint=FETCH_ELSEWHERE)


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
        fetch_failed(exc)
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
    sources: Annotated[list[Path], typer.Argument(
        metavar="SOURCE", help="What `verify --collateral` takes: bundle directories, Intel collateral JSON, loose files.",
        show_default=False)],
    at: Annotated[Optional[str], typer.Option(help="Instant to check (default: now).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List collateral items with their validity; exit 1 if any is outside its window at --at."""
    from .attest import parse_time
    from .attest_collateral_view import print_rows, rows_of, rows_document

    moment = parse_time(at) if at else datetime.now(timezone.utc)
    rows = [row for where, source in collateral_sources(sources) for row in rows_of(where, source, moment)]
    stale = sum(1 for row in rows if row["state"] != "current")
    if json_out:
        print_json(rows_document(moment, rows, stale))
    else:
        print_rows(f"collateral at {format_utc(moment)}", rows)
    raise typer.Exit(EXIT_FAILED if stale else EXIT_OK)


@app.command("import")
def import_cmd(
    files: Annotated[list[Path], typer.Argument(
        metavar="FILE", help="Collateral files or directories of them: TCB info and QE identity bodies, CRLs (DER or PEM), "
             "issuer chains (PEM), nine-field collateral JSON. Recognised by content.", show_default=False)],
    out: Annotated[Path, typer.Option(metavar="DIR", help="Bundle directory to create (must not exist yet).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Offline: build a bundle from collateral files you have. Nothing is written if any file is bad."""
    from attestation.collateral.importer import read_sets, write_bundle

    from .attest_collateral_view import import_document, print_import

    try:
        pieces, sets = read_sets(files)
        write_bundle(out, sets)
    except OSError as exc:
        fail(f"cannot read collateral: {exc.strerror}")
    except AttestationError as exc:
        fail(exc.message)
    if json_out:
        print_json(import_document(out, pieces, sets))
    else:
        print_import(out, pieces, sets)
    raise typer.Exit(EXIT_OK)
