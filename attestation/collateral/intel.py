"""Intel TDX collateral in the two forms it travels in.

* The nine-field JSON of dcap-qvl and PCCS clients (`QuoteCollateralV3`):
  `tcb_info` / `qe_identity` are the exact signed JSON text, signatures hex
  r‖s, CRLs hex DER, issuer chains PEM.
* Intel PCS (or PCCS) response bodies, `{"tcbInfo":{…},"signature":"hex"}`
  and `{"enclaveIdentity":{…},"signature":"hex"}`, with the issuer chains in
  URL-encoded response headers.

The signature covers the inner object's bytes exactly as Intel sent them, so
the inner object is cut out of the body by position (`inner_object_span`);
it is never re-serialized.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import ParseError
from ..x509util import load_crl
from . import PckCa, TdxCollateral
from .windows import Window, json_window

S_JSON = "Intel collateral JSON"

# (field, kind): "text" is kept byte for byte, "pem" an issuer chain, "bin" hex or base64.
FIELDS: tuple[tuple[str, str], ...] = (
    ("pck_crl_issuer_chain", "pem"), ("root_ca_crl", "bin"), ("pck_crl", "bin"),
    ("tcb_info_issuer_chain", "pem"), ("tcb_info", "text"), ("tcb_info_signature", "bin"),
    ("qe_identity_issuer_chain", "pem"), ("qe_identity", "text"), ("qe_identity_signature", "bin"),
)
_WS = b" \t\r\n"


# --------------------------------------------------------------------------- nine-field JSON

def _binary(name: str, value: Any) -> bytes:
    """Hex (dcap-qvl), base64, or a JSON array of byte values."""
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        return bytes(value)
    if not isinstance(value, str) or not value:
        raise ParseError(S_JSON, name, None, "expected a non-empty hex or base64 string")
    text = value.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(S_JSON, name, None, "is neither hex nor base64") from None


def _field(doc: dict[str, Any], name: str, kind: str) -> bytes:
    if name not in doc:
        raise ParseError(S_JSON, name, None, "missing (the nine-field form needs all of "
                         + ", ".join(f for f, _ in FIELDS) + ")")
    value = doc[name]
    if kind == "bin":
        data = _binary(name, value)
        if name.endswith("_signature") and len(data) != 64:
            raise ParseError(S_JSON, name, None, f"is {len(data)} bytes; expected 64 (raw r‖s)")
        return data
    if not isinstance(value, str) or not value:
        raise ParseError(S_JSON, name, None, "expected a non-empty string")
    if kind == "pem" and "-----BEGIN CERTIFICATE-----" not in value:
        raise ParseError(S_JSON, name, None, "is not a PEM certificate chain")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:             # a lone surrogate escape (\ud800) in the JSON string
        raise ParseError(S_JSON, name, None, "is not valid Unicode text") from None


def load_intel_collateral_json(data: str | bytes) -> TdxCollateral:
    """Parse the nine-field JSON (dcap-qvl `QuoteCollateralV3`, PCCS clients).

    Raises:
        ParseError: not JSON, or a field is missing or malformed (the field is named).
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(S_JSON, "document", None, f"not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ParseError(S_JSON, "document", None, "is not a JSON object")
    values = {name: _field(doc, name, kind) for name, kind in FIELDS}
    for name in ("tcb_info", "qe_identity"):
        try:
            json.loads(values[name])
        except ValueError as exc:
            raise ParseError(S_JSON, name, None, f"is not valid JSON text ({exc})") from None
    return TdxCollateral(**values)


def to_intel_json(c: TdxCollateral) -> str:
    """The nine-field JSON that `load_intel_collateral_json` reads (hex for binary fields)."""
    doc = {}
    for name, kind in FIELDS:
        raw: bytes = getattr(c, name)
        doc[name] = raw.hex() if kind == "bin" else raw.decode("utf-8")
    return json.dumps(doc, indent=2) + "\n"


# --------------------------------------------------------------------------- PCS bodies

def _string_end(data: bytes, i: int) -> int:
    """Index just past the JSON string that starts at data[i] == '"'."""
    i += 1
    while i < len(data):
        ch = data[i]
        if ch == 0x5C:        # backslash: skip the escaped character
            i += 2
            continue
        if ch == 0x22:
            return i + 1
        i += 1
    raise ValueError("unterminated string")


def _value_end(data: bytes, i: int) -> int:
    """Index just past the JSON value at data[i] (the document is known to be valid JSON)."""
    if data[i] == 0x22:
        return _string_end(data, i)
    if data[i] in b"{[":
        depth = 0
        while i < len(data):
            ch = data[i]
            if ch == 0x22:
                i = _string_end(data, i)
                continue
            depth += ch in b"{["
            depth -= ch in b"}]"
            i += 1
            if depth == 0:
                return i
        raise ValueError("unterminated object")
    while i < len(data) and data[i] not in b",}]" + _WS:
        i += 1
    return i


def _skip(data: bytes, i: int) -> int:
    while i < len(data) and data[i] in _WS:
        i += 1
    return i


def _member_spans(body: bytes):
    """(name, start, end) of each member of the top-level object."""
    i = _skip(body, 0)
    if body[i:i + 1] != b"{":
        raise ValueError("body is not a JSON object")
    i = _skip(body, i + 1)
    while body[i:i + 1] != b"}":
        name_end = _string_end(body, i)
        name = json.loads(body[i:name_end])
        start = _skip(body, _skip(body, name_end) + 1)      # past ':'
        end = _value_end(body, start)
        yield name, start, end
        i = _skip(body, end)
        if body[i:i + 1] == b",":
            i = _skip(body, i + 1)


def inner_object_span(body: bytes, key: str, *, structure: str = "Intel PCS response") -> tuple[int, int]:
    """(start, end) of the object value of top-level member `key`, as bytes of `body`."""
    try:
        json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(structure, "body", None, f"not valid JSON ({exc})") from None
    try:
        found = [(s, e) for name, s, e in _member_spans(body) if name == key]
    except ValueError as exc:                  # valid JSON, but not an object
        raise ParseError(structure, "body", None, str(exc)) from None
    if len(found) != 1:
        raise ParseError(structure, key, None, "missing" if not found else "appears more than once")
    start, end = found[0]
    if body[start:start + 1] != b"{":
        raise ParseError(structure, key, start, "is not a JSON object")
    return start, end


def split_pcs_body(body: bytes, key: str, *, structure: str) -> tuple[bytes, bytes]:
    """(exact signed bytes of body[key], signature r‖s) of a PCS TCB info / QE identity body."""
    start, end = inner_object_span(body, key, structure=structure)
    signature = json.loads(body).get("signature")
    if not isinstance(signature, str):
        raise ParseError(structure, "signature", None, "missing or not a hex string")
    try:
        raw = bytes.fromhex(signature)
    except ValueError:
        raise ParseError(structure, "signature", None, "is not hex") from None
    if len(raw) != 64:
        raise ParseError(structure, "signature", None, f"is {len(raw)} bytes; expected 64 (raw r‖s)")
    return body[start:end], raw


def pcs_body(signed: bytes, signature: bytes, key: str) -> bytes:
    """Rebuild a PCS body around the exact signed bytes (inverse of `split_pcs_body`)."""
    return b'{"' + key.encode() + b'":' + signed + b',"signature":"' + signature.hex().encode() + b'"}'


def issuer_chain(value: str | bytes) -> bytes:
    """An issuer chain as PEM bytes, URL-decoding it if it is still in header form."""
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    if "%" in text:         # PEM never contains '%'; a header value is percent-encoded
        text = unquote(text)
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ParseError("Intel issuer chain", "PEM", None, "no PEM certificate found")
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise ParseError("Intel issuer chain", "PEM", None, "is not ASCII text") from None


def crl_der(body: bytes, *, structure: str = "Intel CRL") -> bytes:
    """A CRL as DER, whether served as DER, hex text (some PCCS) or PEM."""
    data = body.strip()
    if data.startswith(b"-----BEGIN"):
        try:
            return load_crl(data).public_bytes(Encoding.DER)
        except ValueError as exc:
            raise ParseError(structure, "CRL", None, f"bad PEM CRL ({exc})") from None
    if data[:1] != b"\x30":
        try:
            data = bytes.fromhex(data.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            raise ParseError(structure, "CRL", None, "neither DER, hex nor PEM") from None
    return data


def tdx_collateral_from_pcs(tcb_info_body: bytes, qe_identity_body: bytes,
                            tcb_info_issuer_chain: str | bytes, qe_identity_issuer_chain: str | bytes,
                            pck_crl: bytes, pck_crl_issuer_chain: str | bytes,
                            root_ca_crl: bytes) -> TdxCollateral:
    """Assemble TdxCollateral from PCS/PCCS responses (bodies as received, chains PEM or URL-encoded)."""
    tcb_info, tcb_sig = split_pcs_body(tcb_info_body, "tcbInfo", structure="Intel TCB info response")
    qe_identity, qe_sig = split_pcs_body(qe_identity_body, "enclaveIdentity",
                                         structure="Intel QE identity response")
    return TdxCollateral(
        pck_crl_issuer_chain=issuer_chain(pck_crl_issuer_chain), root_ca_crl=crl_der(root_ca_crl),
        pck_crl=crl_der(pck_crl), tcb_info_issuer_chain=issuer_chain(tcb_info_issuer_chain),
        tcb_info=tcb_info, tcb_info_signature=tcb_sig,
        qe_identity_issuer_chain=issuer_chain(qe_identity_issuer_chain),
        qe_identity=qe_identity, qe_identity_signature=qe_sig)


# --------------------------------------------------------------------------- reading for manifests

def fmspc_of(c: TdxCollateral) -> str:
    """The FMSPC (lower-case hex) the TCB info is for."""
    try:
        fmspc = json.loads(c.tcb_info).get("fmspc")
    except (ValueError, AttributeError):
        fmspc = None
    if not isinstance(fmspc, str) or len(fmspc) != 12:
        raise ParseError("TDX TCB info", "fmspc", None, "missing or not 6 bytes of hex")
    return fmspc.lower()


def tcb_info_window(c: TdxCollateral) -> Window:
    """issueDate .. nextUpdate of the TCB info."""
    return json_window(c.tcb_info, structure="TDX TCB info")


def qe_identity_window(c: TdxCollateral) -> Window:
    return json_window(c.qe_identity, structure="TD QE identity")


def pck_crl_ca(der: bytes) -> PckCa:
    """Which PCK CA issued a PCK CRL, from its issuer CN ("Intel SGX PCK Platform CA" / "…Processor CA")."""
    try:
        crl = load_crl(der)
    except ValueError as exc:
        raise ParseError("Intel PCK CRL", "CRL", None, f"not a DER CRL ({exc})") from None
    cn = " ".join(str(a.value) for a in crl.issuer.get_attributes_for_oid(x509.NameOID.COMMON_NAME))
    if "Processor" in cn:
        return "processor"
    if "Platform" in cn:
        return "platform"
    raise ParseError("Intel PCK CRL", "issuer", None, f"issuer CN {cn!r} is not a PCK Platform/Processor CA")

