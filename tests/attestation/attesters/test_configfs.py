"""ConfigfsTsmAttester against a fake configfs-tsm tree (Linux Documentation/ABI/testing/configfs-tsm-report)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from attestation.attesters import ConfigfsTsmAttester, TsmFilesystem
from attestation.errors import AttesterError
from attestation.snp.certtable import build_cert_table

NONCE = bytes(range(64))


@pytest.fixture
def root(tmp_path) -> Path:
    return tmp_path / "sys/kernel/config/tsm/report"


def _clean(kernel) -> None:
    assert kernel.created and kernel.created == kernel.removed
    assert list(kernel.root.iterdir()) == []


def test_tdx_quote_is_collected_and_the_entry_removed(fake_kernel, root):
    kernel = fake_kernel(root)
    evidence = ConfigfsTsmAttester(root, fs=kernel).collect(NONCE)
    assert evidence.tee == "tdx"
    assert evidence.report == b"REPORT:tdx_guest:" + NONCE
    assert evidence.certificates == ()
    assert kernel.inblob_sizes == [64]
    _clean(kernel)


def test_entry_names_are_unique(fake_kernel, root):
    kernel = fake_kernel(root)
    attester = ConfigfsTsmAttester(root, fs=kernel)
    attester.collect(NONCE)
    attester.collect(NONCE)
    assert len(set(kernel.created)) == 2


def test_snp_report_with_certificate_table_and_privlevel(fake_kernel, root):
    table = build_cert_table([("ark", b"ARK-DER"), ("vcek", b"VCEK-DER"), ("ask", b"ASK-DER")])
    kernel = fake_kernel(root, provider="sev_guest", auxblob=table + bytes(100))
    evidence = ConfigfsTsmAttester(root, tee="snp", privlevel=0, fs=kernel).collect(NONCE)
    assert evidence.tee == "snp"
    assert evidence.report == b"REPORT:sev_guest:" + NONCE
    assert evidence.certificates == (b"VCEK-DER", b"ASK-DER", b"ARK-DER")   # endorsement key first
    _clean(kernel)


def test_snp_with_empty_auxblob_has_no_certificates(fake_kernel, root):
    kernel = fake_kernel(root, provider="sev_guest", auxblob=bytes(4096))
    assert ConfigfsTsmAttester(root, fs=kernel).collect(NONCE).certificates == ()


def test_generation_race_is_retried(fake_kernel, root):
    kernel = fake_kernel(root, interfere=1)
    evidence = ConfigfsTsmAttester(root, fs=kernel).collect(NONCE)
    assert evidence.report.endswith(NONCE)
    assert len(kernel.created) == 2          # first entry discarded, second used
    _clean(kernel)


def test_persistent_generation_race_raises_after_bounded_attempts(fake_kernel, root):
    kernel = fake_kernel(root, interfere=100)
    with pytest.raises(AttesterError, match="generation changed during each of 3 attempts"):
        ConfigfsTsmAttester(root, fs=kernel, max_attempts=3).collect(NONCE)
    assert len(kernel.created) == 3
    _clean(kernel)


def test_provider_mismatch_is_an_error_and_the_entry_is_removed(fake_kernel, root):
    kernel = fake_kernel(root, provider="tdx_guest")
    with pytest.raises(AttesterError, match="provider is 'tdx_guest'.*snp evidence was requested"):
        ConfigfsTsmAttester(root, tee="snp", fs=kernel).collect(NONCE)
    _clean(kernel)


def test_unknown_provider(fake_kernel, root):
    kernel = fake_kernel(root, provider="arm_cca_guest")
    with pytest.raises(AttesterError, match="unsupported TSM provider 'arm_cca_guest'"):
        ConfigfsTsmAttester(root, fs=kernel).collect(NONCE)
    _clean(kernel)


def test_privlevel_unsupported_by_tdx_is_an_error_and_cleans_up(fake_kernel, root):
    kernel = fake_kernel(root)
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
def test_report_data_must_be_64_bytes_and_nothing_is_created(fake_kernel, root, bad):
    kernel = fake_kernel(root)
    with pytest.raises(ValueError, match="exactly 64 bytes"):
        ConfigfsTsmAttester(root, fs=kernel).collect(bad)
    assert kernel.created == []


def test_tee_is_probed_from_the_provider(fake_kernel, root):
    kernel = fake_kernel(root, provider="sev_guest")
    assert ConfigfsTsmAttester(root, fs=kernel).tee == "snp"
    _clean(kernel)


class _NoPermission(TsmFilesystem):
    def mkdir(self, path: Path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))


def test_mkdir_failure_is_an_attester_error(root):
    root.mkdir(parents=True)
    with pytest.raises(AttesterError, match="cannot create a report entry: EACCES"):
        ConfigfsTsmAttester(root, fs=_NoPermission()).collect(NONCE)
