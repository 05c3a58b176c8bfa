"""Intel collateral forms: the nine-field JSON and PCS bodies, against the real corpus."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import given, settings
from hypothesis import strategies as st

from attestation.collateral.intel import (FIELDS, crl_der, fmspc_of, inner_object_span, issuer_chain,
                                          load_intel_collateral_json, pck_crl_ca, pcs_body,
                                          split_pcs_body, tcb_info_window, tdx_collateral_from_pcs,
                                          to_intel_json)
from attestation.errors import ParseError
from attestation.x509util import raw_ecdsa_to_der


def dcap_files(evidence_dir: Path) -> list[Path]:
    files = sorted((evidence_dir / "tdx/collateral").glob("dcapqvl_*.json"))
    assert len(files) == 3
    return files


def pcs_files(evidence_dir: Path) -> list[Path]:
    files = sorted((evidence_dir / "tdx/collateral").rglob("tcb_info*.json"))
    files += sorted((evidence_dir / "tdx/collateral").rglob("qe_identity.json"))
    assert len(files) == 7
    return files


def tcb_signer(evidence_dir: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates(
        (evidence_dir / "roots/intel/tcb_signing_chain_2025-2032.pem").read_bytes())[0]


def verify_intel(cert: x509.Certificate, signed: bytes, signature: bytes) -> None:
    cert.public_key().verify(raw_ecdsa_to_der(signature), signed, ec.ECDSA(hashes.SHA256()))


def test_every_dcap_qvl_file_loads_and_round_trips(evidence_dir):
    for path in dcap_files(evidence_dir):
        doc = json.loads(path.read_text())
        c = load_intel_collateral_json(path.read_bytes())
        for name, kind in FIELDS:
            expected = bytes.fromhex(doc[name]) if kind == "bin" else doc[name].encode()
            assert getattr(c, name) == expected, (path.name, name)
        # the signed bytes are the JSON string exactly, character for character
        assert c.tcb_info.decode() == doc["tcb_info"] and c.qe_identity.decode() == doc["qe_identity"]
        assert load_intel_collateral_json(to_intel_json(c)) == c
        assert json.loads(to_intel_json(c)) == doc


def test_dcap_qvl_signatures_verify_over_the_loaded_bytes(evidence_dir):
    for path in dcap_files(evidence_dir):
        c = load_intel_collateral_json(path.read_text())
        signer = x509.load_pem_x509_certificates(c.tcb_info_issuer_chain)[0]
        verify_intel(signer, c.tcb_info, c.tcb_info_signature)
        verify_intel(signer, c.qe_identity, c.qe_identity_signature)


def test_base64_binary_fields_are_accepted(evidence_dir):
    doc = json.loads(dcap_files(evidence_dir)[0].read_text())
    for name, kind in FIELDS:
        if kind == "bin":
            doc[name] = base64.b64encode(bytes.fromhex(doc[name])).decode()
    c = load_intel_collateral_json(json.dumps(doc))
    assert c == load_intel_collateral_json(dcap_files(evidence_dir)[0].read_bytes())


@pytest.mark.parametrize("name,value,message", [
    ("pck_crl", None, "missing"),
    ("tcb_info_signature", "abcd", "expected 64"),
    ("root_ca_crl", "not hex or base64!", "neither hex nor base64"),
    ("tcb_info_issuer_chain", "hello", "PEM"),
    ("qe_identity", "{not json", "not valid JSON"),
])
def test_bad_fields_are_named(evidence_dir, name, value, message):
    doc = json.loads(dcap_files(evidence_dir)[0].read_text())
    if value is None:
        del doc[name]
    else:
        doc[name] = value
    with pytest.raises(ParseError) as info:
        load_intel_collateral_json(json.dumps(doc))
    assert info.value.field == name and message in str(info.value)


def test_pcs_body_extraction_is_the_exact_substring_and_verifies(evidence_dir):
    signer = tcb_signer(evidence_dir)
    for path in pcs_files(evidence_dir):
        body = path.read_bytes()
        key = "tcbInfo" if "tcb_info" in path.name else "enclaveIdentity"
        signed, signature = split_pcs_body(body, key, structure="test")
        prefix = b'{"' + key.encode() + b'":'
        assert body.startswith(prefix)
        assert signed == body[len(prefix):body.rindex(b',"signature"')]
        verify_intel(signer, signed, signature)
        assert pcs_body(signed, signature, key) == body.strip()


def test_tdx_collateral_from_pcs_with_header_encoded_chains(evidence_dir):
    folder = evidence_dir / "tdx/collateral/gotdx_2023-06_50806f000000"
    tcb_chain = (evidence_dir / "roots/intel/tcb_signing_chain_2018-2025.pem").read_bytes()
    crl_chain = (evidence_dir / "roots/intel/pck_platform_ca_chain.pem").read_bytes()
    c = tdx_collateral_from_pcs((folder / "tcb_info.json").read_bytes(),
                                (folder / "qe_identity.json").read_bytes(),
                                quote(tcb_chain.decode(), safe=""), tcb_chain,
                                (folder / "pck_crl_platform.der").read_bytes(), quote(crl_chain.decode()),
                                (folder / "root_ca_crl.der").read_bytes())
    assert c.tcb_info_issuer_chain == tcb_chain and c.pck_crl_issuer_chain == crl_chain
    assert fmspc_of(c) == "50806f000000"
    window = tcb_info_window(c)
    assert window.not_before == datetime(2023, 6, 18, 8, 42, 58, tzinfo=timezone.utc)
    assert window.not_after == datetime(2023, 7, 18, 8, 42, 58, tzinfo=timezone.utc)
    assert pck_crl_ca(c.pck_crl) == "platform"
    verify_intel(tcb_signer(evidence_dir), c.qe_identity, c.qe_identity_signature)


def test_crl_accepts_der_hex_and_pem(evidence_dir):
    der = (evidence_dir / "tdx/collateral/gotdx_2023-06_50806f000000/root_ca_crl.der").read_bytes()
    pem = x509.load_der_x509_crl(der).public_bytes(Encoding.PEM)
    assert crl_der(der) == crl_der(der.hex().encode()) == crl_der(pem) == der
    with pytest.raises(ParseError):
        crl_der(b"garbage!")
    with pytest.raises(ParseError):
        issuer_chain("no certificate here")


@pytest.mark.parametrize("body,error", [
    (b'{"signature":"00","tcbInfo":{"a":"}\\"{","b":[1,{"c":"]"}]} }', None),
    (b' \n{ "tcbInfo" : {"x":"\\\\"} , "signature":"00"}', None),
    (b'{"tcbInfo":{},"tcbInfo":{},"signature":"00"}', "more than once"),
    (b'{"enclaveIdentity":{},"signature":"00"}', "missing"),
    (b'{"tcbInfo":[1,2],"signature":"00"}', "not a JSON object"),
    (b'{"tcbInfo":{"a":1}', "not valid JSON"),
])
def test_scanner_respects_strings_and_rejects_oddities(body, error):
    if error is None:
        start, end = inner_object_span(body, "tcbInfo")
        assert json.loads(body[start:end]) == json.loads(body)["tcbInfo"]
        assert body[start:start + 1] == b"{" and body[end - 1:end] == b"}"
    else:
        with pytest.raises(ParseError, match=error):
            inner_object_span(body, "tcbInfo")


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                  max_size=3),
                     max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(inner=st.dictionaries(st.text(max_size=6), _json, max_size=4), other=_json,
       ascii_only=st.booleans(), spaced=st.booleans(), first=st.booleans())
def test_scanner_returns_the_exact_serialized_bytes(inner, other, ascii_only, spaced, first):
    sep = (", ", ": ") if spaced else (",", ":")
    text = json.dumps(inner, ensure_ascii=ascii_only, separators=sep).encode()
    members = [b'"tcbInfo"' + sep[1].encode() + text,
               b'"other":' + json.dumps(other).encode()]
    body = b"{" + b",".join(members if first else members[::-1]) + b"}"
    start, end = inner_object_span(body, "tcbInfo")
    assert body[start:end] == text
