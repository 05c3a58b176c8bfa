"""EAR attestation tokens (JWT, ES256) as a relying party checks them (keybroker.tokens.ear.verify).

Only Unauthenticated (the broker's 401) may come out.
"""

from __future__ import annotations

from joserfc.jwk import ECKey

from keybroker.errors import Unauthenticated
from keybroker.tokens.ear import verify
from keybroker.tokens.keys import SigningKeys

from ._fixed import ec_key, ed_key

ISSUER = "https://veil-fuzz.invalid"
_TOKEN = ec_key(2)
_JWK = {**ECKey.import_key(_TOKEN.public_key()).as_dict(private=False), "alg": "ES256", "use": "sig",
        "kid": "token-fuzz"}
KEYS = SigningKeys("token-fuzz", _TOKEN, ed_key(3), {"keys": [_JWK]})


def test_one_input(data: bytes) -> None:
    try:
        verify(KEYS, data.decode("utf-8", "surrogateescape"), issuer=ISSUER)
    except Unauthenticated:
        pass
