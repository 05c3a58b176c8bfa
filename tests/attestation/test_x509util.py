"""Certificate loading keeps DER exactly as given (its last byte may be zero)."""

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from attestation.x509util import load_certificates


def _cert_ending_in_zero() -> x509.Certificate:
    """Sign fresh certificates until one's DER ends with a zero byte (about 1 in 256)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "zero tail")])
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for serial in range(1, 5000):
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(serial).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                .sign(key, hashes.SHA256()))
        if cert.public_bytes(Encoding.DER).endswith(b"\x00"):
            return cert
    raise AssertionError("no certificate with a zero last byte in 5000 tries")


def test_der_ending_in_zero_loads_unchanged():
    cert = _cert_ending_in_zero()
    der = cert.public_bytes(Encoding.DER)
    assert load_certificates(der) == [cert]


def test_pem_with_trailing_nuls_loads():
    cert = _cert_ending_in_zero()
    assert load_certificates(cert.public_bytes(Encoding.PEM) + b"\x00\x00") == [cert]
