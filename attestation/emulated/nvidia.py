"""The emulated NVIDIA vendor: device-identity and RIM roots, GPUs and signed RIMs.

Layout under the emulated vendor directory (directories 0700, keys 0600):

    nvidia/device_root.{pem,key}  nvidia/identity.{pem,key}  nvidia/provisioner.{pem,key}
    nvidia/brom.{pem,key}         nvidia/rim_root.{pem,key}  nvidia/rim_ca.{pem,key}
    nvidia/rim_signer.{pem,key}

The hierarchy has the real shape (device root → GH100 Identity → Provisioner
ICA → GSP BROM → per-GPU GSP FMC LF leaf with a DICE FWID; RIM root → CA →
RIM signer), ECDSA P-384 throughout, every name carrying O="Veil Emulated
Vendor". GPU leaf keys, measurements and FWIDs derive from the vendor seed, so
a GPU is the same GPU across runs. Generated on first use like AMD products.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import shutil
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from ..anchors import Anchor, TrustAnchors
from ..collateral.nvidia import NoCpuCollateral
from ..nvidia.evidence import GpuEvidence
from . import pki
from .nvidia_build import GpuReportSpec, build_report, build_rim, dice_tcb_info
from .store import atomic_write, make_private_dir, read_cert, read_key, write_cert, write_key

CURVE = ec.SECP384R1()
_P384_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973
_HIERARCHY = (  # name, common name, issuer name (None: self-signed), CA
    ("device_root", "NVIDIA Device Identity CA", None, True),
    ("identity", "NVIDIA GH100 Identity", "device_root", True),
    ("provisioner", "NVIDIA GH100 Provisioner ICA 1", "identity", True),
    ("brom", "GH100 A01 GSP BROM", "provisioner", True),
    ("rim_root", "NVIDIA CoRIM signing Root CA", None, True),
    ("rim_ca", "NVIDIA Reference Value GH100 CA", "rim_root", True),
    ("rim_signer", "HCC RIM L4 Signer", "rim_ca", False),
)
TOTAL_MEASUREMENTS = 64
VBIOS_ACTIVE = tuple(range(0, 12))
DRIVER_ACTIVE = tuple(range(12, 33))
NOTE = b"Veil emulated NVIDIA roots. NOT NVIDIA's: evidence chaining to them proves nothing.\n"


def nvidia_name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, pki.EMULATED_ORG),
                      x509.NameAttribute(NameOID.COUNTRY_NAME, "US")])


def _generate_into(directory: Path) -> None:
    made: dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]] = {}
    for name, cn, issuer, ca in _HIERARCHY:
        key = ec.generate_private_key(CURVE)
        issuer_cert, issuer_key = made[issuer] if issuer else (None, key)
        cert = pki.issue(subject=nvidia_name(cn), public_key=key.public_key(),
                         issuer=issuer_cert.subject if issuer_cert else nvidia_name(cn),
                         issuer_key=issuer_key, ca=ca)
        made[name] = (cert, key)
        write_key(directory / f"{name}.key", key)
        write_cert(directory / f"{name}.pem", cert)


def _load_or_generate(directory: Path) -> dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]]:
    if not directory.is_dir():
        make_private_dir(directory.parent)
        staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".nvidia."))
        try:
            _generate_into(staging)
            os.rename(staging, directory)
        except OSError:
            if not directory.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return {name: (read_cert(directory / f"{name}.pem"), read_key(directory / f"{name}.key"))
            for name, *_ in _HIERARCHY}


class EmulatedNvidia:
    """Emulated GPUs and RIMs under the emulated NVIDIA roots."""

    def __init__(self, directory: Path, seed: bytes) -> None:
        self._keys = _load_or_generate(Path(directory))
        self._seed = seed
        self._leaves: dict[int, tuple[ec.EllipticCurvePrivateKey, x509.Certificate]] = {}

    def _derive(self, label: bytes, size: int = 48) -> bytes:
        return hmac.new(self._seed, b"nvidia/" + label, hashlib.sha512).digest()[:size]

    # ---------------------------------------------------------------- anchors

    def anchors(self) -> TrustAnchors:
        return TrustAnchors((
            Anchor(name="emulated-nvidia-device-identity", kind="emulated", vendor="nvidia",
                   product="device-identity", certificate=self._keys["device_root"][0]),
            Anchor(name="emulated-nvidia-rim-root", kind="emulated", vendor="nvidia", product="rim",
                   certificate=self._keys["rim_root"][0])))

    # ---------------------------------------------------------------- GPUs

    def fwid(self, gpu: int = 0) -> bytes:
        return self._derive(b"fwid/%d" % gpu)

    def measurements(self, gpu: int = 0) -> dict[int, bytes]:
        """SPDM index → value of an emulated GPU running the default firmware (same on every GPU)."""
        return {i + 1: self._derive(b"measurement/%d" % i) for i in range(TOTAL_MEASUREMENTS)}

    def _leaf(self, gpu: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        if gpu not in self._leaves:
            scalar = int.from_bytes(self._derive(b"leaf/%d" % gpu, 64), "big") % (_P384_ORDER - 1) + 1
            key = ec.derive_private_key(scalar, CURVE)
            brom, brom_key = self._keys["brom"]
            cert = pki.issue(subject=nvidia_name("GH100 A01 GSP FMC LF"), public_key=key.public_key(),
                             issuer=brom.subject, issuer_key=brom_key, ca=False,
                             extensions=[dice_tcb_info(self.fwid(gpu))])
            self._leaves[gpu] = (key, cert)
        return self._leaves[gpu]

    def chain_pem(self, gpu: int = 0) -> bytes:
        """Leaf → BROM → Provisioner → Identity → root, PEM, as NVML returns it."""
        return b"".join(c.public_bytes(Encoding.PEM) for c in self.chain(gpu))

    def report(self, nonce: bytes, *, gpu: int = 0, **spec) -> bytes:
        """A signed SPDM report; `spec` takes GpuReportSpec fields (driver_version, measurements, …)."""
        if len(nonce) != 32:
            raise ValueError("an SPDM nonce is 32 bytes")
        spec.setdefault("measurements", self.measurements(gpu))
        spec.setdefault("fwid", self.fwid(gpu))
        spec.setdefault("responder_nonce", self._derive(b"responder/" + nonce, 32))
        return build_report(GpuReportSpec(nonce=nonce, **spec), self._leaf(gpu)[0])

    def evidence(self, nonce: bytes, *, gpu: int = 0, cc_mode: str | None = "on", **spec) -> GpuEvidence:
        return GpuEvidence(report=self.report(nonce, gpu=gpu, **spec), certificates=self.chain_pem(gpu),
                           arch="hopper", uuid=f"GPU-emulated-{gpu}", cc_mode=cc_mode)

    # ---------------------------------------------------------------- OCSP

    def chain(self, gpu: int = 0) -> tuple[x509.Certificate, ...]:
        """Leaf → BROM → Provisioner → Identity → root."""
        return (self._leaf(gpu)[1], *(self._keys[n][0] for n in ("brom", "provisioner", "identity", "device_root")))

    def ocsp(self, cert: x509.Certificate, *, at: dt.datetime, revoked: bool = False,
             validity: dt.timedelta = dt.timedelta(days=7)) -> bytes:
        """A DER OCSP response about `cert` (a CA of the device chain), signed by its issuer's key."""
        issuer_name = next((n for n, (c, _) in self._keys.items() if c.subject == cert.issuer), None)
        if issuer_name is None:
            raise ValueError(f"'{cert.subject.rfc4514_string()}' was not issued by an emulated NVIDIA CA")
        issuer, key = self._keys[issuer_name]
        if revoked:
            status, when, reason = ocsp.OCSPCertStatus.REVOKED, at - dt.timedelta(days=1), x509.ReasonFlags.key_compromise
        else:
            status, when, reason = ocsp.OCSPCertStatus.GOOD, None, None
        builder = (ocsp.OCSPResponseBuilder()
                   .add_response(cert=cert, issuer=issuer, algorithm=hashes.SHA384(), cert_status=status,
                                 this_update=at - dt.timedelta(hours=1), next_update=at + validity,
                                 revocation_time=when, revocation_reason=reason)
                   .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer))
        return builder.sign(key, hashes.SHA384()).public_bytes(Encoding.DER)

    def add_collateral(self, writer, *, at: dt.datetime, gpu: int = 0, revoked: tuple[str, ...] = ()) -> None:
        """Stage the default RIMs and the device chain's OCSP answers in a BundleWriter.

        `revoked` names certificates (brom, provisioner, identity, rim_signer, rim_ca) to report as revoked."""
        from ..collateral.nvidia import add_ocsp, add_rim
        for rim_id, xml in self.rims().items():
            add_rim(writer, rim_id, xml)
        device = ("brom", "provisioner", "identity", "device_root")      # the GPU leaf is not checked
        for chain in (device, ("rim_signer", "rim_ca", "rim_root")):
            for name, issuer in zip(chain, chain[1:]):
                cert = self._keys[name][0]
                add_ocsp(writer, cert, self._keys[issuer][0], self.ocsp(cert, at=at, revoked=name in revoked))

    # ---------------------------------------------------------------- RIMs

    def _sign_rim(self, version: str, active: tuple[int, ...], measurements: dict[int, bytes] | None) -> bytes:
        values = measurements or self.measurements()
        golden = {i: (values[i + 1],) for i in active}
        signer, signer_key = self._keys["rim_signer"]
        chain = (signer, self._keys["rim_ca"][0], self._keys["rim_root"][0])
        return build_rim(version=version, product="GH100", golden=golden, total=TOTAL_MEASUREMENTS,
                         key=signer_key, chain=chain)

    def driver_rim(self, version: str = "550.90.07", *, measurements: dict[int, bytes] | None = None) -> bytes:
        return self._sign_rim(version, DRIVER_ACTIVE, measurements)

    def vbios_rim(self, version: str = "96.00.9f.00.01", *,
                  measurements: dict[int, bytes] | None = None) -> bytes:
        return self._sign_rim(version.upper(), VBIOS_ACTIVE, measurements)

    def rims(self, driver_version: str = "550.90.07", vbios_version: str = "96.00.9f.00.01",
             project: str = "1010", project_sku: str = "0200", chip_sku: str = "882") -> dict[str, bytes]:
        """RIM id → signed swidtag, for the driver and VBIOS an emulated GPU reports by default."""
        vbios_id = f"NV_GPU_VBIOS_{project}_{project_sku}_{chip_sku}_{vbios_version.replace('.', '')}".upper()
        return {f"NV_GPU_DRIVER_GH100_{driver_version}": self.driver_rim(driver_version),
                vbios_id: self.vbios_rim(vbios_version)}


class EmulatedRims(NoCpuCollateral):
    """An NvidiaCollateral serving RIMs from memory (tests and `veil attest emulate gpu`)."""

    def __init__(self, rims: dict[str, bytes]) -> None:
        self.rims = dict(rims)

    def nvidia_rim(self, rim_id: str) -> bytes:
        from ..collateral.nvidia import NoNvidiaCollateral
        if rim_id in self.rims:
            return self.rims[rim_id]
        return NoNvidiaCollateral().nvidia_rim(rim_id)

    def nvidia_ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        from ..collateral.nvidia import NoNvidiaCollateral
        return NoNvidiaCollateral().nvidia_ocsp(cert, issuer)


def write_nvidia_anchors(anchors: TrustAnchors, directory: Path) -> Path:
    """Export the emulated NVIDIA roots (certificates only) beside the other exported anchors."""
    target = Path(directory) / "nvidia"
    target.mkdir(parents=True, exist_ok=True)
    atomic_write(target / "EMULATED", NOTE, 0o644)
    for anchor in anchors.anchors:
        if anchor.vendor == "nvidia" and anchor.kind == "emulated":
            atomic_write(target / f"{anchor.product}.pem", anchor.certificate.public_bytes(Encoding.PEM), 0o644)
    return Path(directory)


def load_nvidia_anchors(directory: str | Path) -> TrustAnchors:
    """Read roots written by `write_nvidia_anchors` (kind="emulated"); empty when there are none."""
    target = Path(directory) / "nvidia"
    anchors = []
    for role, name in (("device-identity", "emulated-nvidia-device-identity"), ("rim", "emulated-nvidia-rim-root")):
        path = target / f"{role}.pem"
        if (target / "EMULATED").exists() and path.exists():
            anchors.append(Anchor(name=name, kind="emulated", vendor="nvidia", product=role,
                                  certificate=x509.load_pem_x509_certificate(path.read_bytes())))
    return TrustAnchors(tuple(anchors))
