"""Veil attestation: evidence in, verified claims out.

Parsers for each TEE's wire format, cryptographic verification against
configured trust anchors and collateral, the normalized claims model, and the
guest-side attesters that collect evidence inside a confidential VM.
"""
