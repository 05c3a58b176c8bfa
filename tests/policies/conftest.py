"""Fixtures for the policy tests: example policies, real sample claims, passing bases."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from policies import load_policy
from tests.policies.mutations import gpu, set_path
from tests.policies.samples import sample_claims

EXAMPLES = Path(__file__).resolve().parents[2] / "policies" / "examples"
REFS = EXAMPLES / "reference-values.yaml"
AT = datetime(2025, 7, 1, tzinfo=timezone.utc)


def example(name: str):
    return load_policy(EXAMPLES / f"{name}.yaml", references=[REFS])


@pytest.fixture(scope="session")
def tdx_claims(evidence_dir):
    return sample_claims(evidence_dir, "dcapqvl_tdx_quote_v4")


@pytest.fixture(scope="session")
def snp_claims(evidence_dir):
    return sample_claims(evidence_dir, "azure_genoa_v3")


@pytest.fixture(scope="session")
def bases(evidence_dir, tdx_claims, snp_claims):
    """For each example: (claims that pass, resource asked for, a claims of the other TEE)."""
    milan = sample_claims(evidence_dir, "virtee_milan_v2")
    emulated = set_path(tdx_claims, "anchor.kind", "emulated")
    return {
        "tdx-production": (tdx_claims, "models/llama-8b/dek", snp_claims),
        "snp-production": (snp_claims, "models/llama-8b/dek", tdx_claims),
        "tdx-8xh100": (tdx_claims.model_copy(update={"gpus": tuple(gpu(i) for i in range(8))}),
                       "models/llama-70b/dek", snp_claims),
        "snp-h100": (snp_claims.model_copy(update={"gpus": (gpu(0), gpu(1))}), "models/llama-8b/dek", tdx_claims),
        "development-emulated": (emulated, "dev/tiny/dek", set_path(milan, "anchor.kind", "emulated")),
    }
