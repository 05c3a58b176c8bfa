"""BearerAuth remembers tokens that verified, and still refuses them once they expire.

The enclave checks a bearer JWT on every VllmEngine call; a client sends the
same token each time, so the signature check is done once per token. These
tests hold the cache to the rules of a full check.
"""

from __future__ import annotations

import datetime as dt
import time

import jwt
import pytest

from enclave.server import BearerAuth
from tests.enclave.conftest import JwtIssuer


def auth_for(issuer: JwtIssuer, **kwargs) -> BearerAuth:
    return BearerAuth(jwks=issuer.jwks, audience=issuer.audience, **kwargs)


def test_a_verified_token_is_checked_once_then_remembered(issuer, monkeypatch):
    auth = auth_for(issuer)
    token = issuer.token("alice")
    assert auth.principal(token) == "alice"
    calls = []
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or pytest.fail("verified again"))
    assert auth.principal(token) == "alice"
    assert calls == []


def test_a_remembered_token_is_refused_once_it_expires(issuer):
    auth = auth_for(issuer, leeway=dt.timedelta(0))
    now = int(time.time())
    token = jwt.encode({"sub": "alice", "aud": issuer.audience, "exp": now + 4}, issuer.key, algorithm="ES256",
                       headers={"kid": "test-1"})
    assert auth.principal(token) == "alice"                # 3 to 4 s before it expires: room for a slow machine
    time.sleep(max(0.0, now + 4.05 - time.time()))
    with pytest.raises(jwt.ExpiredSignatureError):
        auth.principal(token)
    with pytest.raises(jwt.ExpiredSignatureError):      # and it stays refused
        auth.principal(token)


def test_leeway_applies_to_remembered_tokens_as_to_fresh_ones(issuer):
    auth = auth_for(issuer, leeway=dt.timedelta(seconds=60))
    token = issuer.token("alice", expires_in=-30)      # expired 30 s ago, inside the leeway
    assert auth.principal(token) == "alice"
    assert auth.principal(token) == "alice"


def test_a_rejected_token_is_never_remembered(issuer):
    auth = auth_for(issuer)
    forged = issuer.token("mallory", key=JwtIssuer().key)   # right kid, another key
    for _ in range(2):
        with pytest.raises(jwt.InvalidSignatureError):
            auth.principal(forged)
    with pytest.raises(jwt.InvalidAudienceError):
        auth.principal(issuer.token("bob", audience="someone-else"))
    assert auth._verified == {}


def test_the_cache_is_bounded_and_can_be_turned_off(issuer):
    auth = auth_for(issuer, cache_size=2)
    tokens = [issuer.token(f"user{i}") for i in range(3)]
    assert [auth.principal(t) for t in tokens] == ["user0", "user1", "user2"]
    assert list(auth._verified) == tokens[1:]               # the oldest went first
    off = auth_for(issuer, cache_size=0)
    assert off.principal(tokens[0]) == "user0" and off._verified == {}
    with pytest.raises(ValueError, match="cache_size"):
        auth_for(issuer, cache_size=-1)
