"""The TEE key a release is wrapped to (keybroker.kbs.jwe.tee_key, evidence.check_tee_pubkey): what is accepted,
what is refused, and that a wrap to an accepted key decrypts only under its private key."""

from __future__ import annotations

import base64

import pytest
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.util import urlsafe_b64encode

from keybroker.kbs import jwe
from keybroker.kbs.evidence import EvidenceRejected, check_tee_pubkey


def public(key) -> dict:
    return key.as_dict(private=False)


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
def test_each_ec_curve_round_trips(crv):
    key = ECKey.generate_key(crv, private=True)
    jwk = public(key) | {"alg": "ECDH-ES+A256KW"}
    check_tee_pubkey(jwk)
    assert jwe.unwrap(jwe.wrap(jwk, b"secret value"), key) == b"secret value"
    assert jwe.tee_key(jwk)[0].as_dict(private=False) == public(key)   # the same point joserfc would import


def test_rsa_oaep_round_trips():
    key = RSAKey.generate_key(2048, private=True)
    jwk = public(key) | {"alg": "RSA-OAEP-256"}
    assert jwe.unwrap(jwe.wrap(jwk, b"k" * 32), key) == b"k" * 32


def test_a_wrap_does_not_decrypt_under_another_key():
    key, other = ECKey.generate_key("P-256", private=True), ECKey.generate_key("P-256", private=True)
    with pytest.raises(JoseError):
        jwe.unwrap(jwe.wrap(public(key), b"x" * 32), other)


def _coordinate(n: int, size: int) -> str:
    return urlsafe_b64encode(n.to_bytes(size, "big")).decode()


def _off_curve(jwk: dict) -> dict:
    y = base64.urlsafe_b64decode(jwk["y"] + "==")
    return jwk | {"y": urlsafe_b64encode(y[:-1] + bytes([y[-1] ^ 1])).decode()}


def _short_x(jwk: dict) -> dict:
    """x's last byte moved to the front of y: x ‖ y is still the key's valid point, but x is 31 bytes."""
    x, y = (base64.urlsafe_b64decode(jwk[c] + "==") for c in "xy")
    return jwk | {"x": urlsafe_b64encode(x[:31]).decode(), "y": urlsafe_b64encode(x[31:] + y).decode()}


REFUSED = {
    "off the curve": _off_curve,
    "coordinates of the wrong sizes": _short_x,
    "unsupported curve": lambda jwk: jwk | {"crv": "secp256k1"},
    "another algorithm": lambda jwk: jwk | {"alg": "ECDH-ES"},
    "x not base64url": lambda jwk: jwk | {"x": jwk["x"][:-2] + "+/"},
    "x not a string": lambda jwk: jwk | {"x": 5},
    "y missing": lambda jwk: {k: v for k, v in jwk.items() if k != "y"},
    "symmetric": lambda jwk: {"kty": "oct", "k": "AAAA"},
    "no kty": lambda jwk: {k: v for k, v in jwk.items() if k != "kty"},
}


@pytest.mark.parametrize("change", REFUSED.values(), ids=REFUSED.keys())
def test_unusable_ec_keys_are_refused(change):
    jwk = change(public(ECKey.generate_key("P-256", private=True)))
    with pytest.raises(ValueError):
        jwe.tee_key(jwk)
    with pytest.raises(EvidenceRejected) as caught:
        check_tee_pubkey(jwk)
    assert caught.value.reason.code == "kbs.tee_pubkey"


def test_short_rsa_and_rsa_without_oaep_are_refused():
    weak = public(RSAKey.generate_key(1024, private=True)) | {"alg": "RSA-OAEP-256"}
    plain = public(RSAKey.generate_key(2048, private=True))           # no alg: which padding is not said
    for jwk in (weak, plain):
        with pytest.raises(EvidenceRejected):
            check_tee_pubkey(jwk)


def test_the_origin_is_refused():
    zero = _coordinate(0, 32)
    with pytest.raises(ValueError):
        jwe.tee_key({"kty": "EC", "crv": "P-256", "x": zero, "y": zero})


def test_an_accepted_ec_key_is_remembered_and_a_refused_one_is_not():
    key = ECKey.generate_key("P-256", private=True)
    jwk = public(key)
    first = jwe.tee_key(jwk)[0]
    assert jwe.tee_key(dict(jwk))[0] is first                 # the attest's check and the release's wrap share it
    size = jwe._ec_key.cache_info().currsize
    off_curve = jwk | {"y": _coordinate(1, 32)}
    for _ in range(2):
        with pytest.raises(ValueError):
            jwe.tee_key(off_curve)
    with pytest.raises(ValueError):
        jwe.tee_key(jwk | {"x": "é" * 43})                    # not base64url ASCII
    assert jwe._ec_key.cache_info().currsize == size
    assert jwe.unwrap(jwe.wrap(jwk, b"k" * 32), key) == b"k" * 32
