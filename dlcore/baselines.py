"""scikit-learn baselines per task: the bar a deep model has to clear.

Every baseline is a ``Pipeline`` over the same preprocessed matrix the plain MLP sees, fitted
on the same training rows; a ``Dummy*`` floor is always on the board. Models are saved with
skops, which loads only types on an allow-list and never runs pickled code.
"""

from __future__ import annotations

import time
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline

from dlcore.errors import StoreError
from dlcore.rows import RowMatrix, release_freed_memory

__all__ = ["baselines_for", "predict_output", "fit_one", "save", "load", "DESCRIPTIONS", "fit_within"]

DESCRIPTIONS = {
    "dummy": "The floor: always predicts the most common class (or the average). Anything useful beats it.",
    "logistic_regression": "A straight-line model over the inputs; fast, easy to explain, often hard to beat.",
    "ridge": "A straight-line model over the inputs; fast, easy to explain, often hard to beat.",
    "random_forest": "Many decision trees voting together; strong on tables with little tuning.",
    "gradient_boosting": "Trees built one after another, each fixing the last one's errors; usually the strongest simple model on tables.",
}


def baselines_for(task: str, seed: int, n_rows: int) -> dict[str, Pipeline]:
    """The baseline pipelines for a task, unfitted, keyed by model name."""
    # Forests grow with the data: on big tables use fewer trees, each grown on a sample of at
    # most 100,000 rows, so the baselines stay minutes, not hours, on a 2-core machine.
    trees = 200 if n_rows <= 20_000 else 100
    per_tree = None if n_rows <= 100_000 else 100_000
    # Fully grown trees on a big table make a saved forest of hundreds of MB; leaves of a few
    # rows keep it small at almost no cost in accuracy.
    # Above a million rows, leaves of at least 20 rows: the forest's 100 trees held in memory
    # (and saved) are a quarter of the size (bench/train_memory.py: +650 MB at 5,000,000 rows).
    leaf = 1 if n_rows <= 20_000 else 5 if n_rows <= 1_000_000 else 20
    # Boosting's leaves hold at least 20 rows by default: under 40 rows no tree can split at all, and it
    # says the same for every row (ROC AUC 0.500 on 30 trivially separable images). Smaller leaves there.
    boost_leaf = 20 if n_rows >= 100 else max(2, n_rows // 5)
    if task == "regression":
        models: dict[str, Any] = {
            "dummy": DummyRegressor(strategy="mean"),
            "ridge": Ridge(alpha=1.0),
            "random_forest": RandomForestRegressor(n_estimators=trees, min_samples_leaf=max(2, leaf), max_samples=per_tree,
                                                   n_jobs=-1, random_state=seed),
            "gradient_boosting": HistGradientBoostingRegressor(min_samples_leaf=boost_leaf, random_state=seed),
        }
    else:
        models = {
            "dummy": DummyClassifier(strategy="prior"),
            "logistic_regression": LogisticRegression(max_iter=2000, C=1.0),
            "random_forest": RandomForestClassifier(n_estimators=trees, min_samples_leaf=leaf, max_samples=per_tree,
                                                    n_jobs=-1, random_state=seed),
            "gradient_boosting": HistGradientBoostingClassifier(min_samples_leaf=boost_leaf, random_state=seed),
        }
    return {name: Pipeline([("model", est)]) for name, est in models.items()}


# Gradient boosting and the linear models copy their training rows to float64 (twice the shared
# float32 matrix) and boosting bins them too; above this many rows they learn from a random
# sample of this size instead, which the run records and Compare states (``sample_of``).
SAMPLE_ROWS = 500_000
COPY_TO_FLOAT64 = ("gradient_boosting", "logistic_regression", "ridge")
# The forest reads its training rows as float32, written out from a big table's compact matrix
# (``dlcore.rows``: at 5,000,000 rows, 3,000,000 training rows of 56 columns are 672 MB), and
# each of its trees learns from 100,000 of them: above this many it draws them from a sample.
FOREST_SAMPLE_ROWS = 1_000_000
# Gradient boosting converts whatever rows it is given to float64 before it learns: handed its
# sample as float64, it keeps it as it is rather than hold a float32 copy beside its own (the
# linear models keep float32 rows float32, so they are handed the rows as they are).
FLOAT64_INSIDE = ("gradient_boosting",)


def sample_of(name: str, n_rows: int, seed: int) -> np.ndarray | None:
    """The training rows (positions, sorted) baseline ``name`` learns from when it cannot take
    them all within the memory a worker is given; None when it takes every row."""
    size = SAMPLE_ROWS if name in COPY_TO_FLOAT64 else FOREST_SAMPLE_ROWS if name == "random_forest" else None
    if size is None or n_rows <= size:
        return None
    return np.sort(np.random.default_rng(seed).choice(n_rows, size, replace=False))


# Rows predicted at a time: gradient boosting copies the rows it predicts on to float64, so a
# million test rows predicted at once would hold a float64 copy of them all.
PREDICT_ROWS = 100_000


def predict_output(task: str, model: Pipeline, x: np.ndarray, n_classes: int) -> np.ndarray:
    """Probabilities (n, k) for classification, aligned to class codes 0..k-1; values for regression.
    A big matrix is predicted a block of rows at a time, into one array (every row's prediction
    depends on that row alone)."""
    n = len(x)
    if isinstance(x, RowMatrix) and n <= PREDICT_ROWS:
        x = np.asarray(x)
    if isinstance(x, (np.ndarray, RowMatrix)) and n > PREDICT_ROWS:
        out: np.ndarray | None = None
        for start in range(0, n, PREDICT_ROWS):
            part = _predict_all(task, model, x[start:start + PREDICT_ROWS], n_classes)
            if out is None:
                out = np.empty((n, *part.shape[1:]), dtype=part.dtype)
            out[start:start + len(part)] = part
        assert out is not None
        return out
    return _predict_all(task, model, x, n_classes)


def _predict_all(task: str, model: Pipeline, x: np.ndarray, n_classes: int) -> np.ndarray:
    if task == "regression":
        return np.asarray(model.predict(x), dtype=np.float64)
    proba = np.asarray(model.predict_proba(x), dtype=np.float64)
    if proba.shape[1] == n_classes:
        return proba
    # A class absent from the training rows: put its columns back as zeros.
    full = np.zeros((len(x), n_classes))
    full[:, model.classes_.astype(int)] = proba
    return full


def small_table_threads(n_rows: int) -> Any:
    """OpenMP on one thread while fitting on a small table: gradient boosting's threads spin-wait,
    which on a busy 2-core machine made one fit on 344 rows take 8-12 s instead of 0.3 s
    (``bench/automl.py``; the search and the backtest do the same)."""
    import contextlib

    if n_rows > 20_000:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="openmp")


def fit_one(item: tuple, shared: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
    """One baseline of a run, a piece the run may hand to another node (``dlcore.fanout``):
    ``item`` is (name, unfitted pipeline, task, n_classes, the run's folder); ``shared`` holds
    ``x_train``, ``y_fit`` and ``x_test``. Fits on the training rows, saves the model in the
    run's folder, and returns its test output and fit seconds."""
    import time

    name, pipe, task, n_classes, folder = item[:5]
    release_freed_memory()  # what the model before this one freed, back to the system first
    started = time.perf_counter()
    rows = sample_of(name, len(shared["x_train"]), item[5]) if len(item) > 5 else None
    x = shared["x_train"]
    with small_table_threads(len(x)):
        if rows is not None and name in FLOAT64_INSIDE:
            pipe.fit(np.asarray(x[rows], dtype=np.float64), shared["y_fit"][rows])  # its own copy, made once
        elif rows is not None:
            pipe.fit(x[rows], shared["y_fit"][rows])
        elif isinstance(x, RowMatrix) and not isinstance(pipe[-1], (DummyClassifier, DummyRegressor)):
            pipe.fit(np.asarray(x), shared["y_fit"])  # written out whole (the floor reads only the target and the rows' count)
        else:
            pipe.fit(x, shared["y_fit"])
    fit_seconds = time.perf_counter() - started
    output = predict_output(task, pipe, shared["x_test"], n_classes)
    save(pipe, Path(folder) / f"{name}.skops")
    return output, fit_seconds


_ALLOWED_PREFIXES = ("sklearn.", "numpy.", "builtins.", "scipy.")


def save(model: Pipeline, path: Path) -> None:
    import skops.io as sio

    from dlcore.store import atomic_write

    # Deflate: a forest's node arrays shrink several times. Level 1, not 6: on a 100-tree forest
    # over 60,000 rows it saved in 0.8 s rather than 2.4 s, for 17 MB rather than 14 MB
    # (bench/baselines.py: the save was most of the suite's overhead over bare scikit-learn).
    with atomic_write(path) as tmp:
        sio.dump(model, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=1)


def load(path: Path) -> Pipeline:
    """Load a saved baseline, trusting only scikit-learn, NumPy and SciPy types."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not t.startswith(_ALLOWED_PREFIXES)]
    if refused:
        raise StoreError(f"The saved model {path.name} contains types that are not allowed: {', '.join(refused)}.")
    return sio.load(path, trusted=untrusted)


def fit_baselines(store: Any, run_id: str, task: str, seed: int, x_train: Any, y_fit: np.ndarray,
                  x_test: Any, n_classes: int, say: Callable[[str], None] = lambda _: None,
                  offer: Callable[..., dict] | None = None) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Fit every baseline the run's kind offers for the task (``offer``) on the training rows, save
    each (skops) in the run's folder, and return their test outputs and fit seconds
    (``bench/baselines.py`` times this)."""
    from dlcore import fanout  # the executor: in turn, or at once on a cluster

    models = (offer or baselines_for)(task, seed, len(x_train))
    folder = store.run_dir(run_id)
    names = list(models)
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    pieces = fanout.current()  # in turn; at once on several nodes when the run executes on a cluster

    def before(i: int) -> None:
        store.update_run(run_id, phase=f"Fitting baseline {i + 1} of {len(names)}: {names[i].replace('_', ' ')}",
                         heartbeat_at=time.time())

    if pieces.parallel:
        store.update_run(run_id, phase=f"Fitting {len(names)} baselines at once on {pieces.where}",
                         heartbeat_at=time.time())
    items = [(name, models[name], task, n_classes, str(folder), seed) for name in names]
    shared = {"x_train": x_train, "y_fit": y_fit, "x_test": x_test}
    for i, (output, fit_seconds) in pieces.map(fit_one, items, shared, folder, before=before):
        outputs[names[i]], seconds[names[i]] = output, fit_seconds
        # Saved in the run's folder: let go of the fitted model (a forest's trees) before the next one learns.
        models[names[i]] = items[i] = None
        if pieces.parallel:
            store.update_run(run_id, phase=f"Fitting {len(names)} baselines at once on {pieces.where}: "
                                           f"{len(outputs)} done", heartbeat_at=time.time())
        say(f"baseline {names[i]}: {fit_seconds:.1f}s")
    return {name: outputs[name] for name in names}, {name: seconds[name] for name in names}


# Baselines that grow in steps (trees, boosting rounds): within a budget they are grown a step at a
# time with ``warm_start`` and stop when their share of the time is spent.
MIN_SHARE = 0.05
GROWN_IN_STEPS = {"random_forest": ("n_estimators", 20, "trees"), "gradient_boosting": ("max_iter", 10, "boosting rounds")}


def fit_within(store: Any, run_id: str, task: str, seed: int, x_train: Any, y_fit: np.ndarray, x_test: Any,
               n_classes: int, clock: Any, until: float, say: Callable[[str], None] = lambda _: None,
               offer: Callable[..., dict] | None = None,
               fitted: Callable[[str, Any, float], None] | None = None,
               ) -> tuple[dict[str, np.ndarray], dict[str, float], list[str]]:
    """``fit_baselines`` within a time budget: every baseline has until ``until`` (seconds on
    ``clock``), shared among those still to fit. A forest or boosting model grows a step of trees at a
    time (its first step whatever the time) and stops when its share is spent; the floor and the linear
    models, quick on the small inputs baselines get, are fitted whole, so the board stays complete.
    ``fitted(name, pipeline, seconds)`` is told of each baseline as soon as it is fitted (a search
    scores it on its validation rows for the live trials chart).
    Returns the test outputs, fit seconds and, in words, every baseline cut short, for the board."""
    import contextlib

    models = (offer or baselines_for)(task, seed, len(x_train))
    folder = store.run_dir(run_id)
    names = list(models)
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    notes: list[str] = []
    for i, name in enumerate(names):
        pipe = models[name]
        # Its part of what is left of the share, and never under a twentieth of the budget: a forest of
        # 200 small trees that takes 2 s is not cut to 20 because a slow model before it used the share.
        share_end = clock.elapsed() + max(MIN_SHARE * clock.budget, (until - clock.elapsed()) / (len(names) - i))
        store.update_run(run_id, phase=f"Fitting baseline {i + 1} of {len(names)}: {name.replace('_', ' ')} · "
                                       f"{max(0.0, clock.left()):.0f} s left", heartbeat_at=time.time(),
                         step_started_at=time.time())
        title = name.replace("_", " ").capitalize()
        started = time.perf_counter()
        est = pipe.steps[-1][1]
        # OpenMP on one thread for small data: its threads spin-wait, and on a busy 2-core machine
        # boosting took a hundred seconds rather than a few (as ``dlcore.search._one_thread``).
        limit: Any = contextlib.nullcontext()
        if len(x_train) <= 20_000:
            from threadpoolctl import threadpool_limits

            limit = threadpool_limits(1, user_api="openmp")
        with limit:
            grown = GROWN_IN_STEPS.get(name)
            if grown and "warm_start" in est.get_params():
                key, step, words = grown
                full = int(est.get_params()[key])
                n = min(step, full)
                est.set_params(warm_start=True, **{key: n})
                pipe.fit(x_train, y_fit)
                while n < full:
                    per_step = (time.perf_counter() - started) / n
                    more = min(step, full - n)
                    if clock.elapsed() + per_step * more > share_end:
                        break
                    n += more
                    est.set_params(**{key: n})
                    pipe.fit(x_train, y_fit)
                est.set_params(warm_start=False)
                if n < full:
                    notes.append(f"{title} was cut short by the time budget: {n} of its {full} {words} "
                                 f"({clock.budget:.0f} s budget); its score may understate it. A longer budget "
                                 "gives it every step.")
            else:
                pipe.fit(x_train, y_fit)
        seconds[name] = time.perf_counter() - started
        if fitted is not None:
            fitted(name, pipe, seconds[name])
        outputs[name] = predict_output(task, pipe, x_test, n_classes)
        save(pipe, Path(folder) / f"{name}.skops")
        say(f"baseline {name}: {seconds[name]:.1f}s (at {clock.elapsed():.1f} s)")
    return outputs, seconds, notes
