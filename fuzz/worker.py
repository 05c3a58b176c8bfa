"""Run one target under atheris: `python -m fuzz.worker TARGET [libFuzzer flags] [corpus dirs]`.

Veil's own packages (and the target) are instrumented for coverage as they
are imported; libraries are not. Some Veil modules are imported lazily, inside
functions (attestation.verify imports each TEE's verifier on first use), so
the corpus is replayed once inside the instrumenting context: whatever the
seeds import gets instrumented too. fuzz/run.py starts one of these per target.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

INSTRUMENTED = ["attestation", "policies", "keybroker", "enclave", "fuzz.targets"]


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m fuzz.worker TARGET [libFuzzer flags] [corpus dirs]")
    with atheris.instrument_imports(include=INSTRUMENTED):
        from fuzz.targets import load
        module = load(sys.argv[1])
        for directory in (Path(a) for a in sys.argv[2:] if not a.startswith("-")):
            for path in sorted(directory.iterdir()) if directory.is_dir() else ():
                try:
                    module.test_one_input(path.read_bytes())
                except Exception:  # noqa: BLE001 - libFuzzer replays it next and reports it properly
                    pass
    atheris.Setup([sys.argv[0], *sys.argv[2:]], module.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
