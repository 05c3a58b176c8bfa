"""RIMs and OCSP responses: offline bundle items, the online RIM service and OCSP responder (mocked)."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from attestation.collateral.bundle import BundleWriter, OfflineBundle
from attestation.collateral.nvidia import add_ocsp, add_rim, nvidia_collateral
from attestation.collateral.nvidia_online import NvidiaOcsp, NvidiaRimService
from attestation.collateral.online import RetryPolicy
from attestation.errors import CollateralError, VerificationError
from attestation.nvidia.ocsp import check_ocsp

NOW = datetime.now(timezone.utc)


def chain(vendor):
    certs = x509.load_pem_x509_certificates(vendor.nvidia.chain_pem())
    brom_key = serialization.load_pem_private_key((vendor.directory / "nvidia" / "brom.key").read_bytes(), None)
    return certs[0], certs[1], brom_key


def response(cert, issuer, key, status=ocsp.OCSPCertStatus.GOOD, at=NOW):
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert, issuer=issuer, algorithm=hashes.SHA384(), cert_status=status, this_update=at - timedelta(hours=1),
        next_update=at + timedelta(days=1), revocation_time=at - timedelta(hours=2) if status.name == "REVOKED"
        else None, revocation_reason=None).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
    return builder.sign(key, hashes.SHA384()).public_bytes(serialization.Encoding.DER)


def test_good_ocsp_response_is_accepted_and_revoked_is_not(vendor):
    leaf, brom, key = chain(vendor)
    check_ocsp(response(leaf, brom, key), leaf, brom, NOW)
    with pytest.raises(VerificationError) as info:
        check_ocsp(response(leaf, brom, key, ocsp.OCSPCertStatus.REVOKED), leaf, brom, NOW)
    assert info.value.check == "nvidia.certificate_revoked"
    with pytest.raises(VerificationError) as info:
        check_ocsp(response(leaf, brom, key), leaf, brom, NOW + timedelta(days=3))
    assert info.value.check == "nvidia.ocsp"


def test_ocsp_with_a_flipped_signature_byte_is_rejected(vendor):
    leaf, brom, key = chain(vendor)
    der = bytearray(response(leaf, brom, key))
    der[-10] ^= 0x01
    with pytest.raises(VerificationError) as info:
        check_ocsp(bytes(der), leaf, brom, NOW)
    assert info.value.check == "nvidia.ocsp"


def test_bundle_carries_rims_and_ocsp(vendor, tmp_path):
    leaf, brom, key = chain(vendor)
    rims = vendor.nvidia.rims()
    with BundleWriter(tmp_path / "b") as writer:
        for rim_id, xml in rims.items():
            add_rim(writer, rim_id, xml)
        add_ocsp(writer, leaf, brom, response(leaf, brom, key))
    source = nvidia_collateral(OfflineBundle(tmp_path / "b"))
    rim_id = next(iter(rims))
    assert source.nvidia_rim(rim_id) == rims[rim_id]
    check_ocsp(source.nvidia_ocsp(leaf, brom), leaf, brom, NOW)
    with pytest.raises(CollateralError) as info:
        source.nvidia_rim("NV_GPU_DRIVER_GH100_1.0")
    assert "NV_GPU_DRIVER_GH100_1.0" in info.value.item and "--rim" in info.value.hint


def test_online_rim_service_and_ocsp(vendor):
    leaf, brom, key = chain(vendor)
    rims = vendor.nvidia.rims()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.method == "POST":
            return httpx.Response(200, content=response(leaf, brom, key))
        rim_id = request.url.path.rsplit("/", 1)[-1]
        if rim_id not in rims:
            return httpx.Response(404)
        return httpx.Response(200, json={"id": rim_id, "rim": base64.b64encode(rims[rim_id]).decode()})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    service = NvidiaRimService(client=client, retry=RetryPolicy(attempts=1, sleep=lambda s: None))
    rim_id = next(iter(rims))
    assert service.nvidia_rim(rim_id) == rims[rim_id]
    assert calls == [f"/v1/rim/{rim_id}"]
    with pytest.raises(CollateralError) as info:
        service.nvidia_rim("NV_GPU_VBIOS_1010_0200_882_0000000000")
    assert "NV_GPU_VBIOS_1010_0200_882_0000000000" in info.value.item
    responder = NvidiaOcsp(client=client)
    check_ocsp(responder.nvidia_ocsp(leaf, brom), leaf, brom, NOW)
    assert json.dumps(calls)
