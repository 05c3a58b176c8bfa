"""RIM parsing is hardened: no DTDs or entities, random and mutated input raise only ParseError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attestation.errors import ParseError, VerificationError
from attestation.nvidia.rim import parse_rim, verify_rim
from tests.attestation.nvidia.nvidia_support import RIM_TIME, TEST_RIMS

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd">&lol3;</SoftwareIdentity>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<SoftwareIdentity xmlns="http://standards.iso.org/iso/19770/-2/2015/schema.xsd">
<Meta colloquialVersion="&xxe;"/></SoftwareIdentity>"""

PARAMETER_ENTITY = b"""<!DOCTYPE r [<!ENTITY % ext SYSTEM "http://example.invalid/x.dtd"> %ext;]><r/>"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY,
                                      BILLION_LAUGHS.replace(b"DOCTYPE", b"doctype")])
def test_entity_declarations_are_refused(document, anchors):
    with pytest.raises(ParseError) as info:
        parse_rim(document)
    assert "DTD" in info.value.message or "well-formed" in info.value.message
    with pytest.raises(ParseError):
        verify_rim("x", document, anchors, RIM_TIME)


def test_real_rim_parses(nvidia_dir):
    rim = parse_rim((nvidia_dir / "rims" / TEST_RIMS[0]).read_bytes())
    assert rim.version == "545.00" and len(rim.measurements) == 64 and len(rim.active()) == 21
    assert rim.manufacturer_id == "5703"


def test_duplicate_index_is_refused(nvidia_dir):
    data = (nvidia_dir / "rims" / TEST_RIMS[0]).read_bytes().replace(b'index="1"', b'index="0"', 1)
    with pytest.raises(ParseError) as info:
        parse_rim(data)
    assert "appears twice" in info.value.message


def test_unsigned_rim_is_never_used(nvidia_dir, anchors):
    data = (nvidia_dir / "rims" / TEST_RIMS[0]).read_bytes()
    start, end = data.index(b"<ds:Signature"), data.index(b"</ds:Signature>") + len(b"</ds:Signature>")
    with pytest.raises((ParseError, VerificationError)):
        verify_rim("x", data[:start] + data[end:], anchors, RIM_TIME)


def test_wrapped_content_outside_the_signature_is_refused(nvidia_dir, anchors):
    data = (nvidia_dir / "rims" / TEST_RIMS[0]).read_bytes()
    forged = data.replace(b'active="False"', b'active="True"', 1)
    with pytest.raises(VerificationError) as info:
        verify_rim("x", forged, anchors, RIM_TIME)
    assert info.value.check == "nvidia.rim_signature"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_parse_error(data):
    try:
        parse_rim(data)
    except ParseError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_rims_raise_only_parse_error(nvidia_dir, data):
    raw = bytearray((nvidia_dir / "rims" / TEST_RIMS[1]).read_bytes()[:3000])
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.sampled_from(b'<>"=&!0aZ \x00\xff'))
    try:
        parse_rim(bytes(raw) + b"</ns0:Payload></SoftwareIdentity>")
    except ParseError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet='<>/="!& abcdefSoftwareIdentityMetaPayloadResourceindexactiveTrue0123456789', max_size=300))
def test_xml_like_text_raises_only_parse_error(text):
    try:
        parse_rim(text.encode())
    except ParseError:
        pass
