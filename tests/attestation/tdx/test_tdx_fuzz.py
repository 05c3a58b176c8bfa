"""Random and mutated input to the TDX parsers raises only ParseError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.errors import ParseError
from attestation.tdx import pck, pcs
from attestation.tdx.abi import parse_quote
from tests.conftest import EVIDENCE

QUOTES = [(EVIDENCE / p).read_bytes() for p in (
    "tdx/quotes/dcapqvl_tdx_quote_v4.dat", "tdx/quotes/gotdx_v5_td15.dat")] if EVIDENCE.is_dir() else []
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parses_or_parse_error(fn, data):
    try:
        fn(data)
    except ParseError:
        pass


@FUZZ
@given(st.binary(max_size=6000))
def test_random_bytes(data):
    _parses_or_parse_error(parse_quote, data)


@FUZZ
@given(st.binary(min_size=4, max_size=4), st.binary(max_size=2000))
def test_random_bytes_with_a_tdx_header(prefix, rest):
    header = bytes.fromhex("0400020081000000") + prefix + bytes.fromhex("939a7233f79c4ca9940a0db3957f0607")
    _parses_or_parse_error(parse_quote, header + rest)


@pytest.mark.skipif(not QUOTES, reason="evidence corpus not found")
@FUZZ
@given(st.data())
def test_mutated_real_quotes(data):
    quote = bytearray(data.draw(st.sampled_from(QUOTES)))
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(quote) - 1))
        quote[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(quote)))
    _parses_or_parse_error(parse_quote, bytes(quote[:cut]))


@pytest.mark.skipif(not QUOTES, reason="evidence corpus not found")
@FUZZ
@given(st.data())
def test_mutated_pck_chains(data):
    pem = bytearray(parse_quote(QUOTES[0]).signature.qe_cert.pck_chain_pem)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(pem) - 1))
        pem[pos] = data.draw(st.integers(0, 255))
    _parses_or_parse_error(pck.parse_pck_chain, bytes(pem))


@FUZZ
@given(st.binary(max_size=300))
def test_random_sgx_extensions(data):
    _parses_or_parse_error(pck.parse_sgx_extension, data)


@FUZZ
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=20))
def test_random_json_collateral(value):
    import json
    raw = json.dumps(value).encode()
    _parses_or_parse_error(pcs.parse_tcb_info, raw)
    _parses_or_parse_error(pcs.parse_qe_identity, raw)


@pytest.mark.skipif(not EVIDENCE.is_dir(), reason="evidence corpus not found")
@FUZZ
@given(st.data())
def test_mutated_tcb_info(data):
    text = bytearray((Path(EVIDENCE) / "tdx/collateral/teekit_2025-09/tcb_info_00806f050000.json").read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text) - 1))
        text[pos] = data.draw(st.sampled_from(b'{}[]":,0123456789aZ-'))
    from tests.attestation.tdx.tdx_evidence import inner_object
    try:
        signed = inner_object(bytes(text), "tcbInfo")
    except ValueError:
        signed = bytes(text)
    _parses_or_parse_error(pcs.parse_tcb_info, signed)
