"""Run one target under atheris: `python -m fuzz.worker TARGET [libFuzzer flags] [corpus dirs]`.

Veil's own packages (and the target) are instrumented for coverage as they
are imported; libraries are not. fuzz/run.py starts one of these per target.
"""

from __future__ import annotations

import sys

import atheris

INSTRUMENTED = ["attestation", "policies", "keybroker", "enclave", "fuzz.targets"]


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m fuzz.worker TARGET [libFuzzer flags] [corpus dirs]")
    with atheris.instrument_imports(include=INSTRUMENTED):
        from fuzz.targets import load
        module = load(sys.argv[1])
    atheris.Setup([sys.argv[0], *sys.argv[2:]], module.test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
