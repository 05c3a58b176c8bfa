"""Robustness tests start real broker processes the way tests/keybroker does; its fixtures are reused."""

from tests.keybroker.conftest import trust_dirs, vendor  # noqa: F401 - fixtures reused as they are
