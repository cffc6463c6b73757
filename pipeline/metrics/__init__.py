"""Registered metrics. Adding one is one module here with a ``@register_metric`` function."""

from pipeline.metrics import bertscore, classification, rouge, set_overlap  # noqa: F401
from pipeline.metrics.base import (
    CELL_QUANTITIES,
    MetricResult,
    MetricSpec,
    column,
    directions,
    get_metric,
    register_metric,
)

__all__ = ["CELL_QUANTITIES", "MetricResult", "MetricSpec", "column", "directions",
           "get_metric", "register_metric"]
