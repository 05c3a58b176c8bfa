"""SNP certificate tables from an auxblob or an extended report (GHCB spec 56421, certificate table GUIDs).

Parsing and building live in attestation.snp.certtable; this module orders the
certificates the way Evidence carries them (endorsement key first, then ASK/ASVK, ARK).
"""

from __future__ import annotations

from ..snp.certtable import build_cert_table, parse_cert_table

ORDER = ("vcek", "vlek", "ask", "ark")

__all__ = ["build_cert_table", "certificates_from_auxblob"]


def certificates_from_auxblob(auxblob: bytes) -> tuple[bytes, ...]:
    """The DER certificates of a cert table, endorsement key first; () for an empty table."""
    if not auxblob or not any(auxblob):
        return ()
    table = parse_cert_table(auxblob)
    known = [table[kind] for kind in ORDER if kind in table]
    return tuple(known)
