"""Tampered, truncated and padded quotes, and wrong anchors: each fails with a reason."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

from attestation.anchors import TrustAnchors, vendor_anchors
from attestation.errors import ParseError, VerificationError
from attestation.tdx import abi
from attestation.tdx.abi import parse_quote
from attestation.tdx.verify import clear_caches, verify_quote

QUOTE = "tdx/quotes/dcapqvl_tdx_quote_v4.dat"
AT = datetime(2025, 7, 1, tzinfo=timezone.utc)
SIG = 0x27C                     # v4 signature data
CERT = SIG + 0x86               # QE report certification data
AUTH = CERT + 0x1C2             # QE auth data (32 bytes)
PEM = AUTH + 32 + 6             # PCK chain


@pytest.fixture(scope="module")
def raw(evidence_dir) -> bytes:
    return (evidence_dir / QUOTE).read_bytes()


@pytest.fixture(scope="module")
def opts(sets, make_opts):
    return make_opts(sets.dcapqvl_2025_06(), AT)


def _outcome(data: bytes, opts) -> str:
    """"ok", "parse:<field>" or the verification check code."""
    try:
        verify_quote(parse_quote(data), opts)
    except ParseError as exc:
        return f"parse:{exc.field}"
    except VerificationError as exc:
        return exc.check
    return "ok"


def _flip(data: bytes, pos: int, mask: int = 0x01) -> bytes:
    return data[:pos] + bytes([data[pos] ^ mask]) + data[pos + 1:]


def test_untampered_quote_verifies(raw, opts):
    assert _outcome(raw, opts) == "ok"


# Byte ranges of the signed and signature regions and the check that must catch a flip there.
REGIONS = {
    "header": (0x08, 0x0C, "tdx.quote_signature"),          # reserved bytes
    "user_data": (0x1C, 0x30, "tdx.quote_signature"),
    "body": (0x30, 0x278, "tdx.quote_signature"),
    "quote_signature": (SIG, SIG + 0x40, "tdx.quote_signature"),
    "attestation_key": (SIG + 0x40, SIG + 0x80, "tdx.qe_report_binding"),
    "qe_report": (CERT, CERT + 0x180, "tdx.qe_report_signature"),
    "qe_report_signature": (CERT + 0x180, CERT + 0x1C0, "tdx.qe_report_signature"),
    "qe_auth_data": (AUTH, AUTH + 32, "tdx.qe_report_binding"),
}


@pytest.mark.parametrize("mask", [0x01, 0x80])
@pytest.mark.parametrize("region", sorted(REGIONS))
def test_every_flip_in_a_signed_region_fails_its_check(raw, opts, region, mask):
    start, end, check = REGIONS[region]
    outcomes = {pos: _outcome(_flip(raw, pos, mask), opts) for pos in range(start, end)}
    assert {o for o in outcomes.values()} == {check}, {p: o for p, o in outcomes.items() if o != check}


@pytest.mark.parametrize("field,pos", [("VERSION", 0), ("ATT_KEY_TYPE", 2), ("TEE_TYPE", 4),
                                       ("QE_VENDOR_ID", 0x0C), ("QE_VENDOR_ID", 0x1B)])
def test_flips_in_checked_header_fields_are_parse_errors(raw, opts, field, pos):
    # (0x02: version 4 becomes 6; 4 ^ 0x01 would be the valid version 5)
    assert _outcome(_flip(raw, pos, 0x02), opts) == f"parse:{field}"


@pytest.mark.parametrize("field,pos", [("SIGNATURE_DATA_LEN", 0x278), ("CERT_DATA_TYPE", SIG + 0x80),
                                       ("CERT_DATA_SIZE", SIG + 0x82), ("QE_AUTH_DATA_SIZE", CERT + 0x1C0),
                                       ("PCK_CERT_DATA_TYPE", AUTH + 32), ("PCK_CERT_DATA_SIZE", AUTH + 34)])
def test_flips_in_length_and_type_fields_are_parse_errors(raw, opts, field, pos):
    outcome = _outcome(_flip(raw, pos), opts)
    assert outcome.startswith("parse:"), outcome


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_flip_in_the_pck_chain_fails(raw, opts):
    pem_len = int.from_bytes(raw[AUTH + 34:AUTH + 38], "little")
    accepted = []
    for pos in range(PEM, PEM + pem_len):
        for mask in (0x01, 0x20):
            outcome = _outcome(_flip(raw, pos, mask), opts)
            if outcome == "ok":
                accepted.append((pos - PEM, mask))
    assert accepted == []


def test_pck_chain_flip_in_leaf_signature_is_a_chain_failure(raw, opts):
    pem_len = int.from_bytes(raw[AUTH + 34:AUTH + 38], "little")
    pem = raw[PEM:PEM + pem_len]
    end_of_leaf = pem.index(b"-----END CERTIFICATE-----")
    pos = PEM + end_of_leaf - 10          # inside the base64 of the leaf's signature value
    assert _outcome(_flip(raw, pos), opts) in {"tdx.pck_chain", "parse:certificate[0]"}


def test_trailing_bytes_are_kept_and_ignored(evidence_dir, opts, raw):
    quote = parse_quote(raw)
    assert len(quote.extra_bytes) == 70
    assert _outcome(raw + b"\x00" * 100, opts) == "ok"
    assert _outcome(raw[:-70], opts) == "ok"
    for pos in range(len(raw) - 70, len(raw)):
        assert _outcome(_flip(raw, pos, 0xFF), opts) == "ok"


def test_go_tdx_guest_junk_suffix_is_tolerated(evidence_dir):
    data = (evidence_dir / "tdx/quotes/gotdx_spr_e4_v4.dat").read_bytes()
    quote = parse_quote(data)
    assert quote.extra_bytes == b"\nextra bytes(only for testing purpose)\n"


# ------------------------------------------------------------------ truncation

BOUNDARIES = [
    (0, "TDX quote header", "VERSION"),
    (0x2, "TDX quote header", "ATT_KEY_TYPE"),
    (0x1C, "TDX quote header", "USER_DATA"),
    (0x30, "TDX quote", "TD report body"),
    (0x277, "TDX quote", "TD report body"),
    (0x278, "TDX quote", "SIGNATURE_DATA_LEN"),
    (SIG, "TDX quote signature data", "QUOTE_SIGNATURE"),
    (SIG + 0x40, "TDX quote signature data", "ATTESTATION_PUBLIC_KEY"),
    (SIG + 0x80, "TDX quote signature data", "CERT_DATA_TYPE"),
    (SIG + 0x82, "TDX quote signature data", "CERT_DATA_SIZE"),
    (CERT, "TDX QE report certification data", "QE_REPORT"),
    (CERT + 0x180, "TDX QE report certification data", "QE_REPORT_SIGNATURE"),
    (CERT + 0x1C0, "TDX QE report certification data", "QE_AUTH_DATA_SIZE"),
    (AUTH, "TDX QE report certification data", "QE_AUTH_DATA"),
    (AUTH + 32, "TDX QE report certification data", "PCK_CERT_DATA_TYPE"),
    (AUTH + 34, "TDX QE report certification data", "PCK_CERT_DATA_SIZE"),
    (PEM, "TDX QE report certification data", "PCK_CERT_CHAIN"),
    (PEM + 2000, "TDX QE report certification data", "PCK_CERT_CHAIN"),
]


@pytest.mark.parametrize("size,structure,field", BOUNDARIES)
def test_truncation_names_the_field(raw, size, structure, field):
    with pytest.raises(ParseError) as info:
        parse_quote(raw[:size])
    assert (info.value.structure, info.value.field) == (structure, field)
    assert "needs" in info.value.message


def test_truncated_v5_body(evidence_dir):
    data = (evidence_dir / "tdx/quotes/gotdx_v5_td15.dat").read_bytes()
    for size, field in ((0x31, "BODY_TYPE"), (0x34, "BODY_SIZE"), (0x100, "TD report body"),
                        (0x2BE, "SIGNATURE_DATA_LEN")):
        with pytest.raises(ParseError) as info:
            parse_quote(data[:size])
        assert info.value.field == field


@pytest.mark.parametrize("pos,value,field", [
    (0x30, 1, "BODY_TYPE"), (0x30, 4, "BODY_TYPE"), (0x32, 584, "BODY_SIZE")])
def test_v5_body_type_and_size_are_checked(evidence_dir, pos, value, field):
    data = bytearray((evidence_dir / "tdx/quotes/gotdx_v5_td15.dat").read_bytes())
    width = 2 if field == "BODY_TYPE" else 4
    data[pos:pos + width] = value.to_bytes(width, "little")
    with pytest.raises(ParseError) as info:
        parse_quote(bytes(data))
    assert info.value.field == field


def test_qe_auth_data_size_overrun_is_a_parse_error(raw):
    data = bytearray(raw)
    data[CERT + 0x1C0:CERT + 0x1C2] = (5000).to_bytes(2, "little")
    with pytest.raises(ParseError):
        parse_quote(bytes(data))


# ------------------------------------------------------------------ anchors and collateral

def test_anchor_set_without_intel_root_fails_the_pck_chain(raw, sets, make_opts):
    amd_only = TrustAnchors(tuple(a for a in vendor_anchors().anchors if a.vendor != "intel"))
    opts = make_opts(sets.dcapqvl_2025_06(), AT, anchors=amd_only)
    assert _outcome(raw, opts) == "tdx.pck_chain"


def test_a_different_intel_root_is_not_trusted(raw, sets, make_opts):
    from attestation.anchors import Anchor
    from cryptography import x509
    from tests.attestation.tdx.tdx_evidence import Sets  # noqa: F401 - keeps the import path used
    amd = next(a for a in vendor_anchors().anchors if a.vendor == "amd")
    fake = Anchor(name="not-intel", kind="vendor", vendor="intel", certificate=amd.certificate)
    opts = make_opts(sets.dcapqvl_2025_06(), AT, anchors=TrustAnchors((fake,)))
    assert isinstance(fake.certificate, x509.Certificate)
    assert _outcome(raw, opts) == "tdx.pck_chain"


def test_collateral_for_another_platform_fails_fmspc_match(raw, sets, make_opts):
    # the teekit 90c06f TCB info verifies, but is for another FMSPC
    opts = make_opts(sets.teekit_2025_09("90c06f000000"), datetime(2025, 10, 1, tzinfo=timezone.utc))
    assert _outcome(raw, opts) == "tdx.fmspc_mismatch"


@pytest.mark.parametrize("field,check", [
    ("tcb_info", "tdx.tcb_info_signature"), ("qe_identity", "tdx.qe_identity_signature"),
    ("tcb_info_signature", "tdx.tcb_info_signature"),
    ("qe_identity_signature", "tdx.qe_identity_signature")])
def test_tampered_collateral_document_fails_its_signature(raw, sets, make_opts, field, check):
    col = sets.dcapqvl_2025_06()
    value = getattr(col, field)
    tampered = value.replace(b'"UpToDate"', b'"OutOfDate"', 1) if field in ("tcb_info", "qe_identity") \
        else _flip(value, 10)
    assert tampered != value
    assert _outcome(raw, make_opts(dataclasses.replace(col, **{field: tampered}), AT)) == check


@pytest.mark.parametrize("field,check", [("pck_crl", "tdx.pck_crl"), ("root_ca_crl", "tdx.root_ca_crl")])
def test_tampered_crl_signature_fails(raw, sets, make_opts, field, check):
    col = sets.dcapqvl_2025_06()
    value = getattr(col, field)
    tampered = _flip(value, len(value) - 5)          # inside the signature value
    outcome = _outcome(raw, make_opts(dataclasses.replace(col, **{field: tampered}), AT))
    assert outcome in {check, "parse:CRL"}


def test_crls_are_skipped_when_revocation_checking_is_off(raw, sets, make_opts):
    col = dataclasses.replace(sets.dcapqvl_2025_06(), pck_crl=b"", root_ca_crl=b"")
    assert _outcome(raw, make_opts(col, AT, check_revocation=False)) == "ok"
    assert _outcome(raw, make_opts(col, AT)) == "parse:CRL"


def test_tcb_signing_chain_of_another_issuance_is_accepted_only_when_valid(raw, sets, make_opts,
                                                                          evidence_dir):
    old = (evidence_dir / "roots/intel/tcb_signing_chain_2018-2025.pem").read_bytes()
    new = (evidence_dir / "roots/intel/tcb_signing_chain_2025-2032.pem").read_bytes()
    col = sets.dcapqvl_2025_06()
    # The 2025 documents carry the same key's signature: either issuance that is valid at AT works.
    both = dataclasses.replace(col, tcb_info_issuer_chain=old + new, qe_identity_issuer_chain=new + old)
    assert _outcome(raw, make_opts(both, AT)) == "ok"
    expired = dataclasses.replace(col, tcb_info_issuer_chain=old)
    assert _outcome(raw, make_opts(expired, AT)) == "tdx.tcb_info_chain"


def test_naive_time_is_refused(raw, sets, make_opts):
    opts = make_opts(sets.dcapqvl_2025_06(), AT.replace(tzinfo=None))
    assert _outcome(raw, opts) == "tdx.clock"


def test_cached_and_cold_results_agree(raw, opts):
    clear_caches()
    cold = verify_quote(parse_quote(raw), opts)
    warm = verify_quote(parse_quote(raw), opts)
    assert cold == warm
    # a time-dependent check still runs on a cached path
    late = dataclasses.replace(opts, at=datetime(2025, 8, 1, tzinfo=timezone.utc))
    assert _outcome(raw, late) in {"tdx.tcb_info_expired", "tdx.qe_identity_expired", "tdx.pck_crl",
                                   "tdx.root_ca_crl"}


def test_body_helpers(raw):
    quote = parse_quote(raw)
    assert quote.version == 4 and quote.body_type == abi.BODY_TYPE_TD10
    assert quote.body.td_attributes_value == 0x10000000
    assert quote.signed_bytes == raw[:0x278]
    assert quote.body.tee_tcb_svn2 is None and quote.body.mrservicetd is None
