"""The KBS attestation protocol (Trustee RCAR): /kbs/v0/auth, /attest, /resource."""
