"""Baselines: the whole baseline suite through the app's path against the same scikit-learn
estimators fitted bare, on the same arrays. Target ratio: at most 1.1.

"ours" is ``runner.fit_baselines``, what every run does after its deep model: build the
task's pipelines, fit each on the training rows, predict the test rows, save each model
with skops in the run's folder, and note the phase in the store. "bare" builds the same
estimators with the same settings by hand, fits and predicts them, and saves nothing.

    python bench/baselines.py [--rows 100000] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from dlcore.tables import run as tables_run

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.epoch_overhead import make_frame  # noqa: E402


def bare_suite(x_train, y_train, x_test, seed: int, n_rows: int) -> float:  # type: ignore[no-untyped-def]
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    trees = 200 if n_rows <= 20_000 else 100
    per_tree = None if n_rows <= 100_000 else 100_000
    leaf = 1 if n_rows <= 20_000 else 5
    started = time.perf_counter()
    for model in (DummyClassifier(strategy="prior"), LogisticRegression(max_iter=2000, C=1.0),
                  RandomForestClassifier(n_estimators=trees, min_samples_leaf=leaf, max_samples=per_tree, n_jobs=-1,
                                         random_state=seed),
                  HistGradientBoostingClassifier(random_state=seed)):
        model.fit(x_train, y_train)
        model.predict_proba(x_test)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    from dlcore import datasets, runner, templates
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    store = Store.open(Path(tempfile.mkdtemp(prefix="bench-baselines-")))
    record, _ = datasets.register_bytes(store, make_frame(args.rows).to_csv(index=False).encode(), "bench.csv")
    spec = RunSpec(DataSpec(record.id, "y"), template="mlp", train=TrainSpec(epochs=1))
    inputs = tables_run.prepare_inputs(store, "", spec, store.dataset(spec.data.dataset_id), templates.get("mlp"))
    x_train, x_test = inputs.baseline_x(inputs.train), inputs.baseline_x(inputs.test)
    y_train = inputs.y[inputs.train]
    seed = spec.train.seed
    print(f"{args.rows:,} rows: {len(inputs.train):,} training x {x_train.shape[1]} inputs, {len(inputs.test):,} test",
          flush=True)
    ours, bare = [], []
    for rep in range(args.reps):
        run_id = runner.submit(store, spec)  # a queued run to write into; never trained
        started = time.perf_counter()
        _, seconds = runner.fit_baselines(store, run_id, "binary", seed, x_train, y_train, x_test, 2)
        ours.append(time.perf_counter() - started)
        bare.append(bare_suite(x_train, y_train, x_test, seed, len(inputs.train)))
        print(f"rep {rep + 1}: ours {ours[-1]:.2f}s ({', '.join(f'{k} {v:.1f}s' for k, v in seconds.items())}), "
              f"bare {bare[-1]:.2f}s", flush=True)
    o, b = statistics.median(ours), statistics.median(bare)
    print(f"\nbaseline suite (median of {args.reps}): ours {o:.2f}s, bare scikit-learn {b:.2f}s, "
          f"ratio {o / b:.3f} (target <= 1.1)")


if __name__ == "__main__":
    main()
