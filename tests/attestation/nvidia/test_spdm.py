"""SPDM GET_MEASUREMENTS parsing: real Hopper reports, field errors, truncation, random input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.errors import ParseError
from attestation.nvidia.spdm import (REQUEST_SIZE, SIGNATURE_SIZE, describe, format_vbios_version,
                                     parse_report)


def test_2023_report_fields(hopper_2023):
    report = parse_report(hopper_2023.report)
    opaque = report.response.opaque
    assert len(report.raw) == 4049
    assert report.nonce.hex() == "4cff7f5380ead8fad8ec2c531c110aca4302a88f603792801a8ca29ee151af2e"
    assert (opaque.driver_version, opaque.vbios_version) == ("545.00", "96.00.5e.00.01")
    assert (opaque.text(17), opaque.text(18), opaque.text(15)) == ("1010", "0200", "882")
    assert len(report.response.blocks) == 64 and opaque.fwid is None
    assert report.signed_bytes == report.raw[:-SIGNATURE_SIZE]


def test_2025_report_fields(hopper_2025):
    report = parse_report(hopper_2025.report)
    opaque = report.response.opaque
    assert len(report.raw) == 4117
    assert report.nonce.hex() == "931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb"
    assert (opaque.driver_version, opaque.vbios_version) == ("550.90.07", "96.00.9f.00.01")
    assert len(opaque.fwid) == 48 and opaque.nvdec0_disabled
    assert describe(report)["response"]["opaque"]["driver_version"] == "550.90.07"


def test_vbios_formatting_matches_the_spec_example():
    assert format_vbios_version(bytes.fromhex("009f009601000000")) == "96.00.9f.00.01"


def test_hex_and_binary_inputs_agree(hopper_2025):
    assert parse_report(hopper_2025.report) == parse_report(bytes.fromhex(hopper_2025.report.decode()))


@pytest.mark.parametrize("offset, value, field", [
    (0, 0x10, "SPDMVersion"), (1, 0xE1, "RequestResponseCode"),
    (REQUEST_SIZE + 1, 0x61, "RequestResponseCode"),
    (REQUEST_SIZE + 9, 0x02, "MeasurementSpecification"),
])
def test_wrong_header_bytes_name_the_field(hopper_2025, offset, value, field):
    raw = bytearray(bytes.fromhex(hopper_2025.report.decode()))
    raw[offset] = value
    with pytest.raises(ParseError) as info:
        parse_report(bytes(raw))
    assert field in info.value.field


@pytest.mark.parametrize("cut", [0, 10, REQUEST_SIZE, REQUEST_SIZE + 5, REQUEST_SIZE + 8, 3565, 3597, 3600, 4000,
                                 4117 - SIGNATURE_SIZE, 4116])
def test_truncation_at_structure_boundaries_is_a_parse_error(hopper_2025, cut):
    raw = bytes.fromhex(hopper_2025.report.decode())
    with pytest.raises(ParseError):
        parse_report(raw[:cut])


def test_trailing_bytes_are_refused(hopper_2025):
    with pytest.raises(ParseError) as info:
        parse_report(bytes.fromhex(hopper_2025.report.decode()) + b"\0")
    assert info.value.field == "Signature"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600))
def test_random_input_raises_only_parse_error(data):
    try:
        parse_report(data)
    except ParseError:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_reports_raise_only_parse_error(hopper_2025, data):
    raw = bytearray(bytes.fromhex(hopper_2025.report.decode()))
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        parse_report(bytes(raw[:cut]))
    except ParseError:
        pass
