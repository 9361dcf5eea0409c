"""Explanations of a finished run's models, worked out once in a worker and kept with the run.

The kind of the run says what an explanation is (``Kind.explain``): column importance and
dependence for tables, HiResCAM overlays for images, lag and covariate importance for
forecasts; tables also explain one row at a time (``Kind.explain_row``). The global
explanation of a model is saved as ``runs/ID/explain/global-MODEL.json``.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pandas as pd

from dlcore import kinds
from dlcore.errors import RunError, SchemaError
from dlcore.outputs import explanation_path, load_explanation
from dlcore.store import EVALUATED, Store, atomic_write

__all__ = ["explain_run", "explain_row_of_run", "global_path", "load_global"]


def global_path(store: Store, run_id: str, model: str) -> Any:
    return explanation_path(store, run_id, model)


def load_global(store: Store, run_id: str, model: str) -> dict[str, Any] | None:
    return load_explanation(store, run_id, model)


def explain_run(store: Store, run_id: str, model: str,
                progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """The global explanation of one model of a run, computed once and kept in the run's folder."""
    run = store.run(run_id)
    if run.status not in EVALUATED:
        raise RunError(f"Run {run_id!r} is {run.status}; explanations need a finished run.")
    kind = kinds.get((run.result or {}).get("kind", "tabular"))
    result = kind.explain(store, run, model, progress)
    result = {**result, "kind": kind.name, "model": model, "created_at": time.time()}
    with atomic_write(global_path(store, run_id, model)) as tmp:
        tmp.write_text(json.dumps(result))
    return result


def explain_row_of_run(store: Store, run_id: str, model: str, row: pd.DataFrame | None = None,
                       test_row: int | None = None) -> dict[str, Any]:
    """Explain one raw row (or the run's test row number ``test_row``) with one model of a run,
    against a background of its training rows."""
    run = store.run(run_id)
    kind = kinds.get((run.result or {}).get("kind", "tabular"))
    if kind.explain_row is None:
        raise SchemaError(f"Runs on {kind.title.lower()} are explained as a whole, not one row at a time.")
    return kind.explain_row(store, run_id, model, row, test_row)
