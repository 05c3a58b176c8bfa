"""Veil release policies: which attested workload may receive which key.

Depends only on `attestation` (its Claims model). The schema, evaluator and
examples arrive with the release-policy work; nothing here yet.
"""
