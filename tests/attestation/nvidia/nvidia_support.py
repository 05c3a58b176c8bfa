"""Shared helpers for the NVIDIA tests (imported as tests.attestation.nvidia.nvidia_support)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from attestation.collateral.nvidia import LocalRims
from attestation.options import VerifyOptions

RIM_TIME = datetime(2024, 6, 1, tzinfo=timezone.utc)        # inside 2023-06-27 .. 2025-06-22
TEST_RIMS = ("Driver_RIM_test_no_gpu.swidtag", "1010_0200_882_96005E0001_test_no_gpu.swidtag")
PROD_RIMS = ("Driver_RIM_test_no_gpu.swidtag", "1010_0200_882_96005E0001_PROD.swidtag")


def real_opts(anchors, nvidia_dir: Path, rims=TEST_RIMS, *, at=RIM_TIME) -> VerifyOptions:
    return VerifyOptions(anchors=anchors, collateral=LocalRims([nvidia_dir / "rims" / r for r in rims]),
                         at=at, check_revocation=False)
