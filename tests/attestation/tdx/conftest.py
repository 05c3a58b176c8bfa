"""Fixtures for the TDX tests: the evidence corpus's collateral sets and options builders."""

from __future__ import annotations

from datetime import datetime

import pytest

from attestation.anchors import vendor_anchors
from attestation.collateral import StaticCollateral, TdxCollateral
from attestation.options import VerifyOptions
from tests.attestation.tdx.tdx_evidence import Sets


@pytest.fixture(scope="session")
def sets(evidence_dir) -> Sets:
    return Sets(evidence_dir)


@pytest.fixture(scope="session")
def make_opts():
    anchors = vendor_anchors()

    def build(collateral: TdxCollateral, at: datetime, **kw) -> VerifyOptions:
        kw.setdefault("anchors", anchors)
        return VerifyOptions(collateral=StaticCollateral((collateral,)), at=at, **kw)

    return build
