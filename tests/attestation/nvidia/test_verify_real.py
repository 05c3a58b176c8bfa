"""Real Hopper evidence, chains and RIMs verify exactly as corpus/README.md says."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest
from tests.attestation.nvidia.nvidia_support import PROD_RIMS, RIM_TIME, TEST_RIMS, real_opts

from attestation.anchors import TrustAnchors
from attestation.collateral.nvidia import LocalRims
from attestation.errors import CollateralError, VerificationError
from attestation.nvidia.evidence import GpuEvidence
from attestation.nvidia.rim import verify_rim
from attestation.nvidia.spdm import parse_report
from attestation.nvidia.verify import REVOCATION_SKIPPED, verify_gpu_report, verify_gpus
from attestation.options import VerifyOptions


def nonce_of(evidence: GpuEvidence) -> bytes:
    return parse_report(evidence.report).nonce


def test_2023_sample_fully_passes_with_the_test_rims(hopper_2023, anchors, nvidia_dir):
    result = verify_gpus([hopper_2023], real_opts(anchors, nvidia_dir), nonce=nonce_of(hopper_2023))
    assert result.verified and result.errors == ()
    gpu = result.gpus[0]
    assert gpu.measurement_result == "success" and gpu.mismatching_indices == ()
    assert gpu.anchor.name == "nvidia-device-identity-ca" and gpu.anchor.kind == "vendor"
    assert (gpu.driver_version, gpu.vbios_version) == ("545.00", "96.00.5e.00.01")
    assert gpu.driver_rim_id == "NV_GPU_DRIVER_GH100_545.00"
    assert gpu.vbios_rim_id == "NV_GPU_VBIOS_1010_0200_882_96005E0001"
    assert gpu.certificate_serial == "50948c723fc935c7bd14b7c22833dfbe1dfd1145"
    assert gpu.cc_mode == "unknown" and REVOCATION_SKIPPED in gpu.warnings


def test_2023_sample_against_prod_vbios_rim_mismatches_1_2_3_9(hopper_2023, anchors, nvidia_dir):
    result = verify_gpus([hopper_2023], real_opts(anchors, nvidia_dir, PROD_RIMS), nonce=nonce_of(hopper_2023))
    assert not result.verified
    assert result.gpus[0].mismatching_indices == (1, 2, 3, 9)
    assert result.gpus[0].measurement_result == "fail"
    assert [(e.code, e.actual) for e in result.errors] == [("nvidia.measurements", "mismatching indices 1,2,3,9")]


@pytest.mark.parametrize("at", [datetime(2023, 6, 1, tzinfo=timezone.utc), datetime(2025, 7, 1, tzinfo=timezone.utc)])
def test_rims_outside_their_signer_validity_are_not_used(hopper_2023, anchors, nvidia_dir, at):
    result = verify_gpus([hopper_2023], real_opts(anchors, nvidia_dir, at=at), nonce=nonce_of(hopper_2023))
    assert [e.code for e in result.errors] == ["nvidia.rim_chain_validity"]


def test_2025_sample_signature_and_chain_pass_but_the_rim_is_missing(hopper_2025, anchors, nvidia_dir):
    opts = real_opts(anchors, nvidia_dir, TEST_RIMS + ("1010_0200_882_96005E0001_PROD.swidtag",))
    with pytest.raises(CollateralError) as info:
        verify_gpu_report(hopper_2025, opts, nonce=nonce_of(hopper_2025))
    assert info.value.item == "NVIDIA RIM NV_GPU_DRIVER_GH100_550.90.07"
    assert "veil attest collateral fetch --rim NV_GPU_DRIVER_GH100_550.90.07" in info.value.hint
    assert "--rim DIR" in info.value.hint


def test_2025_sample_vbios_rim_id_is_exact(hopper_2025, anchors, nvidia_dir, vendor):
    driver_only = vendor.nvidia.driver_rim("550.90.07")           # pretend the driver RIM is there

    class Rims(LocalRims):
        def nvidia_rim(self, rim_id):
            return driver_only if rim_id.startswith("NV_GPU_DRIVER") else super().nvidia_rim(rim_id)

    opts = VerifyOptions(anchors=anchors + vendor.nvidia_anchors(), collateral=Rims([nvidia_dir / "rims"]),
                         at=RIM_TIME, check_revocation=False)
    with pytest.raises(CollateralError) as info:
        verify_gpu_report(hopper_2025, opts, nonce=nonce_of(hopper_2025))
    assert info.value.item == "NVIDIA RIM NV_GPU_VBIOS_1010_0200_882_96009F0001"


@pytest.mark.parametrize("case", ["case2", "case3", "case4"])
def test_broken_chains_are_rejected(hopper_2025, anchors, nvidia_dir, case):
    chain = (nvidia_dir / "negative" / f"hopper_cert_chain_{case}.txt").read_bytes()
    evidence = GpuEvidence(report=hopper_2025.report, certificates=chain)
    with pytest.raises(VerificationError) as info:
        verify_gpu_report(evidence, real_opts(anchors, nvidia_dir), nonce=nonce_of(hopper_2025))
    assert info.value.check in ("nvidia.device_chain", "nvidia.report_signature")


def test_another_nonce_is_rejected(hopper_2023, anchors, nvidia_dir):
    result = verify_gpus([hopper_2023], real_opts(anchors, nvidia_dir), nonce=bytes(32))
    assert [(e.code, e.expected, e.actual) for e in result.errors] == [
        ("nvidia.nonce", "00" * 32, nonce_of(hopper_2023).hex())]


def test_chain_never_trusts_its_own_root(hopper_2023, nvidia_dir):
    opts = real_opts(TrustAnchors(()), nvidia_dir)
    with pytest.raises(VerificationError) as info:
        verify_gpu_report(hopper_2023, opts, nonce=nonce_of(hopper_2023))
    assert info.value.check == "nvidia.device_chain"


def test_fwid_must_match_the_leaf(hopper_2025, anchors, nvidia_dir):
    raw = bytearray(bytes.fromhex(hopper_2025.report.decode()))
    fwid = parse_report(bytes(raw)).response.opaque.fwid
    at = bytes(raw).index(fwid)
    raw[at] ^= 1
    with pytest.raises(VerificationError) as info:
        verify_gpu_report(GpuEvidence(bytes(raw), hopper_2025.certificates), real_opts(anchors, nvidia_dir),
                          nonce=nonce_of(hopper_2025))
    assert info.value.check == "nvidia.fwid"


def test_revocation_is_required_unless_disabled(hopper_2023, anchors, nvidia_dir):
    opts = VerifyOptions(anchors=anchors, collateral=LocalRims([nvidia_dir / "rims" / r for r in TEST_RIMS]),
                         at=RIM_TIME)
    with pytest.raises(CollateralError) as info:
        verify_gpu_report(hopper_2023, opts, nonce=nonce_of(hopper_2023))
    assert "OCSP" in info.value.item


# ------------------------------------------------------------------ byte flips

def _positions(size: int, count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return sorted(rng.sample(range(size), count))


@pytest.mark.parametrize("position", _positions(4049 - 96, 24, 1) + [4049 - 96 + p for p in _positions(96, 8, 2)])
def test_any_flipped_byte_in_the_signed_region_or_signature_is_rejected(hopper_2023, anchors, nvidia_dir, position):
    raw = bytearray(bytes.fromhex(hopper_2023.report.decode()))
    raw[position] ^= 0x01
    try:
        result = verify_gpus([GpuEvidence(bytes(raw), hopper_2023.certificates)], real_opts(anchors, nvidia_dir),
                             nonce=nonce_of(hopper_2023))
    except Exception as exc:                      # a structural field: refused as malformed
        assert type(exc).__name__ == "ParseError"
        return
    assert not result.verified and result.errors[0].code in ("nvidia.report_signature", "nvidia.nonce",
                                                             "collateral.nvidia")


@pytest.mark.parametrize("cert_index", range(4))
def test_a_flipped_certificate_byte_is_rejected(hopper_2023, anchors, nvidia_dir, cert_index):
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    certs = x509.load_pem_x509_certificates(hopper_2023.certificates)
    der = bytearray(certs[cert_index].public_bytes(Encoding.DER))
    der[len(der) - 20] ^= 0x01                      # inside the signature value
    certs[cert_index] = x509.load_der_x509_certificate(bytes(der))
    pem = b"".join(c.public_bytes(Encoding.PEM) for c in certs)
    result = verify_gpus([GpuEvidence(hopper_2023.report, pem)], real_opts(anchors, nvidia_dir),
                         nonce=nonce_of(hopper_2023))
    assert not result.verified
    assert result.errors[0].code in ("nvidia.device_chain", "nvidia.report_signature")


def _rim_flip_positions(nvidia_dir):
    data = (nvidia_dir / "rims" / TEST_RIMS[1]).read_bytes()
    rng = random.Random(3)
    hashes = [i for i in range(len(data)) if data[i:i + 1] in b"0123456789abcdef" and b'Hash' in
              data[max(0, i - 120):i]]
    return rng.sample(hashes, 6) + rng.sample(range(len(data)), 10)


def test_any_flipped_rim_byte_is_rejected(anchors, nvidia_dir):
    data = (nvidia_dir / "rims" / TEST_RIMS[1]).read_bytes()
    verify_rim("NV_GPU_VBIOS_1010_0200_882_96005E0001", data, anchors, RIM_TIME)     # the original verifies
    for position in _rim_flip_positions(nvidia_dir):
        flipped = bytearray(data)
        flipped[position] = ord("a") if flipped[position] != ord("a") else ord("b")
        try:
            verify_rim("x", bytes(flipped), anchors, RIM_TIME)
        except Exception as exc:
            assert type(exc).__name__ in ("ParseError", "VerificationError"), (position, exc)
            continue
        pytest.fail(f"a RIM with byte {position} changed verified")


@pytest.mark.parametrize("name", TEST_RIMS + PROD_RIMS[1:])
def test_real_rim_signatures_verify(anchors, nvidia_dir, name):
    verified = verify_rim(name, (nvidia_dir / "rims" / name).read_bytes(), anchors, RIM_TIME)
    assert verified.anchor.name == "nvidia-rim-root"
    assert [c.subject.rfc4514_string().split(",")[0] for c in verified.chain][0] == "CN=HCC RIM L4 Signer"


def test_a_short_chain_says_what_was_found(hopper_2025, anchors, nvidia_dir):
    chain = (nvidia_dir / "negative" / "hopper_cert_chain_case2.txt").read_bytes()   # the root alone
    evidence = GpuEvidence(report=hopper_2025.report, certificates=chain)
    with pytest.raises(VerificationError) as info:
        verify_gpu_report(evidence, real_opts(anchors, nvidia_dir), nonce=nonce_of(hopper_2025))
    assert info.value.check == "nvidia.device_chain"
    assert "found 1 certificate, 0 of them below the root" in info.value.detail
    assert (info.value.expected, info.value.actual) == ("4", "0")
