"""Generate, persist and load the emulated Intel and AMD certificate hierarchies.

Layout under the vendor directory (all directories 0700, keys 0600):

    intel/root_ca.{pem,key}  intel/pck_platform_ca.{pem,key}  intel/tcb_signing.{pem,key}
    amd/<Product>/ark.{pem,key}  amd/<Product>/ask.{pem,key}  amd/<Product>/asvk.{pem,key}

An AMD product is generated on first use (three RSA-4096 keys take seconds)
into a temporary sibling directory that is renamed into place, so concurrent
generators never mix keys of two different runs: the loser loads the winner's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from . import pki
from .store import make_private_dir, read_cert, read_key, write_cert, write_key
from .tdx_collateral import IntelKeys


@dataclass(frozen=True, slots=True)
class AmdKeys:
    """One product's emulated ARK, ASK (VCEK issuer) and ASVK (VLEK issuer)."""

    product: str
    ark: x509.Certificate
    ark_key: rsa.RSAPrivateKey
    ask: x509.Certificate
    ask_key: rsa.RSAPrivateKey
    asvk: x509.Certificate
    asvk_key: rsa.RSAPrivateKey

    def issuer(self, signer: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        return (self.ask, self.ask_key) if signer == "vcek" else (self.asvk, self.asvk_key)


def _save(directory: Path, name: str, cert: x509.Certificate, key) -> None:
    write_key(directory / f"{name}.key", key)
    write_cert(directory / f"{name}.pem", cert)


def _load(directory: Path, name: str):
    return read_cert(directory / f"{name}.pem"), read_key(directory / f"{name}.key")


def generate_intel(directory: Path) -> IntelKeys:
    """Create the emulated Intel hierarchy (ECDSA P-256) in `directory`."""
    make_private_dir(directory)
    root_key, ca_key, tcb_key = pki.new_ec_key(), pki.new_ec_key(), pki.new_ec_key()
    root = pki.intel_root(root_key)
    keys = IntelKeys(root=root, root_key=root_key,
                     pck_ca=pki.intel_ca(ca_key, root, root_key), pck_ca_key=ca_key,
                     tcb_signing=pki.intel_tcb_signing(tcb_key, root, root_key),
                     tcb_signing_key=tcb_key)
    _save(directory, "root_ca", keys.root, keys.root_key)
    _save(directory, "pck_platform_ca", keys.pck_ca, keys.pck_ca_key)
    _save(directory, "tcb_signing", keys.tcb_signing, keys.tcb_signing_key)
    return keys


def load_intel(directory: Path) -> IntelKeys:
    root, root_key = _load(directory, "root_ca")
    pck_ca, pck_ca_key = _load(directory, "pck_platform_ca")
    tcb, tcb_key = _load(directory, "tcb_signing")
    return IntelKeys(root=root, root_key=root_key, pck_ca=pck_ca, pck_ca_key=pck_ca_key,
                     tcb_signing=tcb, tcb_signing_key=tcb_key)


def _generate_amd_into(directory: Path, product: str) -> None:
    ark_key, ask_key, asvk_key = pki.new_rsa_key(), pki.new_rsa_key(), pki.new_rsa_key()
    ark = pki.amd_ark(ark_key, product)
    ask = pki.amd_intermediate(ask_key, f"SEV-{product}", "vcek", product, ark, ark_key)
    asvk = pki.amd_intermediate(asvk_key, f"SEV-VLEK-{product}", "vlek", product, ark, ark_key)
    _save(directory, "ark", ark, ark_key)
    _save(directory, "ask", ask, ask_key)
    _save(directory, "asvk", asvk, asvk_key)


def load_amd(directory: Path, product: str) -> AmdKeys:
    ark, ark_key = _load(directory, "ark")
    ask, ask_key = _load(directory, "ask")
    asvk, asvk_key = _load(directory, "asvk")
    return AmdKeys(product, ark, ark_key, ask, ask_key, asvk, asvk_key)


def amd_hierarchy(amd_dir: Path, product: str) -> AmdKeys:
    """Load the product's hierarchy, generating and persisting it first if absent."""
    target = amd_dir / product
    if not target.is_dir():
        make_private_dir(amd_dir)
        staging = Path(tempfile.mkdtemp(dir=amd_dir, prefix=f".{product}."))
        try:
            _generate_amd_into(staging, product)
            os.rename(staging, target)
        except OSError:
            if not target.is_dir():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return load_amd(target, product)
