"""Epoch time of a template through the app's worker path against the same Keras model in a bare script.

The app path is a real ``python -m dlcore worker`` process training a queued run (store writes,
live progress, stop checks and heartbeat included); epoch times come from the store. The bare
reference fits the same template, on the same preprocessed arrays and batch size, in a plain
Keras script. Prints medians over repetitions and the ratio (target: at most 1.05). Also the time to
the first point: from Submit to the first epoch in the store (a warm worker) against the bare
script's process start to the end of its first epoch (target: at most 1.3); for images and series
this extends ``bench/first_point.py``, which measures tables in the store and on screen.

    python bench/epoch_overhead.py [--rows 20000] [--epochs 8] [--reps 3]
    python bench/epoch_overhead.py --template cnn_deep [--epochs 6] [--reps 3]   # digits images, 32 px
    python bench/epoch_overhead.py --template lstm [--epochs 8] [--reps 3]       # CO2 windows, horizon 52

For images the bare script feeds the uint8 pixels to ``model.fit`` as NumPy arrays (Keras' own
batching), so the ratio also covers the app's tf.data pipeline against Keras' default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dlcore import splits
from dlcore.images import run as images_run
from dlcore.tables import run as tables_run

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE = r"""
import json, sys, time
import numpy as np
import keras
from dlcore import templates
from dlcore.spec import TrainSpec
from dlcore.training import compile_for
d = np.load(sys.argv[1])
settings = TrainSpec(**json.loads(sys.argv[2]))
keras.utils.set_random_seed(settings.seed)
name, task, k = sys.argv[3], sys.argv[4], int(sys.argv[5])
if d["x"].ndim == 4:
    info = templates.InputInfo(image_shape=tuple(d["x"].shape[1:]))
elif d["x"].ndim == 3:
    info = templates.InputInfo(window_shape=tuple(d["x"].shape[1:]))
else:
    info = templates.InputInfo(d["x"].shape[1], 0, ())
model = templates.get(name).build(settings, info, task, k)
compile_for(model, task, settings.learning_rate)
times, first_end = [], []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, e, logs=None):
        times.append(time.perf_counter() - self.t)
        first_end.append(time.time())
model.fit(d["x"], d["y"], validation_data=(d["xv"], d["yv"]), epochs=settings.epochs,
          batch_size=settings.batch_size, shuffle=True, verbose=0, callbacks=[T()])
print(json.dumps({"times": times, "first_end": first_end[0]}))
"""


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 16)), columns=[f"x{i}" for i in range(16)])
    for j in range(4):
        frame[f"c{j}"] = rng.choice([f"v{k}" for k in range(8)], rows)
    logit = frame["x0"] - 0.5 * frame["x1"] + (frame["c0"] == "v1") * 1.0
    frame["y"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return frame


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--template", default="mlp", choices=["mlp", "cnn_small", "cnn_deep", "lstm", "gru", "cnn1d"])
    args = ap.parse_args()

    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    ap_template = args.template
    home = Path(tempfile.mkdtemp(prefix="bench-epoch-"))
    env = dict(os.environ, DLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    store = Store.open(home)
    arrays = home / "arrays.npz"
    if ap_template == "mlp":
        record, _ = datasets.register_bytes(store, make_frame(args.rows).to_csv(index=False).encode(), "bench.csv")
        train = TrainSpec(epochs=args.epochs, patience=1000, batch_size=64)
        spec = RunSpec(DataSpec(record.id, "y"), template="mlp", train=train, baselines=False)
        # The same arrays the worker trains on, for the bare script.
        prep = tables_run.prepare(store, spec)
        feats = prep.pre.transform(prep.frame)
        dense = prep.pre.dense(feats)
        np.savez(arrays, x=dense[prep.train], y=prep.y[prep.train], xv=dense[prep.val], yv=prep.y[prep.val])
        task, k = "binary", 1
        what = f"MLP, {len(prep.train):,} training rows x {dense.shape[1]} inputs, batch 64"
    elif ap_template in ("lstm", "gru", "cnn1d"):
        # CO2, weekly, horizon 52, one backtest window: the run fits twice; the second fit (on the
        # whole series) is timed against the bare script on the same windows.
        from dlcore.series import backtest as fc
        from dlcore.series.run import _fit_windows, load_series
        from dlcore.spec import ForecastSpec

        record, _ = datasets.register_sample(store, "co2")
        train = TrainSpec(epochs=args.epochs, patience=1000, batch_size=32)
        spec = RunSpec(DataSpec(record.id, "co2", task="forecast"), template=ap_template, train=train, baselines=False,
                       forecast=ForecastSpec(time_col="week", horizon=52, windows=1))
        panel = load_series(datasets.load_frame(store, record.id), spec)
        values = panel.values[0]
        x, y, xv, yv = _fit_windows(fc.Scaler().fit(values).transform(values), panel.settings.lookback, 52)
        np.savez(arrays, x=x, y=y, xv=xv, yv=yv)
        task, k = "forecast", 52
        what = f"{ap_template}, {len(x):,} training windows of {panel.settings.lookback} weeks (CO2), horizon 52, batch 32"
    else:
        record, _ = datasets.register_sample(store, "digits")
        train = TrainSpec(epochs=args.epochs, patience=1000, batch_size=32)
        spec = RunSpec(DataSpec(record.id, "label", image_size=32), template=ap_template, train=train, baselines=False)
        labels = pd.read_parquet(store.dataset_dir(record.id) / "data.parquet")["label"]
        y = labels.astype(int).to_numpy()
        tr, va, _ = splits.split_indices(y, "multiclass", 0.2, 0.2, train.seed)
        pixels = images_run.image_pixels(store, record.id, 32, 1)  # the worker reads the same cache
        np.savez(arrays, x=pixels[tr], y=y[tr], xv=pixels[va], yv=y[va])
        task, k = "multiclass", 10
        what = f"{ap_template}, {len(tr):,} training images of 32x32x1, batch 32"

    app_medians, bare_medians = [], []
    worker = subprocess.Popen([sys.executable, "-m", "dlcore", "worker", "--only", "train"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_app, first_bare = [], []
    time.sleep(10)  # the worker imports TensorFlow once, when it starts: warm before anyone submits
    try:
        for rep in range(args.reps):
            submitted = time.time()
            run_id = runner.submit(store, spec)
            while store.run(run_id).status not in ("done", "stopped", "failed"):
                time.sleep(0.2)
            first_app.append(store.epochs(run_id)[0]["created_at"] - submitted)
            seconds = [e["seconds"] for e in store.epochs(run_id)]
            # The first epoch of a fit includes tracing; a forecast's last fit is the one on the whole series.
            seconds = seconds[-args.epochs:][1:] if task == "forecast" else seconds[1:]
            app_medians.append(statistics.median(seconds))
            started = time.time()
            out = subprocess.run([sys.executable, "-c", BARE, str(arrays), json.dumps(train.__dict__), spec.template,
                                  task, str(k)], cwd=ROOT,
                                 env=env, capture_output=True, text=True, check=True)
            bare = json.loads(out.stdout.strip().splitlines()[-1])
            bare_medians.append(statistics.median(bare["times"][1:]))
            first_bare.append(bare["first_end"] - started)
            print(f"rep {rep + 1}: app {app_medians[-1]:.3f}s/epoch, bare {bare_medians[-1]:.3f}s/epoch; first point "
                  f"{first_app[-1]:.2f}s after submit, bare {first_bare[-1]:.2f}s after process start", flush=True)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    app, bare = statistics.median(app_medians), statistics.median(bare_medians)
    print(f"\n{what}, {args.epochs} epochs, {args.reps} reps")
    print(f"epoch time (median): app worker {app:.3f}s, bare Keras {bare:.3f}s, ratio {app / bare:.3f} (target <= 1.05)")
    fa, fb = statistics.median(first_app), statistics.median(first_bare)
    print(f"first epoch point (median): submit -> store {fa:.2f}s, bare process start -> end of its first epoch "
          f"{fb:.2f}s (its arrays ready-made), ratio {fa / fb:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main()
