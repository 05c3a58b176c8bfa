"""The emulated vendor: a local stand-in for Intel and AMD, for development and tests.

It owns root keys shaped like Intel's SGX Root CA and AMD's ARKs (but named
"Veil Emulated Vendor"), issues structurally real TDX quotes and SNP reports,
and serves matching collateral. Its roots are trust anchors of kind
"emulated": evidence it signs verifies through the production verifier only
when the caller configures these anchors, and claims say so.

    vendor = EmulatedVendor.open(path)                 # load, or create once
    evidence = vendor.evidence("tdx", report_data)
    verify(evidence, VerifyOptions(anchors=vendor.anchors(),
                                   collateral=EmulatedCollateral(vendor, clock=now), at=now))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ..anchors import AMD_PRODUCTS, Anchor, TrustAnchors
from ..collateral import SnpTcbParts, TdxCollateral
from ..evidence import Evidence
from . import hierarchy, pki, snp, store
from .pck import TdxPlatform, pck_certificate
from .tdx import QuotingKey, TdBody, build_quote, quoting_key
from .tdx_collateral import HALF_WINDOW, tdx_collateral

MARKER = "vendor.json"
FORMAT = "veil-emulated-vendor"


class EmulatedVendor:
    """An emulated Intel + AMD vendor persisted in one private directory."""

    def __init__(self, directory: Path, seed: bytes, intel: hierarchy.IntelKeys) -> None:
        self.directory = directory
        self._seed = seed
        self._intel = intel
        self._amd: dict[str, hierarchy.AmdKeys] = {}
        self._pck: dict[TdxPlatform, tuple[ec.EllipticCurvePrivateKey, x509.Certificate]] = {}
        self._qe: dict[TdxPlatform, QuotingKey] = {}         # one attestation key per platform, as a real QE
        self._endorsements: dict[tuple, bytes] = {}

    def __repr__(self) -> str:
        return f"EmulatedVendor({str(self.directory)!r})"

    # ------------------------------------------------------------ persistence

    @classmethod
    def create(cls, directory: str | Path) -> EmulatedVendor:
        """Generate a new vendor in `directory` (created 0700). Fails if one is already there."""
        directory = Path(directory)
        if (directory / MARKER).exists():
            raise FileExistsError(f"an emulated vendor already exists in {directory}")
        store.make_private_dir(directory)
        seed = secrets.token_bytes(32)
        store.atomic_write(directory / "seed.key", seed.hex().encode() + b"\n", store.KEY_MODE)
        intel = hierarchy.generate_intel(directory / "intel")
        info = {"format": FORMAT, "version": 1,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        store.atomic_write(directory / MARKER, json.dumps(info).encode() + b"\n", store.CERT_MODE)
        return cls(directory, seed, intel)

    @classmethod
    def load(cls, directory: str | Path) -> EmulatedVendor:
        """Load a vendor created earlier by `create`."""
        directory = Path(directory)
        try:
            info = json.loads((directory / MARKER).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"no emulated vendor in {directory} (create one first)") from None
        if info.get("format") != FORMAT:
            raise ValueError(f"{directory / MARKER} is not an emulated vendor description")
        seed = bytes.fromhex((directory / "seed.key").read_text().strip())
        return cls(directory, seed, hierarchy.load_intel(directory / "intel"))

    @classmethod
    def open(cls, directory: str | Path) -> EmulatedVendor:
        """Load the vendor in `directory`, creating it on first use."""
        if (Path(directory) / MARKER).exists():
            return cls.load(directory)
        return cls.create(directory)

    def _amd_keys(self, product: str) -> hierarchy.AmdKeys:
        if product not in AMD_PRODUCTS:
            raise ValueError(f"unknown AMD product {product!r}; expected one of {AMD_PRODUCTS}")
        if product not in self._amd:
            self._amd[product] = hierarchy.amd_hierarchy(self.directory / "amd", product)
        return self._amd[product]

    # ------------------------------------------------------------ anchors

    def intel_anchor(self) -> Anchor:
        return Anchor(name="emulated-intel", kind="emulated", vendor="intel",
                      certificate=self._intel.root)

    def amd_anchor(self, product: str) -> Anchor:
        keys = self._amd_keys(product)
        return Anchor(name=f"emulated-amd-{product.lower()}", kind="emulated", vendor="amd",
                      product=product, certificate=keys.ark, intermediates=(keys.ask, keys.asvk))

    @cached_property
    def nvidia(self):
        """The emulated NVIDIA vendor (GPUs, RIMs), generated under nvidia/ on first use."""
        from .nvidia import EmulatedNvidia
        return EmulatedNvidia(self.directory / "nvidia", self._derive(b"nvidia-seed", 32))

    def nvidia_anchors(self) -> TrustAnchors:
        """Emulated NVIDIA device-identity and RIM roots (not part of `anchors()`)."""
        return self.nvidia.anchors()

    def anchors(self, products: tuple[str, ...] = AMD_PRODUCTS) -> TrustAnchors:
        """Emulated Intel root and the ARKs (with ASK, ASVK) of `products`."""
        return TrustAnchors((self.intel_anchor(), *(self.amd_anchor(p) for p in products)))

    def export_anchors(self, directory: str | Path,
                       products: tuple[str, ...] = AMD_PRODUCTS) -> Path:
        """Write the public anchor certificates (never keys), NVIDIA's included; see attestation.emulated.export."""
        from .export import write_anchors
        from .nvidia import write_nvidia_anchors
        write_anchors(self.anchors(products), Path(directory))
        return write_nvidia_anchors(self.nvidia_anchors(), Path(directory))

    # ------------------------------------------------------------ TDX

    @cached_property
    def default_platform(self) -> TdxPlatform:
        return TdxPlatform(ppid=self._derive(b"ppid", 16))

    def platform(self, fmspc: str | None = None) -> TdxPlatform:
        if fmspc is None or fmspc.lower() == self.default_platform.fmspc:
            return self.default_platform
        return TdxPlatform(fmspc=fmspc.lower(), ppid=self.default_platform.ppid)

    def _pck_for(self, platform: TdxPlatform):
        if platform not in self._pck:
            self._pck[platform] = pck_certificate(platform, self._intel.pck_ca, self._intel.pck_ca_key)
        return self._pck[platform]

    def tdx_quote(self, report_data: bytes, *, version: int = 4, body_type: int | None = None,
                  fmspc: str | None = None, platform: TdxPlatform | None = None,
                  **body: Any) -> bytes:
        """A signed DCAP quote. `body` takes TdBody's fields (mrtd, rtmr0..3, td_attributes, …)."""
        return build_quote(TdBody(report_data=report_data, **body), version=version, body_type=body_type,
                           qe=self._quoting_key(platform or self.platform(fmspc)))

    def _quoting_key(self, platform: TdxPlatform) -> QuotingKey:
        if platform not in self._qe:
            pck_key, pck_cert = self._pck_for(platform)
            chain = b"".join(c.public_bytes(Encoding.PEM) for c in (pck_cert, self._intel.pck_ca, self._intel.root))
            self._qe[platform] = quoting_key(platform.cpusvn, pck_key, chain)
        return self._qe[platform]

    def tdx_collateral(self, fmspc: str | None = None, *, at: dt.datetime) -> TdxCollateral:
        """Collateral under which a default emulated quote is UpToDate at `at` (± 15 days)."""
        return tdx_collateral(self._intel, (fmspc or self.default_platform.fmspc).lower(), at)

    # ------------------------------------------------------------ SNP

    def _derive(self, label: bytes, size: int) -> bytes:
        return hmac.new(self._seed, label, hashlib.sha512).digest()[:size]

    def chip_id(self, product: str) -> bytes:
        """This vendor's emulated CHIP_ID for `product` (Turin: 8 significant bytes)."""
        raw = self._derive(b"chip-id/" + product.encode(), 64)
        return raw[:8] + bytes(56) if product == "Turin" else raw

    def _endorsement_key(self, product: str, signer: str, chip_id: bytes,
                         tcb: SnpTcbParts) -> ec.EllipticCurvePrivateKey:
        """VCEK/VLEK key derived from (chip, TCB), as AMD derives a VCEK from chip secrets."""
        ident = chip_id if signer == "vcek" else b""
        label = b"/".join([b"endorsement", signer.encode(), product.encode(), ident,
                           snp.encode_tcb(product, tcb)])
        scalar = int.from_bytes(self._derive(label, 64), "big") % (_P384_ORDER - 1) + 1
        return ec.derive_private_key(scalar, ec.SECP384R1())

    def snp_endorsement(self, product: str, signer: str, chip_id: bytes, tcb: SnpTcbParts, *,
                        csp_id: str | None = None) -> bytes:
        """DER VCEK (issued by the ASK) or VLEK (issued by the ASVK) for this chip and TCB."""
        cache_key = (product, signer, chip_id if signer == "vcek" else b"", tcb, csp_id)
        if cache_key not in self._endorsements:
            issuer, issuer_key = self._amd_keys(product).issuer(signer)
            key = self._endorsement_key(product, signer, chip_id, tcb)
            exts = snp.endorsement_extensions(product, tcb, signer=signer, chip_id=chip_id,
                                              csp_id=csp_id)
            cert = pki.issue(subject=pki.amd_name(f"SEV-{signer.upper()}"),
                             public_key=key.public_key(), issuer=issuer.subject,
                             issuer_key=issuer_key, ca=False, extensions=exts)
            self._endorsements[cache_key] = cert.public_bytes(Encoding.DER)
        return self._endorsements[cache_key]

    def snp_report(self, report_data: bytes, *, product: str = "Milan", version: int = 3,
                   signer: str = "vcek", reported_tcb: SnpTcbParts | None = None,
                   chip_id: bytes | None = None, csp_id: str | None = None,
                   **fields: Any) -> tuple[bytes, bytes]:
        """A signed 1184-byte report and the DER VCEK/VLEK that verifies it.

        `fields` takes SnpFields' names (measurement, host_data, policy, vmpl, …);
        TCB fields default to `reported_tcb` (or the product's default TCB).
        """
        if signer not in ("vcek", "vlek"):
            raise ValueError("signer must be 'vcek' or 'vlek'")
        tcb = reported_tcb or snp.DEFAULT_TCB[product]
        chip = self.chip_id(product) if chip_id is None else chip_id
        tcb_bytes = snp.encode_tcb(product, tcb)
        for name in ("current_tcb", "committed_tcb", "launch_tcb"):
            fields.setdefault(name, tcb_bytes)
        fields.setdefault("report_id", self._derive(b"report-id/" + report_data, 32))
        record = snp.SnpFields(report_data=report_data, product=product, version=version,
                               signer=signer, reported_tcb=tcb_bytes,
                               chip_id=bytes(64) if fields.get("mask_chip_key") else chip,
                               **fields)
        key = self._endorsement_key(product, signer, chip, tcb)
        report = snp.sign_report(snp.pack_body(record), key)
        return report, self.snp_endorsement(product, signer, chip, tcb, csp_id=csp_id)

    def snp_chain(self, product: str, signer: str = "vcek") -> tuple[bytes, bytes]:
        """DER (ASK or ASVK, ARK) of `product`, as AMD's KDS cert_chain serves them."""
        keys = self._amd_keys(product)
        issuer, _ = keys.issuer(signer)
        return issuer.public_bytes(Encoding.DER), keys.ark.public_bytes(Encoding.DER)

    def snp_crl(self, product: str, signer: str = "vcek", *, at: dt.datetime) -> bytes:
        """An empty ARK-signed CRL for the product's VCEK or VLEK hierarchy, current at `at`."""
        keys = self._amd_keys(product)
        return pki.empty_crl(keys.ark, keys.ark_key, this_update=at - HALF_WINDOW,
                             next_update=at + HALF_WINDOW)

    # ------------------------------------------------------------ transport

    def evidence(self, tee: str, report_data: bytes, *, include_certificates: bool = True,
                 **kwargs: Any) -> Evidence:
        """Evidence ready for a verifier: a TDX quote, or an SNP report with VCEK/VLEK, ASK/ASVK, ARK."""
        if tee == "tdx":
            return Evidence("tdx", self.tdx_quote(report_data, **kwargs))
        if tee == "snp":
            report, endorsement = self.snp_report(report_data, **kwargs)
            if not include_certificates:
                return Evidence("snp", report)
            chain = self.snp_chain(kwargs.get("product", "Milan"), kwargs.get("signer", "vcek"))
            return Evidence("snp", report, (endorsement, *chain))
        raise ValueError(f"unsupported TEE {tee!r}; expected 'tdx' or 'snp'")


_P384_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973
