"""Time to the first point: from Submit to the first epoch in the store and on screen, against a
bare script's time from process start to the end of its first epoch.

The app side uses a running server with its warm worker (TensorFlow is imported once, when the
worker starts, never in the Streamlit process). The browser side clicks Train in Debian's
Chromium and waits for the first point of the live chart. Target ratio: at most 1.3.

    python bench/first_point.py [--rows 5000] [--reps 3]

With ``--search`` it times a search within a budget for every kind of data instead (tables, text,
images, a forecast, several series): seconds from the worker's start of the run (its started_at)
to the first point the live page can draw (a trial scored, or the first epoch of the current
trial), and to that point on screen in Chromium. The browser tests hold it to 5 s.

    python bench/first_point.py --search [--reps 1]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.epoch_overhead import make_frame  # noqa: E402

BARE = r"""
import time, sys
import numpy as np, pandas as pd
import keras
from dlcore import templates
from dlcore.tables.preprocess import TabularPreprocessor
from dlcore.targets import TargetEncoder
from dlcore.spec import TrainSpec
from dlcore.training import compile_for
frame = pd.read_csv(sys.argv[1])
num = [c for c in frame.columns if c.startswith("x")]; cat = [c for c in frame.columns if c.startswith("c")]
pre = TabularPreprocessor(num, cat).fit(frame)
x = pre.dense(pre.transform(frame)); y = TargetEncoder("binary").fit(frame["y"]).encode(frame["y"])
model = templates.get("mlp").build(TrainSpec(), templates.InputInfo(x.shape[1], 0, ()), "binary", 1)
compile_for(model, "binary", 1e-3)
class First(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print(time.time(), flush=True); self.model.stop_training = True
n = int(len(x) * 0.6)
model.fit(x[:n], y[:n], validation_data=(x[n:], y[n:]), epochs=1, batch_size=64, verbose=0, callbacks=[First()])
"""


def bare_first_epoch(csv: Path) -> float:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", BARE, str(csv)], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    return float(out.stdout.strip().splitlines()[-1]) - start


def chart_points(page) -> int:
    return page.evaluate(
        "() => { const g = [...document.querySelectorAll('.js-plotly-plot')].find(d => d._fullData && d._fullData.length);"
        " if (!g) return 0; return Math.max(0, ...g._fullData.map(t => (t.x && t.x.length) || 0)); }"
    )


def search_first_points(reps: int) -> None:
    """Per kind of data: worker start -> first point in the store, and -> on screen (medians)."""
    from playwright.sync_api import sync_playwright

    from dlcore import runner
    from dlcore.store import Store
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server
    from tests.test_live_search import _LOOK, KINDS, _first_recorded

    home = Path(tempfile.mkdtemp(prefix="bench-first-search-")) / "home"
    home.mkdir()
    server = Server(home)
    store = Store.open(home)
    out: dict[str, dict[str, float]] = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{server.url}/home")
            time.sleep(8)  # the worker warms up before anyone submits
            for kind, make in KINDS.items():
                stored, shown = [], []
                for _ in range(reps):
                    run_id = runner.submit(store, make(store))
                    page.goto(f"{server.url}/train?run={run_id}")
                    seen, give_up = None, time.time() + 120
                    while seen is None and time.time() < give_up:
                        look = page.evaluate(_LOOK, run_id)
                        if look["points"] or look["epochs"]:
                            seen = time.time()
                        else:
                            page.wait_for_timeout(50)
                    run = store.run(run_id)
                    stored.append(_first_recorded(store, run) or math.nan)
                    shown.append(math.nan if seen is None else seen - run.started_at)
                    store.request_stop(run_id)
                    while not store.run(run_id).finished:
                        time.sleep(0.2)
                out[kind] = {"store_s": statistics.median(stored), "screen_s": statistics.median(shown)}
                print(f"{kind:15s} worker start -> store {out[kind]['store_s']:.2f}s, -> screen "
                      f"{out[kind]['screen_s']:.2f}s (limit 5 s: ratio {out[kind]['screen_s'] / 5.0:.2f})", flush=True)
            browser.close()
    finally:
        server.stop()
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--search", action="store_true", help="time a search's first point for every kind of data")
    args = ap.parse_args()
    if args.search:
        return search_first_points(args.reps)
    from playwright.sync_api import sync_playwright

    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store
    from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server

    home = Path(tempfile.mkdtemp(prefix="bench-first-")) / "home"
    home.mkdir()
    csv = home.parent / "bench.csv"
    make_frame(args.rows).to_csv(csv, index=False)
    server = Server(home)
    store = Store.open(home)
    record, _ = datasets.register_file(store, csv)
    store.set_dataset_target(record.id, "y", "binary")
    spec = RunSpec(DataSpec(record.id, "y"), train=TrainSpec(epochs=3), baselines=False)
    store_s, screen_s, bare_s = [], [], []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(f"{server.url}/home")  # starts the server's workers, as any first visit does
            time.sleep(8)  # let the worker import TensorFlow: it is warm before anyone submits
            for rep in range(args.reps):
                started = time.time()
                run_id = runner.submit(store, spec)
                while not store.epochs(run_id):
                    time.sleep(0.02)
                store_s.append(store.epochs(run_id)[0]["created_at"] - started)
                while store.run(run_id).status not in ("done", "stopped", "failed"):
                    time.sleep(0.1)

                page.goto(f"{server.url}/train?dataset={record.id}")
                page.get_by_role("button", name="Train").wait_for()
                started = time.time()
                page.get_by_role("button", name="Train").click()
                page.wait_for_url(re.compile("run="))
                while chart_points(page) < 1:
                    page.wait_for_timeout(20)
                screen_s.append(time.time() - started)
                run_id = re.search(r"run=([^&]+)", page.url).group(1)
                while store.run(run_id).status not in ("done", "stopped", "failed"):
                    time.sleep(0.1)
                bare_s.append(bare_first_epoch(csv))
                print(f"rep {rep + 1}: store {store_s[-1]:.2f}s, screen {screen_s[-1]:.2f}s, bare {bare_s[-1]:.2f}s", flush=True)
            browser.close()
    finally:
        server.stop()
    store_m, screen_m, bare_m = (statistics.median(v) for v in (store_s, screen_s, bare_s))
    print(f"\nfirst epoch point, {args.rows:,} rows, medians of {args.reps}:")
    print(f"  submit -> store   {store_m:.2f}s  ratio {store_m / bare_m:.2f}")
    print(f"  click  -> screen  {screen_m:.2f}s  ratio {screen_m / bare_m:.2f} (target <= 1.3)")
    print(f"  bare process start -> end of first epoch {bare_m:.2f}s")
    print(json.dumps({"store_s": store_m, "screen_s": screen_m, "bare_s": bare_m}))


if __name__ == "__main__":
    main()
