"""The GPU device-identity certificate chain (NVIDIA nvtrust local GPU verifier).

Hopper: GH100 A01 GSP FMC LF (per-device leaf) → GH100 A01 GSP BROM →
NVIDIA GH100 Provisioner ICA 1 → NVIDIA GH100 Identity → NVIDIA Device
Identity CA. The GPU sends its root too; it is dropped and the chain must end
in a configured "device-identity" anchor instead (never the chain's own root).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from ..anchors import Anchor, TrustAnchors
from ..errors import ParseError, VerificationError
from ..x509util import check_validity, load_certificates, verify_issued_by

# TCG DICE FWID / TcbInfo extension OIDs carrying the firmware ID of the leaf.
DICE_TCB_INFO_OIDS = ("2.23.133.5.4.1", "2.23.133.5.4.1.1")
FWID_SIZE = 48
CHAIN_BELOW_ROOT = {"hopper": 4}


@dataclass(frozen=True, slots=True)
class DeviceChain:
    """Only `verify_device_chain` makes one: every link verified up to `anchor` at a time."""

    certificates: tuple[x509.Certificate, ...]   # leaf first, the anchor not included
    anchor: Anchor

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]


def load_chain(blob: bytes) -> tuple[x509.Certificate, ...]:
    """PEM certificates (leaf first) as NVML's GetConfComputeGpuCertificate returns them."""
    try:
        certs = load_certificates(blob)
    except ValueError as exc:
        raise ParseError("NVIDIA certificate chain", "PEM", None, f"is unreadable: {exc}") from None
    if not certs:
        raise ParseError("NVIDIA certificate chain", "PEM", None, "holds no certificate")
    return tuple(certs)


def verify_device_chain(certs: tuple[x509.Certificate, ...], anchors: TrustAnchors, at: datetime, *,
                        architecture: str = "hopper") -> DeviceChain:
    """Links, the pinned root, and validity at `at`. Raises VerificationError("nvidia.device_chain…")."""
    roots = anchors.nvidia("device-identity")
    if not roots:
        raise VerificationError("nvidia.device_chain", "no NVIDIA device identity root is configured")
    chain = tuple(c for c in certs if c.issuer != c.subject and not any(c == a.certificate for a in roots))
    expected = CHAIN_BELOW_ROOT.get(architecture)
    if expected is not None and len(chain) != expected:
        raise VerificationError("nvidia.device_chain", f"{_found(certs, chain)}; a {architecture} chain has "
                                f"{expected} certificates below the root", expected=str(expected),
                                actual=str(len(chain)))
    if not chain:
        raise VerificationError("nvidia.device_chain", "no device certificate below the root")
    for cert, issuer in zip(chain, chain[1:]):
        verify_issued_by(cert, issuer, check="nvidia.device_chain")
    anchor = _anchor_for(chain[-1], roots)
    for cert in (*chain, anchor.certificate):
        check_validity(cert, at, check="nvidia.device_chain_validity")
    return DeviceChain(chain, anchor)


def _plural(n: int) -> str:
    return f"{n} certificate" + ("" if n == 1 else "s")


def _found(certs: tuple[x509.Certificate, ...], below_root: tuple[x509.Certificate, ...]) -> str:
    """What the GPU sent: how many certificates, and how many of them sit below a root."""
    return f"found {_plural(len(certs))}, {len(below_root)} of them below the root"


def _anchor_for(top: x509.Certificate, roots: tuple[Anchor, ...]) -> Anchor:
    detail = "no root"
    for anchor in roots:
        try:
            verify_issued_by(top, anchor.certificate, check="nvidia.device_chain")
            return anchor
        except VerificationError as exc:
            detail = exc.detail
    raise VerificationError("nvidia.device_chain", "the chain does not end in a configured NVIDIA device "
                            f"identity root ({detail})", expected=", ".join(a.name for a in roots),
                            actual=top.issuer.rfc4514_string())


def leaf_fwid(leaf: x509.Certificate) -> bytes | None:
    """Hopper: the last 48 bytes of the DICE TcbInfo extension's value; None without one."""
    for oid in DICE_TCB_INFO_OIDS:
        try:
            ext = leaf.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid))
        except x509.ExtensionNotFound:
            continue
        value = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
        return value[-FWID_SIZE:] if len(value) >= FWID_SIZE else None
    return None


def check_fwid(chain: DeviceChain, opaque_fwid: bytes | None) -> str | None:
    """When the report carries an FWID, it must equal the leaf's (hex returned, else None)."""
    if opaque_fwid is None:
        return None
    cert_fwid = leaf_fwid(chain.leaf)
    if cert_fwid != opaque_fwid:
        raise VerificationError("nvidia.fwid", "the report's FWID differs from the device certificate's",
                                expected=cert_fwid.hex() if cert_fwid else "an FWID extension in the leaf",
                                actual=opaque_fwid.hex())
    return opaque_fwid.hex()
