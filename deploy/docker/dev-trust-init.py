"""DEVELOPMENT ONLY: create (or reuse) an emulated TEE vendor, export its public anchors and write an
offline collateral bundle for it, so a local broker started with --allow-emulated can verify the
emulated-TDX evidence of a local enclave started with --emulated.

    python dev-trust-init.py VENDOR_DIR TRUST_DIR

VENDOR_DIR holds the emulated vendor's PRIVATE keys (only the enclave container mounts it);
TRUST_DIR receives `anchors/` (public certificates) and `bundle/` (collateral valid ±15 days) for the broker.
Re-run it (restart the compose service) when the bundle expires.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
from pathlib import Path

from attestation.collateral.bundle import BundleWriter
from attestation.emulated import EmulatedVendor


def main(vendor_dir: str, trust_dir: str) -> None:
    trust = Path(trust_dir)
    vendor = EmulatedVendor.open(Path(vendor_dir))
    for sub in ("anchors", "bundle"):
        shutil.rmtree(trust / sub, ignore_errors=True)
    vendor.export_anchors(trust / "anchors")
    with BundleWriter(trust / "bundle") as writer:
        writer.add_tdx(vendor.tdx_collateral(at=dt.datetime.now(dt.timezone.utc)))
    print(f"emulated anchors in {trust / 'anchors'}, offline bundle in {trust / 'bundle'} (DEVELOPMENT ONLY)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
