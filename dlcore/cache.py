"""Built once, shared by every page and session: a run's figures, tables and test outputs, and a
dataset's charts, kept in this process and keyed by the run's id and its state.

A page view used to load a finished run's test outputs from disk and rebuild each of its Plotly
figures (30–60 ms apiece) on every render, for every session. Here each is built the first time
and handed out after that. A run's entries are keyed by ``run_state(run)`` as well as its id, so
when the run changes (it finishes, is stopped, is evaluated again) the next page view builds
fresh ones, and the old ones age out of the bounded cache. A dataset's content never changes
(it is named by its bytes), so its entries are keyed by its id and the arguments alone.

Values are shared, never copied: callers must not modify them (Streamlit copies a figure to
send it, and never changes it).

    fig = cache.for_run(run, "leaderboard", charts.leaderboard_chart, rows, title, higher)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable, TypeVar

from dlcore.store import RunRecord

__all__ = ["for_run", "for_dataset", "run_state", "clear", "MAX_ENTRIES"]

T = TypeVar("T")

MAX_ENTRIES = 256  # a few dozen runs' figures and tables: small next to one dataset's table
MAX_HEAVY = 4  # test outputs of big runs (tens of MB each): only the runs being looked at now

_entries: OrderedDict[Hashable, Any] = OrderedDict()
_heavy: OrderedDict[Hashable, Any] = OrderedDict()
_lock = threading.Lock()
_building: dict[Hashable, threading.Lock] = {}


def run_state(run: RunRecord) -> tuple:
    """What changes whenever a run's figures or tables would: its status, when it finished,
    its epochs and its score, and how far it got."""
    return (run.status, run.finished_at, run.epochs_done, run.test_score, run.progress)


def _get(key: Hashable, build: Callable[..., T], args: tuple, heavy: bool = False) -> T:
    entries, limit = (_heavy, MAX_HEAVY) if heavy else (_entries, MAX_ENTRIES)
    with _lock:
        if key in entries:
            entries.move_to_end(key)
            return entries[key]
        building = _building.setdefault(key, threading.Lock())
    # Several sessions opening the same run at once: one builds, the others wait for it.
    with building:
        with _lock:
            if key in entries:
                return entries[key]
        value = build(*args)
        with _lock:
            entries[key] = value
            entries.move_to_end(key)
            while len(entries) > limit:
                entries.popitem(last=False)
            _building.pop(key, None)
    return value


def for_run(run: RunRecord, name: str, build: Callable[..., T], *args: Hashable, heavy: bool = False) -> T:
    """``build(*args)`` for this run in its present state, built at most once; ``name`` and
    ``args`` tell one figure or table of the run from another (the model picked, say). A
    ``heavy`` value (a run's test outputs) is kept only for the last few runs asked for."""
    return _get(("run", run.id, run_state(run), name, args), build, args, heavy)


def for_dataset(dataset_id: str, name: str, build: Callable[..., T], *args: Hashable) -> T:
    """``build(*args)`` for a dataset, built at most once (a dataset's content never changes)."""
    return _get(("dataset", dataset_id, name, args), build, args)


def clear() -> None:
    """Forget everything (tests; a server never needs to)."""
    with _lock:
        _entries.clear()
        _heavy.clear()
