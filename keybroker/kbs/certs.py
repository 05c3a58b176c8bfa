"""Broker-issued enclave certificates: the alternative to every client checking evidence itself.

An enclave attests with its TLS key as the KBS `tee-pubkey`, then asks
`POST /kbs/v0/certificate` for a certificate naming a resource (the model's
key). The broker evaluates that resource's bound release policy on the
attestation's claims exactly as for a release; if it allows, it issues a
short-lived X.509 certificate for the attested key under the broker's enclave
CA, and logs the issuance (kind "release", action "certificate") or the
denial. Clients then use ordinary TLS with the CA (`GET /kbs/v0/enclave-ca`)
as their only root: they trust the broker's decision instead of verifying
evidence, and revocation is expiry.

The CA certificate is derived deterministically from the CA key (sealed in the
database like the token key: RFC 6979 signatures, fixed serial and validity),
so every replica publishes byte-identical CA certificates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .. import journal
from ..audit.calls import BatchRejected, public_key_of
from ..db.engine import as_utc, utcnow
from ..errors import BadRequest, Unauthenticated
from ..state import BrokerState
from .release import Caller, Denied, decide, log_denial, resource_path

DEFAULT_NAMES = ("veil-enclave",)      # enclave.server.tls.SERVER_NAME: the name enclave clients ask for
MAX_NAMES = 8
_DNS = re.compile(r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")
CA_YEARS = 10


def ca_certificate(state: BrokerState) -> x509.Certificate:
    kid, key, created = state.keys.ca
    return _ca(kid, key, as_utc(created), state.settings.issuer)


@lru_cache(maxsize=4)
def _ca(kid: str, key: ec.EllipticCurvePrivateKey, created: dt.datetime, issuer: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"Veil enclave CA {kid}")])
    start = created.replace(microsecond=0)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(int.from_bytes(hashlib.sha256(kid.encode()).digest()[:16], "big") >> 1)
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256(), ecdsa_deterministic=True))


def ca_pem(state: BrokerState) -> str:
    return ca_certificate(state).public_bytes(Encoding.PEM).decode()


def _names(body: dict) -> tuple[str, ...]:
    names = body.get("names", list(DEFAULT_NAMES))
    if not isinstance(names, list) or not 1 <= len(names) <= MAX_NAMES or \
            not all(isinstance(n, str) and _DNS.match(n) for n in names):
        raise BadRequest("cert.names", f"names must be 1 to {MAX_NAMES} lower-case DNS names")
    return tuple(dict.fromkeys(names))


def issue(state: BrokerState, caller: Caller, body: dict) -> dict[str, str]:
    """A certificate for the attested TEE key, if the named resource's policy allows these claims."""
    if not isinstance(body.get("resource"), str) or body["resource"].count("/") != 2:
        raise BadRequest("cert.resource", "give the resource (repo/type/tag) whose release policy must allow "
                                          "this enclave")
    path = resource_path(*body["resource"].split("/"))
    names = _names(body)
    try:
        att, res, pol, _, claims, claims_jcs = decide(state, caller, path)
    except Denied as exc:
        log_denial(state, path, exc.denial, action="certificate")
        raise exc.denial.error from None
    try:
        key = public_key_of(json.loads(att.tee_pubkey_json))
    except BatchRejected:
        raise Unauthenticated("cert.tee_pubkey", "the attested tee-pubkey is not an EC P-256/P-384 key; a "
                                                 "certificate needs the enclave's TLS key as tee-pubkey") from None
    now = utcnow()
    not_after = now + dt.timedelta(seconds=state.settings.enclave_cert_ttl_s)
    ca_cert = ca_certificate(state)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_cert.subject).public_key(key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in names]
                + [x509.UniformResourceIdentifier(f"urn:veil:attestation:{att.id}"),
                   x509.UniformResourceIdentifier(f"urn:veil:policy:{pol.name}:{pol.version}:{pol.digest}")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(state.keys.ca[1].public_key()),
                           critical=False)
            .sign(state.keys.ca[1], hashes.SHA256()))
    pending = journal.prepare(tenant=res.tenant, kind="release", decision="allow", time=now,
                              session_id=att.session_id, tee=att.tee, claims=claims, claims_jcs=claims_jcs,
                              resource=str(path), action="certificate", policy_id=pol.name,
                              policy_version=pol.version, policy_digest=pol.digest)
    with state.writes() as db:
        journal.append_pending(db, state.log_signer, state.settings.log_origin, pending)
    return {"certificate": cert.public_bytes(Encoding.PEM).decode(), "ca": ca_cert.public_bytes(Encoding.PEM).decode(),
            "not_after": not_after.isoformat()}
