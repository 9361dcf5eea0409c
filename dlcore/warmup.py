"""A worker's warm-up: the first-time costs of a run, paid once when the worker starts.

A fresh process pays, on its first run only, for importing Keras and TensorFlow, TensorFlow's
first graph trace and thread pools, scikit-learn's estimators and OpenMP pool, Optuna, and
skops, whose import walks every loaded module to list the types it trusts (seconds once
TensorFlow is loaded). ``warm_up`` does all of that on a few made-up rows, so a run submitted to
a started worker pays none of it (``bench/automl.py`` times the app's path from submit to the
leaderboard). It touches no store and no random state a run relies on: every run seeds Keras,
NumPy and its estimators itself, and a test checks a run scores the same after a warm-up.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["warm_up"]


def warm_up() -> float:
    """Import and exercise what a table run uses, on 32 made-up rows; returns the seconds taken."""
    started = time.perf_counter()
    import keras
    import optuna  # noqa: F401  (the search's sampler and pruner)
    import skops.io  # noqa: F401
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from dlcore import baselines, search  # noqa: F401  (the run's own modules)
    from dlcore.training import compile_for

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    # Its own generator: the global NumPy and Keras state a run seeds is left as it was.
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(1, activation="sigmoid")])
    compile_for(model, "binary", 1e-3)
    model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=16, verbose=0)
    model.predict(x, verbose=0)
    for est in (LogisticRegression(), RandomForestClassifier(n_estimators=4, n_jobs=-1, random_state=0),
                HistGradientBoostingClassifier(max_iter=2, random_state=0)):
        pipe = Pipeline([("model", est)]).fit(x, y)
        pipe.predict_proba(x)
    with tempfile.TemporaryDirectory() as folder:
        baselines.save(pipe, Path(folder) / "warm.skops")
    del model
    keras.backend.clear_session()
    return time.perf_counter() - started
