"""Veil key broker: the KBS attestation protocol, key store and attestation log.

Depends on `attestation` and `policies`. Not yet built.
"""
