"""Collect NVIDIA GPU evidence inside a CVM through NVML (package nvidia-ml-py, imported lazily).

For each GPU: nvmlDeviceGetConfComputeGpuAttestationReport(handle, nonce) gives
SPDM request ‖ response, nvmlDeviceGetConfComputeGpuCertificate(handle) the
PEM attestation chain. nvmlSystemGetConfComputeState says whether CC is on;
that answer is not signed and travels as `cc_mode` for the record only.
Install with `pip install 'veil[gpu-attester]'`.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import AttesterError
from ..nvidia.evidence import MAX_GPUS, GpuEvidence

NONCE_SIZE = 32
_CC_MODES = {0: "off", 1: "on", 2: "devtools"}


def _load_nvml() -> Any:
    try:
        import pynvml
    except ImportError:
        raise AttesterError("pynvml", "NVML bindings are not installed; install veil[gpu-attester] "
                            "(nvidia-ml-py)") from None
    return pynvml


class NvmlGpuAttester:
    """Evidence from every GPU NVML sees; fails clearly when there is no GPU in CC mode."""

    tee = "nvidia"

    def __init__(self, nvml_loader: Callable[[], Any] = _load_nvml) -> None:
        self._loader = nvml_loader

    def _init(self) -> Any:
        nvml = self._loader()
        try:
            nvml.nvmlInit()
        except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, …
            raise AttesterError("NVIDIA driver", f"NVML cannot start ({exc}); is the NVIDIA driver "
                                "loaded in this VM?") from None
        return nvml

    def _cc_mode(self, nvml: Any) -> str:
        try:
            state = nvml.nvmlSystemGetConfComputeState()
        except Exception as exc:  # noqa: BLE001
            raise AttesterError("GPU confidential computing", f"cannot read the CC state: {exc}") from None
        mode = _CC_MODES.get(getattr(state, "ccFeature", 0), "off")
        if mode == "off":
            raise AttesterError("GPU confidential computing", "CC mode is off on this system; GPUs produce "
                                "attestation reports only in CC (or devtools) mode")
        return mode

    def collect(self, nonce: bytes) -> tuple[GpuEvidence, ...]:
        if len(nonce) != NONCE_SIZE:
            raise ValueError("the GPU nonce is 32 bytes")
        nvml = self._init()
        try:
            cc_mode = self._cc_mode(nvml)
            count = nvml.nvmlDeviceGetCount()
            if count == 0:
                raise AttesterError("NVIDIA GPU", "NVML sees no GPU in this VM")
            if count > MAX_GPUS:
                raise AttesterError("NVIDIA GPU", f"{count} GPUs; at most {MAX_GPUS} are supported")
            return tuple(self._one(nvml, i, nonce, cc_mode) for i in range(count))
        finally:
            try:
                nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001 - shutting down is best effort
                pass

    def _one(self, nvml: Any, index: int, nonce: bytes, cc_mode: str) -> GpuEvidence:
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            report = nvml.nvmlDeviceGetConfComputeGpuAttestationReport(handle, nonce)
            certs = nvml.nvmlDeviceGetConfComputeGpuCertificate(handle)
            uuid = nvml.nvmlDeviceGetUUID(handle)
        except Exception as exc:  # noqa: BLE001
            raise AttesterError(f"GPU {index}", f"NVML could not produce attestation evidence: {exc}") from None
        raw = bytes(report.attestationReport[:report.attestationReportSize])
        chain = bytes(certs.attestationCertChain[:certs.attestationCertChainSize])
        return GpuEvidence(report=raw, certificates=chain, arch="hopper",
                           uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid), cc_mode=cc_mode)
