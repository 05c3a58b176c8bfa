"""Offline bundles: round trip, integrity, hostile manifests, atomic writes, freshness."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from attestation.collateral import ChainedCollateral, CollateralSource, SnpTcbParts
from attestation.collateral import bundle as bundle_module
from attestation.collateral.bundle import BundleWriter, OfflineBundle
from attestation.collateral.intel import load_intel_collateral_json, tdx_collateral_from_pcs
from attestation.errors import CollateralError

MILAN_TCB = SnpTcbParts(bootloader=3, tee=0, snp=8, microcode=115)
CHIP = bytes(range(1, 65))
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def dcap(evidence_dir: Path, name: str):
    return load_intel_collateral_json((evidence_dir / f"tdx/collateral/dcapqvl_{name}.json").read_bytes())


def teekit_set(evidence_dir: Path, fmspc: str):
    """A teekit TCB info combined with the QE identity and CRLs of the 2025-09 dcap-qvl set."""
    base = dcap(evidence_dir, "2025-09_20a06f000000")
    body = (evidence_dir / f"tdx/collateral/teekit_2025-09/tcb_info_{fmspc}.json").read_bytes()
    qe = b'{"enclaveIdentity":' + base.qe_identity + b',"signature":"' + base.qe_identity_signature.hex().encode() + b'"}'
    return tdx_collateral_from_pcs(body, qe, base.tcb_info_issuer_chain, base.qe_identity_issuer_chain,
                                   base.pck_crl, base.pck_crl_issuer_chain, base.root_ca_crl)


@pytest.fixture
def full_bundle(tmp_path, evidence_dir) -> Path:
    out = tmp_path / "bundle"
    amd = evidence_dir / "snp"
    with BundleWriter(out, now=lambda: T0) as w:
        w.add_tdx(dcap(evidence_dir, "2026-02_90c06f000000"))
        w.add_tdx(dcap(evidence_dir, "2025-06_b0c06f000000"))
        w.add_snp_endorsement("Milan-B0", "vcek", CHIP, MILAN_TCB,
                              (amd / "virtee_milan_v2/vcek_milan.der").read_bytes())
        w.add_snp_endorsement("Milan", "vlek", None, MILAN_TCB,
                              (amd / "trustee_aws_vlek_milan_v3/test-vlek.der").read_bytes())
        w.add_snp_cert_chain("Milan", "vcek", (evidence_dir / "roots/amd/ask_ark_milan.pem").read_bytes())
        w.add_snp_crl("Milan", "vcek", (evidence_dir / "tdx/collateral/gotdx_2023-06_50806f000000/"
                                        "root_ca_crl.der").read_bytes())   # any DER CRL will do here
        w.add_item("nvidia.rim", {"id": "NV_GPU_DRIVER_GH100_545.00"},
                   (evidence_dir / "nvidia/rims/Driver_RIM_test_no_gpu.swidtag").read_bytes())
    return out


def test_round_trip(full_bundle, evidence_dir):
    b = OfflineBundle(full_bundle)
    assert isinstance(b, CollateralSource)
    assert b.tdx("90C06F000000", "platform") == dcap(evidence_dir, "2026-02_90c06f000000")
    assert b.tdx("b0c06f000000", "platform") == dcap(evidence_dir, "2025-06_b0c06f000000")
    vcek = (evidence_dir / "snp/virtee_milan_v2/vcek_milan.der").read_bytes()
    assert b.snp_endorsement("Milan", "vcek", CHIP, MILAN_TCB) == vcek
    vlek = (evidence_dir / "snp/trustee_aws_vlek_milan_v3/test-vlek.der").read_bytes()
    assert b.snp_endorsement("milan", "vlek", b"\x99" * 64, MILAN_TCB) == vlek
    assert b.snp_cert_chain("Milan", "vcek") == (evidence_dir / "roots/amd/ask_ark_milan.pem").read_bytes()
    assert b.snp_crl("Milan", "vcek")[:1] == b"\x30"
    rim = b.read("nvidia.rim", {"id": "NV_GPU_DRIVER_GH100_545.00"})
    assert rim == (evidence_dir / "nvidia/rims/Driver_RIM_test_no_gpu.swidtag").read_bytes()
    manifest = json.loads((full_bundle / "manifest.json").read_text())
    assert manifest["format"] == "veil-collateral-bundle" and manifest["created_at"] == "2026-01-01T00:00:00Z"
    tcb = next(i for i in manifest["items"] if i["kind"] == "tdx.tcb_info" and i["keys"]["fmspc"] == "90c06f000000")
    assert (tcb["not_before"], tcb["not_after"]) == ("2026-02-18T10:58:51Z", "2026-03-20T10:58:51Z")


def test_combined_sets_share_files(tmp_path, evidence_dir):
    fmspcs = ["00806f050000", "50806f000000", "90c06f000000", "b0c06f000000"]
    with BundleWriter(tmp_path / "b") as w:
        for fmspc in fmspcs:
            w.add_tdx(teekit_set(evidence_dir, fmspc))
    b = OfflineBundle(tmp_path / "b")
    for fmspc in fmspcs:
        assert b.tdx(fmspc, "platform") == teekit_set(evidence_dir, fmspc)
    files = [p for p in (tmp_path / "b").rglob("*") if p.is_file()]
    # manifest, 4 TCB infos, and one file each for the shared chain, QE identity, PCK CRL,
    # PCK CRL chain and root CA CRL: 28 items in 10 files
    assert len(b.items) == 28 and len(files) == 10 == len({i.path for i in b.items}) + 1


def test_missing_item_names_fmspc_and_how_to_fetch(full_bundle):
    b = OfflineBundle(full_bundle)
    with pytest.raises(CollateralError) as info:
        b.tdx("00806f050000", "platform")
    assert info.value.item == "TDX TCB info for FMSPC 00806f050000"
    assert "veil attest collateral fetch --fmspc 00806f050000 --out DIR" in info.value.hint
    assert "copy DIR here" in str(info.value)
    with pytest.raises(CollateralError, match="Intel PCK CRL \\(processor CA\\)"):
        b.tdx("90c06f000000", "processor")
    with pytest.raises(CollateralError, match="VCEK for Genoa"):
        b.snp_endorsement("Genoa", "vcek", CHIP, MILAN_TCB)
    with pytest.raises(CollateralError, match="CRL for the AMD Milan VLEK hierarchy"):
        b.snp_crl("Milan", "vlek")


def test_tampered_file_is_refused(full_bundle):
    b = OfflineBundle(full_bundle)
    item = b.find("tdx.tcb_info", {"fmspc": "90c06f000000"})
    path = full_bundle / item.path
    data = bytearray(path.read_bytes())
    data[100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CollateralError, match="does not match the SHA-256"):
        b.tdx("90c06f000000", "platform")
    assert b.tdx("b0c06f000000", "platform")          # other items still served


def test_deleted_file_is_a_clear_error(full_bundle):
    b = OfflineBundle(full_bundle)
    (full_bundle / b.find("tdx.root_ca_crl", {"fmspc": "90c06f000000"}).path).unlink()
    with pytest.raises(CollateralError, match="cannot read"):
        b.tdx("90c06f000000", "platform")


def _hostile(full_bundle: Path, **changes) -> Path:
    manifest = json.loads((full_bundle / "manifest.json").read_text())
    manifest["items"][0].update(changes)
    (full_bundle / "manifest.json").write_text(json.dumps(manifest))
    return full_bundle


@pytest.mark.parametrize("path", ["../outside.der", "/etc/passwd", "tdx/../../x", "tdx\\..\\x", "",
                                  "tdx//x", "./x", "manifest.json"])
def test_paths_outside_the_bundle_are_refused(full_bundle, path):
    with pytest.raises(CollateralError, match="manifest is invalid at items.0.path"):
        OfflineBundle(_hostile(full_bundle, path=path))


def test_symlink_leading_outside_is_refused(full_bundle, tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"x")
    os.symlink(secret, full_bundle / "link")
    b = OfflineBundle(_hostile(full_bundle, path="link", size=1, sha256=hashlib.sha256(b"x").hexdigest()))
    first = b.items[0]
    with pytest.raises(CollateralError, match="leads outside the bundle"):
        b.read(first.kind, first.keys)


@pytest.mark.parametrize("changes,where", [
    ({"size": 10**12}, "items.0.size"), ({"sha256": "zz"}, "items.0.sha256"),
    ({"kind": "../x"}, "items.0.kind"), ({"keys": {"a" * 300: "b"}}, "items.0.keys"),
])
def test_malformed_items_are_refused(full_bundle, changes, where):
    with pytest.raises(CollateralError, match=f"invalid at {where}"):
        OfflineBundle(_hostile(full_bundle, **changes))


def test_bad_manifests(tmp_path, full_bundle):
    with pytest.raises(CollateralError, match="has no manifest.json"):
        OfflineBundle(tmp_path)
    manifest = json.loads((full_bundle / "manifest.json").read_text())
    manifest["items"].append(manifest["items"][0])
    (full_bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CollateralError, match="more than once"):
        OfflineBundle(full_bundle)
    (full_bundle / "manifest.json").write_text('{"format": "something-else", "version": 1}')
    with pytest.raises(CollateralError, match="invalid at format"):
        OfflineBundle(full_bundle)


def test_failed_write_leaves_no_bundle(tmp_path, evidence_dir):
    out = tmp_path / "new"
    with pytest.raises(RuntimeError):
        with BundleWriter(out) as w:
            w.add_tdx(dcap(evidence_dir, "2026-02_90c06f000000"))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_crash_during_commit_leaves_nothing_new(tmp_path, evidence_dir, monkeypatch):
    real_write = bundle_module._write

    def failing(path, data):
        if path.name == "manifest.json":
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(bundle_module, "_write", failing)
    with pytest.raises(OSError):
        with BundleWriter(tmp_path / "new") as w:
            w.add_tdx(dcap(evidence_dir, "2026-02_90c06f000000"))
    assert list(tmp_path.iterdir()) == []


def test_crash_while_updating_keeps_the_old_bundle(full_bundle, evidence_dir, monkeypatch):
    before = sorted(p.relative_to(full_bundle) for p in full_bundle.rglob("*"))
    real_write = bundle_module._write
    monkeypatch.setattr(bundle_module, "_write", lambda path, data: real_write(path, data)
                        if path.name != "manifest.json" else (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        with BundleWriter(full_bundle) as w:
            w.add_tdx(dcap(evidence_dir, "2025-09_20a06f000000"))
    assert sorted(p.relative_to(full_bundle) for p in full_bundle.rglob("*")) == before
    assert OfflineBundle(full_bundle).tdx("90c06f000000", "platform")


def test_update_replaces_items_and_removes_unused_files(full_bundle, evidence_dir):
    old = OfflineBundle(full_bundle).find("tdx.tcb_info", {"fmspc": "b0c06f000000"})
    newer = teekit_set(evidence_dir, "b0c06f000000")
    with BundleWriter(full_bundle) as w:
        w.add_tdx(newer)
    b = OfflineBundle(full_bundle)
    assert b.tdx("b0c06f000000", "platform") == newer
    assert b.tdx("90c06f000000", "platform") == dcap(evidence_dir, "2026-02_90c06f000000")
    assert not (full_bundle / old.path).exists()


def test_refuses_to_write_into_an_unrelated_directory(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CollateralError, match="not empty"):
        BundleWriter(tmp_path)


def test_freshness_reports_items_outside_their_window(full_bundle):
    b = OfflineBundle(full_bundle)
    inside = datetime(2026, 3, 1, tzinfo=timezone.utc)
    stale = {s.item.describe(): s.state for s in b.freshness(inside)}
    assert stale["TDX TCB info for FMSPC b0c06f000000"] == "expired"
    assert "TDX TCB info for FMSPC 90c06f000000" not in stale
    early = {s.item.describe(): s.state for s in b.freshness(datetime(2020, 1, 1, tzinfo=timezone.utc))}
    assert early["TDX TCB info for FMSPC 90c06f000000"] == "not yet valid"
    text = [s.describe() for s in b.freshness(inside)]
    assert any("expired (valid 2025-06-19T10:16:03Z .. 2025-07-19T10:16:03Z)" in t for t in text)


def test_bundle_in_a_chain(full_bundle, evidence_dir):
    chained = ChainedCollateral((OfflineBundle(full_bundle),))
    assert chained.tdx("90c06f000000", "platform") == dcap(evidence_dir, "2026-02_90c06f000000")
