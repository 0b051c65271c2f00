"""The gateway's prompt router (paper's rule-based scorer) and fraction → threshold calibration."""

from hadis_gateway.router.calibration import QuantileThreshold
from hadis_gateway.router.features import (
    DEFAULT_MODEL,
    FALLBACK_MODEL,
    FEATURES,
    Lexicons,
    RouterModelError,
)
from hadis_gateway.router.scorer import MODEL_ENV, PromptRouter, ReferenceStats

__all__ = [
    "DEFAULT_MODEL",
    "FALLBACK_MODEL",
    "FEATURES",
    "MODEL_ENV",
    "Lexicons",
    "PromptRouter",
    "QuantileThreshold",
    "ReferenceStats",
    "RouterModelError",
]
