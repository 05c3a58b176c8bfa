"""`veil doctor`: what this (virtual) machine offers a confidential deployment, and what to fix.

Every check is a pure function of a filesystem root (default "/"), so tests
build fake guests under a temporary directory. GPU checks use NVML only when
`pynvml` can be imported; nothing here needs root or writes anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Literal

Status = Literal["ok", "warn", "fail", "info"]

CONFIGFS_TSM = "/sys/kernel/config/tsm/report"
TDX_DEVICE = "/dev/tdx_guest"
SEV_DEVICE = "/dev/sev-guest"
MIN_CONFIGFS_KERNEL = (6, 7)
EMULATED_HINT = ("this machine is not a confidential VM (no configfs-tsm, no /dev/tdx_guest, no /dev/sev-guest); "
                 "to develop here use the emulated TEE: `veil enclave serve --emulated` (clients trust the "
                 "emulated anchors), `veil attest emulate …`, or `veil demo`")


@dataclass(frozen=True)
class Finding:
    name: str
    status: Status
    value: str
    advice: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    tee: str | None          # "tdx", "snp" or None
    interface: str | None    # "configfs-tsm", "/dev/tdx_guest", "/dev/sev-guest" or None

    @property
    def tee_usable(self) -> bool:
        return self.interface is not None

    def finding(self, name: str) -> Finding:
        for f in self.findings:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"tee": self.tee, "interface": self.interface, "tee_usable": self.tee_usable,
                "findings": [f.to_dict() for f in self.findings]}


def _p(root: Path, absolute: str) -> Path:
    return root / absolute.lstrip("/")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def cpu_flags(root: Path) -> set[str]:
    text = _read(_p(root, "/proc/cpuinfo")) or ""
    flags: set[str] = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return flags


def kernel_release(root: Path, uname: Callable[[], str] | None = None) -> str | None:
    text = _read(_p(root, "/proc/sys/kernel/osrelease"))
    if text and text.strip():
        return text.strip()
    if uname is not None:
        return uname()
    return os.uname().release if str(root) == "/" else None


def parse_version(release: str) -> tuple[int, int] | None:
    m = re.match(r"(\d+)\.(\d+)", release)
    return (int(m.group(1)), int(m.group(2))) if m else None


def check_tee(root: Path) -> tuple[list[Finding], str | None, str | None]:
    """configfs-tsm (with its provider), the legacy guest devices and the CPU flags."""
    findings: list[Finding] = []
    flags = cpu_flags(root)
    flag_tee = "tdx" if "tdx_guest" in flags else "snp" if "sev_snp" in flags else None
    findings.append(Finding(
        "cpu flags", "ok" if flag_tee else "info",
        {"tdx": "tdx_guest", "snp": "sev_snp"}.get(flag_tee or "", "no tdx_guest / sev_snp flag"),
        "" if flag_tee else "the CPU does not advertise a TDX or SEV-SNP guest; boot this VM as a TD "
                            "or SNP guest (e.g. a confidential VM instance type)"))

    tee: str | None = None
    interface: str | None = None
    tsm = _p(root, CONFIGFS_TSM)
    if tsm.is_dir():
        providers = sorted({p.strip() for p in (_read(f) for f in tsm.glob("*/provider")) if p and p.strip()})
        from attestation.attesters.configfs import PROVIDERS
        known = [p for p in providers if p in PROVIDERS]
        if known:
            tee = PROVIDERS[known[0]]
        elif flag_tee:
            tee = flag_tee
        findings.append(Finding("configfs-tsm", "ok", f"{CONFIGFS_TSM}"
                                + (f" (provider {', '.join(providers)})" if providers else ""), ""))
        interface = "configfs-tsm"
    else:
        parent_mounted = _p(root, "/sys/kernel/config").is_dir() and any(_p(root, "/sys/kernel/config").iterdir())
        advice = (f"{CONFIGFS_TSM} absent: use a kernel ≥ {MIN_CONFIGFS_KERNEL[0]}.{MIN_CONFIGFS_KERNEL[1]} "
                  "with CONFIG_TSM_REPORTS and the tdx_guest / sev-guest module loaded")
        if not parent_mounted:
            advice += "; mount configfs: `mount -t configfs none /sys/kernel/config`"
        findings.append(Finding("configfs-tsm", "warn" if flag_tee else "info", "absent", advice))

    for label, dev, kind, module in (("TDX guest device", TDX_DEVICE, "tdx", "tdx_guest"),
                                     ("SEV guest device", SEV_DEVICE, "snp", "sev-guest")):
        present = _p(root, dev).exists()
        relevant = flag_tee == kind or tee == kind
        if present:
            findings.append(Finding(label, "ok", dev))
            if interface is None:
                interface, tee = dev, kind
        else:
            findings.append(Finding(label, "warn" if relevant and interface is None else "info", "absent",
                                    f"`modprobe {module}`" if relevant else ""))

    if interface is None:
        findings.append(Finding("TEE", "fail", "none", EMULATED_HINT))
    else:
        findings.append(Finding("TEE", "ok", f"{(tee or 'unknown').upper()} via {interface}"))
    return findings, tee, interface


def check_kernel(root: Path, uname: Callable[[], str] | None = None) -> Finding:
    release = kernel_release(root, uname)
    if not release:
        return Finding("kernel", "info", "unknown")
    version = parse_version(release)
    if version is None:
        return Finding("kernel", "info", release)
    if version < MIN_CONFIGFS_KERNEL:
        return Finding("kernel", "warn", release,
                       f"upgrade to Linux ≥ {MIN_CONFIGFS_KERNEL[0]}.{MIN_CONFIGFS_KERNEL[1]} for configfs-tsm "
                       "(the legacy /dev/tdx_guest and /dev/sev-guest ioctls are deprecated)")
    return Finding("kernel", "ok", release)


def meminfo(root: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (_read(_p(root, "/proc/meminfo")) or "").splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def check_hugepages(root: Path) -> list[Finding]:
    info = meminfo(root)
    findings = []
    if "HugePages_Total" in info:
        total = int(info["HugePages_Total"].split()[0] or 0)
        size = info.get("Hugepagesize", "?")
        if total > 0:
            findings.append(Finding("huge pages", "ok", f"{total} × {size}"))
        else:
            findings.append(Finding("huge pages", "info", f"0 × {size}",
                                    "none reserved; for large models reserve some at boot "
                                    "(`hugepages=N` on the kernel command line) to cut TLB misses and "
                                    "private-page conversion overhead in the CVM"))
    else:
        findings.append(Finding("huge pages", "info", "unknown", "/proc/meminfo unreadable"))
    thp = _read(_p(root, "/sys/kernel/mm/transparent_hugepage/enabled"))
    if thp is None:
        findings.append(Finding("transparent huge pages", "info", "unknown"))
    else:
        m = re.search(r"\[(\w+)\]", thp)
        mode = m.group(1) if m else thp.strip()
        if mode == "never":
            findings.append(Finding("transparent huge pages", "warn", mode,
                                    "set to madvise or always: "
                                    "`echo madvise > /sys/kernel/mm/transparent_hugepage/enabled`"))
        else:
            findings.append(Finding("transparent huge pages", "ok", mode))
    return findings


def check_numa(root: Path) -> Finding:
    nodes = sorted(_p(root, "/sys/devices/system/node").glob("node[0-9]*"), key=lambda p: int(p.name[4:]))
    if not nodes:
        return Finding("NUMA", "info", "unknown")
    parts = [f"{n.name}: cpus {(_read(n / 'cpulist') or '?').strip()}" for n in nodes]
    if len(nodes) > 1:
        return Finding("NUMA", "info", "; ".join(parts),
                       f"{len(nodes)} nodes: pin the enclave and its GPU workers to the node of the GPUs "
                       "(`numactl --cpunodebind=N --membind=N`) to avoid cross-node bounce-buffer copies")
    return Finding("NUMA", "ok", parts[0])


def check_schedulers(root: Path) -> list[Finding]:
    findings = []
    for dev in sorted(_p(root, "/sys/block").glob("*")):
        if dev.name.startswith(("loop", "ram", "zram", "dm-")):
            continue
        text = _read(dev / "queue" / "scheduler")
        if text is None:
            continue
        m = re.search(r"\[([\w-]+)\]", text)
        current = m.group(1) if m else text.strip()
        rotational = (_read(dev / "queue" / "rotational") or "0").strip() == "1"
        if not rotational and current not in ("none", "mq-deadline", "noop"):
            findings.append(Finding(f"I/O scheduler {dev.name}", "warn", current,
                                    f"for fast model loading from NVMe/virtio set `none`: "
                                    f"`echo none > /sys/block/{dev.name}/queue/scheduler`"))
        else:
            findings.append(Finding(f"I/O scheduler {dev.name}", "ok", current))
    return findings


def check_gpus(nvml: object | None = None) -> list[Finding]:
    """NVIDIA GPUs and confidential-computing mode through NVML (`pynvml`), if importable."""
    if nvml is None:
        try:
            import pynvml as nvml  # type: ignore[no-redef]
        except Exception:
            return [Finding("GPU", "info", "no NVML", "install nvidia-ml-py (pynvml) and the NVIDIA driver "
                            "to check GPU confidential-computing mode")]
    try:
        nvml.nvmlInit()
    except Exception as exc:
        return [Finding("GPU", "info", "no NVML", f"NVML unavailable ({exc}); no NVIDIA driver or GPU")]
    findings = []
    try:
        count = nvml.nvmlDeviceGetCount()
        names = []
        for i in range(count):
            name = nvml.nvmlDeviceGetName(nvml.nvmlDeviceGetHandleByIndex(i))
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        findings.append(Finding("GPU", "ok" if count else "info", f"{count}: {', '.join(names)}" if count else "0"))
        if count:
            try:
                state = nvml.nvmlSystemGetConfComputeState()
                cc = int(getattr(state, "ccFeature", 0))
                mode = {0: "off", 1: "on"}.get(cc, str(cc))
                dev_tools = int(getattr(state, "devToolsMode", 0))
                if cc == 1 and not dev_tools:
                    findings.append(Finding("GPU CC mode", "ok", "on"))
                elif cc == 1:
                    findings.append(Finding("GPU CC mode", "warn", "devtools",
                                            "devtools mode is not attestable as production; "
                                            "`nvidia_gpu_tools.py --set-cc-mode=on --reset-after-cc-mode-switch`"))
                else:
                    findings.append(Finding("GPU CC mode", "warn", mode,
                                            "enable confidential computing on the GPU (host side): "
                                            "`nvidia_gpu_tools.py --set-cc-mode=on --reset-after-cc-mode-switch`"))
            except Exception as exc:
                findings.append(Finding("GPU CC mode", "warn", "unknown",
                                        f"nvmlSystemGetConfComputeState failed ({exc}); needs driver ≥ 535 "
                                        "and a Hopper or later GPU"))
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    return findings


def diagnose(root: str | os.PathLike[str] = "/", *, nvml: object | None = None, gpus: bool = True,
             uname: Callable[[], str] | None = None) -> Report:
    """Run every check against `root`; GPU checks only when `gpus` (NVML is not rooted)."""
    base = Path(root)
    tee_findings, tee, interface = check_tee(base)
    findings = [*tee_findings, check_kernel(base, uname)]
    findings += check_hugepages(base)
    findings.append(check_numa(base))
    findings += check_schedulers(base)
    if gpus:
        findings += check_gpus(nvml)
    return Report(tuple(findings), tee, interface)
