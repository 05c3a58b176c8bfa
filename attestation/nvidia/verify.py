"""Verify NVIDIA GPU evidence locally: SPDM report, device chain, RIMs, measurements.

Per GPU, in the order of nvtrust's local verifier (cc_admin.attest):

  (1) architecture supported (Hopper);
  (2) parse the report; the request nonce equals the expected nonce;
  (3) device chain to a configured NVIDIA device-identity root, valid at opts.at;
      FWID in the report equals the leaf's DICE FWID when the report carries one;
  (4) revocation: OCSP for the chain (not the runtime-generated leaf) from the
      collateral source, or a warning when opts.check_revocation is False;
  (5) ECDSA P-384 signature over request ‖ response-without-signature by the leaf;
  (6) driver and VBIOS RIMs by id from the collateral, each verified (rim.py),
      versions equal the report's, RIM chains OCSP-checked like (4);
  (7) golden vs runtime measurements; every mismatching index is reported.

Steps (1)–(6) raise; (7) yields claims with measurement_result "fail" and a
failure in the result. Across GPUs, mixing MPT and SPT modes fails (§5 step 8).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from ..claims import GpuClaims
from ..collateral.nvidia import nvidia_collateral
from ..errors import AttestationError, CollateralError, ParseError, VerificationError
from ..options import VerifyOptions
from ..verify import Failure
from ..x509util import raw_ecdsa_to_der, verify_ecdsa
from .chain import DeviceChain, check_fwid, load_chain, verify_device_chain
from .evidence import MAX_GPUS, GpuEvidence
from .measurements import Comparison, compare
from .ocsp import check_chain_revocation
from .rim import VerifiedRim, verify_rim
from .spdm import CHIP_SKU, PROJECT, PROJECT_SKU, AttestationReport, parse_report

SUPPORTED = ("hopper",)
REVOCATION_SKIPPED = "revocation of NVIDIA certificates was not checked (check_revocation=False)"
# Every check of one GPU, in the order verify_gpu_report runs them.
CHECKS = ("nvidia.architecture", "nvidia.nonce", "nvidia.device_chain", "nvidia.fwid", "nvidia.revocation",
          "nvidia.report_signature", "nvidia.driver_rim", "nvidia.vbios_rim", "nvidia.measurements")


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One check of one GPU: "pass", "fail" or "skipped", with what failed (or why it was skipped)."""

    code: str
    outcome: str
    detail: str = ""


@contextmanager
def _check(trail: list[CheckOutcome] | None, code: str) -> Iterator[None]:
    """Record in `trail` whether the block passed or raised (the error still propagates)."""
    try:
        yield
    except AttestationError as exc:
        if trail is not None:
            trail.append(CheckOutcome(code, "fail", getattr(exc, "detail", exc.message)))
        raise
    if trail is not None:
        trail.append(CheckOutcome(code, "pass"))


@dataclass(frozen=True, slots=True)
class GpuVerificationResult:
    """Standalone GPU verification: the shape of attestation.verify.VerificationResult."""

    verified: bool
    gpus: tuple[GpuClaims, ...]
    errors: tuple[Failure, ...] = ()
    tee: str = "nvidia"
    checks: tuple[tuple[CheckOutcome, ...], ...] = ()     # per GPU, the checks run (see CHECKS)

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f"GPU-{g.index}: {w}" for g in self.gpus for w in g.warnings)


def driver_rim_id(report: AttestationReport, arch: str = "hopper") -> str:
    version = report.response.opaque.driver_version
    if not version:
        raise VerificationError("nvidia.opaque_data", "the report carries no driver version")
    return f"NV_GPU_DRIVER_GH100_{version}"


def vbios_rim_id(report: AttestationReport) -> str:
    opaque = report.response.opaque
    parts = (opaque.text(PROJECT), opaque.text(PROJECT_SKU), opaque.text(CHIP_SKU), opaque.vbios_version)
    if not all(parts):
        raise VerificationError("nvidia.opaque_data", "the report lacks project, SKU, chip SKU or VBIOS version")
    project, sku, chip_sku, vbios = parts
    return f"NV_GPU_VBIOS_{project}_{sku}_{chip_sku}_{vbios.replace('.', '').upper()}".upper()


def check_nonce(report: AttestationReport, expected: bytes) -> None:
    if len(expected) != 32 or not hmac.compare_digest(report.nonce, expected):
        raise VerificationError("nvidia.nonce", "the SPDM request nonce is not the expected nonce",
                                expected=expected.hex(), actual=report.nonce.hex())


def check_signature(report: AttestationReport, chain: DeviceChain) -> None:
    try:
        key = chain.leaf.public_key()
    except ValueError:
        raise VerificationError("nvidia.report_signature", "the device leaf key does not decode") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise VerificationError("nvidia.report_signature", "the device leaf key is not ECDSA P-384")
    verify_ecdsa(key, raw_ecdsa_to_der(report.response.signature), report.signed_bytes, hashes.SHA384(),
                 check="nvidia.report_signature", what="the SPDM measurement signature")


def _rim(rim_id: str, version: str, opts: VerifyOptions, source) -> VerifiedRim:
    verified = verify_rim(rim_id, source.nvidia_rim(rim_id), opts.anchors, opts.at)
    if verified.rim.version.lower() != version.lower():
        raise VerificationError("nvidia.rim_version", f"RIM {rim_id} is for another version",
                                expected=version.lower(), actual=verified.rim.version.lower())
    if opts.check_revocation:
        check_chain_revocation(verified.chain, verified.anchor.certificate, source, opts.at)
    return verified


def verify_gpu_report(evidence: GpuEvidence, opts: VerifyOptions, *, nonce: bytes, index: int = 0,
                      trail: list[CheckOutcome] | None = None) -> tuple[GpuClaims, Comparison]:
    """Steps (1)–(7) for one GPU; raises AttestationError for (1)–(6). Each check run goes into `trail`."""
    with _check(trail, "nvidia.architecture"):
        if evidence.arch.lower() not in SUPPORTED:
            raise VerificationError("nvidia.architecture", "unsupported GPU architecture",
                                    expected=", ".join(SUPPORTED), actual=evidence.arch)
    report = parse_report(evidence.report)
    with _check(trail, "nvidia.nonce"):
        check_nonce(report, nonce)
    try:
        with _check(trail, "nvidia.device_chain"):
            chain = verify_device_chain(load_chain(evidence.certificates), opts.anchors, opts.at,
                                        architecture=evidence.arch.lower())
        with _check(trail, "nvidia.fwid"):
            fwid = check_fwid(chain, report.response.opaque.fwid)
    except ValueError as exc:                    # a certificate whose key or extension does not decode
        if trail is not None:
            trail.append(CheckOutcome("nvidia.device_chain", "fail", f"malformed device certificate: {exc}"))
        raise VerificationError("nvidia.device_chain", f"malformed device certificate: {exc}") from None
    source = nvidia_collateral(opts.collateral)
    warnings: list[str] = []
    if opts.check_revocation:
        with _check(trail, "nvidia.revocation"):
            check_chain_revocation(chain.certificates, chain.anchor.certificate, source, opts.at, start=1)
    else:
        warnings.append(REVOCATION_SKIPPED)
        if trail is not None:
            trail.append(CheckOutcome("nvidia.revocation", "skipped", "check_revocation=False"))
    with _check(trail, "nvidia.report_signature"):
        check_signature(report, chain)
    opaque = report.response.opaque
    with _check(trail, "nvidia.driver_rim"):
        driver = _rim(driver_rim_id(report), opaque.driver_version or "", opts, source)
    with _check(trail, "nvidia.vbios_rim"):
        vbios = _rim(vbios_rim_id(report), opaque.vbios_version or "", opts, source)
    comparison = compare(report, driver.rim, vbios.rim)
    claims = _claims(index, evidence, report, chain, fwid, comparison, driver, vbios, warnings)
    if trail is not None:
        trail.append(CheckOutcome("nvidia.measurements", "pass" if comparison.success else "fail",
                                  "" if comparison.success else measurement_failure(claims).message))
    return claims, comparison


def _claims(index: int, evidence: GpuEvidence, report: AttestationReport, chain: DeviceChain,
            fwid: str | None, comparison: Comparison, driver: VerifiedRim, vbios: VerifiedRim,
            warnings: list[str]) -> GpuClaims:
    opaque = report.response.opaque
    cc_mode = evidence.cc_mode or "unknown"
    if evidence.cc_mode:
        warnings.append(f"cc_mode '{evidence.cc_mode}' was reported by NVML inside the guest; the GPU "
                        "signature does not cover it")
    else:
        warnings.append("cc_mode unknown: SPDM evidence does not state the CC mode")
    return GpuClaims(
        index=index, architecture=evidence.arch.lower(), anchor=chain.anchor.ref(), source="spdm",
        driver_version=opaque.driver_version or "", vbios_version=opaque.vbios_version or "",
        project=opaque.text(PROJECT), project_sku=opaque.text(PROJECT_SKU), chip_sku=opaque.text(CHIP_SKU),
        fwid=fwid, certificate_serial=f"{chain.leaf.serial_number:x}", nonce=report.nonce.hex(),
        cc_mode=cc_mode, feature_flag=opaque.feature_flag,
        measurement_result="success" if comparison.success else "fail",
        mismatching_indices=comparison.mismatching + comparison.missing,
        driver_rim_id=driver.rim_id, vbios_rim_id=vbios.rim_id, warnings=tuple(warnings))


def _failure(index: int, exc: AttestationError) -> Failure:
    prefix = f"GPU-{index}: "
    if isinstance(exc, VerificationError):
        return Failure(exc.check, prefix + exc.detail, exc.expected, exc.actual)
    return Failure(exc.code, prefix + exc.message)


def measurement_failure(claims: GpuClaims) -> Failure:
    indices = ",".join(map(str, claims.mismatching_indices))
    return Failure("nvidia.measurements", f"GPU-{claims.index}: measurements differ from the RIMs "
                      f"{claims.driver_rim_id} and {claims.vbios_rim_id} at indices {indices}",
                      expected="all golden measurements match", actual=f"mismatching indices {indices}")


def verify_gpus(evidence: tuple[GpuEvidence, ...] | list[GpuEvidence], opts: VerifyOptions, *,
                nonce: bytes | list[bytes]) -> GpuVerificationResult:
    """Verify up to 8 GPUs against one expected nonce (or one per GPU). ParseError propagates."""
    if not evidence or len(evidence) > MAX_GPUS:
        raise ParseError("NVIDIA evidence", "GPU count", None, f"{len(evidence)} GPUs; expected 1..{MAX_GPUS}")
    nonces = nonce if isinstance(nonce, list) else [nonce] * len(evidence)
    claims, errors, checks = [], [], []
    for index, (gpu, expected) in enumerate(zip(evidence, nonces)):
        trail: list[CheckOutcome] = []
        checks.append(trail)
        try:
            gpu_claims, comparison = verify_gpu_report(gpu, opts, nonce=expected, index=index, trail=trail)
        except ParseError:
            raise
        except (VerificationError, CollateralError) as exc:
            errors.append(_failure(index, exc))
            continue
        claims.append(gpu_claims)
        if not comparison.success:
            errors.append(measurement_failure(gpu_claims))
    flags = {c.feature_flag for c in claims if c.feature_flag in ("spt", "mpt")}
    if len(flags) > 1:
        errors.append(Failure("nvidia.feature_flag_mix", "GPUs mix single- and multi-GPU passthrough modes",
                                 expected="one mode", actual=",".join(sorted(flags))))
    return GpuVerificationResult(verified=not errors and len(claims) == len(evidence),
                                 gpus=tuple(claims), errors=tuple(errors), checks=tuple(map(tuple, checks)))
