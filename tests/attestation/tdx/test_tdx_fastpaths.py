"""The verifier's fast paths give exactly what the general code gives, and clear_caches() forgets
every result about evidence or collateral (only values derived from the anchors stay)."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from attestation.errors import ParseError, VerificationError
from attestation.tdx import abi, pck, pcs, trust
from attestation.tdx import verify as tdx_verify
from tests.attestation.tdx.tdx_evidence import utc

QUOTE = "tdx/quotes/dcapqvl_tdx_quote_v4.dat"
AT = "2025-07-01T00:00:00Z"


SETS = ("dcapqvl_2025_06", "dcapqvl_2025_09", "dcapqvl_2026_02", "gotdx_2026_02", "gotdx_2023_06",
        "teekit_2025_09:b0c06f000000", "teekit_2025_09:00806f050000", "teekit_2025_09:50806f000000",
        "teekit_2025_09:90c06f000000")


def _collateral_docs(sets) -> list[tuple[str, bytes]]:
    docs = []
    for name in SETS:
        col = sets.named(name)
        docs += [("tcb", col.tcb_info), ("qe", col.qe_identity)]
    return docs


def test_fast_collateral_parse_equals_the_checked_parse(sets):
    docs = _collateral_docs(sets)
    assert {kind for kind, _ in docs} == {"tcb", "qe"}
    for kind, raw in docs:
        obj = json.loads(raw)
        if kind == "tcb":
            fast = pcs._fast_tcb_info(obj)
            assert fast is not None and fast == pcs._tcb_info(pcs._Doc(obj, pcs.S_TCB_INFO, ""))
            assert pcs.parse_tcb_info(raw) == fast
        else:
            fast = pcs._fast_qe_identity(obj)
            assert fast is not None and fast == pcs._qe_identity(pcs._Doc(obj, pcs.S_QE_IDENTITY, ""))
            assert pcs.parse_qe_identity(raw) == fast


@pytest.mark.parametrize("mutate", [
    lambda d: d["tcbLevels"][0].update(tcbDate="2024-01-01T00:00:00"),       # no zone
    lambda d: d["tcbLevels"][0]["tcb"].update(pcesvn=True),
    lambda d: d.update(fmspc=" 00806F0500 "),                                # fromhex skips spaces
    lambda d: d["tcbLevels"][0]["tcb"]["sgxtcbcomponents"][3].update(svn=-1),
    lambda d: d["tdxModule"].update(attributesMask="FF" * 7),
    lambda d: d.update(tdxModuleIdentities={}),
])
def test_fast_parse_leaves_bad_documents_to_the_checked_parse(sets, mutate):
    raw = sets.named("teekit_2025_09:00806f050000").tcb_info
    doc = json.loads(raw)
    mutate(doc)
    assert pcs._fast_tcb_info(doc) is None
    with pytest.raises(ParseError):
        pcs.parse_tcb_info(json.dumps(doc).encode())


def _rewrapped(pem: bytes, width: int) -> bytes:
    """The same certificates as PEM with base64 lines of `width` characters."""
    out = b""
    for der in pck.split_pem_chain(pem):
        text = base64.b64encode(der)
        lines = b"\n".join(text[i:i + width] for i in range(0, len(text), width))
        out += b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"
    return out


def test_anchor_pem_shortcut_gives_the_same_verification(evidence_dir, sets, make_opts):
    """Chains whose PEM text is not the anchors' own (other line width) are decoded in full and
    verify to the same claims; the shortcut represents anchor certificates by the anchor's objects."""
    quote = abi.parse_quote((evidence_dir / QUOTE).read_bytes())
    col = sets.named("dcapqvl_2025_06")
    opts = make_opts(col, utc(AT))
    trust.clear_caches()
    fast = tdx_verify.verify_quote(quote, opts)
    chain = trust.pck_chain(quote.signature.qe_cert.pck_chain_pem, opts.anchors)
    anchor = opts.anchors.intel()[0]
    assert chain.root is anchor.certificate and chain.intermediate in anchor.intermediates

    pem76 = _rewrapped(quote.signature.qe_cert.pck_chain_pem, 76)
    qe_cert = dataclasses.replace(quote.signature.qe_cert, pck_chain_pem=pem76)
    slow_quote = dataclasses.replace(quote, signature=dataclasses.replace(quote.signature, qe_cert=qe_cert))
    slow_col = dataclasses.replace(col, **{f: _rewrapped(getattr(col, f), 76) for f in
                                           ("tcb_info_issuer_chain", "qe_identity_issuer_chain",
                                            "pck_crl_issuer_chain")})
    trust.clear_caches()
    slow_chain = trust.pck_chain(pem76, opts.anchors)
    assert slow_chain.root is not anchor.certificate and slow_chain.root == anchor.certificate
    assert tdx_verify.verify_quote(slow_quote, make_opts(slow_col, utc(AT))) == fast


def test_clear_caches_forgets_every_evidence_and_collateral_result(evidence_dir, sets, make_opts):
    quote = abi.parse_quote((evidence_dir / QUOTE).read_bytes())
    opts = make_opts(sets.named("dcapqvl_2025_06"), utc(AT))
    tdx_verify.verify_quote(quote, opts)
    tables = (trust._CERTS, trust._PCK_CHAINS, trust._CHAINS, trust._LINKS, trust._CRL_SIGNERS, trust._DOCS,
              trust._REPORTS)
    assert all(tables)
    assert trust.load_crl.cache_info().currsize and trust.is_revoked.cache_info().currsize
    assert trust.p256_point.cache_info().currsize
    trust.clear_caches()
    assert not any(tables)
    for cached in (trust.load_crl, trust.is_revoked, trust.p256_point, trust.der.certificate_parts,
                   trust.der.crl_parts):
        assert cached.cache_info().currsize == 0
    # what stays is derived from the anchors' own certificates only
    data = trust.anchor_data(opts.anchors.intel()[0])
    assert data.anchor is opts.anchors.intel()[0]
    assert set(data.bodies.values()) <= set(trust._ANCHOR_CERTS.values())


def _with_qe(quote, **changes):
    qe_cert = dataclasses.replace(quote.signature.qe_cert, **changes)
    return dataclasses.replace(quote, signature=dataclasses.replace(quote.signature, qe_cert=qe_cert))


def test_remembered_qe_report_signature_covers_only_its_exact_bytes(evidence_dir, sets, make_opts):
    """A verified QE report is remembered per (report, signature, PCK certificate); with it remembered, another
    report under the same signature, or the same report under another signature, is still refused."""
    quote = abi.parse_quote((evidence_dir / QUOTE).read_bytes())
    opts = make_opts(sets.named("dcapqvl_2025_06"), utc(AT))
    trust.clear_caches()
    tdx_verify.verify_quote(quote, opts)
    assert len(trust._REPORTS) == 1
    qe = quote.signature.qe_cert
    flipped_report = qe.qe_report_bytes[:0x30] + bytes([qe.qe_report_bytes[0x30] ^ 1]) + qe.qe_report_bytes[0x31:]
    flipped_sig = qe.qe_report_signature[:-1] + bytes([qe.qe_report_signature[-1] ^ 1])
    for bad in (_with_qe(quote, qe_report_bytes=flipped_report), _with_qe(quote, qe_report_signature=flipped_sig)):
        with pytest.raises(VerificationError) as err:
            tdx_verify.verify_quote(bad, opts)
        assert err.value.check == "tdx.qe_report_signature"
    assert len(trust._REPORTS) == 1                     # failures are not remembered
    tdx_verify.verify_quote(quote, opts)                  # and the good one still verifies


def test_attestation_key_off_the_curve_is_refused_every_time(evidence_dir):
    quote = abi.parse_quote((evidence_dir / QUOTE).read_bytes())
    off_curve = bytes(31) + b"\x01" + bytes(31) + b"\x01"
    bad = dataclasses.replace(quote, signature=dataclasses.replace(quote.signature, attestation_key=off_curve))
    for _ in range(2):                                    # the second answer comes from the cache
        with pytest.raises(VerificationError) as err:
            tdx_verify._verify_quote_signature(bad)
        assert err.value.check == "tdx.quote_signature" and "not a point" in err.value.detail
