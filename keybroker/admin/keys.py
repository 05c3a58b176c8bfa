"""Admin key pairs: generated on the admin's machine (private key 0600, never printed), registered by
public JWK; and the short-lived tokens an admin client signs with them."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc.jwk import ECKey
from sqlalchemy.orm import Session

from ..db.engine import utcnow
from ..db.models import AdminKey
from ..errors import BadRequest, Conflict
from ..resources.paths import check_name
from .auth import ROLES


def public_jwk(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> dict:
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    jwk = ECKey.import_key(pub).as_dict(private=False)
    jwk["kid"] = ECKey.import_key(pub).thumbprint()
    return jwk


def generate(path: Path) -> dict:
    """A new P-256 admin key written to `path` (created 0600, refusing to overwrite); its public JWK."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return public_jwk(key)


def load_private(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path} is not a P-256 admin key")
    return key


def read_public_jwk(path: Path) -> dict:
    """An admin's public key from `path`: a public JWK (JSON, as `veil broker admin keygen` writes it) or a
    PEM public key, EC P-256. A private key is refused: only its owner should hold it."""
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"{"):
        try:
            jwk = json.loads(data)
        except ValueError:
            raise ValueError(f"{path} is not valid JSON") from None
        if not isinstance(jwk, dict) or "d" in jwk:
            raise ValueError(f"{path} is not a public JWK (it must be an object without the private part \"d\")")
        return jwk
    if b"PRIVATE KEY" in data:
        raise ValueError(f"{path} holds a private key; give the public key (the .pub.jwk beside it)")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ValueError(f"{path} is neither a public JWK (JSON) nor a PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path} is not an EC P-256 public key")
    return public_jwk(key)


def write_public_jwk(path: Path, jwk: dict) -> None:
    """The public JWK to `path` (refusing to overwrite), for whoever registers it."""
    with open(path, "x") as fh:
        fh.write(json.dumps(jwk, indent=2) + "\n")


def token(key: ec.EllipticCurvePrivateKey, *, audience: str = "veil-broker-admin", ttl_s: int = 120) -> str:
    """A single-use admin token (jti) valid for `ttl_s` seconds."""
    now = int(time.time())
    claims = {"aud": audience, "iat": now, "exp": now + ttl_s, "jti": uuid.uuid4().hex}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": public_jwk(key)["kid"]})


def check_roles(roles: list[str] | tuple[str, ...]) -> list[str]:
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise BadRequest("admin.roles", f"roles must be a non-empty subset of {', '.join(ROLES)}; got {roles}")
    return sorted(set(roles))


def register(db: Session, *, name: str, tenant: str, roles: list[str], jwk: dict) -> str:
    """Store an admin public key; returns its kid (the JWK thumbprint)."""
    check_name("tenant", tenant)
    try:
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256" or "d" in jwk:
            raise ValueError
        pub = ECKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")})
    except (ValueError, KeyError, TypeError):
        raise BadRequest("admin.public_jwk", "admin key must be a public EC P-256 JWK (no private part)") from None
    kid = pub.thumbprint()
    if db.get(AdminKey, kid) is not None:
        raise Conflict("admin.exists", f"admin key {kid} is already registered")
    db.add(AdminKey(kid=kid, name=name[:128], tenant=tenant, roles=" ".join(check_roles(roles)),
                    public_jwk=json.dumps(pub.as_dict(private=False)), created_at=utcnow(), disabled=False))
    db.flush()
    return kid
