"""Registered metrics, one module each (``rouge.py`` registers ``rouge``): a
``@register_metric`` function, imported when a task first asks for it."""

from pipeline.scoring.metrics.base import (
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
