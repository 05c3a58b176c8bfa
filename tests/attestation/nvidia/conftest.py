"""Fixtures for NVIDIA GPU tests: the real Hopper samples and an emulated NVIDIA vendor."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from attestation.anchors import vendor_anchors
from attestation.emulated import EmulatedRims, EmulatedVendor
from attestation.nvidia.evidence import GpuEvidence
from attestation.options import VerifyOptions



@pytest.fixture(scope="session")
def nvidia_dir(evidence_dir: Path) -> Path:
    return evidence_dir / "nvidia"


@pytest.fixture(scope="session")
def anchors():
    return vendor_anchors()


@pytest.fixture(scope="session")
def hopper_2023(nvidia_dir: Path) -> GpuEvidence:
    sample = nvidia_dir / "hopper_2023_sample"
    return GpuEvidence(report=(sample / "attestationReport.txt").read_bytes(),
                       certificates=(sample / "gpuAkCertChain.txt").read_bytes())


@pytest.fixture(scope="session")
def hopper_2025(nvidia_dir: Path) -> GpuEvidence:
    sample = nvidia_dir / "hopper_2025_sample"
    return GpuEvidence(report=(sample / "hopperAttestationReport.txt").read_bytes(),
                       certificates=(sample / "hopperCertChain.txt").read_bytes())


@pytest.fixture(scope="session")
def vendor(tmp_path_factory) -> EmulatedVendor:
    return EmulatedVendor.open(tmp_path_factory.mktemp("vendor") / "v")


@pytest.fixture(scope="session")
def emulated_opts(vendor) -> VerifyOptions:
    return VerifyOptions(anchors=vendor.nvidia_anchors(), collateral=EmulatedRims(vendor.nvidia.rims()),
                         at=datetime.now(timezone.utc), check_revocation=False)
