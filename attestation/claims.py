"""The normalized claims model: what every consumer downstream of verification sees.

Claims are produced only by a verifier (attestation.verify). Byte fields are
lower-case hex. TEE-specific fields live under `tdx` or `snp`, named in
snake_case after the spec's field names, so a policy reads `claims.tdx.mrtd`
or `claims.snp.measurement`.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class TcbStatus(StrEnum):
    """Intel's TCB statuses (AMD evidence that verifies is reported UpToDate)."""

    UP_TO_DATE = "UpToDate"
    SW_HARDENING_NEEDED = "SWHardeningNeeded"
    CONFIGURATION_NEEDED = "ConfigurationNeeded"
    CONFIGURATION_AND_SW_HARDENING_NEEDED = "ConfigurationAndSWHardeningNeeded"
    OUT_OF_DATE = "OutOfDate"
    OUT_OF_DATE_CONFIGURATION_NEEDED = "OutOfDateConfigurationNeeded"
    TD_RELAUNCH_ADVISED = "TDRelaunchAdvised"
    TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED = "TDRelaunchAdvisedConfigurationNeeded"
    REVOKED = "Revoked"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AnchorRef(_Model):
    """Which configured trust anchor the evidence chained to."""

    kind: Literal["vendor", "emulated"]
    name: str            # e.g. "intel-sgx-root-ca", "amd-ark-milan", "emulated-intel"
    sha256: str          # fingerprint of the anchor certificate (DER)


class CollateralWindow(_Model):
    """The instant range in which every piece of collateral used was valid."""

    not_before: datetime
    not_after: datetime


# --------------------------------------------------------------------------- TDX

class TdAttributes(_Model):
    raw: str             # 8 bytes, hex of the little-endian u64 as stored
    value: int
    debug: bool          # bit 0
    sept_ve_disable: bool  # bit 28
    pks: bool            # bit 30
    kl: bool             # bit 31
    perfmon: bool        # bit 63


class TdxClaims(_Model):
    quote_version: int               # 4 or 5
    body_type: int                   # 2 = TD 1.0, 3 = TD 1.5
    qe_vendor_id: str
    tee_tcb_svn: str
    tee_tcb_svn2: str | None         # TD 1.5 only
    mrseam: str
    mrsignerseam: str
    seam_attributes: str
    td_attributes: TdAttributes
    xfam: str
    mrtd: str
    mrconfigid: str
    mrowner: str
    mrownerconfig: str
    rtmr0: str
    rtmr1: str
    rtmr2: str
    rtmr3: str
    report_data: str
    mrservicetd: str | None          # TD 1.5 only
    # platform, from the PCK certificate and collateral
    fmspc: str
    pce_id: str
    pce_svn: int
    cpu_svn: str
    sgx_tcb_components: tuple[int, ...]
    sgx_type: str | None
    ppid: str | None
    qe_isvsvn: int
    qe_tcb_status: TcbStatus
    platform_tcb_status: TcbStatus
    platform_tcb_date: datetime | None
    module_tcb_status: TcbStatus | None   # None when TEE_TCB_SVN[1] == 0 (no module identity)
    tcb_evaluation_data_number: int


# --------------------------------------------------------------------------- SNP

class SnpGuestPolicy(_Model):
    raw: int
    abi_minor: int
    abi_major: int
    smt: bool
    migrate_ma: bool
    debug: bool
    single_socket: bool
    cxl_allow: bool
    mem_aes_256_xts: bool
    rapl_dis: bool
    ciphertext_hiding: bool
    page_swap_disable: bool


class SnpPlatformInfo(_Model):
    raw: int
    smt_enabled: bool
    tsme_enabled: bool
    ecc_enabled: bool
    rapl_disabled: bool
    ciphertext_hiding_enabled: bool
    alias_check_complete: bool
    tio_enabled: bool


class SnpTcb(_Model):
    """A decoded TCB_VERSION; `fmc` is present for Turin and later."""

    raw: str             # 8 bytes hex (as stored, little-endian u64)
    fmc: int | None
    bootloader: int
    tee: int
    snp: int
    microcode: int


class SnpSignerInfo(_Model):
    author_key_en: bool
    mask_chip_key: bool
    signing_key: Literal["vcek", "vlek"]


class SnpClaims(_Model):
    version: int
    product: Literal["Milan", "Genoa", "Turin"]
    guest_svn: int
    policy: SnpGuestPolicy
    family_id: str
    image_id: str
    vmpl: int
    signature_algo: int
    current_tcb: SnpTcb
    reported_tcb: SnpTcb
    committed_tcb: SnpTcb
    launch_tcb: SnpTcb
    platform_info: SnpPlatformInfo
    signer_info: SnpSignerInfo
    report_data: str
    measurement: str
    host_data: str
    id_key_digest: str
    author_key_digest: str
    report_id: str
    report_id_ma: str
    chip_id: str
    cpuid_fam_id: int | None         # v3+
    cpuid_mod_id: int | None
    cpuid_step: int | None
    current_version: str             # firmware "major.minor.build"
    committed_version: str
    launch_mit_vector: int | None    # v5
    current_mit_vector: int | None
    endorsement_key_serial: str      # VCEK/VLEK certificate serial (hex)
    csp_id: str | None               # VLEK only


# --------------------------------------------------------------------------- NVIDIA GPUs

class GpuClaims(_Model):
    """One GPU's verified evidence (NVIDIA SPDM measurement report, or a verified NRAS token)."""

    index: int                       # position in the evidence (GPU-0, GPU-1, …)
    architecture: str                # "hopper", "blackwell"
    anchor: AnchorRef                # the device identity root the certificate chain ended in
    source: Literal["spdm", "nras"]  # local SPDM report, or NVIDIA remote-attestation token
    driver_version: str              # e.g. "550.90.07"
    vbios_version: str               # e.g. "96.00.9f.00.01"
    project: str | None = None
    project_sku: str | None = None
    chip_sku: str | None = None
    fwid: str | None = None
    certificate_serial: str | None = None   # the device leaf certificate's serial (hex)
    nonce: str                       # hex, as in the SPDM request / token
    cc_mode: Literal["on", "devtools", "off", "unknown"]
    feature_flag: str | None = None  # "spt", "mpt", "ppcie" (opaque data version ≥ 1)
    measurement_result: Literal["success", "fail", "not_checked"]
    mismatching_indices: tuple[int, ...] = ()
    driver_rim_id: str | None = None
    vbios_rim_id: str | None = None
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------- all TEEs

class Claims(_Model):
    """Verified claims about one piece of evidence."""

    tee: Literal["tdx", "snp"]
    anchor: AnchorRef
    tcb_status: TcbStatus
    advisory_ids: tuple[str, ...] = ()
    debug: bool
    report_data: str
    collateral_window: CollateralWindow | None = None
    verified_at: datetime
    warnings: tuple[str, ...] = ()
    tdx: TdxClaims | None = None
    snp: SnpClaims | None = None
    gpus: tuple[GpuClaims, ...] = ()   # composite evidence: GPUs bound to this CPU evidence
