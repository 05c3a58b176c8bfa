"""The KBS report-data binding rule, against a test vector of the KBS protocol (trustee kbs/docs/kbs_attestation_protocol.md)."""

import pytest

from attestation import binding
from attestation.errors import VerificationError

NONCE = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
JWK = {"alg": "ECDH-ES+A256KW", "crv": "P-256", "kty": "EC",
       "x": "uGo3n2Gi9NzYsmJGDOYr04e79LFKY4jP_tSnDSETWOg",
       "y": "Kh8jDg_OQcha40pxZ06sEO_0t4NxJw_I0N-d-TXTzs0"}
D = "832e0f69dd336e01bd0cbaf5d28284b1cb679ddcd3f5761dc6687404d2eb322a35ae2358f6c62e57aae2689dda0c5e87"
P = "9c7f40e956366ccceb01fed8a2e7857973387e7f884f807bb3b159acc88b7703ed9760f0fbbee801b328bf2f6b690248"


def test_device_digest_matches_spec_vector():
    assert binding.device_nonce_digest(NONCE, JWK).hex() == D
    assert binding.gpu_nonce(NONCE, JWK).hex() == D[:64]


def test_report_data_matches_spec_vector_zero_padded():
    data = binding.report_data(NONCE, JWK)
    assert data.hex() == P + "00" * 16
    binding.check_report_data(data.hex(), NONCE, JWK)


@pytest.mark.parametrize("change", ["nonce", "key", "additional"])
def test_binding_to_anything_else_fails(change):
    data = binding.report_data(NONCE, JWK).hex()
    nonce, jwk, extra = NONCE, dict(JWK), ""
    if change == "nonce":
        nonce = "A" + NONCE[1:].replace("A", "B", 1)
    elif change == "key":
        jwk["x"] = jwk["x"][:-1] + "A"
    else:
        extra = "gpu"
    with pytest.raises(VerificationError) as info:
        binding.check_report_data(data, nonce, jwk, additional_evidence=extra)
    assert info.value.check == "binding.report_data"
    assert info.value.actual == data


def test_sha512_digest_fills_report_data_exactly():
    digest = binding.runtime_data_digest(NONCE, JWK, hash_alg="sha512")
    assert len(digest) == 64
    assert binding.report_data(NONCE, JWK, hash_alg="sha512") == digest


def test_unknown_hash_is_rejected():
    with pytest.raises(ValueError, match="unsupported binding hash"):
        binding.report_data(NONCE, JWK, hash_alg="md5")
