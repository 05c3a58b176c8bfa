"""NVIDIA RIM (SWID tag XML with an enveloped XML-DSig): parse and read the signer certificates.

Only AttestationError (ParseError for structure, VerificationError for a bad
signer certificate) may come out.
"""

from __future__ import annotations

from attestation.errors import AttestationError
from attestation.nvidia.rim import parse_xml, rim_from_element, signer_certificates


def test_one_input(data: bytes) -> None:
    try:
        root = parse_xml(data)
        rim_from_element(root)
        signer_certificates(root)
    except AttestationError:
        pass
