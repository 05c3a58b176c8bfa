"""`veil attest emulate …`: evidence from the emulated vendor, for development and tests.

The emulated vendor is a locally generated root that plays Intel and AMD. Its
evidence is structurally real and goes through the production verifier; only
the trust anchor differs (claims say `anchor.kind = "emulated"`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from attestation.anchors import TrustAnchors
from attestation.emulated import EmulatedVendor
from attestation.emulated import load_anchors as _load_exported

from . import paths
from .output import console, fail

app = typer.Typer(help="Emulated TDX / SNP evidence under a locally generated anchor.",
                  no_args_is_help=True)

VendorDir = Annotated[Optional[Path], typer.Option(
    help="Emulated vendor state (created on first use). Default: $VEIL_HOME/emulated-vendor.")]
ReportData = Annotated[str, typer.Option(help="64 bytes of report data, hex (shorter is zero-padded).")]
Out = Annotated[Path, typer.Option(help="Where to write the evidence (binary).")]
BundleOut = Annotated[Optional[Path], typer.Option(
    help="Also write an offline collateral bundle that verifies this evidence.")]


class Product(StrEnum):
    Milan = "Milan"
    Genoa = "Genoa"
    Turin = "Turin"


class Signer(StrEnum):
    vcek = "vcek"
    vlek = "vlek"


def load_anchors(directory: Path) -> TrustAnchors:
    try:
        return _load_exported(directory)
    except (OSError, ValueError) as exc:
        fail(f"cannot load emulated anchors from {directory}: {exc}",
             hint="export them with `veil attest emulate export-anchors --out DIR`")


def open_vendor(directory: Path | None) -> EmulatedVendor:
    return EmulatedVendor.open(directory or paths.emulated_vendor())


def hex_field(name: str, value: str | None, size: int, *, pad: bool = False) -> bytes | None:
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        fail(f"--{name.replace('_', '-')} is not hex")
    if pad and len(raw) <= size:
        return raw.ljust(size, b"\0")
    if len(raw) != size:
        fail(f"--{name.replace('_', '-')} must be {size} bytes ({2 * size} hex digits), got {len(raw)}")
    return raw


def _measurements(**values: tuple[str | None, int]) -> dict[str, bytes]:
    out = {}
    for name, (value, size) in values.items():
        raw = hex_field(name, value, size)
        if raw is not None:
            out[name] = raw
    return out


def _write(out: Path, data: bytes) -> None:
    try:
        out.write_bytes(data)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")


@app.command("tdx")
def tdx(
    report_data: ReportData,
    out: Out,
    mrtd: Annotated[Optional[str], typer.Option(help="48-byte MRTD, hex.")] = None,
    rtmr0: Annotated[Optional[str], typer.Option(help="48-byte RTMR0, hex.")] = None,
    rtmr1: Annotated[Optional[str], typer.Option(help="48-byte RTMR1, hex.")] = None,
    rtmr2: Annotated[Optional[str], typer.Option(help="48-byte RTMR2, hex.")] = None,
    rtmr3: Annotated[Optional[str], typer.Option(help="48-byte RTMR3, hex.")] = None,
    mrconfigid: Annotated[Optional[str], typer.Option(help="48-byte MRCONFIGID, hex.")] = None,
    version: Annotated[int, typer.Option(help="Quote version: 4 (TD 1.0) or 5 (TD 1.5).")] = 4,
    debug: Annotated[bool, typer.Option(help="Set TD_ATTRIBUTES.DEBUG (verifiers reject it).")] = False,
    vendor_dir: VendorDir = None,
    bundle_out: BundleOut = None,
) -> None:
    """Write an emulated TDX quote bound to REPORT_DATA."""
    from attestation.collateral.bundle import BundleWriter
    from attestation.emulated.tdx import SEPT_VE_DISABLE

    if version not in (4, 5):
        fail("--version must be 4 or 5")
    body = _measurements(mrtd=(mrtd, 48), rtmr0=(rtmr0, 48), rtmr1=(rtmr1, 48), rtmr2=(rtmr2, 48),
                         rtmr3=(rtmr3, 48), mrconfigid=(mrconfigid, 48))
    if debug:
        body["td_attributes"] = SEPT_VE_DISABLE | 1
    data = hex_field("report_data", report_data, 64, pad=True)
    vendor = open_vendor(vendor_dir)
    _write(out, vendor.tdx_quote(data, version=version, **body))
    console.print(f"wrote emulated TDX quote v{version} to {out}")
    if bundle_out is not None:
        with BundleWriter(bundle_out) as writer:
            writer.add_tdx(vendor.tdx_collateral(at=datetime.now(timezone.utc)))
        console.print(f"wrote emulated Intel collateral (valid ±15 days) to {bundle_out}")


@app.command("snp")
def snp(
    report_data: ReportData,
    out: Out,
    measurement: Annotated[Optional[str], typer.Option(help="48-byte launch measurement, hex.")] = None,
    host_data: Annotated[Optional[str], typer.Option(help="32-byte HOST_DATA, hex.")] = None,
    product: Annotated[Product, typer.Option(help="AMD product.")] = Product.Milan,
    version: Annotated[int, typer.Option(help="Report version: 2, 3 or 5.")] = 3,
    signer: Annotated[Signer, typer.Option(help="Endorsement key kind.")] = Signer.vcek,
    vmpl: Annotated[int, typer.Option(min=0, max=3, help="VMPL of the request.")] = 0,
    debug: Annotated[bool, typer.Option(help="Set POLICY.DEBUG (verifiers reject it).")] = False,
    certs_out: Annotated[Optional[Path], typer.Option(help="Write VCEK/VLEK, ASK/ASVK, ARK (PEM).")] = None,
    vendor_dir: VendorDir = None,
    bundle_out: BundleOut = None,
) -> None:
    """Write an emulated SEV-SNP report bound to REPORT_DATA."""
    from attestation.collateral.bundle import BundleWriter
    from attestation.emulated.snp import DEFAULT_POLICY
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    if version not in (2, 3, 5):
        fail("--version must be 2, 3 or 5")
    fields = _measurements(measurement=(measurement, 48), host_data=(host_data, 32))
    if debug:
        fields["policy"] = DEFAULT_POLICY | (1 << 19)
    data = hex_field("report_data", report_data, 64, pad=True)
    vendor = open_vendor(vendor_dir)
    report, endorsement = vendor.snp_report(data, product=product.value, version=version,
                                            signer=signer.value, vmpl=vmpl, **fields)
    _write(out, report)
    console.print(f"wrote emulated SNP report v{version} ({product.value}, {signer.value}) to {out}")
    chain = vendor.snp_chain(product.value, signer.value)
    if certs_out is not None:
        pem = b"".join(x509.load_der_x509_certificate(d).public_bytes(Encoding.PEM)
                       for d in (endorsement, *chain))
        _write(certs_out, pem)
        console.print(f"wrote {signer.value.upper()} and its chain to {certs_out}")
    if bundle_out is not None:
        from attestation.emulated.snp import DEFAULT_TCB

        with BundleWriter(bundle_out) as writer:
            writer.add_snp_endorsement(product.value, signer.value, vendor.chip_id(product.value),
                                       DEFAULT_TCB[product.value], endorsement)
            writer.add_snp_crl(product.value, signer.value,
                               vendor.snp_crl(product.value, signer.value, at=datetime.now(timezone.utc)))
        console.print(f"wrote emulated AMD collateral (VCEK/VLEK, CRL) to {bundle_out}")


@app.command("export-anchors")
def export_anchors(
    out: Annotated[Path, typer.Option(help="Directory for the public anchor certificates.")],
    vendor_dir: VendorDir = None,
) -> None:
    """Export the emulated vendor's root certificates (never its keys)."""
    vendor = open_vendor(vendor_dir)
    vendor.export_anchors(out)
    console.print(f"exported emulated anchors to {out} (public certificates only; "
                  "they are NOT Intel's or AMD's roots)")
