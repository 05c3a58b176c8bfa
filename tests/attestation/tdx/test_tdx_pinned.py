"""Intel's pinned intermediates: only a byte-identical copy skips its signature check."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.anchors import vendor_anchors
from attestation.errors import VerificationError
from attestation.tdx import trust


def _intel():
    return vendor_anchors().intel()[0]


def _resigned(cert: x509.Certificate) -> x509.Certificate:
    """The same certificate (names, key, serial, dates, extensions) signed by another key."""
    builder = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
               .public_key(cert.public_key()).serial_number(cert.serial_number % (1 << 159))
               .not_valid_before(cert.not_valid_before_utc).not_valid_after(cert.not_valid_after_utc))
    for ext in cert.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    return builder.sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())


def test_intel_anchor_pins_platform_ca_and_both_tcb_signing_issuances():
    names = sorted(c.subject.rfc4514_string().split("CN=")[1] for c in _intel().intermediates)
    assert names == ["Intel SGX PCK Platform CA", "Intel SGX TCB Signing", "Intel SGX TCB Signing"]


def test_pinned_intermediate_is_accepted_under_its_root():
    anchor = _intel()
    trust.clear_caches()
    for cert in anchor.intermediates:
        trust.issued_by(cert, anchor.certificate, check="tdx.pck_chain", anchor=anchor)


@pytest.mark.parametrize("index", [0, 1, 2])
def test_a_resigned_copy_of_a_pinned_intermediate_is_verified_and_fails(index):
    anchor = _intel()
    fake = _resigned(anchor.intermediates[index])
    assert fake != anchor.intermediates[index]
    assert fake.subject == anchor.intermediates[index].subject
    trust.clear_caches()
    with pytest.raises(VerificationError) as err:
        trust.issued_by(fake, anchor.certificate, check="tdx.pck_chain", anchor=anchor)
    assert err.value.check == "tdx.pck_chain"


def test_a_pinned_intermediate_under_another_root_is_verified():
    anchor = _intel()
    other = _resigned(anchor.certificate)   # same name and key, different DER
    trust.clear_caches()
    # the link is verified (not skipped): the genuine signature still verifies under the same key
    trust.issued_by(anchor.intermediates[0], other, check="tdx.pck_chain", anchor=anchor)
    assert not anchor.pins(anchor.intermediates[0], other)
