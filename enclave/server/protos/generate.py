"""Regenerate the Python modules of attestation.proto (committed; run after editing the .proto):

    .venv/bin/python -m enclave.server.protos.generate
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    from grpc_tools import protoc

    args = ["protoc", f"-I{HERE}", f"--python_out={HERE}", f"--pyi_out={HERE}", f"--grpc_python_out={HERE}",
            str(HERE / "attestation.proto")]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    grpc_module = HERE / "attestation_pb2_grpc.py"
    text = re.sub(r"^import attestation_pb2 as", "from . import attestation_pb2 as", grpc_module.read_text(),
                  flags=re.M)
    grpc_module.write_text(text)
    for module in (grpc_module, HERE / "attestation_pb2.py"):   # generated: not linted
        body = module.read_text()
        if not body.startswith("# ruff: noqa"):
            module.write_text("# ruff: noqa\n" + body)


if __name__ == "__main__":
    main()
