"""The real evidence samples that verify, as Claims (table-driven from corpus/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from attestation.anchors import vendor_anchors
from attestation.claims import Claims
from attestation.collateral import StaticCollateral
from attestation.collateral.intel import load_intel_collateral_json, tdx_collateral_from_pcs
from attestation.evidence import Evidence, decode_blob, detect_tee
from attestation.options import VerifyOptions
from attestation.verify import verify
from attestation.x509util import load_certificates


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Sample:
    name: str
    report: str                 # path under the evidence corpus
    at: datetime
    collateral: str = ""        # "json:<path>", "teekit:<fmspc>", "gotdx2023", or "" (SNP)
    certs: str = ""
    allow_debug: bool = False


SAMPLES = {s.name: s for s in [
    Sample("dcapqvl_tdx_quote_v4", "tdx/quotes/dcapqvl_tdx_quote_v4.dat", utc("2025-07-01T00:00:00"),
           "json:tdx/collateral/dcapqvl_2025-06_b0c06f000000.json"),
    Sample("gotdx_v5_td15", "tdx/quotes/gotdx_v5_td15.dat", utc("2026-03-01T00:00:00"),
           "json:tdx/collateral/dcapqvl_2026-02_90c06f000000.json"),
    Sample("teekit_tdx_v4_gcp", "tdx/quotes/teekit_tdx_v4_gcp.quote.dat", utc("2025-10-01T00:00:00"),
           "teekit:00806f050000"),
    Sample("teekit_tdx_v4_edgeless", "tdx/quotes/teekit_tdx_v4_edgeless.dat", utc("2025-10-01T00:00:00"),
           "teekit:00806f050000"),
    Sample("trustee_tdx_debug", "tdx/quotes/trustee_tdx_quote_4_debug_v4.dat", utc("2023-07-01T01:00:00"),
           "gotdx2023", allow_debug=True),
    Sample("virtee_milan_v2", "snp/virtee_milan_v2/report_milan.hex", utc("2026-01-01T00:00:00"),
           certs="snp/virtee_milan_v2/vcek_milan.der"),
    Sample("teekit_gcp_milan_v5", "snp/teekit_gcp_milan_v5/sev-gcp.bin", utc("2026-01-01T00:00:00"),
           certs="snp/teekit_gcp_milan_v5/sev-gcp-vcek.pem"),
    Sample("azure_genoa_v3", "snp/azure_genoa_v3/report.bin", utc("2026-01-01T00:00:00"),
           certs="snp/azure_genoa_v3/vcek-genoa.pem"),
    Sample("trustee_aws_vlek_milan_v3", "snp/trustee_aws_vlek_milan_v3/test-vlek-report.bin",
           utc("2025-06-01T00:00:00"), certs="snp/trustee_aws_vlek_milan_v3/test-vlek.der"),
    Sample("gosevguest_milan_v2_debug", "snp/gosevguest_milan_v2_debug/attestation.bin",
           utc("2023-01-01T00:00:00"), certs="snp/gosevguest_milan_v2_debug/vcek.der", allow_debug=True),
]}


def _collateral(e: Path, sample: Sample, certs: tuple[bytes, ...]) -> StaticCollateral:
    kind, _, arg = sample.collateral.partition(":")
    if kind == "json":
        return StaticCollateral(tdx_sets=(load_intel_collateral_json((e / arg).read_bytes()),))
    if kind == "teekit":
        shared = load_intel_collateral_json((e / "tdx/collateral/dcapqvl_2025-09_20a06f000000.json").read_bytes())
        qe = (b'{"enclaveIdentity":' + shared.qe_identity + b',"signature":"'
              + shared.qe_identity_signature.hex().encode() + b'"}')
        tcb = (e / f"tdx/collateral/teekit_2025-09/tcb_info_{arg}.json").read_bytes()
        return StaticCollateral(tdx_sets=(tdx_collateral_from_pcs(
            tcb, qe, tcb_info_issuer_chain=shared.tcb_info_issuer_chain,
            qe_identity_issuer_chain=shared.qe_identity_issuer_chain, pck_crl=shared.pck_crl,
            pck_crl_issuer_chain=shared.pck_crl_issuer_chain, root_ca_crl=shared.root_ca_crl),))
    if kind == "gotdx2023":
        base = e / "tdx/collateral/gotdx_2023-06_50806f000000"
        chain = (e / "roots/intel/tcb_signing_chain_2018-2025.pem").read_bytes()
        return StaticCollateral(tdx_sets=(tdx_collateral_from_pcs(
            (base / "tcb_info.json").read_bytes(), (base / "qe_identity.json").read_bytes(),
            tcb_info_issuer_chain=chain, qe_identity_issuer_chain=chain,
            pck_crl=(base / "pck_crl_platform.der").read_bytes(),
            pck_crl_issuer_chain=(e / "roots/intel/pck_platform_ca_chain.pem").read_bytes(),
            root_ca_crl=(base / "root_ca_crl.der").read_bytes()),))
    return StaticCollateral(snp_endorsements=certs)


@lru_cache(maxsize=None)
def sample_claims(e: Path, name: str) -> Claims:
    """Verify one sample at its time; fail loudly if it does not verify."""
    from cryptography.hazmat.primitives.serialization import Encoding

    sample = SAMPLES[name]
    report = decode_blob((e / sample.report).read_bytes())
    certs = tuple(c.public_bytes(Encoding.DER) for c in load_certificates((e / sample.certs).read_bytes())) \
        if sample.certs else ()
    opts = VerifyOptions(anchors=vendor_anchors(), collateral=_collateral(e, sample, certs), at=sample.at,
                         check_revocation=not sample.certs, allow_debug=sample.allow_debug)
    result = verify(Evidence(tee=detect_tee(report), report=report, certificates=certs), opts)
    assert result.verified, (name, result.errors)
    return result.claims
