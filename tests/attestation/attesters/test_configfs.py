"""ConfigfsTsmAttester against a fake configfs-tsm tree (configfs-tsm.md §1.2)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from attestation.attesters import ConfigfsTsmAttester
from attestation.errors import AttesterError
from attestation.snp.certtable import build_cert_table

_spec = importlib.util.spec_from_file_location("fake_tsm", Path(__file__).with_name("fake_tsm.py"))
fake_tsm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_tsm)
FakeTsm = fake_tsm.FakeTsm

NONCE = bytes(range(64))


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "sys/kernel/config/tsm/report"


def _clean(kernel) -> None:
    assert kernel.created and kernel.created == kernel.removed
    assert list(kernel.root.iterdir()) == []


def test_tdx_quote_is_collected_and_the_entry_removed(root):
    kernel = FakeTsm(root)
    evidence = ConfigfsTsmAttester(root, fs=kernel).collect(NONCE)
    assert evidence.tee == "tdx"
    assert evidence.report == b"REPORT:tdx_guest:" + NONCE
    assert evidence.certificates == ()
    assert kernel.inblob_sizes == [64]
    _clean(kernel)


def test_entry_names_are_unique(root):
    kernel = FakeTsm(root)
    attester = ConfigfsTsmAttester(root, fs=kernel)
    attester.collect(NONCE)
    attester.collect(NONCE)
    assert len(set(kernel.created)) == 2


def test_snp_report_with_certificate_table_and_privlevel(root):
    table = build_cert_table([("ark", b"ARK-DER"), ("vcek", b"VCEK-DER"), ("ask", b"ASK-DER")])
    kernel = FakeTsm(root, provider="sev_guest", auxblob=table + bytes(100))
    evidence = ConfigfsTsmAttester(root, tee="snp", privlevel=0, fs=kernel).collect(NONCE)
    assert evidence.tee == "snp"
    assert evidence.report == b"REPORT:sev_guest:" + NONCE
    assert evidence.certificates == (b"VCEK-DER", b"ASK-DER", b"ARK-DER")   # endorsement key first
    _clean(kernel)


def test_snp_with_empty_auxblob_has_no_certificates(root):
    kernel = FakeTsm(root, provider="sev_guest", auxblob=bytes(4096))
    assert ConfigfsTsmAttester(root, fs=kernel).collect(NONCE).certificates == ()


def test_generation_race_is_retried(root):
    kernel = FakeTsm(root, interfere=1)
    evidence = ConfigfsTsmAttester(root, fs=kernel).collect(NONCE)
    assert evidence.report.endswith(NONCE)
    assert len(kernel.created) == 2          # first entry discarded, second used
    _clean(kernel)


def test_persistent_generation_race_raises_after_bounded_attempts(root):
    kernel = FakeTsm(root, interfere=100)
    with pytest.raises(AttesterError, match="generation changed during each of 3 attempts"):
        ConfigfsTsmAttester(root, fs=kernel, max_attempts=3).collect(NONCE)
    assert len(kernel.created) == 3
    _clean(kernel)


def test_provider_mismatch_is_an_error_and_the_entry_is_removed(root):
    kernel = FakeTsm(root, provider="tdx_guest")
    with pytest.raises(AttesterError, match="provider is 'tdx_guest'.*snp evidence was requested"):
        ConfigfsTsmAttester(root, tee="snp", fs=kernel).collect(NONCE)
    _clean(kernel)


def test_unknown_provider(root):
    kernel = FakeTsm(root, provider="arm_cca_guest")
    with pytest.raises(AttesterError, match="unsupported TSM provider 'arm_cca_guest'"):
        ConfigfsTsmAttester(root, fs=kernel).collect(NONCE)
    _clean(kernel)


def test_privlevel_unsupported_by_tdx_is_an_error_and_cleans_up(root):
    kernel = FakeTsm(root)
    with pytest.raises(AttesterError, match="privlevel"):
        ConfigfsTsmAttester(root, privlevel=1, fs=kernel).collect(NONCE)
    _clean(kernel)


def test_missing_root_names_it(tmp_path):
    missing = tmp_path / "no/tsm/report"
    with pytest.raises(AttesterError) as info:
        ConfigfsTsmAttester(missing).collect(NONCE)
    assert info.value.missing == str(missing)
    assert "mount -t configfs" in str(info.value)


@pytest.mark.parametrize("bad", [b"", bytes(32), bytes(65)])
def test_report_data_must_be_64_bytes_and_nothing_is_created(root, bad):
    kernel = FakeTsm(root)
    with pytest.raises(ValueError, match="exactly 64 bytes"):
        ConfigfsTsmAttester(root, fs=kernel).collect(bad)
    assert kernel.created == []


def test_tee_is_probed_from_the_provider(root):
    kernel = FakeTsm(root, provider="sev_guest")
    assert ConfigfsTsmAttester(root, fs=kernel).tee == "snp"
    _clean(kernel)


def test_mkdir_failure_is_an_attester_error(tmp_path):
    root = tmp_path / "report"
    root.mkdir()
    root.chmod(0o500)
    try:
        attester = ConfigfsTsmAttester(root)
        if __import__("os").access(root, __import__("os").W_OK):
            pytest.skip("running as root: directory permissions are not enforced")
        with pytest.raises(AttesterError, match="cannot create a report entry"):
            attester.collect(NONCE)
    finally:
        root.chmod(0o700)
