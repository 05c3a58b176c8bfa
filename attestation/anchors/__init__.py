"""Trust anchors: the only roots a verifier trusts.

The real vendor roots ship with the package (`data/`). A verifier never trusts
the root that travels with the evidence; it requires that the chain ends in one
of the configured anchors and records which one in the claims. Emulated
anchors (attestation.emulated) are the same structure with a locally generated
root and `kind="emulated"`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..claims import AnchorRef

AMD_PRODUCTS = ("Milan", "Genoa", "Turin")


@dataclass(frozen=True, slots=True, kw_only=True)
class Anchor:
    """One trusted root, with the pinned intermediates that belong to it.

    Intel: `certificate` is the SGX Root CA; no intermediates.
    AMD: `certificate` is the product's ARK; `intermediates` holds the ASK and ASVK.
    """

    name: str
    kind: Literal["vendor", "emulated"]
    vendor: Literal["intel", "amd"]
    certificate: x509.Certificate
    product: str | None = None
    intermediates: tuple[x509.Certificate, ...] = ()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.certificate.public_bytes(Encoding.DER)).hexdigest()

    def ref(self) -> AnchorRef:
        return AnchorRef(kind=self.kind, name=self.name, sha256=self.sha256)

    def intermediate(self, common_name: str) -> x509.Certificate | None:
        for cert in self.intermediates:
            if _common_name(cert) == common_name:
                return cert
        return None


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The set of anchors a verification may chain to."""

    anchors: tuple[Anchor, ...] = field(default=())

    def intel(self) -> tuple[Anchor, ...]:
        return tuple(a for a in self.anchors if a.vendor == "intel")

    def amd(self, product: str) -> tuple[Anchor, ...]:
        return tuple(a for a in self.anchors if a.vendor == "amd" and a.product == product)

    def match_root(self, cert: x509.Certificate, vendor: str) -> Anchor | None:
        """The configured anchor that is exactly `cert` (same DER), if any."""
        der = cert.public_bytes(Encoding.DER)
        for anchor in self.anchors:
            if anchor.vendor == vendor and anchor.certificate.public_bytes(Encoding.DER) == der:
                return anchor
        return None

    def __add__(self, other: TrustAnchors) -> TrustAnchors:
        return TrustAnchors(self.anchors + other.anchors)

    @property
    def has_emulated(self) -> bool:
        return any(a.kind == "emulated" for a in self.anchors)


def _common_name(cert: x509.Certificate) -> str:
    attrs = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def common_name(cert: x509.Certificate) -> str:
    """The subject CN of a certificate, or "" when it has none."""
    return _common_name(cert)


def _read(path: str) -> bytes:
    return resources.files(__package__).joinpath("data", path).read_bytes()


def vendor_anchors() -> TrustAnchors:
    """The real Intel and AMD roots shipped with Veil."""
    intel_root = x509.load_pem_x509_certificate(_read("intel/IntelSGXRootCA.pem"))
    anchors = [Anchor(name="intel-sgx-root-ca", kind="vendor", vendor="intel", certificate=intel_root)]
    for product in AMD_PRODUCTS:
        ask, ark = x509.load_pem_x509_certificates(_read(f"amd/ask_ark_{product.lower()}.pem"))
        asvk, ark2 = x509.load_pem_x509_certificates(_read(f"amd/asvk_ark_{product.lower()}_vlek.pem"))
        if ark != ark2:
            raise RuntimeError(f"packaged AMD roots for {product} disagree")  # packaging bug
        anchors.append(Anchor(name=f"amd-ark-{product.lower()}", kind="vendor", vendor="amd",
                              product=product, certificate=ark, intermediates=(ask, asvk)))
    return TrustAnchors(tuple(anchors))
