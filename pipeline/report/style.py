"""One look across the report: a colour per family, a shade of it per model, number format.

Families take distinct hues; each model is a shade of its family's hue (darker = larger), so
a colour never names a family in one chart and an unrelated model in the next.
"""

from __future__ import annotations

import math
import numbers

import pandas as pd
import plotly.colors as pc

FAMILY_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


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


def model_colors(ranked: pd.DataFrame) -> dict[str, str]:
    """Per model: a shade of its family's colour (models ordered by parameters, then name)."""
    base = family_colors(ranked)
    models = (ranked[["model", "family", "params_b"]].drop_duplicates("model")
              .assign(family=lambda f: f["family"].astype(str))
              .sort_values(["family", "params_b", "model"], na_position="last"))
    out = {}
    for fam, grp in models.groupby("family", sort=True):
        n = len(grp)
        for i, model in enumerate(grp["model"]):
            # from light (small) to dark (large); one model keeps the family colour itself
            t = 0.0 if n == 1 else -0.45 + 0.9 * (1 - i / (n - 1))
            color = (_mix(base[fam], (255, 255, 255), t) if t > 0
                     else _mix(base[fam], (0, 0, 0), -t))
            out[str(model)] = color
    return out


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
