"""The guest side of a KBS resource response: a flattened JWE wrapped to the TEE key (keybroker.kbs.jwe.unwrap).

A broker response is untrusted input to the enclave. Only joserfc's JoseError
(the JOSE library's documented error) may come out.
"""

from __future__ import annotations

import json

from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from keybroker.kbs.jwe import unwrap

from ._fixed import ec_key

KEY = ECKey.import_key(ec_key(1))


def test_one_input(data: bytes) -> None:
    try:
        response = json.loads(data)
    except ValueError:
        return
    try:
        unwrap(response, KEY)
    except JoseError:
        pass
