"""Veil attestation: evidence in, verified claims out.

Parsers for each TEE's wire format, cryptographic verification against
configured trust anchors and collateral, the normalized claims model, and the
guest-side attesters that collect evidence inside a confidential VM.
"""

import warnings as _warnings

from cryptography.utils import CryptographyDeprecationWarning as _CryptographyDeprecationWarning

# AMD issues every VCEK and VLEK with serial number 0, which RFC 5280 forbids;
# cryptography still loads them but warns on each load. The verifier treats
# the serial as an opaque identifier, so this one warning is noise here.
_warnings.filterwarnings("ignore", message="Parsed a serial number which wasn't positive",
                         category=_CryptographyDeprecationWarning)
