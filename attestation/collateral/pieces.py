"""Intel TDX collateral files as people have them, recognised by their content.

A site that cannot reach Intel's PCS usually holds loose files: PCS response
bodies (`{"tcbInfo":…,"signature":…}`, `{"enclaveIdentity":…}`), CRLs in
DER or PEM, the issuer chains as PEM (or still URL-encoded, as in the PCS
headers), and the nine-field JSON of dcap-qvl / PCCS clients. `read_piece`
tells which one a file is from its bytes alone (never from its name) and
reads the dates it states; `assemble` combines pieces into verifiable sets.
Nothing here decides validity: verifiers check every signature and date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import CollateralError, ParseError
from ..x509util import load_certificates, load_crl
from . import TdxCollateral
from .intel import issuer_chain, load_intel_collateral_json, split_pcs_body
from .windows import Window, cert_window, crl_window, json_window

PieceKind = Literal["tcb_info", "qe_identity", "pck_crl", "root_ca_crl", "tcb_signing_chain",
                    "pck_ca_chain", "collateral_json"]

LABELS: dict[str, str] = {
    "tcb_info": "TDX TCB info (PCS body)",
    "qe_identity": "QE identity (PCS body)",
    "pck_crl": "PCK CRL",
    "root_ca_crl": "Intel SGX root CA CRL",
    "tcb_signing_chain": "TCB signing issuer chain",
    "pck_ca_chain": "PCK CA issuer chain",
    "collateral_json": "nine-field collateral JSON",
}
MAX_PIECE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Piece:
    """One recognised file. `signed`/`signature` for TCB info and QE identity, `ca` for PCK CRLs and chains."""

    kind: PieceKind
    origin: str
    data: bytes
    window: Window
    fmspc: str | None = None
    ca: str | None = None
    signed: bytes = b""
    signature: bytes = b""
    full: TdxCollateral | None = None

    @property
    def label(self) -> str:
        return LABELS[self.kind]


def _bad(origin: str, why: str) -> CollateralError:
    return CollateralError(
        origin, why, hint="import takes Intel TCB info and QE identity JSON, CRLs, PEM issuer chains "
        "and nine-field collateral JSON")


def read_piece(origin: str, data: bytes) -> Piece:
    """Recognise one file by content. Raises CollateralError naming the file and what is wrong."""
    if len(data) > MAX_PIECE_BYTES:
        raise _bad(origin, f"is larger than {MAX_PIECE_BYTES} bytes")
    try:
        text = data.decode("ascii").lstrip()
    except UnicodeDecodeError:
        text = None
    try:
        if text is None:
            return _binary_piece(origin, data)
        if text.startswith("{"):
            return _json_piece(origin, data)
        if "CERTIFICATE-----" in text or "CERTIFICATE%2D%2D%2D%2D%2D" in text.upper():
            return _chain_piece(origin, data)
        if "-----BEGIN X509 CRL-----" in text:
            return _crl_piece(origin, data)
    except ParseError as exc:
        raise _bad(origin, exc.message) from None
    raise _bad(origin, "is text but neither JSON nor a PEM certificate chain or CRL")


def _binary_piece(origin: str, data: bytes) -> Piece:
    """Binary input: a DER CRL is collateral; a DER certificate or anything else is not."""
    if data[:1] == b"\x30":
        try:
            load_crl(data)
        except ValueError:
            pass
        else:
            return _crl_piece(origin, data)
        try:
            cert = x509.load_der_x509_certificate(data)
        except ValueError:
            pass
        else:
            raise _bad(origin, f"is a DER certificate ({_cn(cert.subject)!r}), not collateral; "
                       "give issuer chains as PEM files")
    raise _bad(origin, "is binary but not a DER CRL; a quote or report is evidence, not collateral")


def _json_piece(origin: str, data: bytes) -> Piece:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(origin, f"is not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise _bad(origin, "is a JSON value, not an object")
    if "tcbInfo" in doc:
        signed, signature = split_pcs_body(data, "tcbInfo", structure="Intel TCB info body")
        info = json.loads(signed)
        if info.get("id", "TDX") != "TDX":
            raise _bad(origin, f"is an {info.get('id')} TCB info; a TDX TCB info is needed")
        fmspc = info.get("fmspc")
        if not isinstance(fmspc, str) or len(fmspc) != 12:
            raise _bad(origin, "TCB info has no 12-digit fmspc")
        return Piece(kind="tcb_info", origin=origin, data=data, signed=signed, signature=signature,
                     fmspc=fmspc.lower(), window=json_window(signed, structure="TDX TCB info"))
    if "enclaveIdentity" in doc:
        signed, signature = split_pcs_body(data, "enclaveIdentity", structure="Intel QE identity body")
        return Piece(kind="qe_identity", origin=origin, data=data, signed=signed, signature=signature,
                     window=json_window(signed, structure="TD QE identity"))
    if "tcb_info" in doc or "qe_identity" in doc:
        full = load_intel_collateral_json(data)
        window = _combined((json_window(full.tcb_info), json_window(full.qe_identity),
                            crl_window(full.pck_crl), crl_window(full.root_ca_crl)))
        return Piece(kind="collateral_json", origin=origin, data=data, full=full, window=window,
                     fmspc=_fmspc(full.tcb_info), ca=crl_ca(full.pck_crl))
    raise _bad(origin, "is JSON but neither a TCB info, a QE identity nor the nine-field form "
               "(expected a tcbInfo, enclaveIdentity or tcb_info member)")


def _fmspc(tcb_info: bytes) -> str:
    fmspc = json.loads(tcb_info).get("fmspc")
    if not isinstance(fmspc, str) or len(fmspc) != 12:
        raise ParseError("TDX TCB info", "fmspc", None, "missing or not 6 bytes of hex")
    return fmspc.lower()


def _combined(windows) -> Window:
    windows = list(windows)
    return Window(max(w.not_before for w in windows), min(w.not_after for w in windows))


def _cn(name: x509.Name) -> str:
    return " ".join(str(a.value) for a in name.get_attributes_for_oid(x509.NameOID.COMMON_NAME))


def crl_ca(der: bytes) -> str:
    """"root", "platform" or "processor": who issued an Intel CRL, from its issuer CN."""
    cn = _cn(load_crl(der).issuer)
    for needle, role in (("Root CA", "root"), ("Processor", "processor"), ("Platform", "platform")):
        if needle in cn:
            return role
    raise ParseError("Intel CRL", "issuer", None, f"issuer CN {cn!r} is not an Intel SGX CA")


def _crl_piece(origin: str, data: bytes) -> Piece:
    try:
        crl = load_crl(data)
    except ValueError as exc:
        raise _bad(origin, f"is not a readable CRL ({exc})") from None
    der = crl.public_bytes(Encoding.DER)
    role = crl_ca(der)
    kind: PieceKind = "root_ca_crl" if role == "root" else "pck_crl"
    return Piece(kind=kind, origin=origin, data=der, ca=None if role == "root" else role,
                 window=crl_window(der))


def _chain_piece(origin: str, data: bytes) -> Piece:
    pem = issuer_chain(data)
    try:
        certs = load_certificates(pem)
    except ValueError as exc:
        raise _bad(origin, f"holds a PEM block that is not a certificate ({exc})") from None
    issued = [c for c in certs if c.subject != c.issuer] or certs
    cn = _cn(issued[0].subject)
    if "TCB Signing" in cn:
        return Piece(kind="tcb_signing_chain", origin=origin, data=pem, window=cert_window(pem))
    for needle, ca in (("PCK Processor CA", "processor"), ("PCK Platform CA", "platform")):
        if needle in cn:
            return Piece(kind="pck_ca_chain", origin=origin, data=pem, ca=ca, window=cert_window(pem))
    raise _bad(origin, f"is a certificate chain for {cn!r}, not an Intel TCB signing or PCK CA chain "
               "(trust anchors are not collateral)")
