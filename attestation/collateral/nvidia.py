"""NVIDIA collateral: RIMs (reference integrity manifests) and OCSP responses.

Like the Intel and AMD items, these are raw, unverified bytes; the NVIDIA
verifier checks every RIM signature, certificate chain and OCSP signature.

* `NvidiaCollateral` is the interface: `nvidia_rim(rim_id)` returns the RIM
  swidtag XML; `nvidia_ocsp(cert, issuer)` a DER OCSP response for `cert`.
* `LocalRims` serves swidtag files given on the command line (`--rim DIR`).
* `BundleNvidia` serves items "nvidia.rim" (keys {"id"}) and "nvidia.ocsp"
  (keys {"serial", "issuer"}) of an offline bundle; `add_rim` / `add_ocsp`
  put them there.
* `nvidia_collateral(source)` finds NVIDIA items behind any CollateralSource
  (a chain, a bundle, or an object that implements the interface itself).
* The online RIM service and OCSP responder live in `nvidia_online`.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import CollateralError
from .chain import first_answer
from .manifest import MAX_ITEM_BYTES

RIM_ID = re.compile(r"^NV_GPU_(?:CC_)?(DRIVER|VBIOS)_([A-Za-z0-9_.\-]{1,96})$")


def rim_hint(rim_id: str) -> str:
    return (f"run `veil attest collateral fetch --rim {rim_id} --out DIR` on a connected machine and "
            f"pass --collateral DIR, or copy the {rim_id} swidtag into a directory and pass --rim DIR")


def ocsp_hint(subject: str) -> str:
    return (f"fetch the OCSP response for '{subject}' on a connected machine into the offline bundle, "
            "drop --offline to ask NVIDIA's OCSP responder, or pass --no-revocation (not recommended)")


def rim_keys(rim_id: str) -> dict[str, str]:
    return {"id": rim_id}


def issuer_key_id(issuer: x509.Certificate) -> str:
    """SHA-256 of the issuer's SubjectPublicKeyInfo (keys an OCSP item with the serial)."""
    spki = issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def ocsp_keys(cert: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    return {"serial": f"{cert.serial_number:x}", "issuer": issuer_key_id(issuer)}


def describe_cert(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


@runtime_checkable
class NvidiaCollateral(Protocol):
    """Where the NVIDIA verifier gets RIMs and OCSP responses."""

    def nvidia_rim(self, rim_id: str) -> bytes:
        """The RIM swidtag (XML bytes) with this id, e.g. NV_GPU_DRIVER_GH100_550.90.07."""
        ...

    def nvidia_ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        """A DER OCSP response about `cert` (issued by `issuer`)."""
        ...


class NoNvidiaCollateral:
    """Nothing configured: every item is missing, with a hint."""

    def nvidia_rim(self, rim_id: str) -> bytes:
        raise CollateralError(f"NVIDIA RIM {rim_id}", "not provided", hint=rim_hint(rim_id))

    def nvidia_ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        raise CollateralError(f"NVIDIA OCSP response for '{describe_cert(cert)}'", "not provided",
                              hint=ocsp_hint(describe_cert(cert)))


@dataclass(frozen=True, slots=True)
class ChainedNvidia:
    """Ask each source in turn; the first that has the item wins."""

    sources: tuple[NvidiaCollateral, ...]

    def _first(self, call):
        return first_answer(self.sources, call, "NVIDIA collateral")

    def nvidia_rim(self, rim_id: str) -> bytes:
        return self._first(lambda s: s.nvidia_rim(rim_id))

    def nvidia_ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        return self._first(lambda s: s.nvidia_ocsp(cert, issuer))


def split_rim_id(rim_id: str) -> tuple[str, str]:
    """("driver" | "vbios", the version part) of a RIM id."""
    match = RIM_ID.match(rim_id)
    if not match:
        raise CollateralError(f"NVIDIA RIM {rim_id!r}", "is not a RIM id (NV_GPU_DRIVER_… / NV_GPU_VBIOS_…)")
    return match.group(1).lower(), match.group(2)


class NoCpuCollateral:
    """CollateralSource methods for NVIDIA-only sources, so they can sit in a ChainedCollateral."""

    def tdx(self, fmspc: str, ca: str):
        raise CollateralError(f"TDX collateral for FMSPC {fmspc}", "is not served by an NVIDIA RIM source")

    def snp_endorsement(self, product: str, signer: str, chip_id: bytes, tcb) -> bytes:
        raise CollateralError(f"{signer.upper()} for {product}", "is not served by an NVIDIA RIM source")

    def snp_crl(self, product: str, signer: str) -> bytes:
        raise CollateralError(f"CRL for the AMD {product} {signer.upper()} hierarchy",
                              "is not served by an NVIDIA RIM source")


class LocalRims(NoCpuCollateral):
    """RIM swidtag files from directories or files (`--rim`), matched to RIM ids by content.

    A driver RIM matches when its colloquialVersion is the id's version; a VBIOS
    RIM when its colloquialVersion without dots is the id's version suffix and,
    if several files qualify, its file name contains the project/SKU part of the id.
    """

    def __init__(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        self._files: list[Path] = []
        for path in map(Path, paths):
            if path.is_dir():
                self._files.extend(sorted(p for p in path.iterdir() if p.is_file()
                                          and p.suffix.lower() in (".swidtag", ".xml")))
            else:
                self._files.append(path)
        self._versions: dict[Path, str | None] = {}

    def _version(self, path: Path) -> str | None:
        if path not in self._versions:
            from ..nvidia.rim import peek_version      # parse only; signatures are checked later
            try:
                self._versions[path] = peek_version(_read_limited(path))
            except Exception:  # noqa: BLE001 - an unreadable file simply matches nothing
                self._versions[path] = None
        return self._versions[path]

    def nvidia_rim(self, rim_id: str) -> bytes:
        kind, wanted = split_rim_id(rim_id)
        matches = [p for p in self._files if _version_matches(kind, wanted, self._version(p))]
        if kind == "vbios" and len(matches) > 1:
            prefix = wanted.rsplit("_", 1)[0].upper()
            matches = [p for p in matches if prefix in p.name.upper()] or matches
        if not matches:
            raise CollateralError(f"NVIDIA RIM {rim_id}",
                                  f"is not among the {len(self._files)} RIM file(s) given with --rim",
                                  hint=rim_hint(rim_id))
        contents = {_read_limited(p) for p in matches}
        if len(contents) > 1:
            names = ", ".join(p.name for p in matches)
            raise CollateralError(f"NVIDIA RIM {rim_id}", f"several different files match: {names}",
                                  hint="pass only the RIM you mean with --rim FILE")
        return contents.pop()

    def nvidia_ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        return NoNvidiaCollateral().nvidia_ocsp(cert, issuer)


def _version_matches(kind: str, wanted: str, version: str | None) -> bool:
    if version is None:
        return False
    dotted = version.count(".") == 4
    if kind == "driver":
        return not dotted and wanted.split("_")[-1].lower() == version.lower()
    return dotted and wanted.split("_")[-1].upper() == version.replace(".", "").upper()


def _read_limited(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_ITEM_BYTES + 1)
    except OSError as exc:
        raise CollateralError(f"RIM file {path}", f"cannot be read: {exc.strerror}") from None
    if len(data) > MAX_ITEM_BYTES:
        raise CollateralError(f"RIM file {path}", f"is larger than {MAX_ITEM_BYTES} bytes")
    return data


class BundleNvidia:
    """The NVIDIA items of an offline bundle."""

    def __init__(self, bundle) -> None:            # an OfflineBundle
        self.bundle = bundle

    def nvidia_rim(self, rim_id: str) -> bytes:
        return self.bundle.read("nvidia.rim", rim_keys(rim_id), hint=rim_hint(rim_id))

    def nvidia_ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
        return self.bundle.read("nvidia.ocsp", ocsp_keys(cert, issuer), hint=ocsp_hint(describe_cert(cert)))


def add_rim(writer, rim_id: str, xml: bytes):
    """Stage a RIM in a BundleWriter (window: the signer certificate's validity, if readable)."""
    split_rim_id(rim_id)
    from ..nvidia.rim import signer_window
    window = signer_window(xml)
    return writer.add_item("nvidia.rim", rim_keys(rim_id), xml, not_before=window and window[0],
                           not_after=window and window[1])


def add_ocsp(writer, cert: x509.Certificate, issuer: x509.Certificate, der: bytes):
    """Stage a DER OCSP response in a BundleWriter (window: thisUpdate .. nextUpdate)."""
    from cryptography.x509 import ocsp
    response = ocsp.load_der_ocsp_response(der)
    not_before = not_after = None
    if response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
        not_before, not_after = response.this_update_utc, response.next_update_utc
    return writer.add_item("nvidia.ocsp", ocsp_keys(cert, issuer), der, not_before=not_before,
                           not_after=not_after)


def nvidia_collateral(source: object) -> NvidiaCollateral:
    """The NVIDIA view of a CollateralSource: the source itself, its bundles, or nothing."""
    from .bundle import OfflineBundle
    from . import ChainedCollateral
    if isinstance(source, NvidiaCollateral):
        return source
    if isinstance(source, OfflineBundle):
        return BundleNvidia(source)
    if isinstance(source, ChainedCollateral):
        parts = tuple(nvidia_collateral(s) for s in source.sources)
        parts = tuple(p for p in parts if not isinstance(p, NoNvidiaCollateral))
        return ChainedNvidia(parts) if parts else NoNvidiaCollateral()
    inner = getattr(source, "nvidia", None)        # e.g. OnlineCollateral with an NVIDIA service attached
    if isinstance(inner, NvidiaCollateral):
        return inner
    return NoNvidiaCollateral()
