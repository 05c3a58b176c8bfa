"""The SEV-SNP wrapper: the same digest as sev-snp-measure's own command line, and precise errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from attestation.errors import ParseError
from attestation.measure import MeasureError, SnpLaunch, snp_measurement, snp_ovmf_hash
from tests.measure.images import sev_ovmf_image
from tests.measure.test_tdvf import debian12_ovmf


def reference_cli(*args: str) -> str:
    """sev-snp-measure's own CLI (`python -m sevsnpmeasure.cli`), the tool's documented interface."""
    done = subprocess.run([sys.executable, "-m", "sevsnpmeasure.cli", "--mode", "snp", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {"ovmf": tmp_path / "OVMF.fd", "plain": tmp_path / "plain.fd", "kernel": tmp_path / "vmlinuz",
             "initrd": tmp_path / "initrd.img"}
    paths["ovmf"].write_bytes(sev_ovmf_image())
    paths["plain"].write_bytes(sev_ovmf_image(kernel_hashes=False))
    paths["kernel"].write_bytes(b"MZ kernel " * 1000)
    paths["initrd"].write_bytes(b"070701 initrd " * 500)
    return paths


CASES = [
    (dict(vcpus=1, vcpu_type="EPYC-v4"), ["--vcpus", "1", "--vcpu-type", "EPYC-v4"]),
    (dict(vcpus=4, vcpu_type="EPYC-Milan", guest_features=0x21), ["--vcpus", "4", "--vcpu-type", "EPYC-Milan",
                                                                   "--guest-features", "0x21"]),
    (dict(vcpus=2, vcpu_sig=0xA10F11), ["--vcpus", "2", "--vcpu-sig", "0xa10f11"]),
    (dict(vcpus=2, vmm="ec2"), ["--vcpus", "2", "--vmm-type", "ec2"]),
    (dict(vcpus=8, vmm="gce"), ["--vcpus", "8", "--vmm-type", "gce"]),
]


@pytest.mark.parametrize("params, argv", CASES)
def test_firmware_only_matches_sev_snp_measure_cli(files, params, argv):
    ours = snp_measurement(SnpLaunch(ovmf=files["ovmf"], **params))
    assert ours.hex() == reference_cli("--ovmf", str(files["ovmf"]), *argv)


def test_direct_boot_matches_sev_snp_measure_cli(files):
    launch = SnpLaunch(ovmf=files["ovmf"], vcpus=2, vcpu_type="EPYC-Genoa", kernel=files["kernel"],
                       initrd=files["initrd"], append="console=ttyS0 root=/dev/sda1")
    expected = reference_cli("--ovmf", str(files["ovmf"]), "--vcpus", "2", "--vcpu-type", "EPYC-Genoa",
                             "--kernel", str(files["kernel"]), "--initrd", str(files["initrd"]),
                             "--append", "console=ttyS0 root=/dev/sda1")
    assert snp_measurement(launch).hex() == expected
    other = SnpLaunch(ovmf=files["ovmf"], vcpus=2, vcpu_type="EPYC-Genoa", kernel=files["kernel"],
                      initrd=files["initrd"], append="console=ttyS0 root=/dev/sda2")
    assert snp_measurement(other) != snp_measurement(launch)


def test_precomputed_ovmf_hash_gives_the_same_measurement(files):
    seed = snp_ovmf_hash(files["ovmf"])
    full = snp_measurement(SnpLaunch(ovmf=files["ovmf"], vcpus=1, vcpu_type="EPYC-v4"))
    assert snp_measurement(SnpLaunch(ovmf=files["ovmf"], vcpus=1, vcpu_type="EPYC-v4", ovmf_hash=seed)) == full
    assert seed.hex() == subprocess.run([sys.executable, "-m", "sevsnpmeasure.cli", "--mode", "snp:ovmf-hash",
                                         "--ovmf", str(files["ovmf"])], capture_output=True, text=True,
                                        check=True).stdout.strip()


@pytest.mark.parametrize("params, parameter", [
    (dict(vcpus=0, vcpu_type="EPYC-v4"), "vcpus"),
    (dict(vcpus=1, vcpu_type="Pentium-4"), "vcpu_type"),
    (dict(vcpus=1), "vcpu_type"),
    (dict(vcpus=1, vcpu_type="EPYC-v4", vcpu_sig=0x800F12), "vcpu_type"),
    (dict(vcpus=1, vmm="ec2", vcpu_type="EPYC-v4"), "vcpu_type"),
    (dict(vcpus=1, vcpu_type="EPYC-v4", append="quiet"), "kernel"),
    (dict(vcpus=1, vcpu_type="EPYC-v4", ovmf_hash=b"\0" * 32), "ovmf_hash"),
    (dict(vcpus=1, vcpu_type="EPYC-v4", guest_features=1 << 64), "guest_features"),
])
def test_bad_parameters_name_the_parameter(files, params, parameter):
    with pytest.raises(MeasureError) as info:
        snp_measurement(SnpLaunch(ovmf=files["ovmf"], **params))
    assert info.value.parameter == parameter


def test_kernel_with_firmware_that_cannot_measure_it(files):
    with pytest.raises(ParseError) as info:
        snp_measurement(SnpLaunch(ovmf=files["plain"], vcpus=1, vcpu_type="EPYC-v4", kernel=files["kernel"]))
    assert "SNP_KERNEL_HASHES" in info.value.message


def test_not_an_ovmf_image(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\xff" * 8192)
    with pytest.raises(ParseError) as info:
        snp_measurement(SnpLaunch(ovmf=junk, vcpus=1, vcpu_type="EPYC-v4"))
    assert info.value.field == "footer GUID"


def test_debian_ovmf_matches_sev_snp_measure_cli(tmp_path):
    ovmf = tmp_path / "OVMF.fd"
    ovmf.write_bytes(debian12_ovmf()[0])
    ours = snp_measurement(SnpLaunch(ovmf=ovmf, vcpus=1, vcpu_type="EPYC-v4"))
    assert ours.hex() == reference_cli("--ovmf", str(ovmf), "--vcpus", "1", "--vcpu-type", "EPYC-v4")
    assert ours.hex() == ("11570979c77a0adb515761a702527c8b9e11554e730552621d950988613a3a75"
                          "c6ff1703f540bd22a9beede8fe7a97e3")
