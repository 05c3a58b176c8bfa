"""The enclave's TLS identity: an ephemeral key made inside the enclave, a self-signed certificate.

The private key never leaves this process's memory (it is handed to gRPC's
TLS stack as PEM bytes, never written). What makes a client trust the
certificate is not a CA but the attestation: GetAttestation returns evidence
whose report data binds the JWK of this certificate's public key
(enclave.server.attest). The alternative: the key broker issues a certificate
for the attested key (`use_issued`; docs/enclave.md).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SERVER_NAME = "veil-enclave"   # the DNS name in every enclave certificate (clients override the target name)
_CURVES = {"secp256r1": ("P-256", 32), "secp384r1": ("P-384", 48)}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """RFC 7517 JWK of an EC public key (kty, crv, x, y): the KBS protocol's tee-pubkey form."""
    try:
        crv, size = _CURVES[key.curve.name]
    except KeyError:
        raise ValueError(f"unsupported TLS key curve {key.curve.name}; expected P-256 or P-384") from None
    numbers = key.public_numbers()
    return {"kty": "EC", "crv": crv, "x": _b64url(numbers.x.to_bytes(size, "big")),
            "y": _b64url(numbers.y.to_bytes(size, "big"))}


def certificate_jwk(certificate: x509.Certificate) -> dict[str, Any]:
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the server's TLS certificate does not carry an EC public key")
    return public_jwk(key)


class TlsIdentity:
    """A fresh P-256 key and a self-signed certificate for SERVER_NAME (and the given extra names)."""

    def __init__(self, *, names: tuple[str, ...] = (), lifetime: dt.timedelta = dt.timedelta(days=7),
                 now: dt.datetime | None = None) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = now or dt.datetime.now(dt.timezone.utc)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME),
                             x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Veil enclave (attested, ephemeral)")])
        dns = [x509.DNSName(n) for n in dict.fromkeys((SERVER_NAME, "localhost", *names))]
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + lifetime)
            .add_extension(x509.SubjectAlternativeName(dns), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )

    def use_issued(self, certificate_pem: str | bytes) -> None:
        """Serve a certificate the key broker issued for this key (keybroker.kbs.certs) instead of the
        self-signed one; attestation binds the same key either way."""
        issued = x509.load_pem_x509_certificate(certificate_pem.encode() if isinstance(certificate_pem, str)
                                                else certificate_pem)
        if issued.public_key() != self._key.public_key():
            raise ValueError("the issued certificate is for another key")
        self.certificate = issued

    def __repr__(self) -> str:
        return f"TlsIdentity(<ephemeral P-256>, sha256 {self.fingerprint()[:16]}…)"

    def __reduce__(self):
        raise TypeError("TlsIdentity holds a private key and cannot be pickled")

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def fingerprint(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def jwk(self) -> dict[str, Any]:
        return public_jwk(self._key.public_key())

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._key.public_key()

    def sign(self, data: bytes) -> bytes:
        """ECDSA-SHA256 (DER) with the attested TLS key (the per-call audit signs its chain with it)."""
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    def server_credentials(self):
        """gRPC server credentials for this identity (TLS 1.2+; no client certificate asked)."""
        import grpc

        key_pem = self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())
        return grpc.ssl_server_credentials([(key_pem, self.certificate_pem)])
