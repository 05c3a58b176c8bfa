"""VCEK/VLEK certificates as AMD's Key Distribution Service issues them, and KDS URLs.

The certificate extensions under 1.3.6.1.4.1.3704.1 (AMD spec 57230; go-sev-guest
`kds/kds.go`) carry the product name, the TCB the key was derived for and,
for a VCEK, the chip's hwID; a VLEK carries the cloud provider's csp_id
instead. `cryptography` hands them over as raw DER values
(UnrecognizedExtension); the tiny decoder below reads exactly the three
types AMD uses and rejects anything else with a ParseError.

URL building only: fetching belongs to `attestation.collateral.online`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from cryptography import x509

from ..errors import ParseError
from ..x509util import load_certificates

KDS_BASE = "https://kdsintf.amd.com"
OID_PREFIX = "1.3.6.1.4.1.3704.1"
STRUCTURE = "VCEK certificate"

_SPL_OIDS = {"bl": "3.1", "tee": "3.2", "snp": "3.3", "spl4": "3.4", "spl5": "3.5",
             "spl6": "3.6", "spl7": "3.7", "ucode": "3.8", "fmc": "3.9"}
_TAG_INTEGER, _TAG_OCTET_STRING, _TAG_IA5STRING = 0x02, 0x04, 0x16


@dataclass(frozen=True, slots=True)
class EndorsementExtensions:
    """The AMD extensions of one VCEK or VLEK certificate."""

    struct_version: int | None
    product_name: str
    bl_spl: int
    tee_spl: int
    snp_spl: int
    ucode_spl: int
    fmc_spl: int | None            # Turin and later
    reserved_spls: tuple[int | None, ...]   # spl4–spl7 (absent → None)
    hwid: bytes | None             # VCEK: 64 bytes (Milan, Genoa) or 8 (Turin)
    csp_id: str | None             # VLEK only


# --------------------------------------------------------------------------- DER

def _der_tlv(data: bytes, field: str) -> tuple[int, bytes]:
    """Split one DER TLV that must span all of `data` into (tag, value)."""
    if len(data) < 2:
        raise ParseError(STRUCTURE, field, None, "DER value shorter than 2 bytes")
    tag, first = data[0], data[1]
    if first < 0x80:
        length, start = first, 2
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            raise ParseError(STRUCTURE, field, None, "bad DER length")
        length, start = int.from_bytes(data[2:2 + count], "big"), 2 + count
        if length < 0x80 or data[2] == 0:
            raise ParseError(STRUCTURE, field, None, "non-minimal DER length")
    if start + length != len(data):
        raise ParseError(STRUCTURE, field, None,
                         f"DER length {length} does not match the {len(data) - start} bytes present")
    return tag, data[start:]


def der_integer(data: bytes, field: str) -> int:
    """A non-negative DER INTEGER."""
    tag, value = _der_tlv(data, field)
    if tag != _TAG_INTEGER or not value:
        raise ParseError(STRUCTURE, field, None, f"expected a DER INTEGER, got tag 0x{tag:02X}")
    if value[0] & 0x80:
        raise ParseError(STRUCTURE, field, None, "negative INTEGER")
    if len(value) > 1 and value[0] == 0 and not value[1] & 0x80:
        raise ParseError(STRUCTURE, field, None, "non-minimal INTEGER")
    return int.from_bytes(value, "big")


def der_ia5string(data: bytes, field: str) -> str:
    tag, value = _der_tlv(data, field)
    if tag != _TAG_IA5STRING:
        raise ParseError(STRUCTURE, field, None, f"expected a DER IA5String, got tag 0x{tag:02X}")
    if any(b > 0x7F for b in value):
        raise ParseError(STRUCTURE, field, None, "IA5String is not ASCII")
    return value.decode("ascii")


def decode_hwid(value: bytes) -> bytes:
    """hwID is stored raw (64 or 8 bytes), or wrapped in a DER OCTET STRING of that length."""
    if len(value) in (64, 8):
        return value
    if value[:1] == bytes([_TAG_OCTET_STRING]):
        tag, inner = _der_tlv(value, "hwID")
        if len(inner) in (64, 8):
            return inner
    raise ParseError(STRUCTURE, "hwID", None, f"is {len(value)} bytes; expected 64 or 8 "
                     "(raw or as a DER OCTET STRING)")


# --------------------------------------------------------------------------- extensions

def _raw_extensions(cert: x509.Certificate) -> dict[str, bytes]:
    """{OID suffix: DER value} of the AMD extensions."""
    found: dict[str, bytes] = {}
    try:
        extensions = cert.extensions        # parsed lazily by cryptography
    except (x509.DuplicateExtension, ValueError) as exc:
        raise ParseError(STRUCTURE, "extensions", None, f"are malformed ({exc})") from None
    for ext in extensions:
        oid = ext.oid.dotted_string
        if oid.startswith(OID_PREFIX + ".") and isinstance(ext.value, x509.UnrecognizedExtension):
            found[oid[len(OID_PREFIX) + 1:]] = ext.value.value
    return found


def _spl(raw: dict[str, bytes], name: str, *, required: bool) -> int | None:
    value = raw.get(_SPL_OIDS[name])
    if value is None:
        if required:
            raise ParseError(STRUCTURE, f"{name}SPL", None,
                             f"extension {OID_PREFIX}.{_SPL_OIDS[name]} is missing")
        return None
    return der_integer(value, f"{name}SPL")


def parse_extensions(cert: x509.Certificate) -> EndorsementExtensions:
    """Decode the AMD extensions of a VCEK/VLEK.

    Raises:
        ParseError: an extension is malformed, or productName or a TCB SPL is missing
            (fmcSPL is required for Turin).
    """
    raw = _raw_extensions(cert)
    if "2" not in raw:
        raise ParseError(STRUCTURE, "productName", None, f"extension {OID_PREFIX}.2 is missing")
    product_name = der_ia5string(raw["2"], "productName")
    required_fmc = product_name.split("-", 1)[0] == "Turin"
    return EndorsementExtensions(
        struct_version=der_integer(raw["1"], "structVersion") if "1" in raw else None,
        product_name=product_name,
        bl_spl=_spl(raw, "bl", required=True), tee_spl=_spl(raw, "tee", required=True),
        snp_spl=_spl(raw, "snp", required=True), ucode_spl=_spl(raw, "ucode", required=True),
        fmc_spl=_spl(raw, "fmc", required=required_fmc),
        reserved_spls=tuple(_spl(raw, n, required=False) for n in ("spl4", "spl5", "spl6", "spl7")),
        hwid=decode_hwid(raw["4"]) if "4" in raw else None,
        csp_id=der_ia5string(raw["5"], "csp_id") if "5" in raw else None,
    )  # type: ignore[arg-type]


def load_endorsement(blob: bytes) -> x509.Certificate:
    """Load one VCEK/VLEK (DER or PEM) as collateral sources hand it out."""
    try:
        return load_certificates(blob)[0]
    except (ValueError, IndexError) as exc:
        raise ParseError(STRUCTURE, "certificate", None, f"not a DER or PEM certificate ({exc})") from None


# --------------------------------------------------------------------------- KDS URLs

def vcek_url(product: str, chip_id: bytes, *, bl: int, tee: int, snp: int, ucode: int,
             fmc: int | None = None) -> str:
    """The KDS URL of the VCEK for a chip and reported TCB (Turin: 8-byte hwID and fmcSPL)."""
    if product == "Turin":
        if fmc is None:
            raise ValueError("Turin VCEK URLs need fmcSPL")
        query = {"fmcSPL": fmc, "blSPL": bl, "teeSPL": tee, "snpSPL": snp, "ucodeSPL": ucode}
        hwid = chip_id[:8].hex()
    else:
        query = {"blSPL": bl, "teeSPL": tee, "snpSPL": snp, "ucodeSPL": ucode}
        hwid = chip_id.hex()
    return f"{KDS_BASE}/vcek/v1/{product}/{hwid}?{urlencode(query)}"


def cert_chain_url(product: str, signer: str = "vcek") -> str:
    """ASK+ARK (VCEK) or ASVK+ARK (VLEK), PEM, ASK first."""
    return f"{KDS_BASE}/{_hierarchy(signer)}/v1/{product}/cert_chain"


def crl_url(product: str, signer: str = "vcek") -> str:
    """The ARK-signed CRL of the VCEK or VLEK hierarchy (DER)."""
    return f"{KDS_BASE}/{_hierarchy(signer)}/v1/{product}/crl"


def _hierarchy(signer: str) -> str:
    if signer not in ("vcek", "vlek"):
        raise ValueError(f"signer must be 'vcek' or 'vlek', not {signer!r}")
    return signer
