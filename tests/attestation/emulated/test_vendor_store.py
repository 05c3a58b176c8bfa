"""Persistence of the emulated vendor: generated once, private keys 0600 only in its directory."""

from __future__ import annotations

import stat

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestation.emulated import EmulatedVendor, load_anchors


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _pub(cert) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_load_returns_the_same_keys(tmp_path):
    created = EmulatedVendor.create(tmp_path / "v")
    loaded = EmulatedVendor.load(tmp_path / "v")
    assert _pub(loaded.intel_anchor().certificate) == _pub(created.intel_anchor().certificate)
    assert loaded.chip_id("Milan") == created.chip_id("Milan")
    assert loaded.default_platform.ppid == created.default_platform.ppid


def test_create_refuses_to_overwrite(tmp_path):
    EmulatedVendor.create(tmp_path / "v")
    with pytest.raises(FileExistsError):
        EmulatedVendor.create(tmp_path / "v")


def test_open_creates_then_loads(tmp_path):
    first = EmulatedVendor.open(tmp_path / "v")
    second = EmulatedVendor.open(tmp_path / "v")
    assert first.intel_anchor().sha256 == second.intel_anchor().sha256


def test_load_of_missing_vendor_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        EmulatedVendor.load(tmp_path)


def test_permissions(vendor):
    vendor.amd_anchor("Milan")
    directory = vendor.directory
    assert _mode(directory) == 0o700
    keys = list(directory.rglob("*.key"))
    assert len(keys) >= 1 + 3 + 3                    # seed, Intel root/CA/TCB signing, Milan ARK/ASK/ASVK
    assert all(_mode(k) == 0o600 for k in keys)
    assert all(_mode(d) == 0o700 for d in directory.rglob("*") if d.is_dir())
    assert not list(directory.rglob("*.tmp"))


def test_amd_hierarchy_persists_and_reloads(vendor):
    again = EmulatedVendor.load(vendor.directory)
    assert again.amd_anchor("Milan").sha256 == vendor.amd_anchor("Milan").sha256


def test_export_contains_only_public_certificates(vendor, tmp_path):
    out = vendor.export_anchors(tmp_path / "anchors")
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"root_ca.pem", "ask_ark_milan.pem", "asvk_ark_turin_vlek.pem",
                                       "device-identity.pem", "rim.pem"}
    for path in files:
        text = path.read_bytes()
        assert b"PRIVATE KEY" not in text
        assert vendor._seed.hex().encode() not in text
    reloaded = load_anchors(out)
    expected = vendor.anchors() + vendor.nvidia_anchors()
    assert {a.name for a in reloaded.anchors} == {a.name for a in expected.anchors}
    assert all(a.kind == "emulated" for a in reloaded.anchors)


def test_repr_shows_no_secret(vendor):
    assert vendor._seed.hex() not in repr(vendor)
