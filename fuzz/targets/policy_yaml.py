"""Release policy and reference-values YAML, through the loader's own steps (policies.loader).

What load_policy and lint do, with the example reference values loaded once
rather than per input: read_source (PolicyLoadError for unreadable or
non-YAML input), check_policy / _add_sets (problems, never an exception),
then compile_policy for a document without errors. The input is written to
a file because read_source is the API.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from policies.compile import compile_policy
from policies.errors import PolicyLoadError
from policies.loader import _add_sets, check_policy, load_references, read_source

REFERENCES = Path(__file__).resolve().parents[2] / "policies" / "examples" / "reference-values.yaml"
REF_SETS, _ = load_references([REFERENCES])
_DIR = Path(tempfile.mkdtemp(prefix="veil-fuzz-policy-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
_FILE = _DIR / "policy.yaml"


def test_one_input(data: bytes) -> None:
    _FILE.write_bytes(data)
    try:
        source = read_source(_FILE)
    except PolicyLoadError:
        return
    if source.kind == "ReferenceValues":
        _add_sets(source, dict(REF_SETS))
        return
    document, problems = check_policy(source, REF_SETS)
    if document is not None and not any(p.severity == "error" for p in problems):
        compile_policy(document, REF_SETS, source=source.file)
