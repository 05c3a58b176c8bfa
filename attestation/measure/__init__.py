"""Expected launch measurements computed from a VM's build, as reference values for policies.

Pure: file bytes and parameters in, measurements out.

- snp.py      SEV-SNP MEASUREMENT (with virtee's sev-snp-measure)
- tdvf.py     TDVF metadata and MRTD (TDH.MEM.PAGE.ADD / TDH.MR.EXTEND replay)
- rtmr.py     RTMR[1], RTMR[2] of an OVMF direct kernel boot (event replay, PE Authenticode)
- tdx.py      MRTD + RTMRs together
- refvalues.py  a `ReferenceValues` document with provenance
"""

from .errors import MeasureError
from .refvalues import InputDigest, MeasuredValue, Provenance, reference_values, render_yaml
from .rtmr import RtmrEvent, authenticode_digest, authenticode_sha384, replay
from .snp import SnpLaunch, snp_measurement, snp_ovmf_hash
from .tdvf import PageAddOrder, Tdvf, TdvfSection, mrtd, parse_tdvf
from .tdx import TdxMeasurements, tdx_measurements

__all__ = [
    "InputDigest", "MeasureError", "MeasuredValue", "PageAddOrder", "Provenance", "RtmrEvent", "SnpLaunch", "Tdvf",
    "TdvfSection", "TdxMeasurements", "authenticode_digest", "authenticode_sha384", "mrtd", "parse_tdvf",
    "reference_values", "render_yaml", "replay", "snp_measurement", "snp_ovmf_hash", "tdx_measurements",
]
