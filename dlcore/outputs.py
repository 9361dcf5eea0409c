"""What a finished run keeps of its models: every model's outputs on the test rows (``.npz``,
loaded without pickle), which of its models is the best and which names are its own, and where
a model's global explanation is kept (worked out by ``dlcore.explain``, read by the kinds too:
scoring says how much a model relies on a column it is not given).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from dlcore.errors import NotFoundError
from dlcore.store import RunRecord, Store, atomic_write

__all__ = ["run_result", "save_test_outputs", "load_test_outputs", "best_model", "check_model", "explanation_path",
           "load_explanation"]


def run_result(board: Any, enc: Any, kind: Any, data: Any, fit: Any, stopped: bool) -> dict[str, Any]:
    """What every finished run of a table or of images stores first in its result: the leaderboard,
    the classes, the kind, the rows of each split, what the data added, its warnings and the deep
    model's fit. Each way of running adds its own keys after these (the models, the search, ...)."""
    return {
        "leaderboard": board.to_dict(),
        "classes": enc.classes_,
        "kind": kind.name,
        "rows": {"train": int(len(data.train)), "validation": int(len(data.val)), "test": int(len(data.test)),
                 "dropped_missing_target": data.dropped_missing_target},
        **data.result,
        "warnings": data.warnings,
        "deep": {"epochs_run": fit.epochs_run, "best_epoch": fit.best_epoch, "stopped_by_user": stopped,
                 "epoch_seconds_median": float(np.median(fit.epoch_seconds)) if fit.epoch_seconds else None},
    }


def save_test_outputs(folder: Any, test: np.ndarray, y_test: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
    arrays = {"row": test.astype(np.int64), "y_true": y_test}
    for i, (name, out) in enumerate(outputs.items()):
        arrays[f"model_{i}"] = out
    arrays["names"] = np.array(list(outputs), dtype=np.str_)
    with atomic_write(folder / "test_outputs.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def load_test_outputs(store: Store, run_id: str) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The test rows' true values and every model's outputs, as saved by the run (no pickle)."""
    with np.load(store.run_dir(run_id) / "test_outputs.npz", allow_pickle=False) as data:
        names = [str(n) for n in data["names"]]
        return data["y_true"], {name: data[f"model_{i}"] for i, name in enumerate(names)}, data["row"]


def best_model(result: dict) -> str:
    """The model a finished run uses when none is named (scoring, forecasts, the CLI): the one its
    verdict recommends (``evaluate.recommended``), which is the board's first unless that is a deep
    model or an ensemble not clearly better than the best baseline."""
    from dlcore.evaluate import recommended

    return recommended(result["leaderboard"])[0]


def check_model(run: RunRecord, model: str) -> None:
    """Refuse a model name that is not one of the run's own (it also names a file)."""
    known = list((run.result or {}).get("models", {}))
    if model not in known:
        raise NotFoundError(f"Run {run.id!r} has no model named {model!r}; its models are: {', '.join(known)}.")


def explanation_path(store: Store, run_id: str, model: str) -> Any:
    """Where the global explanation of one model of a run is kept."""
    return store.run_dir(run_id) / "explain" / f"global-{model}.json"


def load_explanation(store: Store, run_id: str, model: str) -> dict[str, Any] | None:
    """The global explanation of one model of a run, or None until one is worked out."""
    path = explanation_path(store, run_id, model)
    return json.loads(path.read_text()) if path.exists() else None
