"""NRAS EAT tokens against a local JWKS, and the NVML attester's error paths (no GPU here)."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.attesters import NvmlGpuAttester
from attestation.errors import AttesterError, ParseError, VerificationError
from attestation.nvidia.nras import verify_nras_token

NONCE = bytes(range(32))
KEY = ec.generate_private_key(ec.SECP384R1())


def jwks(key=KEY, kid="k1"):
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {"keys": [dict(public, kid=kid, alg="ES384")]}


def token(*, nonce=NONCE, result=True, measres="success", key=KEY, tamper_digest=False):
    now = int(time.time())
    gpu = jwt.encode({"measres": measres, "x-nvidia-gpu-driver-version": "550.90.07",
                      "x-nvidia-gpu-vbios-version": "96.00.9F.00.01", "x-nvidia-gpu-arch-check": True,
                      "iat": now, "exp": now + 300}, key, algorithm="ES384", headers={"kid": "k1"})
    digest = hashlib.sha256((gpu + ("x" if tamper_digest else "")).encode()).hexdigest()
    overall = jwt.encode({"iss": "https://nras.attestation.nvidia.com", "eat_nonce": nonce.hex(),
                          "x-nvidia-overall-att-result": result, "submods": {"GPU-0": ["DIGEST", ["SHA256", digest]]},
                          "iat": now, "nbf": now - 5, "exp": now + 300}, key, algorithm="ES384", headers={"kid": "k1"})
    return json.dumps([["JWT", overall], {"GPU-0": gpu}])


def now():
    return datetime.now(timezone.utc)


def test_locally_issued_token_verifies():
    (gpu,) = verify_nras_token(token(), jwks(), nonce=NONCE, at=now())
    assert gpu.source == "nras" and gpu.driver_version == "550.90.07" and gpu.vbios_version == "96.00.9f.00.01"


@pytest.mark.parametrize("kwargs, check", [
    ({"nonce": bytes(32)}, "nvidia.nonce"),
    ({"result": False}, "nvidia.nras_result"),
    ({"measres": "fail"}, "nvidia.measurements"),
    ({"tamper_digest": True}, "nvidia.nras_submods"),
    ({"key": ec.generate_private_key(ec.SECP384R1())}, "nvidia.nras_signature"),
])
def test_bad_tokens_are_rejected(kwargs, check):
    with pytest.raises(VerificationError) as info:
        verify_nras_token(token(**kwargs), jwks(), nonce=NONCE, at=now())
    assert info.value.check == check


def test_expired_token_is_rejected():
    with pytest.raises(VerificationError) as info:
        verify_nras_token(token(), jwks(), nonce=NONCE, at=datetime(2100, 1, 1, tzinfo=timezone.utc))
    assert info.value.check == "nvidia.nras_expired"


def test_malformed_token_is_a_parse_error():
    with pytest.raises(ParseError):
        verify_nras_token("[1, 2]", jwks(), nonce=NONCE, at=now())


# ------------------------------------------------------------------ NVML attester

def test_missing_nvml_library_is_an_attester_error():
    def loader():
        raise AttesterError("pynvml", "not installed")
    with pytest.raises(AttesterError) as info:
        NvmlGpuAttester(loader).collect(bytes(32))
    assert info.value.missing == "pynvml"


def test_real_pynvml_without_a_driver_is_an_attester_error():
    with pytest.raises(AttesterError) as info:
        NvmlGpuAttester().collect(bytes(32))
    assert info.value.missing in ("NVIDIA driver", "pynvml")


class FakeNvml:
    def __init__(self, cc=1, count=1):
        self.cc, self.count, self.shutdown = cc, count, False

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlSystemGetConfComputeState(self):
        return SimpleNamespace(ccFeature=self.cc)

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetConfComputeGpuAttestationReport(self, handle, nonce):
        return SimpleNamespace(attestationReport=b"R" * 10, attestationReportSize=4)

    def nvmlDeviceGetConfComputeGpuCertificate(self, handle):
        return SimpleNamespace(attestationCertChain=b"C" * 10, attestationCertChainSize=3)

    def nvmlDeviceGetUUID(self, handle):
        return b"GPU-1234"


@pytest.mark.parametrize("nvml, missing", [(FakeNvml(cc=0), "GPU confidential computing"),
                                           (FakeNvml(count=0), "NVIDIA GPU")])
def test_cc_off_or_no_gpu_is_an_attester_error(nvml, missing):
    with pytest.raises(AttesterError) as info:
        NvmlGpuAttester(lambda: nvml).collect(bytes(32))
    assert info.value.missing == missing and nvml.shutdown


def test_fake_nvml_collects_report_and_chain():
    (gpu,) = NvmlGpuAttester(lambda: FakeNvml()).collect(bytes(32))
    assert (gpu.report, gpu.certificates, gpu.uuid, gpu.cc_mode) == (b"RRRR", b"CCC", "GPU-1234", "on")
