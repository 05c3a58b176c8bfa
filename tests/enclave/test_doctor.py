"""`veil doctor` against fake guest roots, a fake NVML, and this (non-confidential) machine."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from enclave.doctor import check_gpus, diagnose
from veil.cli.main import app


def _write(root: Path, rel: str, text: str = "") -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _common(root: Path, *, flags: str, kernel: str, hugepages: int = 0, thp: str = "always [madvise] never",
            nodes: int = 1, sched: str = "[none] mq-deadline") -> Path:
    _write(root, "/proc/cpuinfo", f"processor\t: 0\nflags\t\t: fpu vme {flags} sse\n\nprocessor\t: 1\n"
                                  f"flags\t\t: fpu vme {flags} sse\n")
    _write(root, "/proc/sys/kernel/osrelease", kernel + "\n")
    _write(root, "/proc/meminfo", f"MemTotal:       65536000 kB\nHugePages_Total:   {hugepages}\n"
                                  "Hugepagesize:       2048 kB\n")
    _write(root, "/sys/kernel/mm/transparent_hugepage/enabled", thp + "\n")
    for n in range(nodes):
        _write(root, f"/sys/devices/system/node/node{n}/cpulist", f"{n * 8}-{n * 8 + 7}\n")
    _write(root, "/sys/block/nvme0n1/queue/scheduler", sched + "\n")
    _write(root, "/sys/block/nvme0n1/queue/rotational", "0\n")
    _write(root, "/sys/block/loop0/queue/scheduler", "[none]\n")
    return root


@pytest.fixture
def tdx_root(tmp_path: Path) -> Path:
    root = _common(tmp_path / "tdx", flags="tdx_guest", kernel="6.8.0-41-generic", hugepages=1024)
    _write(root, "/sys/kernel/config/tsm/report/probe/provider", "tdx_guest\n")
    _write(root, "/dev/tdx_guest")
    return root


@pytest.fixture
def snp_root(tmp_path: Path) -> Path:
    root = _common(tmp_path / "snp", flags="sev sev_es sev_snp", kernel="5.19.0-azure", thp="always madvise [never]",
                   nodes=2, sched="none [bfq] mq-deadline")
    _write(root, "/sys/kernel/config/.keep")            # configfs mounted, but no tsm (old kernel)
    _write(root, "/dev/sev-guest")
    return root


@pytest.fixture
def plain_root(tmp_path: Path) -> Path:
    return _common(tmp_path / "plain", flags="hypervisor", kernel="6.1.0-18-amd64")


def test_tdx_guest_with_configfs_is_usable(tdx_root: Path):
    report = diagnose(tdx_root, gpus=False)
    assert report.tee_usable and report.tee == "tdx" and report.interface == "configfs-tsm"
    assert report.finding("configfs-tsm").status == "ok"
    assert "tdx_guest" in report.finding("configfs-tsm").value
    assert report.finding("TDX guest device").status == "ok"
    assert report.finding("cpu flags").value == "tdx_guest"
    assert report.finding("kernel").status == "ok"
    assert report.finding("huge pages").status == "ok" and "1024" in report.finding("huge pages").value
    assert report.finding("transparent huge pages").value == "madvise"
    assert report.finding("NUMA").status == "ok"
    assert report.finding("I/O scheduler nvme0n1").status == "ok"
    assert not any(f.name == "I/O scheduler loop0" for f in report.findings)
    assert not [f for f in report.findings if f.status in ("fail", "warn")]


def test_snp_guest_with_legacy_device_only(snp_root: Path):
    report = diagnose(snp_root, gpus=False)
    assert report.tee_usable and report.tee == "snp" and report.interface == "/dev/sev-guest"
    tsm = report.finding("configfs-tsm")
    assert tsm.status == "warn" and "6.7" in tsm.advice and "mount -t configfs" not in tsm.advice
    kernel = report.finding("kernel")
    assert kernel.status == "warn" and "6.7" in kernel.advice and kernel.value == "5.19.0-azure"
    assert report.finding("SEV guest device").status == "ok"
    assert report.finding("TDX guest device").status == "info"
    thp = report.finding("transparent huge pages")
    assert thp.status == "warn" and "madvise" in thp.advice
    numa = report.finding("NUMA")
    assert "node0" in numa.value and "node1" in numa.value and "numactl" in numa.advice
    sched = report.finding("I/O scheduler nvme0n1")
    assert sched.status == "warn" and sched.value == "bfq" and "echo none" in sched.advice
    assert report.finding("huge pages").advice                  # none reserved: advice given


def test_plain_vm_is_not_usable_and_says_how_to_develop(plain_root: Path):
    report = diagnose(plain_root, gpus=False)
    assert not report.tee_usable and report.tee is None
    tee = report.finding("TEE")
    assert tee.status == "fail" and "not a confidential VM" in tee.advice and "--emulated" in tee.advice
    assert "mount -t configfs" in report.finding("configfs-tsm").advice
    assert report.finding("kernel").status == "warn"            # 6.1 < 6.7
    assert report.to_dict()["tee_usable"] is False


def test_cli_on_fake_roots(tdx_root: Path, plain_root: Path):
    runner = CliRunner()
    ok = runner.invoke(app, ["doctor", "--root", str(tdx_root), "--no-gpus", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.stdout)
    assert data["tee"] == "tdx" and data["interface"] == "configfs-tsm"
    bad = runner.invoke(app, ["doctor", "--root", str(plain_root), "--no-gpus"])
    assert bad.exit_code == 1
    assert "not a confidential VM" in bad.output and "--emulated" in bad.output
    usage = runner.invoke(app, ["doctor", "--root", str(plain_root / "nope")])
    assert usage.exit_code == 2
    assert runner.invoke(app, ["doctor", "--frobnicate"]).exit_code == 2


class FakeNvml:
    def __init__(self, cc: int, devtools: int = 0, count: int = 2, fail_init: bool = False) -> None:
        self.cc, self.devtools, self.count, self.fail_init, self.shutdown = cc, devtools, count, fail_init, False

    def nvmlInit(self):
        if self.fail_init:
            raise RuntimeError("NVML Shared Library Not Found")

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlDeviceGetCount(self):
        return self.count

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlSystemGetConfComputeState(self):
        return SimpleNamespace(environment=1, ccFeature=self.cc, devToolsMode=self.devtools)


def test_gpu_cc_mode_via_nvml():
    on = check_gpus(FakeNvml(cc=1))
    assert on[0].status == "ok" and on[0].value.startswith("2: NVIDIA H100")
    assert on[1].name == "GPU CC mode" and on[1].status == "ok" and on[1].value == "on"
    off = check_gpus(FakeNvml(cc=0))
    assert off[1].status == "warn" and off[1].value == "off" and "set-cc-mode=on" in off[1].advice
    dev = check_gpus(FakeNvml(cc=1, devtools=1))
    assert dev[1].value == "devtools" and dev[1].status == "warn"
    none = check_gpus(FakeNvml(cc=0, fail_init=True))
    assert none == [none[0]] and none[0].value == "no NVML"


def test_cli_on_this_machine_which_is_not_a_cvm():
    from attestation.attesters.detect import detect_attester
    from attestation.errors import AttesterError
    try:
        detect_attester()
    except AttesterError:
        pass
    else:
        pytest.skip("this machine has a TEE interface")
    result = CliRunner().invoke(app, ["doctor", "--json"], env={**os.environ, "COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["tee_usable"] is False
    names = {f["name"]: f for f in data["findings"]}
    assert names["configfs-tsm"]["value"] == "absent"
    assert names["TDX guest device"]["value"] == "absent" and names["SEV guest device"]["value"] == "absent"
    assert "not a confidential VM" in names["TEE"]["advice"]
    assert "kernel" in names and any(n.startswith("GPU") for n in names)
