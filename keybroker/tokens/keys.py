"""The broker's own signing keys, kept in the database sealed under the KEK.

Every replica loads the same keys (created by whichever replica starts first),
so a token signed by one verifies at another and the JWKS is the same
everywhere. Keys are loaded once at start, never per request.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..db.engine import utcnow
from ..db.models import SigningKey
from ..resources.kek import Kek, Sealed, seal, unseal

PURPOSES = ("token", "log", "enclave-ca")
EC_PURPOSES = ("token", "enclave-ca")


def _generate(purpose: str):
    return ec.generate_private_key(ec.SECP256R1()) if purpose in EC_PURPOSES else ed25519.Ed25519PrivateKey.generate()


def _public_jwk(purpose: str, key) -> dict:
    if purpose in EC_PURPOSES:
        jwk = ECKey.import_key(key.public_key()).as_dict(private=False)
        jwk.update(alg="ES256", use="sig")
    else:
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
               "alg": "EdDSA", "use": "sig"}
    thumb = hashlib.sha256(json.dumps(jwk, sort_keys=True).encode()).hexdigest()[:16]
    jwk["kid"] = f"{purpose}-{thumb}"
    return jwk


def _private_der(key) -> bytes:
    return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _aad(kid: str) -> bytes:
    return f"veil-signing-key\0{kid}".encode()


def _create(factory: sessionmaker[Session], kek: Kek, purpose: str) -> None:
    key = _generate(purpose)
    jwk = _public_jwk(purpose, key)
    sealed = seal(kek, _private_der(key), _aad(jwk["kid"]))
    try:
        with factory.begin() as session:
            if session.execute(select(SigningKey.kid).where(SigningKey.purpose == purpose)).first():
                return                      # another replica got there first
            session.add(SigningKey(kid=jwk["kid"], purpose=purpose, public_jwk=json.dumps(jwk),
                                   sealed_private=sealed.ciphertext, wrapped_key=sealed.wrapped_key,
                                   kek_id=sealed.kek_id, created_at=utcnow()))
    except IntegrityError:
        pass


class SigningKeys:
    """The active token key (ES256), the log key (Ed25519), the enclave CA key (ECDSA P-256, see
    keybroker.kbs.certs) and every public token key (JWKS)."""

    def __init__(self, token_kid: str, token_key: ec.EllipticCurvePrivateKey,
                 log_key: ed25519.Ed25519PrivateKey, jwks: dict, ca: tuple[str, ec.EllipticCurvePrivateKey, object]
                 | None = None) -> None:
        self.token_kid = token_kid
        self.token_key = token_key
        self.log_key = log_key
        self.jwks = jwks
        self.ca = ca                         # (kid, key, created_at) of the enclave CA

    def __repr__(self) -> str:
        return f"SigningKeys(token_kid={self.token_kid!r})"

    def public_token_key(self, kid: str):
        for jwk in self.jwks["keys"]:
            if jwk["kid"] == kid:
                return ECKey.import_key(jwk).get_op_key("verify")
        return None

    @classmethod
    def load(cls, factory: sessionmaker[Session], kek: Kek) -> SigningKeys:
        for purpose in PURPOSES:
            with factory() as session:
                present = session.execute(select(SigningKey.kid).where(SigningKey.purpose == purpose)).first()
            if not present:
                _create(factory, kek, purpose)
        with factory() as session:
            rows = session.execute(select(SigningKey).order_by(SigningKey.created_at.desc())).scalars().all()
        newest = {p: next(r for r in rows if r.purpose == p) for p in PURPOSES}
        keys = {p: serialization.load_der_private_key(
            unseal(kek, Sealed(r.sealed_private, r.wrapped_key, r.kek_id), _aad(r.kid)), None)
            for p, r in newest.items()}
        jwks = {"keys": [json.loads(r.public_jwk) for r in rows if r.purpose == "token"]}
        ca = newest["enclave-ca"]
        return cls(newest["token"].kid, keys["token"], keys["log"], jwks, (ca.kid, keys["enclave-ca"], ca.created_at))
