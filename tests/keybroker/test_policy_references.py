"""Policies that name reference sets ({ref: …}) are pushed with those sets, compile to the same digest as
`veil policy lint` computes locally, and decide releases on the pushed values."""

from __future__ import annotations

import hashlib
import json

import pytest

from attestation.attesters.emulated import EmulatedAttester
from attestation.emulated.tdx import DEFAULT_MRTD
from keybroker.client import KbsClient, KbsError

POLICY = """
apiVersion: veil.dev/v1
kind: ReleasePolicy
metadata:
  name: dev-measured
spec:
  resources: ["dev/measured/*"]
  platforms:
    - tee: tdx
      anchor: emulated
      tcb_status: [UpToDate]
      tdx: {mrtd: {ref: dev-firmware}, rtmr0: any, rtmr1: any, rtmr2: any, mrseam: any}
"""


def references(mrtd: bytes) -> str:
    return f"""
apiVersion: veil.dev/v1
kind: ReferenceValues
metadata: {{name: dev-builds}}
spec:
  sets:
    - name: dev-firmware
      values:
        - value: "{mrtd.hex()}"
          source: veil measure tdx (test build)
          added_by: tests
          added_at: 2026-01-01T00:00:00Z
          expires: 2036-01-01T00:00:00Z
    - name: unused-set
      values:
        - value: "{'00' * 48}"
          source: elsewhere
          added_by: tests
          added_at: 2026-01-01T00:00:00Z
          expires: 2036-01-01T00:00:00Z
"""


def test_a_policy_naming_references_is_refused_without_them(broker):
    with pytest.raises(KbsError) as info:
        broker.admin.push_policy("dev-measured", POLICY)
    assert info.value.status == 422 and "unknown reference set 'dev-firmware'" in info.value.detail


def test_pushed_with_references_it_releases_to_matching_firmware_only(broker, vendor, tmp_path, cli):
    from policies import load_policy

    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "builds.yaml").write_text(references(DEFAULT_MRTD))
    out = cli("broker", "policy-push", str(tmp_path / "policy.yaml"), "--broker", broker.url, "--key",
              str(broker.admin_key), "--references", str(tmp_path / "refs"), cwd=tmp_path)
    pushed = json.loads(out.stdout)
    local = load_policy(tmp_path / "policy.yaml", references=[tmp_path / "refs"])
    assert pushed["digest"] == local.digest                    # the broker and `veil policy lint` agree
    stored = broker.admin.call("GET", f"/policies/dev-measured/{pushed['version']}")
    assert "dev-firmware" in stored["references"] and "unused-set" not in stored["references"]
    broker.admin.create_key("dev/measured/dek", value=b"m" * 32, policy="dev-measured")
    ok = KbsClient(broker.url, EmulatedAttester(vendor, "tdx"))
    assert ok.get_resource("dev/measured/dek") == b"m" * 32
    other = KbsClient(broker.url, EmulatedAttester(vendor, "tdx", mrtd=hashlib.sha384(b"other fw").digest()))
    with pytest.raises(KbsError) as info:
        other.get_resource("dev/measured/dek")
    assert info.value.code == "policy.tdx.mrtd"


def test_policy_push_names_missing_reference_sets(broker, tmp_path, cli):
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "empty.yaml").write_text(references(DEFAULT_MRTD).replace("dev-firmware", "something-else"))
    out = cli("broker", "policy-push", str(tmp_path / "policy.yaml"), "--broker", broker.url, "--key",
              str(broker.admin_key), "--references", str(tmp_path / "empty.yaml"), cwd=tmp_path, check=False)
    assert out.returncode != 0 and "dev-firmware" in out.stderr
