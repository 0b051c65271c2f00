"""Typed contracts (pydantic v2): profiles, cascade table rows, allocations, the HadisService CRD."""

from hadis.api.allocation import Allocation, DecisionInput, GpuPool, VariantAllocation
from hadis.api.base import ApiModel
from hadis.api.profile import BatchPoint, CascadeRow, GpuPerf, LatencyRule, Profile, Variant
from hadis.api.service import HadisService, HadisServiceSpec, HadisServiceStatus

__all__ = [
    "Allocation",
    "ApiModel",
    "BatchPoint",
    "CascadeRow",
    "DecisionInput",
    "GpuPerf",
    "GpuPool",
    "HadisService",
    "HadisServiceSpec",
    "HadisServiceStatus",
    "LatencyRule",
    "Profile",
    "Variant",
    "VariantAllocation",
]
