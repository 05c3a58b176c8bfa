"""veil.attestation.v1: the .proto and its generated modules (see generate.py)."""
