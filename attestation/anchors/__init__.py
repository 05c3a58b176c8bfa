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

    Intel: `certificate` is the SGX Root CA; `intermediates` holds the PCK Platform CA
    and both issuances of the TCB Signing certificate (vendor anchors; emulated ones
    may carry none).
    AMD: `certificate` is the product's ARK; `intermediates` holds the ASK and ASVK.
    NVIDIA: `product` says what the root signs: "device-identity" (GPU attestation
    certificate chains) or "rim" (reference integrity manifests); no intermediates.

    Pinned intermediates are configuration: a verifier may treat a chain certificate
    that is exactly (same DER) one of them as signed by `certificate`. The public keys
    of the root and the intermediates are loaded once, when the anchor is built.
    """

    name: str
    kind: Literal["vendor", "emulated"]
    vendor: Literal["intel", "amd", "nvidia"]
    certificate: x509.Certificate
    product: str | None = None
    intermediates: tuple[x509.Certificate, ...] = ()
    _keys: dict = field(init=False, compare=False, hash=False, repr=False)
    _ref: AnchorRef | None = field(init=False, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        keys = {}
        for cert in (self.certificate, *self.intermediates):
            try:
                keys[cert] = cert.public_key()
            except Exception:  # noqa: BLE001 - an unusable key is reported when it is used
                pass
        object.__setattr__(self, "_keys", keys)
        object.__setattr__(self, "_ref", None)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.certificate.public_bytes(Encoding.DER)).hexdigest()

    def ref(self) -> AnchorRef:
        ref = self._ref
        if ref is None:
            ref = AnchorRef(kind=self.kind, name=self.name, sha256=self.sha256)
            object.__setattr__(self, "_ref", ref)
        return ref

    def pins(self, cert: x509.Certificate, issuer: x509.Certificate) -> bool:
        """Whether `cert` is exactly a pinned intermediate and `issuer` exactly this root."""
        return (issuer is self.certificate or issuer == self.certificate) and cert in self.intermediates

    def key(self, cert: x509.Certificate):
        """The preloaded public key of the root or a pinned intermediate that is exactly `cert`."""
        return self._keys.get(cert)

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

    def nvidia(self, role: str) -> tuple[Anchor, ...]:
        """NVIDIA roots for `role`: "device-identity" (GPU chains) or "rim" (RIM signers)."""
        return tuple(a for a in self.anchors if a.vendor == "nvidia" and a.product == role)

    def match_root(self, cert: x509.Certificate, vendor: str) -> Anchor | None:
        """The configured anchor that is exactly `cert` (same DER), if any."""
        for anchor in self.anchors:
            if anchor.vendor == vendor and anchor.certificate == cert:   # DER equality
                return anchor
        return None

    def __add__(self, other: TrustAnchors) -> TrustAnchors:
        """Both sets; an anchor present in both (same name and certificate) appears once."""
        return TrustAnchors(self.anchors + tuple(a for a in other.anchors if a not in self.anchors))

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


# Intel's intermediates, pinned like AMD's ASK: the PCK Platform CA (the PCK Processor CA
# is not packaged; a chain through it is verified in full) and both issuances of the TCB
# Signing certificate (re-issued in 2025 with the same key and serial).
_INTEL_INTERMEDIATES = ("IntelSGXPCKPlatformCA.pem", "IntelSGXTCBSigning_2018-2025.pem",
                        "IntelSGXTCBSigning_2025-2032.pem")


def _pinned(root: x509.Certificate, path: str) -> x509.Certificate:
    """A packaged intermediate, checked once against its root (a bad file fails loudly)."""
    cert = x509.load_pem_x509_certificate(_read(path))
    try:
        cert.verify_directly_issued_by(root)
    except Exception as exc:  # noqa: BLE001 - packaging bug: wrong issuer, bad signature...
        raise RuntimeError(f"packaged intermediate {path} is not signed by its root: {exc}") from None
    return cert


def vendor_anchors() -> TrustAnchors:
    """The real Intel, AMD and NVIDIA roots shipped with Veil."""
    intel_root = x509.load_pem_x509_certificate(_read("intel/IntelSGXRootCA.pem"))
    intel_pinned = tuple(_pinned(intel_root, f"intel/{name}") for name in _INTEL_INTERMEDIATES)
    anchors = [Anchor(name="intel-sgx-root-ca", kind="vendor", vendor="intel", certificate=intel_root,
                      intermediates=intel_pinned)]
    for product in AMD_PRODUCTS:
        ask, ark = x509.load_pem_x509_certificates(_read(f"amd/ask_ark_{product.lower()}.pem"))
        asvk, ark2 = x509.load_pem_x509_certificates(_read(f"amd/asvk_ark_{product.lower()}_vlek.pem"))
        if ark != ark2:
            raise RuntimeError(f"packaged AMD roots for {product} disagree")  # packaging bug
        anchors.append(Anchor(name=f"amd-ark-{product.lower()}", kind="vendor", vendor="amd",
                              product=product, certificate=ark, intermediates=(ask, asvk)))
    anchors.extend(_nvidia_anchors())
    return TrustAnchors(tuple(anchors))


# NVIDIA's two roots (nvtrust verifier_device_root.pem / verifier_RIM_root.pem).
NVIDIA_DEVICE_IDENTITY = "device-identity"
NVIDIA_RIM = "rim"
_NVIDIA_ROOTS = (("nvidia-device-identity-ca", NVIDIA_DEVICE_IDENTITY, "nvidia/verifier_device_root.pem"),
                 ("nvidia-rim-root", NVIDIA_RIM, "nvidia/verifier_RIM_root.pem"))


def _nvidia_anchors() -> list[Anchor]:
    return [Anchor(name=name, kind="vendor", vendor="nvidia", product=role,
                   certificate=x509.load_pem_x509_certificate(_read(path)))
            for name, role, path in _NVIDIA_ROOTS]
