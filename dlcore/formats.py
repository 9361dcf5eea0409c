"""Numbers as every page, verdict and report writes them: one formatter, so a score reads the same
on the leaderboard ("32,021"), in the verdict and on the Runs page, and no "-0.0" ever shows.

- 1,000 and above: whole numbers with thousands separators ("32,021", "162,100").
- 1 to 1,000: four significant digits ("33.14", "1.621").
- up to 1 (AUC, accuracy, R², a probability): four decimals ("0.8500").
- under 0.001: three significant digits, never scientific ("0.00000542").

>>> number(32021.3486), number(0.85), number(5.42e-06), number(-0.00004), number(0.6, signed=True)
('32,021', '0.8500', '0.00000542', '-0.0000400', '+0.6000')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["number", "points"]


def number(value: Any, signed: bool = False) -> str:
    """``value`` in the shared format; "-" for none or not a number; ``signed`` puts "+" before a positive."""
    if value is None:
        return "-"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(x):
        return "-" if math.isnan(x) else ("∞" if x > 0 else "-∞")
    size = abs(x)
    if size >= 1:  # rounded first, so 999.96 reads "1,000", not "1,000.0"
        size = float(f"{size:.4g}") if size < 1000 else size
    if size >= 1000:
        text = f"{size:,.0f}"
    elif size > 1:
        text = f"{size:,.{max(0, 3 - math.floor(math.log10(size)))}f}"
    elif size >= 0.001 or size == 0:
        text = f"{size:.4f}"
    else:
        text = f"{size:.{2 - math.floor(math.log10(size))}f}"
    return _sign(x, text, signed)


def points(share: float, signed: bool = False) -> str:
    """A change of probability in percentage points with one decimal (0.006 -> "0.6"): the same
    rounding in a table and in a sentence; a change that rounds to nothing is "0.0", never "-0.0"."""
    return _sign(share, f"{abs(share) * 100:.1f}", signed)


def _sign(x: float, text: str, signed: bool) -> str:
    if not any(c in "123456789" for c in text):  # rounds to zero: no sign at all
        return text
    return ("-" if x < 0 else "+" if signed else "") + text
