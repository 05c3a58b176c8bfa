"""Offline collateral bundles for air-gapped sites: Intel, AMD and NVIDIA alike.

A bundle is a directory: `manifest.json` (see `manifest`) plus one file per
item, stored by content (`<vendor>/<sha256><ext>`), so a chain or CRL shared
by many items is stored once. `fetch_bundle` builds one on a connected
machine; `OfflineBundle` serves it to verifiers as a CollateralSource.

The bundle never decides validity: verifiers check signatures and dates. It
checks that every file is the one the manifest lists (SHA-256 and size), that
paths stay inside the bundle, and it reports items outside their stated
window (`freshness`) for status listings. `BundleWriter` changes a bundle all
at once or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Literal

from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import CollateralError
from ..fsutil import atomic_write
from . import PckCa, SnpSigner, SnpTcbParts, TdxCollateral, snp_hint
from .amd import kds_chip_id, kds_product, kds_signer, kds_tcb_query
from .intel import fmspc_of, pck_crl_ca, pcs_body, split_pcs_body
from .manifest import (FORMAT, MANIFEST, MAX_ITEM_BYTES, MAX_MANIFEST_BYTES, VERSION, Item, Manifest,
                       check_relative_path, describe, item_key, parse_manifest)
from .windows import Window, cert_window, crl_window, format_utc, json_window, load_certs

Keys = dict[str, str]


def tdx_fetch_hint(fmspc: str) -> str:
    return (f"run `veil attest collateral fetch --fmspc {fmspc} --out DIR` on a connected machine "
            "and copy DIR here")


# --------------------------------------------------------------------------- item keys

def tdx_keys(fmspc: str, ca: PckCa) -> dict[str, tuple[str, Keys]]:
    """Kind and keys of each of the seven files that make up a TdxCollateral.

    Every item is keyed by FMSPC, so each set stays exactly as it was added or
    fetched (one coherent validity window); sets fetched together share files.
    """
    f = fmspc.lower()
    return {
        "tcb_info": ("tdx.tcb_info", {"fmspc": f}),
        "tcb_info_issuer_chain": ("tdx.issuer_chain", {"for": "tdx.tcb_info", "fmspc": f}),
        "qe_identity": ("tdx.qe_identity", {"fmspc": f}),
        "qe_identity_issuer_chain": ("tdx.issuer_chain", {"for": "tdx.qe_identity", "fmspc": f}),
        "pck_crl": ("tdx.pck_crl", {"fmspc": f, "ca": ca}),
        "pck_crl_issuer_chain": ("tdx.issuer_chain", {"for": "tdx.pck_crl", "fmspc": f, "ca": ca}),
        "root_ca_crl": ("tdx.root_ca_crl", {"fmspc": f}),
    }


def snp_endorsement_keys(product: str, signer: str, chip_id: bytes | None,
                         tcb: SnpTcbParts) -> tuple[str, Keys]:
    """VCEKs are per chip and TCB; a VLEK belongs to the cloud provider, so only product and TCB."""
    product, signer = kds_product(product), kds_signer(signer)
    keys = {"product": product, "tcb": kds_tcb_query(product, tcb)}
    if signer == "vcek":
        keys["chip_id"] = kds_chip_id(product, chip_id or b"")
    return f"snp.{signer}", keys


def snp_keys(product: str, signer: str) -> Keys:
    return {"product": kds_product(product), "signer": kds_signer(signer)}


# --------------------------------------------------------------------------- reading

@dataclass(frozen=True, slots=True)
class StaleItem:
    """An item whose own validity window does not contain the time asked about."""

    item: Item
    state: Literal["not yet valid", "expired"]

    def describe(self) -> str:
        window = f"{_fmt(self.item.not_before)} .. {_fmt(self.item.not_after)}"
        return f"{self.item.describe()}: {self.state} (valid {window})"


def _fmt(value: datetime | None) -> str:
    return format_utc(value) if value else "?"


class OfflineBundle:
    """A bundle directory as a CollateralSource. Every file is checked against the manifest when first read."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._where = str(self.path)
        manifest_file = self.path / MANIFEST
        if not manifest_file.is_file():
            raise CollateralError(f"offline bundle {self._where}", "has no manifest.json",
                                  hint="create one with `veil attest collateral fetch --out DIR` on a connected machine, "
                                       "or from collateral files with `veil attest collateral import`")
        if manifest_file.stat().st_size > MAX_MANIFEST_BYTES:
            raise CollateralError(f"offline bundle {self._where}",
                                  f"manifest.json is larger than {MAX_MANIFEST_BYTES} bytes")
        self.manifest: Manifest = parse_manifest(manifest_file.read_bytes(), self._where)
        self._index = {item.key: item for item in self.manifest.items}
        self._verified: dict[str, bytes] = {}     # item key → bytes that matched the manifest (read once)
        self._tdx: dict[tuple[str, PckCa], TdxCollateral] = {}

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(self.manifest.items)

    def find(self, kind: str, keys: Keys) -> Item | None:
        return self._index.get(item_key(kind, keys))

    def read(self, kind: str, keys: Keys, *, hint: str = "") -> bytes:
        """The item's bytes, after checking size and SHA-256 against the manifest."""
        item = self.find(kind, keys)
        if item is None:
            raise CollateralError(describe(kind, keys), f"is not in the offline bundle {self._where}",
                                  hint=hint or "add it with `veil attest collateral fetch --out DIR`")
        return self._read_item(item)

    def _read_item(self, item: Item) -> bytes:
        """Read and check an item once; later reads get the checked bytes (a broker reads per request)."""
        data = self._verified.get(item.key)
        if data is None:
            data = self._verified[item.key] = self._read_and_check(item)
        return data

    def _read_and_check(self, item: Item) -> bytes:
        what = f"{item.describe()} in the offline bundle {self._where}"
        file = self._resolve(item)
        try:
            with file.open("rb") as f:
                data = f.read(MAX_ITEM_BYTES + 1)
        except OSError as exc:
            raise CollateralError(what, f"cannot read {item.path}: {exc.strerror}",
                                  hint="copy the whole bundle directory again") from None
        if len(data) != item.size or hashlib.sha256(data).hexdigest() != item.sha256:
            raise CollateralError(what, f"{item.path} does not match the SHA-256 in manifest.json "
                                  "(modified or corrupted)", hint="copy or re-create the bundle")
        return data

    def _resolve(self, item: Item) -> Path:
        root = self.path.resolve()
        file = (root / check_relative_path(item.path)).resolve()
        if not file.is_relative_to(root) or file == root:
            raise CollateralError(f"offline bundle {self._where}",
                                  f"item path {item.path!r} leads outside the bundle")
        return file

    def freshness(self, at: datetime) -> tuple[StaleItem, ...]:
        """Items whose stated window does not contain `at` (for status listings; not a verdict)."""
        stale = []
        for item in self.manifest.items:
            if item.not_before is not None and at < item.not_before:
                stale.append(StaleItem(item, "not yet valid"))
            elif item.not_after is not None and at > item.not_after:
                stale.append(StaleItem(item, "expired"))
        return tuple(stale)

    # CollateralSource ------------------------------------------------------

    def tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral:
        """The platform's Intel collateral (assembled once per FMSPC and CA: the items never change)."""
        key = (fmspc.lower(), ca)
        if key not in self._tdx:
            self._tdx[key] = self._assemble_tdx(fmspc, ca)
        return self._tdx[key]

    def _assemble_tdx(self, fmspc: str, ca: PckCa) -> TdxCollateral:
        hint = tdx_fetch_hint(fmspc.lower())
        raw = {name: self.read(kind, keys, hint=hint) for name, (kind, keys) in tdx_keys(fmspc, ca).items()}
        tcb_info, tcb_sig = split_pcs_body(raw.pop("tcb_info"), "tcbInfo", structure="bundled TCB info")
        qe_id, qe_sig = split_pcs_body(raw.pop("qe_identity"), "enclaveIdentity",
                                       structure="bundled QE identity")
        return TdxCollateral(tcb_info=tcb_info, tcb_info_signature=tcb_sig, qe_identity=qe_id,
                             qe_identity_signature=qe_sig, **raw)

    def snp_endorsement(self, product: str, signer: SnpSigner, chip_id: bytes,
                        tcb: SnpTcbParts) -> bytes:
        kind, keys = snp_endorsement_keys(product, signer, chip_id, tcb)
        return self.read(kind, keys, hint=snp_hint(kds_product(product), signer))

    def snp_crl(self, product: str, signer: SnpSigner) -> bytes:
        return self.read("snp.crl", snp_keys(product, signer), hint=snp_hint(kds_product(product), signer))

    def snp_cert_chain(self, product: str, signer: SnpSigner) -> bytes:
        """ASK (or ASVK) then ARK, PEM. Verifiers still pin the ARK from their anchors."""
        return self.read("snp.cert_chain", snp_keys(product, signer),
                         hint=snp_hint(kds_product(product), signer))


# --------------------------------------------------------------------------- writing

_EXT = {"tdx.tcb_info": ".json", "tdx.qe_identity": ".json", "tdx.pck_crl": ".der",
        "tdx.root_ca_crl": ".der", "tdx.issuer_chain": ".pem", "snp.vcek": ".der", "snp.vlek": ".der",
        "snp.crl": ".der", "snp.cert_chain": ".pem", "nvidia.rim": ".xml", "nvidia.ocsp": ".der"}


class BundleWriter:
    """Add items to a new or existing bundle; `commit` makes them all visible at once.

    Use as a context manager: the bundle is committed when the block ends
    normally and left untouched when it raises. A new bundle is built in a
    temporary sibling directory and renamed into place; an existing one gets
    its new files first and its manifest replaced last (os.replace).
    """

    def __init__(self, path: str | os.PathLike[str], *,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.path = Path(path)
        self._now = now
        self._existing = (self.path / MANIFEST).exists()
        if self.path.exists() and not self.path.is_dir():
            raise CollateralError(f"offline bundle {self.path}", "exists and is not a directory")
        if not self._existing and self.path.exists() and any(self.path.iterdir()):
            raise CollateralError(f"offline bundle {self.path}", "directory exists, is not empty and "
                                  "has no manifest.json; refusing to write into it")
        old = OfflineBundle(self.path).manifest.items if self._existing else []
        self._items: dict[tuple, Item] = {item.key: item for item in old}
        self._staged: dict[str, bytes] = {}

    def __enter__(self) -> "BundleWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()

    def add_item(self, kind: str, keys: Keys, data: bytes, *, not_before: datetime | None = None,
                 not_after: datetime | None = None) -> Item:
        """Stage one item (replacing any with the same kind and keys)."""
        if len(data) > MAX_ITEM_BYTES:
            raise CollateralError(describe(kind, keys), f"is larger than {MAX_ITEM_BYTES} bytes")
        digest = hashlib.sha256(data).hexdigest()
        path = f"{kind.split('.', 1)[0]}/{digest}{_EXT.get(kind, '.bin')}"
        item = Item(kind=kind, keys=keys, path=path, sha256=digest, size=len(data),
                    not_before=not_before, not_after=not_after)
        self._items[item.key] = item
        self._staged[path] = data
        return item

    def _add(self, kind: str, keys: Keys, data: bytes, window: Window | None) -> Item:
        return self.add_item(kind, keys, data, not_before=window and window.not_before,
                             not_after=window and window.not_after)

    def add_tdx(self, c: TdxCollateral, *, ca: PckCa | None = None) -> list[Item]:
        """Stage a TDX collateral set; FMSPC from the TCB info, PCK CA from the CRL issuer."""
        keys = tdx_keys(fmspc_of(c), ca or pck_crl_ca(c.pck_crl))
        files = {
            "tcb_info": (pcs_body(c.tcb_info, c.tcb_info_signature, "tcbInfo"), json_window(c.tcb_info)),
            "qe_identity": (pcs_body(c.qe_identity, c.qe_identity_signature, "enclaveIdentity"),
                            json_window(c.qe_identity)),
            "pck_crl": (c.pck_crl, crl_window(c.pck_crl)),
            "root_ca_crl": (c.root_ca_crl, crl_window(c.root_ca_crl)),
        }
        for chain in ("tcb_info_issuer_chain", "qe_identity_issuer_chain", "pck_crl_issuer_chain"):
            files[chain] = (getattr(c, chain), cert_window(getattr(c, chain)))
        return [self._add(*keys[name], data, window) for name, (data, window) in files.items()]

    def add_snp_endorsement(self, product: str, signer: SnpSigner, chip_id: bytes | None,
                            tcb: SnpTcbParts, der: bytes) -> Item:
        der = load_certs(der)[0].public_bytes(Encoding.DER)
        kind, keys = snp_endorsement_keys(product, signer, chip_id, tcb)
        return self._add(kind, keys, der, cert_window(der))

    def add_snp_crl(self, product: str, signer: SnpSigner, der: bytes) -> Item:
        return self._add("snp.crl", snp_keys(product, signer), der, crl_window(der))

    def add_snp_cert_chain(self, product: str, signer: SnpSigner, pem: bytes) -> Item:
        return self._add("snp.cert_chain", snp_keys(product, signer), pem, cert_window(pem))

    def commit(self) -> Path:
        """Write staged files and the manifest; on any error the bundle is as it was."""
        manifest = Manifest(format=FORMAT, version=VERSION, created_at=self._now(),
                            items=sorted(self._items.values(), key=lambda i: i.key))
        text = _manifest_json(manifest)
        if self._existing:
            self._commit_in_place(manifest, text)
        else:
            self._commit_new(text)
        self._existing, self._staged = True, {}
        return self.path

    def _commit_new(self, manifest_text: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        try:
            for rel, data in self._staged.items():
                _write(tmp / rel, data)
            _write(tmp / MANIFEST, manifest_text)
            os.rename(tmp, self.path)     # replaces an empty directory, fails on a non-empty one
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _commit_in_place(self, manifest: Manifest, manifest_text: bytes) -> None:
        before = {item.path for item in OfflineBundle(self.path).manifest.items}
        written: list[Path] = []
        try:
            for rel, data in self._staged.items():
                target = self.path / rel
                if rel not in before:
                    written.append(target)
                _write(target, data)
            _write(self.path / MANIFEST, manifest_text)
        except BaseException:
            for target in written:
                target.unlink(missing_ok=True)
            raise
        keep = {item.path for item in manifest.items}
        for rel in before - keep:           # files no item refers to any more
            (self.path / rel).unlink(missing_ok=True)


def _manifest_json(manifest: Manifest) -> bytes:
    doc = manifest.model_dump(mode="json")
    doc["created_at"] = format_utc(manifest.created_at)
    for out, item in zip(doc["items"], manifest.items):
        out["not_before"] = item.not_before and format_utc(item.not_before)
        out["not_after"] = item.not_after and format_utc(item.not_after)
    return (json.dumps(doc, indent=2) + "\n").encode()


def _write(path: Path, data: bytes) -> None:
    atomic_write(path, data)
