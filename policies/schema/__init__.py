"""The policy language: pydantic models for `ReleasePolicy` and `ReferenceValues` documents."""

from .common import AllowList, Flag, HexAllowList
from .documents import Metadata, PolicySpec, ReferenceSet, ReferenceValue, ReferenceValues, ReleasePolicy
from .gpu import GpuRule
from .platform import Platform
from .snp import SnpRule, SnpTcbFloor
from .tdx import TdAttributesRule, TdxRule

__all__ = [
    "AllowList", "Flag", "HexAllowList", "Metadata", "PolicySpec", "ReferenceSet", "ReferenceValue",
    "ReferenceValues", "ReleasePolicy", "GpuRule", "Platform", "SnpRule", "SnpTcbFloor",
    "TdAttributesRule", "TdxRule",
]
