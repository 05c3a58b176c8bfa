"""From a real broker's log to the offline tools: `veil audit fetch` writes an export that `veil audit verify`
accepts, and `veil policy diff --log EXPORT_DIR` replays the broker's own releases under a proposed policy."""

from __future__ import annotations

import json

from attestation.attesters.emulated import EmulatedAttester
from attestation.emulated.tdx import DEFAULT_MRTD
from keybroker.admin.keys import generate
from keybroker.client import KbsClient

from .conftest import development_emulated, pinned, veil

RESOURCE = "dev/fetch-diff/dek"


def test_fetch_verify_and_diff_against_the_broker_log(broker, vendor, tmp_path):
    broker.admin.push_policy("development-emulated", development_emulated())
    broker.admin.create_key(RESOURCE, value=bytes(32), policy="development-emulated")
    assert len(KbsClient(broker.url, EmulatedAttester(vendor, "tdx")).get_resource(RESOURCE)) == 32

    export = tmp_path / "export"
    fetched = veil("audit", "fetch", "--broker", broker.url, "--admin-key", str(broker.admin_key),
                   "--out", str(export), cwd=tmp_path, check=False)
    assert fetched.returncode == 0, fetched.stderr
    assert sorted(p.name for p in export.iterdir()) == [
        "checkpoint", "entries.jsonl", "leaf-hashes", "log-key.pub", "manifest.json"]
    verified = veil("audit", "verify", str(export), "--json", cwd=tmp_path, check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["verified"] is True
    entries = [json.loads(line) for line in (export / "entries.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "release" and e["resource"] == RESOURCE for e in entries)

    again = veil("audit", "fetch", "--broker", broker.url, "--admin-key", str(broker.admin_key),
                 "--out", str(export), cwd=tmp_path, check=False)
    assert again.returncode == 2 and "not an empty directory" in again.stderr

    # The released evidence carried the emulator's default MRTD: a policy pinning another MRTD would deny it.
    (tmp_path / "old.yaml").write_text(development_emulated())
    (tmp_path / "new.yaml").write_text(pinned("tightened", mrtd=bytes(reversed(DEFAULT_MRTD))))
    (tmp_path / "same.yaml").write_text(pinned("same"))
    diffed = veil("policy", "diff", "old.yaml", "new.yaml", "--log", str(export), "--json", cwd=tmp_path,
                  check=False)
    assert diffed.returncode == 1, diffed.stdout + diffed.stderr
    changes = [c for c in json.loads(diffed.stdout)["changes"] if c["resource"] == RESOURCE]
    assert changes and all(c["change"] == "allow -> deny" and "policy.tdx.mrtd" in c["new_reasons"]
                           for c in changes)
    assert {c["seq"] for c in changes} <= {e["seq"] for e in entries if e["kind"] == "release"}
    unchanged = veil("policy", "diff", "old.yaml", "same.yaml", "--log", str(export), "--json", cwd=tmp_path,
                     check=False)
    assert [c for c in json.loads(unchanged.stdout)["changes"] if c["resource"] == RESOURCE] == []


def test_fetch_with_an_unregistered_key_is_refused(broker, tmp_path):
    stranger = tmp_path / "stranger.key"
    generate(stranger)
    result = veil("audit", "fetch", "--broker", broker.url, "--admin-key", str(stranger),
                  "--out", str(tmp_path / "export"), cwd=tmp_path, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert not (tmp_path / "export").exists()


def test_diff_refuses_a_directory_that_is_not_an_export(tmp_path):
    (tmp_path / "p.yaml").write_text(development_emulated())
    (tmp_path / "empty").mkdir()
    result = veil("policy", "diff", "p.yaml", "p.yaml", "--log", str(tmp_path / "empty"), cwd=tmp_path,
                  check=False)
    assert result.returncode == 2 and "not an audit export" in result.stderr
