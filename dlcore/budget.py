"""How long a run may take: the analyst's time budget, and the clock a run keeps to it with.

A budget is seconds, or one of three named presets. The whole run (search, folds, baselines,
ensemble, final fit, evaluation) keeps to it; the search gives back its time early enough for
the rest to finish inside the budget.

>>> parse_budget("quick"), parse_budget("90")
(60.0, 90.0)
"""

from __future__ import annotations

import time
from typing import Any

from dlcore.errors import SpecError

__all__ = ["PRESETS", "DEFAULT_PRESET", "parse_budget", "describe", "longer_budget", "still_improving", "Clock"]

# Seconds per preset, sized for a table of a few thousand rows on a 2-core laptop.
PRESETS: dict[str, float] = {"quick": 60.0, "standard": 300.0, "thorough": 1200.0}
DEFAULT_PRESET = "standard"
MIN_BUDGET, MAX_BUDGET = 10.0, 86_400.0


def parse_budget(value: Any) -> float:
    """Seconds from ``quick`` / ``standard`` / ``thorough`` or a number of seconds."""
    if isinstance(value, str):
        key = value.strip().lower()
        if key in PRESETS:
            return PRESETS[key]
        try:
            value = float(key.rstrip("s"))
        except ValueError:
            raise SpecError(f"The budget is {value!r}; give seconds (e.g. 300) or one of: "
                            f"{', '.join(f'{k} ({v:.0f} s)' for k, v in PRESETS.items())}.") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(f"The budget is {value!r}; give a number of seconds.")
    seconds = float(value)
    if not MIN_BUDGET <= seconds <= MAX_BUDGET:
        raise SpecError(f"The budget is {seconds:g} s; give between {MIN_BUDGET:.0f} and {MAX_BUDGET:.0f} seconds.")
    return seconds


def describe(seconds: float) -> str:
    """'300 s (5 min, standard)' for the page and the report."""
    named = next((k for k, v in PRESETS.items() if v == seconds), None)
    minutes = f"{seconds / 60:g} min" if seconds >= 60 else None
    words = ", ".join(w for w in (minutes, named) if w)
    return f"{seconds:.0f} s" + (f" ({words})" if words else "")


def longer_budget(seconds: float) -> str:
    """The advice after a budget cut something short: the next preset above ``seconds``.

    >>> longer_budget(20)
    'A longer budget (e.g. quick, 60 s) would give every part of the run its time.'
    """
    bigger = [(k, v) for k, v in PRESETS.items() if v > seconds]
    named = f" (e.g. {bigger[0][0]}, {bigger[0][1]:.0f} s)" if bigger else ""
    return f"A longer budget{named} would give every part of the run its time."


def still_improving(out_of_time: bool, epochs_run: int, best_epoch: int | None, patience: int) -> bool:
    """Whether the budget stopped a fit that was still learning: stopped by the deadline with its best
    validation epoch among the last few (within half its patience, at least 2), so more epochs
    would likely have helped. A fit whose best epoch lies well back had about converged.

    >>> still_improving(True, 10, 9, 8), still_improving(True, 10, 3, 8), still_improving(False, 10, 10, 8)
    (True, False, False)
    """
    if not out_of_time:
        return False
    return best_epoch is None or best_epoch > epochs_run - max(2, patience // 2)


class Clock:
    """The run's deadline: ``left()`` seconds remain of ``budget`` since ``start``."""

    def __init__(self, budget: float, start: float | None = None) -> None:
        self.budget = float(budget)
        self.start = time.monotonic() if start is None else start

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.budget - self.elapsed()

    def until(self, share: float) -> float:
        """Seconds left until ``share`` of the budget has been used (may be negative)."""
        return self.budget * share - self.elapsed()
