"""Real SNP evidence (corpus/README.md): decoded fields and verdicts."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from tests.attestation.snp.snp_support import NOW, SAMPLES, Sample, options, read_report

from attestation.collateral import StaticCollateral
from attestation.errors import CollateralError, VerificationError
from attestation.evidence import Evidence
from attestation.snp.abi import describe, parse_report
from attestation.snp.fields import decode_tcb
from attestation.snp.verify import verify_report, verify_report_signature
from attestation.snp.kds import load_endorsement
from attestation.verify import verify

IDS = [s.name for s in SAMPLES]


def _verify(evidence_dir, sample: Sample, **kw):
    report = parse_report(read_report(evidence_dir, sample.report))
    cert = (evidence_dir / "snp" / sample.endorsement).read_bytes()
    return verify_report(report, options(at=sample.at, **kw), supplied_certificates=(cert,))


@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_decoded_fields_match_readme(evidence_dir, sample: Sample):
    report = parse_report(read_report(evidence_dir, sample.report))
    assert report.version == sample.version
    assert report.policy.raw == sample.policy
    assert report.policy.smt and report.policy.debug is sample.debug
    assert report.vmpl == sample.vmpl
    assert report.platform_info.raw == sample.platform_info
    assert report.signer_info.signing_key == sample.signer
    assert report.measurement.hex() == sample.measurement
    assert report.report_data.hex() == sample.report_data
    assert report.chip_id.hex().startswith(sample.chip_id_prefix)
    assert "{}.{}.{}".format(*report.current_version) == sample.firmware
    tcb = decode_tcb(report.reported_tcb, sample.product)
    assert (tcb.bootloader, tcb.tee, tcb.snp, tcb.microcode) == sample.reported_tcb
    assert report.product == (None if sample.version == 2 else sample.product)
    if "cpuid" in sample.extra:
        assert (report.cpuid_fam_id, report.cpuid_mod_id, report.cpuid_step) == sample.extra["cpuid"]
    if "mit" in sample.extra:
        assert (report.launch_mit_vector, report.current_mit_vector) == sample.extra["mit"]
    elif sample.version < 5:
        assert report.launch_mit_vector is None
    for name in ("current_tcb", "committed_tcb"):
        if name in sample.extra:
            t = decode_tcb(getattr(report, name), sample.product)
            assert (t.bootloader, t.tee, t.snp, t.microcode) == sample.extra[name]
    if "guest_svn" in sample.extra:
        assert report.guest_svn == sample.extra["guest_svn"]
        assert report.family_id.hex() == sample.extra["family_id"]
        assert report.id_key_digest.hex().startswith(sample.extra["id_key_digest"])


@pytest.mark.parametrize("sample", SAMPLES, ids=IDS)
def test_sample_verifies_within_its_window(evidence_dir, sample: Sample):
    claims = _verify(evidence_dir, sample)
    assert claims.tee == "snp" and claims.debug is sample.debug
    assert claims.anchor.kind == "vendor" and claims.anchor.name == f"amd-ark-{sample.product.lower()}"
    assert claims.tcb_status == "UpToDate"
    assert claims.report_data == sample.report_data
    assert claims.verified_at == sample.at
    assert "snp.revocation_not_checked" in claims.warnings
    w = claims.collateral_window
    assert w is not None and w.not_before <= sample.at <= w.not_after
    snp = claims.snp
    assert snp.product == sample.product and snp.version == sample.version
    assert snp.measurement == sample.measurement and snp.vmpl == sample.vmpl
    assert snp.signer_info.signing_key == sample.signer
    assert (snp.reported_tcb.bootloader, snp.reported_tcb.tee, snp.reported_tcb.snp,
            snp.reported_tcb.microcode) == sample.reported_tcb
    assert snp.current_version == sample.firmware
    assert snp.policy.raw == sample.policy and snp.policy.debug is sample.debug
    assert snp.csp_id == sample.extra.get("csp_id")
    assert snp.endorsement_key_serial == "0"                 # AMD issues every VCEK/VLEK with serial 0
    if sample.vmpl:
        assert "snp.vmpl_nonzero" in claims.warnings


def test_vlek_sample_fails_now_naming_the_expired_vlek(evidence_dir):
    sample = next(s for s in SAMPLES if s.signer == "vlek")
    with pytest.raises(VerificationError) as info:
        _verify(evidence_dir, Sample(**{**sample.__dict__, "at": NOW}))
    assert info.value.check == "snp.cert_expired"
    assert "SEV-VLEK" in info.value.message
    assert info.value.expected.endswith("2025-12-10T22:14:21+00:00")


@pytest.mark.parametrize("at", [datetime(2024, 12, 10, 22, 14, 20, tzinfo=timezone.utc),
                                datetime(2025, 12, 10, 22, 14, 22, tzinfo=timezone.utc)])
def test_vlek_sample_fails_just_outside_its_window(evidence_dir, at):
    sample = next(s for s in SAMPLES if s.signer == "vlek")
    with pytest.raises(VerificationError, match="snp.cert_expired"):
        _verify(evidence_dir, Sample(**{**sample.__dict__, "at": at}))


def test_debug_guest_is_rejected_by_the_common_entry_point(evidence_dir):
    sample = next(s for s in SAMPLES if s.debug)
    evidence = Evidence("snp", read_report(evidence_dir, sample.report),
                        ((evidence_dir / "snp" / sample.endorsement).read_bytes(),))
    result = verify(evidence, options())
    assert not result.verified and result.claims.debug
    assert [(f.code, f.expected, f.actual) for f in result.errors] == [("snp.debug", "debug off", "debug on")]
    assert verify(evidence, options(allow_debug=True)).verified


def test_supplied_ask_ark_equal_to_the_pinned_ones_are_accepted(evidence_dir):
    sample = SAMPLES[0]
    report = parse_report(read_report(evidence_dir, sample.report))
    certs = ((evidence_dir / "snp" / sample.endorsement).read_bytes(),
             (evidence_dir / "snp/virtee_milan_v2/cert_chain_milan.pem").read_bytes())
    assert verify_report(report, options(), supplied_certificates=certs).snp.product == "Milan"


def test_endorsement_key_from_collateral_when_none_is_supplied(evidence_dir):
    sample = SAMPLES[0]                     # v2: product comes from the VCEK's productName
    report = parse_report(read_report(evidence_dir, sample.report))
    vcek = (evidence_dir / "snp" / sample.endorsement).read_bytes()
    claims = verify_report(report, options(collateral=StaticCollateral(snp_endorsements=(vcek,))))
    assert claims.snp.product == "Milan" and "snp.product_from_certificate" in claims.warnings
    with pytest.raises(CollateralError, match="VCEK for Milan"):
        verify_report(report, options())


def test_revocation_without_a_crl_fails_closed(evidence_dir):
    sample = SAMPLES[2]
    with pytest.raises(CollateralError) as info:
        _verify(evidence_dir, sample, check_revocation=True)
    assert "Genoa" in info.value.item and "CRL" in info.value.item


@pytest.mark.parametrize("fake", ["test-vcek-invalid-legacy.der", "test-vcek-invalid-new.der"])
def test_fake_vceks_fail_chain_and_signature(evidence_dir, fake):
    report = parse_report(read_report(evidence_dir, "virtee_milan_v2/report_milan.hex"))
    blob = (evidence_dir / "snp/negative" / fake).read_bytes()
    with pytest.raises(VerificationError) as info:
        verify_report(report, options(), supplied_certificates=(blob,))
    assert info.value.check == "snp.vcek_chain"
    with pytest.raises(VerificationError, match="snp.report_signature"):
        verify_report_signature(report, load_endorsement(blob))


def test_vcek_of_another_product_is_a_product_mismatch(evidence_dir):
    report = parse_report(read_report(evidence_dir, "azure_genoa_v3/report.bin"))      # CPUID: Genoa
    milan_vcek = (evidence_dir / "snp/teekit_gcp_milan_v5/sev-gcp-vcek.pem").read_bytes()
    with pytest.raises(VerificationError) as info:
        verify_report(report, options(), supplied_certificates=(milan_vcek,))
    assert (info.value.check, info.value.expected, info.value.actual) == ("snp.product_mismatch", "Genoa", "Milan-B0")


def test_vcek_of_another_chip_is_a_chip_id_mismatch(evidence_dir):
    report = parse_report(read_report(evidence_dir, "virtee_milan_v2/report_milan.hex"))
    other = (evidence_dir / "snp/gosevguest_milan_v2_debug/vcek.der").read_bytes()
    with pytest.raises(VerificationError) as info:
        verify_report(report, options(), supplied_certificates=(other,))
    assert info.value.check == "snp.chip_id_mismatch"
    assert info.value.actual.startswith("d49554ec717f4e5b") and info.value.expected.startswith("3ac3fe21")


def test_vcek_without_a_configured_anchor(evidence_dir):
    from attestation.anchors import TrustAnchors
    sample = SAMPLES[1]
    with pytest.raises(VerificationError, match="snp.anchor"):
        _verify(evidence_dir, sample, anchors=TrustAnchors(()))


def test_describe_decodes_every_field(evidence_dir):
    info = describe(parse_report(read_report(evidence_dir, "teekit_gcp_milan_v5/sev-gcp.bin")))
    assert info["product"] == "Milan" and info["version"] == 5
    assert info["policy"]["smt"] is True and info["policy"]["raw"] == "0x30000"
    assert info["reported_tcb"] == {"raw": "0400000000001bde", "bootloader": 4, "tee": 0,
                                    "snp": 27, "microcode": 222}
    assert info["launch_mit_vector"] == 11 and info["signer_info"]["signing_key"] == "vcek"
