"""Veil key broker: the KBS attestation protocol, key store and attestation log.

Depends on `attestation` and `policies`. See docs/broker.md.
"""

__version__ = "0.1.0"
