"""Latency of the REST endpoint against a bare Keras ``predict`` on the same arrays.

Trains one small deep run (the MLP alone, so the model in use is Keras), starts
``python -m dlcore serve`` on a free loopback port and sends one-row and 1,000-row requests with a
kept-alive httpx client; the reference is ``model.predict`` on the arrays the scorer builds from
the same rows, in this process. With ``--mounted`` it also measures ``streamlit run app.py``,
where each request is queued for the app's scoring worker. Prints p50 and p99 and the ratios.

    python bench/serve.py [--requests 200] [--mounted]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list[str], env: dict, ready: str) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(ready, timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"{' '.join(command)} did not start")


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    ms = np.array(seconds) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _endpoint(url: str, run_id: str, rows: list[dict], n: int) -> list[float]:
    import httpx

    times = []
    with httpx.Client(timeout=300) as client:
        for _ in range(3):  # warm: the model loaded, the connection open
            client.post(f"{url}/v1/runs/{run_id}/predict", json={"rows": rows}).raise_for_status()
        for _ in range(n):
            start = time.perf_counter()
            client.post(f"{url}/v1/runs/{run_id}/predict", json={"rows": rows}).raise_for_status()
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="one-row requests (a fifth as many of 1,000 rows)")
    parser.add_argument("--mounted", action="store_true", help="also measure streamlit run app.py (queued scoring)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    home = folder / "home"
    os.environ["DLCORE_HOME"] = str(home)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import json

    import pandas as pd

    from dlcore import base, datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store
    from dlcore.tables.scoring import TableScorer
    from tests.conftest import churn_frame

    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(2000).to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=2, seed=1),
                                          baselines=False))
    store.claim_next_run()
    runner.execute_run(store, run_id)
    frame = churn_frame(1000, seed=9).drop(columns=["churn"])
    batches = {1: frame.head(1), 1000: frame}

    scorer = TableScorer.for_run(store, run_id, "mlp")
    bare: dict[int, list[float]] = {}
    direct: dict[int, list[float]] = {}  # predict_on_batch: what the scorer calls for up to 4,096 rows
    for n, rows in batches.items():
        feats = scorer.pre.transform(rows)
        x = base.model_inputs(scorer.template, scorer.info, lambda f=feats: scorer.pre.dense(f), feats.numeric,
                              feats.codes, feats.text)
        reps = args.requests if n == 1 else max(args.requests // 5, 10)
        scorer.keras_model.predict(x, verbose=0)
        bare[n], direct[n] = [], []
        for _ in range(reps):
            start = time.perf_counter()
            scorer.keras_model.predict(x, verbose=0)
            bare[n].append(time.perf_counter() - start)
            start = time.perf_counter()
            scorer.keras_model.predict_on_batch(x)
            direct[n].append(time.perf_counter() - start)

    env = dict(os.environ, DLCORE_HOME=str(home))
    servers = {}
    port = _port()
    servers["dlcore serve"] = (_start([sys.executable, "-m", "dlcore", "serve", "--port", str(port)], env,
                                      f"http://127.0.0.1:{port}/v1/openapi.json"), f"http://127.0.0.1:{port}")
    if args.mounted:
        port = _port()
        servers["streamlit run app.py"] = (
            _start([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                    "--server.headless", "true"], dict(env, DLCORE_WORKERS="1"), f"http://127.0.0.1:{port}/docs"),
            f"http://127.0.0.1:{port}")
    try:
        print(f"REST endpoint latency, ms (run {run_id}, MLP; {os.cpu_count()} cores)")
        print(f"{'rows':>5} {'path':22} {'p50':>8} {'p99':>8} {'x bare p50':>11}")
        for n, rows in batches.items():
            records = json.loads(rows.to_json(orient="records"))
            reps = args.requests if n == 1 else max(args.requests // 5, 10)
            b50, b99 = _percentiles(bare[n])
            print(f"{n:>5} {'bare Keras predict':22} {b50:8.1f} {b99:8.1f} {1.0:11.1f}")
            d50, d99 = _percentiles(direct[n])
            print(f"{n:>5} {'bare predict_on_batch':22} {d50:8.1f} {d99:8.1f} {d50 / b50:11.2f}")
            for name, (_, url) in servers.items():
                p50, p99 = _percentiles(_endpoint(url, run_id, records, reps))
                print(f"{n:>5} {name:22} {p50:8.1f} {p99:8.1f} {p50 / b50:11.2f}")
        scorings = len(pd.read_sql("select id from scorings", store.engine))
        print(f"every request is kept as a scoring of the run: {scorings} scorings recorded")
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
