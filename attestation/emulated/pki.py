"""Certificates and CRLs of the emulated vendor hierarchies.

Same shapes as the real ones (common names, key types, signature algorithms,
basic constraints, key usages, AMD CRL distribution points), but every name
carries O="Veil Emulated Vendor" so nobody mistakes an emulated certificate for
Intel's or AMD's.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

EMULATED_ORG = "Veil Emulated Vendor"
NOT_BEFORE = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
NOT_AFTER = dt.datetime(2049, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)

INTEL_ROOT_CN = "Intel SGX Root CA"
INTEL_PLATFORM_CA_CN = "Intel SGX PCK Platform CA"
INTEL_PCK_CN = "Intel SGX PCK Certificate"
INTEL_TCB_SIGNING_CN = "Intel SGX TCB Signing"

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def amd_pss() -> padding.PSS:
    """RSASSA-PSS as AMD uses it: SHA-384, MGF1-SHA-384, 48-byte salt."""
    return padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)


def intel_name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, EMULATED_ORG),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
    ])


def amd_name(cn: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Engineering"),
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, "Santa Clara"),
        x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, EMULATED_ORG),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def new_ec_key(curve: ec.EllipticCurve = ec.SECP256R1()) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve)


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=4096)


def _usage(*, ca: bool, sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=sign, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                         crl_sign=ca, encipher_only=False, decipher_only=False)


def issue(*, subject: x509.Name, public_key, issuer: x509.Name, issuer_key: Key,
          ca: bool, path_length: int | None = None,
          extensions: Sequence[x509.ExtensionType] = (), crl_url: str | None = None,
          not_before: dt.datetime = NOT_BEFORE,
          not_after: dt.datetime = NOT_AFTER) -> x509.Certificate:
    """Issue one certificate; RSA issuers sign with AMD's PSS parameters, EC issuers ECDSA-SHA256/384."""
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(secrets.randbits(127) | 1)
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None),
                              critical=True)
               .add_extension(_usage(ca=ca, sign=not ca), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    if crl_url:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return _sign(builder, issuer_key)


def _sign(builder, key: Key):
    if isinstance(key, rsa.RSAPrivateKey):
        return builder.sign(key, hashes.SHA384(), rsa_padding=amd_pss())
    hash_alg = hashes.SHA384() if isinstance(key.curve, ec.SECP384R1) else hashes.SHA256()
    return builder.sign(key, hash_alg)


def empty_crl(issuer: x509.Certificate, issuer_key: Key, *, this_update: dt.datetime,
              next_update: dt.datetime) -> bytes:
    """A DER CRL with no entries, signed like the issuer signs certificates."""
    builder = (x509.CertificateRevocationListBuilder()
               .issuer_name(issuer.subject)
               .last_update(this_update).next_update(next_update)
               .add_extension(x509.CRLNumber(1), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer_key.public_key()), critical=False))
    return _sign(builder, issuer_key).public_bytes(Encoding.DER)


# ------------------------------------------------------------------ hierarchies

def intel_root(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = intel_name(INTEL_ROOT_CN)
    return issue(subject=name, public_key=key.public_key(), issuer=name, issuer_key=key,
                 ca=True, path_length=1)


def intel_ca(key: ec.EllipticCurvePrivateKey, root: x509.Certificate,
             root_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return issue(subject=intel_name(INTEL_PLATFORM_CA_CN), public_key=key.public_key(),
                 issuer=root.subject, issuer_key=root_key, ca=True, path_length=0)


def intel_tcb_signing(key: ec.EllipticCurvePrivateKey, root: x509.Certificate,
                      root_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return issue(subject=intel_name(INTEL_TCB_SIGNING_CN), public_key=key.public_key(),
                 issuer=root.subject, issuer_key=root_key, ca=False)


def kds_crl_url(product: str, hierarchy: str) -> str:
    """AMD's CRL location for the product (verifiers check the ARK/ASK distribution point)."""
    return f"https://kdsintf.amd.com/{hierarchy}/v1/{product}/crl"


def amd_ark(key: rsa.RSAPrivateKey, product: str) -> x509.Certificate:
    name = amd_name(f"ARK-{product}")
    return issue(subject=name, public_key=key.public_key(), issuer=name, issuer_key=key,
                 ca=True, crl_url=kds_crl_url(product, "vcek"))


def amd_intermediate(key: rsa.RSAPrivateKey, cn: str, hierarchy: str, product: str,
                     ark: x509.Certificate, ark_key: rsa.RSAPrivateKey) -> x509.Certificate:
    return issue(subject=amd_name(cn), public_key=key.public_key(), issuer=ark.subject,
                 issuer_key=ark_key, ca=True, path_length=0,
                 crl_url=kds_crl_url(product, hierarchy))
