"""Exported emulated trust anchors: public certificates only, in the packaged-roots layout.

    <dir>/EMULATED                      a note that these roots are not Intel's or AMD's
    <dir>/intel/root_ca.pem             emulated "Intel SGX Root CA"
    <dir>/amd/ask_ark_<product>.pem     ASK then ARK (like AMD KDS cert_chain)
    <dir>/amd/asvk_ark_<product>_vlek.pem
    <dir>/nvidia/{device-identity,rim}.pem  emulated NVIDIA device-identity and RIM roots

A broker or an auditor configures these with `load_anchors`; every Anchor it
returns has kind="emulated".
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..anchors import AMD_PRODUCTS, Anchor, TrustAnchors
from .store import CERT_MODE, atomic_write

NOTE = (b"Veil emulated vendor trust anchors. These roots are generated locally and are NOT\n"
        b"Intel's or AMD's. Evidence that chains to them proves nothing about real hardware.\n")


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def write_anchors(anchors: TrustAnchors, directory: Path) -> Path:
    """Write the public certificates of emulated `anchors` into `directory`."""
    if any(a.kind != "emulated" for a in anchors.anchors):
        raise ValueError("only emulated anchors are exported here")
    (directory / "intel").mkdir(parents=True, exist_ok=True)
    (directory / "amd").mkdir(parents=True, exist_ok=True)
    atomic_write(directory / "EMULATED", NOTE, CERT_MODE)
    for anchor in anchors.intel():
        atomic_write(directory / "intel" / "root_ca.pem", _pem(anchor.certificate), CERT_MODE)
    for product in AMD_PRODUCTS:
        for anchor in anchors.amd(product):
            ask, asvk = anchor.intermediates
            lower = product.lower()
            atomic_write(directory / "amd" / f"ask_ark_{lower}.pem",
                         _pem(ask, anchor.certificate), CERT_MODE)
            atomic_write(directory / "amd" / f"asvk_ark_{lower}_vlek.pem",
                         _pem(asvk, anchor.certificate), CERT_MODE)
    return directory


def load_anchors(directory: str | Path) -> TrustAnchors:
    """Read anchors written by `write_anchors` (kind="emulated")."""
    directory = Path(directory)
    if not (directory / "EMULATED").exists():
        raise FileNotFoundError(f"{directory} holds no exported emulated anchors")
    anchors = []
    intel = directory / "intel" / "root_ca.pem"
    if intel.exists():
        anchors.append(Anchor(name="emulated-intel", kind="emulated", vendor="intel",
                              certificate=x509.load_pem_x509_certificate(intel.read_bytes())))
    for product in AMD_PRODUCTS:
        lower = product.lower()
        vcek_chain = directory / "amd" / f"ask_ark_{lower}.pem"
        if not vcek_chain.exists():
            continue
        ask, ark = x509.load_pem_x509_certificates(vcek_chain.read_bytes())
        asvk, ark2 = x509.load_pem_x509_certificates(
            (directory / "amd" / f"asvk_ark_{lower}_vlek.pem").read_bytes())
        if ark != ark2:
            raise ValueError(f"exported ARKs for {product} disagree")
        anchors.append(Anchor(name=f"emulated-amd-{lower}", kind="emulated", vendor="amd",
                              product=product, certificate=ark, intermediates=(ask, asvk)))
    from .nvidia import load_nvidia_anchors
    return TrustAnchors(tuple(anchors)) + load_nvidia_anchors(directory)
