"""Verified SNP report → the normalized claims model (attestation.claims.SnpClaims)."""

from __future__ import annotations

from cryptography import x509

from ..claims import (SnpClaims, SnpGuestPolicy, SnpPlatformInfo, SnpSignerInfo, SnpTcb)
from .abi import Report
from .fields import GuestPolicy, PlatformInfo, SignerInfo, decode_tcb
from .kds import EndorsementExtensions


def policy_claims(policy: GuestPolicy) -> SnpGuestPolicy:
    return SnpGuestPolicy(
        raw=policy.raw, abi_minor=policy.abi_minor, abi_major=policy.abi_major, smt=policy.smt,
        migrate_ma=policy.migrate_ma, debug=policy.debug, single_socket=policy.single_socket,
        cxl_allow=policy.cxl_allow, mem_aes_256_xts=policy.mem_aes_256_xts,
        rapl_dis=policy.rapl_dis, ciphertext_hiding=policy.ciphertext_hiding,
        page_swap_disable=policy.page_swap_disable)


def platform_claims(info: PlatformInfo) -> SnpPlatformInfo:
    return SnpPlatformInfo(
        raw=info.raw, smt_enabled=info.smt_enabled, tsme_enabled=info.tsme_enabled,
        ecc_enabled=info.ecc_enabled, rapl_disabled=info.rapl_disabled,
        ciphertext_hiding_enabled=info.ciphertext_hiding_enabled,
        alias_check_complete=info.alias_check_complete, tio_enabled=info.tio_enabled)


def signer_claims(info: SignerInfo) -> SnpSignerInfo:
    return SnpSignerInfo(author_key_en=info.author_key_en, mask_chip_key=info.mask_chip_key,
                         signing_key=info.signing_key)  # type: ignore[arg-type]


def tcb_claims(raw: int, product: str) -> SnpTcb:
    parts = decode_tcb(raw, product)
    return SnpTcb(raw=parts.hex, fmc=parts.fmc, bootloader=parts.bootloader, tee=parts.tee,
                  snp=parts.snp, microcode=parts.microcode)


def _version(v: tuple[int, int, int]) -> str:
    return "{}.{}.{}".format(*v)


def snp_claims(report: Report, *, product: str, endorsement: x509.Certificate,
               extensions: EndorsementExtensions) -> SnpClaims:
    """Every report field, decoded with the product's TCB layout, plus the endorsement key's identity."""
    return SnpClaims(
        version=report.version, product=product,  # type: ignore[arg-type]
        guest_svn=report.guest_svn, policy=policy_claims(report.policy),
        family_id=report.family_id.hex(), image_id=report.image_id.hex(), vmpl=report.vmpl,
        signature_algo=report.signature_algo,
        current_tcb=tcb_claims(report.current_tcb, product),
        reported_tcb=tcb_claims(report.reported_tcb, product),
        committed_tcb=tcb_claims(report.committed_tcb, product),
        launch_tcb=tcb_claims(report.launch_tcb, product),
        platform_info=platform_claims(report.platform_info),
        signer_info=signer_claims(report.signer_info),
        report_data=report.report_data.hex(), measurement=report.measurement.hex(),
        host_data=report.host_data.hex(), id_key_digest=report.id_key_digest.hex(),
        author_key_digest=report.author_key_digest.hex(), report_id=report.report_id.hex(),
        report_id_ma=report.report_id_ma.hex(), chip_id=report.chip_id.hex(),
        cpuid_fam_id=report.cpuid_fam_id, cpuid_mod_id=report.cpuid_mod_id,
        cpuid_step=report.cpuid_step,
        current_version=_version(report.current_version),
        committed_version=_version(report.committed_version),
        launch_mit_vector=report.launch_mit_vector, current_mit_vector=report.current_mit_vector,
        endorsement_key_serial=f"{endorsement.serial_number:x}", csp_id=extensions.csp_id,
    )
