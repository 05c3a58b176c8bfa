"""The `veil` command-line tool: a thin front over attestation, policies, keybroker and enclave."""

__version__ = "0.1.0"
