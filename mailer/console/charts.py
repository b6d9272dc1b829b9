"""Bar charts as plain geometry for inline SVG in the templates: no scripts, no style
attributes (the CSP allows neither), colours from classes in console.css."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

__all__ = ["bars", "WIDTH", "HEIGHT"]

WIDTH, HEIGHT = 600, 160
_LEFT, _BOTTOM, _TOP = 44, 22, 8


def _nice(top: int) -> int:
    """A round axis maximum at or above `top` (1, 2, 5 × 10^n)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= top:
                return m * step
        step *= 10


def bars(points: Sequence[tuple[dt.datetime, int]], *, tz: Any, step: int) -> dict[str, Any]:
    """Bars for (time, value) points, equal width, scaled to the largest value; labels for
    the first, middle and last bar, in `tz`."""
    if not points:
        return {"bars": [], "max": 0, "total": 0, "peak": None}
    top = _nice(max(max(v for _, v in points), 1))
    plot_w, plot_h = WIDTH - _LEFT - 4, HEIGHT - _BOTTOM - _TOP
    width = min(plot_w / len(points), 40.0)  # a few bars stay bars, not blocks
    fmt = "%d-%m" if step >= 86400 else "%H:%M"
    shown = {0, len(points) // 2, len(points) - 1}
    out = []
    last = len(points) - 1
    for i, (at, value) in enumerate(points):
        h = plot_h * value / top
        # The first and last labels stay inside the picture.
        anchor = "start" if i == 0 < last else ("end" if i == last > 0 else "middle")
        label_x = _LEFT + width * (i + {"start": 0.0, "middle": 0.5, "end": 1.0}[anchor])
        out.append({"x": round(_LEFT + i * width + width * 0.1, 1),
                    "y": round(_TOP + plot_h - h, 1), "w": round(max(width * 0.8, 0.5), 1),
                    "h": round(h, 1), "value": value, "at": at.astimezone(tz),
                    "label": at.astimezone(tz).strftime(fmt) if i in shown else "",
                    "label_x": round(label_x, 1), "anchor": anchor})
    peak = max(points, key=lambda p: p[1])
    return {"bars": out, "max": top, "total": sum(v for _, v in points),
            "peak": (peak[0].astimezone(tz), peak[1]), "width": WIDTH, "height": HEIGHT,
            "left": _LEFT, "base": HEIGHT - _BOTTOM, "top": _TOP, "fmt": fmt}
