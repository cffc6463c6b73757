"""One look across the report: a colour per family, a shade of it and a marker shape per
model, colour scales, number format.

Every colour is colour-blind safe: families take the Okabe-Ito hues (never red against
green); each model is a shade of its family's hue (darker = larger) and has its own marker
shape within the family, so two models of one family differ in more than a shade.
Continuous values use viridis/cividis; values around a midpoint a blue-orange scale.
"""

from __future__ import annotations

import math
import numbers

import pandas as pd
import plotly.colors as pc

# Okabe & Ito (2008), "Color Universal Design": distinguishable under every colour-vision type
FAMILY_PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
                  "#f0e442", "#000000")
SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "triangle-down",
           "star", "pentagon", "hexagon")
SEQUENTIAL = "Cividis"  # one direction (e.g. F1 from low to high)
# below a midpoint orange, above it blue, white at it (PuOr-like, colour-blind safe)
DIVERGING = [[0.0, "#b35806"], [0.25, "#f1a340"], [0.5, "#f7f7f7"], [0.75, "#6baed6"],
             [1.0, "#08519c"]]


def family_colors(ranked: pd.DataFrame) -> dict[str, str]:
    """One colour per family (families in sorted order)."""
    fams = sorted(ranked["family"].astype(str).unique())
    return {f: FAMILY_PALETTE[i % len(FAMILY_PALETTE)] for i, f in enumerate(fams)}


def _rgb(color: str) -> tuple[float, float, float]:
    return pc.hex_to_rgb(color) if color.startswith("#") else pc.unlabel_rgb(color)


def _mix(color: str, toward: tuple[int, int, int], t: float) -> str:
    r, g, b = _rgb(color)
    return "#{:02x}{:02x}{:02x}".format(*(round(c + (w - c) * t)
                                          for c, w in zip((r, g, b), toward, strict=True)))


def _family_models(ranked: pd.DataFrame) -> pd.DataFrame:
    """One row per model with its family, ordered by family, parameters, then name."""
    return (ranked[["model", "family", "params_b"]].drop_duplicates("model")
            .assign(family=lambda f: f["family"].astype(str))
            .sort_values(["family", "params_b", "model"], na_position="last"))


def model_colors(ranked: pd.DataFrame) -> dict[str, str]:
    """Per model: a shade of its family's colour (models ordered by parameters, then name)."""
    base = family_colors(ranked)
    out = {}
    for fam, grp in _family_models(ranked).groupby("family", sort=True):
        n = len(grp)
        for i, model in enumerate(grp["model"]):
            # from light (small) to dark (large); one model keeps the family colour itself
            t = 0.0 if n == 1 else -0.45 + 0.85 * (1 - i / (n - 1))
            color = (_mix(base[fam], (255, 255, 255), t) if t > 0
                     else _mix(base[fam], (0, 0, 0), -t))
            out[str(model)] = color
    return out


def model_symbols(ranked: pd.DataFrame) -> dict[str, str]:
    """Per model: a marker shape, distinct among the models of its family."""
    return {str(model): SYMBOLS[i % len(SYMBOLS)]
            for _, grp in _family_models(ranked).groupby("family", sort=True)
            for i, model in enumerate(grp["model"])}


def rgba(color: str, alpha: float) -> str:
    """``rgba(...)`` of a hex colour."""
    r, g, b = _rgb(color)
    return f"rgba({int(r)}, {int(g)}, {int(b)}, {alpha})"


def fmt(value: object, digits: int = 4) -> str:
    """A number as the report shows it: integers (and whole floats from 100) plain, others
    from 1000 with one decimal, the rest with ``digits`` decimals and tiny non-zero values as
    ``<0.0001``; never an exponent."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    v = float(value)
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(value, numbers.Integral) or (v.is_integer() and abs(v) >= 100):
        return f"{v:,.0f}" if abs(v) >= 10_000 else f"{v:.0f}"
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    tiny = 10.0 ** -digits
    if 0 < abs(v) < tiny:
        return f"{'-' if v < 0 else ''}<{tiny:.{digits}f}"
    return f"{v:.{digits}f}"
