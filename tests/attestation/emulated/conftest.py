"""One emulated vendor per test session (AMD RSA-4096 keys are generated lazily, once)."""

from __future__ import annotations

import datetime as dt

import pytest

from attestation.emulated import EmulatedCollateral, EmulatedVendor
from attestation.options import VerifyOptions

AT = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="session")
def vendor(tmp_path_factory) -> EmulatedVendor:
    return EmulatedVendor.create(tmp_path_factory.mktemp("emulated") / "vendor")


@pytest.fixture(scope="session")
def at() -> dt.datetime:
    return AT


@pytest.fixture(scope="session")
def emulated_opts(vendor, at) -> VerifyOptions:
    return VerifyOptions(anchors=vendor.anchors(), collateral=EmulatedCollateral(vendor, at), at=at)


@pytest.fixture
def report_data() -> bytes:
    return bytes(range(0x40, 0x80))
