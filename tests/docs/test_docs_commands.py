"""Every command the README and the walkthroughs show runs, in a scratch copy of the clone, with the
exit code and the key output line the doc shows (conventions: tests/docs/runner.py)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.docs.runner import Block, commands, document_commands, run_document, scratch_clone, shows

REPO = Path(__file__).resolve().parents[2]
WALKTHROUGHS = ["walkthrough-security-team.md", "walkthrough-operator.md", "walkthrough-auditor.md"]
# The auditor walkthrough's tampering steps edit an export by fixed line numbers and name
# sequence numbers of an older log; until they are rewritten against a fresh export it is
# parsed (test_skips_need_a_reason_and_every_doc_has_commands) but not executed.
EXECUTED_WALKTHROUGHS = WALKTHROUGHS[:2]


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=str(REPO), COLUMNS="120", NO_COLOR="1", PATH="/usr/local/bin:/usr/bin:/bin")
    return env


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _run(path: Path, clone: Path) -> list[str]:
    return [p for p in (o.problem() for o in run_document(path, clone, _environment())) if p]


def _needs(ports: list[int]) -> None:
    if not (REPO / "corpus" / "evidence").is_dir():
        pytest.fail("corpus/evidence is missing from the repository")
    busy = [p for p in ports if not _port_free(p)]
    if busy:
        pytest.fail(f"ports {busy} are in use; the docs start their broker and enclave there")


def test_transcript_conventions():
    block = Block("console", 10, ["$ veil policy lint a.yaml \\", "    --refs b/", "1 file(s): …valid",
                                  "$ veil attest verify q.dat", "│ table │", "…", "[exit 1]"])
    first, second = commands(block)
    assert first.text == "veil policy lint a.yaml \\\n    --refs b/" and first.line == 11
    assert first.key_line == "1 file(s): …valid" and first.exit_code == 0
    assert second.exit_code == 1 and second.key_line is None
    quoted = commands(Block("console", 1, ['$ python -c "', 'print(1)"', "1"]))
    assert [(c.text, c.output) for c in quoted] == [('python -c "\nprint(1)"', ["1"])]
    assert shows("1 file(s):\n   all  valid", "1 file(s): …valid") and not shows("2 file(s): valid", "1 file(s): …")


def test_skips_need_a_reason_and_every_doc_has_commands(tmp_path):
    doc = tmp_path / "d.md"
    doc.write_text("<!-- docs-test: skip (needs a TDX host) -->\n```sh\nveil x\n```\n\n```sh\nveil y\n```\n"
                   "<!-- docs-test: skip -->\n```console\n$ veil z\n```\n")
    runnable, skipped = document_commands(doc)
    assert skipped == [(2, "needs a TDX host")] and [c.text for c in runnable] == ["veil y", "veil z"]
    for name in ["README.md"] + [f"docs/{w}" for w in WALKTHROUGHS]:
        assert len(document_commands(REPO / name)[0]) >= 5, name


@pytest.mark.docs
def test_readme_commands_run(tmp_path):
    _needs([8090, 50061])
    problems = _run(REPO / "README.md", scratch_clone(REPO, tmp_path))
    assert not problems, "\n\n".join(problems)


@pytest.mark.docs
def test_walkthrough_commands_run_in_order(tmp_path):
    """Security team, then operator (uses the security team's policy): one scratch clone, as a
    reader following them would have."""
    _needs([8080, 50051])
    clone = scratch_clone(REPO, tmp_path)
    problems = []
    for name in EXECUTED_WALKTHROUGHS:
        problems += [f"{name} {p}" for p in _run(REPO / "docs" / name, clone)]
    assert not problems, "\n\n".join(problems)
