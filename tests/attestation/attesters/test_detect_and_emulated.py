"""detect_attester's order and errors; EmulatedAttester only on explicit request."""

from __future__ import annotations

import datetime as dt

import pytest

from attestation.attesters import (Attester, ConfigfsTsmAttester, EmulatedAttester,
                                   SevGuestDeviceAttester, TdxGuestDeviceAttester, detect_attester)
from attestation.emulated import EmulatedCollateral, EmulatedVendor
from attestation.errors import AttesterError
from attestation.options import VerifyOptions
from attestation.verify import verify


def _touch(root, path):
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"")


def test_nothing_present_names_all_three(tmp_path):
    with pytest.raises(AttesterError) as info:
        detect_attester(sysroot=tmp_path)
    message = str(info.value)
    assert "no TEE found" in message
    for path in ("/sys/kernel/config/tsm/report", "/dev/tdx_guest", "/dev/sev-guest"):
        assert f"{path} absent" in message
    assert "mount configfs or use kernel ≥ 6.7" in message


def test_configfs_wins_over_devices(tmp_path):
    (tmp_path / "sys/kernel/config/tsm/report").mkdir(parents=True)
    _touch(tmp_path, "/dev/sev-guest")
    assert isinstance(detect_attester(sysroot=tmp_path), ConfigfsTsmAttester)


@pytest.mark.parametrize("device,kind", [("/dev/tdx_guest", TdxGuestDeviceAttester),
                                         ("/dev/sev-guest", SevGuestDeviceAttester)])
def test_legacy_devices(tmp_path, device, kind):
    _touch(tmp_path, device)
    attester = detect_attester(sysroot=tmp_path)
    assert isinstance(attester, kind) and isinstance(attester, Attester)


def test_tee_restricts_the_search(tmp_path):
    _touch(tmp_path, "/dev/tdx_guest")
    with pytest.raises(AttesterError, match="no TEE found"):
        detect_attester(tee="snp", sysroot=tmp_path)


def test_emulated_attester_is_explicit_and_verifies(tmp_path):
    vendor = EmulatedVendor.create(tmp_path / "vendor")
    mrtd = bytes.fromhex("42" * 48)
    attester = EmulatedAttester(vendor, "tdx", mrtd=mrtd, version=5)
    assert isinstance(attester, Attester) and attester.tee == "tdx"
    nonce = bytes(64)
    at = dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc)
    result = verify(attester.collect(nonce), VerifyOptions(
        anchors=vendor.anchors(products=()), collateral=EmulatedCollateral(vendor, at), at=at))
    assert result.verified, result.errors
    assert result.claims.anchor.kind == "emulated" and result.claims.tdx.mrtd == mrtd.hex()
    with pytest.raises(ValueError, match="64 bytes"):
        attester.collect(b"short")
