"""Online sources against a real local HTTP server playing Intel PCS/PCCS and AMD KDS."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attestation.collateral import CollateralSource, SnpTcbParts
from attestation.collateral.amd import vcek_path
from attestation.collateral.bundle import OfflineBundle
from attestation.collateral.fetch import fetch_bundle
from attestation.collateral.intel import load_intel_collateral_json, pcs_body
from attestation.collateral.online import (AmdKds, CollateralCache, IntelPcs, OnlineCollateral, RetryPolicy,
                                           _retry_after)
from attestation.errors import CollateralError
from attestation.x509util import raw_ecdsa_to_der

TCB = SnpTcbParts(bootloader=3, tee=0, snp=8, microcode=115)
CHIP = bytes(range(1, 65))
FMSPCS = ("00806f050000", "50806f000000", "90c06f000000", "b0c06f000000")
IN_WINDOW = datetime(2025, 10, 1, tzinfo=timezone.utc)        # all 2025-09 collateral is current
NO_WAIT = RetryPolicy(attempts=3, total_seconds=5, sleep=lambda s: None)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _header(pem: bytes) -> str:
    return quote(pem.decode(), safe="")


def test_crl(evidence_dir: Path) -> bytes:
    """AMD publishes no CRL in the corpus; any well-formed DER CRL exercises the transport."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ARK-Milan")])
    crl = (x509.CertificateRevocationListBuilder().issuer_name(name)
           .last_update(datetime(2025, 9, 1, tzinfo=timezone.utc))
           .next_update(datetime(2025, 10, 15, tzinfo=timezone.utc)).sign(key, hashes.SHA384()))
    return crl.public_bytes(Encoding.DER)


test_crl.__test__ = False     # a helper, not a test


@pytest.fixture
def served(collateral_server, evidence_dir):
    """Routes for four FMSPCs (teekit TCB infos + 2025-09 QE identity and CRLs) and AMD Milan."""
    base = load_intel_collateral_json(
        (evidence_dir / "tdx/collateral/dcapqvl_2025-09_20a06f000000.json").read_bytes())
    chain = {"TCB-Info-Issuer-Chain": _header(base.tcb_info_issuer_chain)}
    for fmspc in FMSPCS:
        body = (evidence_dir / f"tdx/collateral/teekit_2025-09/tcb_info_{fmspc}.json").read_bytes()
        collateral_server.add(f"/tdx/certification/v4/tcb?fmspc={fmspc}", body, chain)
    collateral_server.add("/tdx/certification/v4/qe/identity",
                          pcs_body(base.qe_identity, base.qe_identity_signature, "enclaveIdentity"),
                          {"SGX-Enclave-Identity-Issuer-Chain": _header(base.qe_identity_issuer_chain)})
    collateral_server.add("/sgx/certification/v4/pckcrl?ca=platform&encoding=der", base.pck_crl,
                          {"SGX-PCK-CRL-Issuer-Chain": _header(base.pck_crl_issuer_chain)})
    collateral_server.add("/sgx/certification/v4/rootcacrl", base.root_ca_crl.hex().encode())   # PCCS style
    milan = evidence_dir / "snp/virtee_milan_v2"
    collateral_server.add(vcek_path("Milan", CHIP, TCB), (milan / "vcek_milan.der").read_bytes(), throttle=1)
    collateral_server.add("/vcek/v1/Milan/cert_chain", (milan / "cert_chain_milan.pem").read_bytes())
    collateral_server.add("/vcek/v1/Milan/crl", test_crl(evidence_dir))
    collateral_server.base = base
    return collateral_server


def online(server, cache: CollateralCache | None = None, retry: RetryPolicy = NO_WAIT) -> OnlineCollateral:
    return OnlineCollateral(IntelPcs(server.url + "/", cache=cache, retry=retry),
                            AmdKds(server.url, cache=cache, retry=retry))


def test_intel_pcs_assembles_exact_collateral(served, evidence_dir):
    with online(served) as source:
        assert isinstance(source, CollateralSource)
        c = source.tdx("90C06F000000", "platform")
    body = (evidence_dir / "tdx/collateral/teekit_2025-09/tcb_info_90c06f000000.json").read_bytes()
    assert c.tcb_info in body and body.startswith(b'{"tcbInfo":' + c.tcb_info)
    assert (c.qe_identity, c.pck_crl, c.root_ca_crl) == (served.base.qe_identity, served.base.pck_crl,
                                                         served.base.root_ca_crl)
    assert c.tcb_info_issuer_chain == served.base.tcb_info_issuer_chain    # URL-decoded header
    assert c.pck_crl_issuer_chain == served.base.pck_crl_issuer_chain
    signer = x509.load_pem_x509_certificates(
        (evidence_dir / "roots/intel/tcb_signing_chain_2025-2032.pem").read_bytes())[0]
    signer.public_key().verify(raw_ecdsa_to_der(c.tcb_info_signature), c.tcb_info, ec.ECDSA(hashes.SHA256()))


def test_kds_rate_limit_is_retried_honouring_retry_after(served, evidence_dir):
    waits: list[float] = []
    retry = RetryPolicy(attempts=3, total_seconds=5, sleep=waits.append)
    with online(served, retry=retry) as source:
        der = source.snp_endorsement("Milan", "vcek", CHIP, TCB)
    assert der == (evidence_dir / "snp/virtee_milan_v2/vcek_milan.der").read_bytes()
    assert served.hits[vcek_path("Milan", CHIP, TCB)] == 2 and waits == [0.0]


def test_rate_limit_gives_up_after_bounded_attempts(served):
    served.routes[vcek_path("Milan", CHIP, TCB)].throttle = 100
    with online(served) as source, pytest.raises(CollateralError) as info:
        source.snp_endorsement("Milan", "vcek", CHIP, TCB)
    assert served.hits[vcek_path("Milan", CHIP, TCB)] == 3
    assert "rate-limits" in str(info.value) and "127.0.0.1" in str(info.value)
    assert info.value.item.startswith("VCEK for Milan chip 01020304")


def test_retry_after_forms():
    now = datetime(2025, 1, 1, tzinfo=timezone.utc)
    assert _retry_after("3", now) == 3.0
    assert _retry_after("Wed, 01 Jan 2025 00:00:10 GMT", now) == 10.0
    assert _retry_after("soon", now) is None and _retry_after(None, now) is None


def test_unknown_item_names_item_host_and_offline_hint(served):
    with online(served) as source, pytest.raises(CollateralError) as info:
        source.tdx("20a06f000000", "platform")
    assert info.value.item == "TDX TCB info for FMSPC 20a06f000000"
    assert "HTTP 404" in str(info.value) and served.url.split("//")[1] in str(info.value)
    assert "--fmspc 20a06f000000 --out DIR" in info.value.hint and "--collateral" in info.value.hint


def test_unreachable_host_suggests_offline_bundle():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]               # closed again: nothing listens there
    with OnlineCollateral(IntelPcs(f"http://127.0.0.1:{port}", retry=NO_WAIT)) as source:
        with pytest.raises(CollateralError) as info:
            source.tdx("90c06f000000", "platform")
    assert f"cannot reach 127.0.0.1:{port}" in str(info.value)
    assert "veil attest collateral fetch --fmspc 90c06f000000" in info.value.hint


def test_missing_issuer_chain_header_is_an_error(served):
    served.routes["/sgx/certification/v4/pckcrl?ca=platform&encoding=der"].headers.clear()
    with online(served) as source, pytest.raises(CollateralError, match="no SGX-PCK-CRL-Issuer-Chain"):
        source.tdx("90c06f000000", "platform")


def test_vlek_cannot_be_fetched(served):
    with online(served) as source, pytest.raises(CollateralError, match="certificate table") as info:
        source.snp_endorsement("Milan", "vlek", CHIP, TCB)
    assert "--certs" in info.value.hint and served.total == 0


def test_no_service_configured():
    with pytest.raises(CollateralError, match="no Intel PCS"):
        OnlineCollateral().tdx("90c06f000000", "platform")
    with pytest.raises(CollateralError, match="no AMD KDS"):
        OnlineCollateral().snp_crl("Milan", "vcek")


def test_cache_honours_next_update(served, tmp_path):
    clock = Clock(IN_WINDOW)
    cache = CollateralCache(tmp_path / "cache", now=clock)
    path = "/tdx/certification/v4/tcb?fmspc=90c06f000000"
    with online(served, cache) as source:
        first = source.tdx("90c06f000000", "platform")
        assert served.hits[path] == 1 and served.total == 4
        assert source.tdx("90c06f000000", "platform") == first
        assert served.total == 4                                         # nothing asked again
        clock.at = datetime(2025, 10, 2, 7, 3, 50, tzinfo=timezone.utc)    # just before the CRLs' nextUpdate
        source.tdx("90c06f000000", "platform")
        assert served.total == 4
        clock.at = datetime(2025, 10, 2, 7, 5, tzinfo=timezone.utc)       # PCK CRL due, QE identity not
        source.tdx("90c06f000000", "platform")
        assert served.hits["/sgx/certification/v4/pckcrl?ca=platform&encoding=der"] == 2
        assert served.hits["/tdx/certification/v4/qe/identity"] == 1 and served.hits[path] == 1
        assert served.hits["/sgx/certification/v4/rootcacrl"] == 1       # current until 2026-04-03
        clock.at = datetime(2025, 10, 29, 18, 29, 22, tzinfo=timezone.utc)  # TCB info nextUpdate
        source.tdx("90c06f000000", "platform")
        assert served.hits[path] == 2


def test_cache_keeps_vcek_until_not_after_and_survives_corruption(served, tmp_path):
    clock = Clock(IN_WINDOW)
    cache = CollateralCache(tmp_path, now=clock)
    vcek = vcek_path("Milan", CHIP, TCB)
    with online(served, cache) as source:
        source.snp_endorsement("Milan", "vcek", CHIP, TCB)
        clock.at += timedelta(days=365)
        source.snp_endorsement("Milan", "vcek", CHIP, TCB)
        assert served.hits[vcek] == 2                    # one 429, one answer, then cached
        for entry in tmp_path.glob("*.json"):
            entry.write_text("{garbage")
        source.snp_endorsement("Milan", "vcek", CHIP, TCB)
        assert served.hits[vcek] == 3
        clock.at = datetime(2030, 4, 4, tzinfo=timezone.utc)                # past the VCEK's notAfter
        source.snp_endorsement("Milan", "vcek", CHIP, TCB)
        assert served.hits[vcek] == 4


def test_fetch_bundle_builds_an_offline_bundle(served, tmp_path):
    seen: list[str] = []
    totals: list[int] = []
    with online(served) as source:
        summary = fetch_bundle(tmp_path / "bundle", source=source, fmspcs=FMSPCS, snp=[("Milan", CHIP, TCB)],
                               snp_products=["Milan"], progress=seen.append, on_total=totals.append,
                               now=lambda: IN_WINDOW)
        expected = source.tdx("b0c06f000000", "platform")
    assert summary.ok and len(summary.fetched) == totals[0] == len(seen) == 4 + 3
    assert seen[0] == "TDX collateral for FMSPC 00806f050000 (platform PCK CA)"
    bundle = OfflineBundle(summary.path)
    assert bundle.tdx("b0c06f000000", "platform") == expected
    assert bundle.snp_endorsement("Milan", "vcek", CHIP, TCB)[:1] == b"\x30"
    assert bundle.snp_crl("Milan", "vcek") and bundle.snp_cert_chain("Milan", "vcek")
    assert bundle.freshness(IN_WINDOW) == ()


def test_failed_fetch_writes_nothing_unless_keep_going(served, tmp_path):
    with online(served) as source:
        with pytest.raises(CollateralError, match="FMSPC 20a06f000000"):
            fetch_bundle(tmp_path / "b", source=source, fmspcs=["90c06f000000", "20a06f000000"])
        assert not (tmp_path / "b").exists()
        summary = fetch_bundle(tmp_path / "b", source=source, fmspcs=["90c06f000000", "20a06f000000"],
                               keep_going=True)
    assert summary.fetched == ("TDX collateral for FMSPC 90c06f000000 (platform PCK CA)",)
    assert len(summary.failed) == 1 and "20a06f000000" in summary.failed[0]
    assert OfflineBundle(tmp_path / "b").tdx("90c06f000000", "platform")
