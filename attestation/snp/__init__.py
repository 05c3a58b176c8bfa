"""AMD SEV-SNP: attestation report wire format, VCEK/VLEK certificates, verification.

abi        bytes → Report (no crypto); product detection
fields     POLICY, PLATFORM_INFO, SIGNER_INFO and TCB_VERSION decoders
certtable  the GHCB certificate table of an extended report (parse and build)
kds        VCEK/VLEK certificate extensions and AMD KDS URLs
chain      VCEK/VLEK → ASK/ASVK → pinned ARK, validity and CRL checks (cached links)
claims     Report + endorsement → SnpClaims; `describe` for humans
verify     the verification procedure: Report + options → Claims
"""
