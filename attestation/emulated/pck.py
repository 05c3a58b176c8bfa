"""The emulated TDX platform and its PCK leaf certificate with the SGX extension.

The SGX extension (OID 1.2.840.113741.1.13.1) is a SEQUENCE of (OID, value)
pairs, encoded exactly as Intel's PCK certificates encode it: PPID, TCB
(16 component SVNs, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type, platform
instance ID and configuration flags.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from . import der
from .pki import INTEL_PCK_CN, intel_name, issue, new_ec_key

SGX_EXTENSION_OID = "1.2.840.113741.1.13.1"
DEFAULT_FMSPC = "90c06f000000"
DEFAULT_SGX_COMPONENTS = (2, 2, 2, 2, 3, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0)
DEFAULT_PCE_SVN = 11
DEFAULT_PCE_ID = "0000"
SGX_TYPE_SCALABLE = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TdxPlatform:
    """The identity and TCB a PCK certificate states for one emulated platform."""

    fmspc: str = DEFAULT_FMSPC
    pce_id: str = DEFAULT_PCE_ID
    pce_svn: int = DEFAULT_PCE_SVN
    sgx_components: tuple[int, ...] = DEFAULT_SGX_COMPONENTS
    ppid: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    def __post_init__(self) -> None:
        if len(bytes.fromhex(self.fmspc)) != 6:
            raise ValueError("fmspc must be 6 bytes of hex")
        if len(bytes.fromhex(self.pce_id)) != 2:
            raise ValueError("pce_id must be 2 bytes of hex")
        if len(self.sgx_components) != 16 or not all(0 <= c <= 255 for c in self.sgx_components):
            raise ValueError("sgx_components must be 16 values 0..255")

    @property
    def cpusvn(self) -> bytes:
        """CPUSVN: the 16 component SVNs as bytes (as in Intel's PCK certificates)."""
        return bytes(self.sgx_components)


def _pair(suffix: str, value: bytes) -> bytes:
    return der.sequence(der.oid(f"{SGX_EXTENSION_OID}.{suffix}"), value)


def sgx_extension_der(platform: TdxPlatform) -> bytes:
    """DER of the SGX extension value for `platform`."""
    tcb = [_pair(f"2.{i + 1}", der.integer(svn)) for i, svn in enumerate(platform.sgx_components)]
    tcb.append(_pair("2.17", der.integer(platform.pce_svn)))
    tcb.append(_pair("2.18", der.octet_string(platform.cpusvn)))
    config = der.sequence(*(_pair(f"7.{i}", der.boolean(True)) for i in (1, 2, 3)))
    return der.sequence(
        _pair("1", der.octet_string(platform.ppid)),
        _pair("2", der.sequence(*tcb)),
        _pair("3", der.octet_string(bytes.fromhex(platform.pce_id))),
        _pair("4", der.octet_string(bytes.fromhex(platform.fmspc))),
        _pair("5", der.enumerated(SGX_TYPE_SCALABLE)),
        _pair("6", der.octet_string(secrets.token_bytes(16))),
        _pair("7", config),
    )


def pck_certificate(platform: TdxPlatform, ca: x509.Certificate,
                    ca_key: ec.EllipticCurvePrivateKey
                    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A fresh PCK key and its leaf certificate, issued by the emulated PCK Platform CA."""
    key = new_ec_key()
    extension = x509.UnrecognizedExtension(x509.ObjectIdentifier(SGX_EXTENSION_OID),
                                           sgx_extension_der(platform))
    cert = issue(subject=intel_name(INTEL_PCK_CN), public_key=key.public_key(),
                 issuer=ca.subject, issuer_key=ca_key, ca=False, extensions=[extension])
    return key, cert
