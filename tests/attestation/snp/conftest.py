"""Fixtures for the SNP tests (helpers live in snp_support.py)."""

from __future__ import annotations

import pytest

from tests.attestation.snp.snp_support import LocalAmd, make_local_amd


@pytest.fixture(scope="session")
def local_amd() -> LocalAmd:
    """A locally generated ARK-Milan → SEV-Milan / SEV-VLEK-Milan hierarchy (emulated anchor)."""
    return make_local_amd()
