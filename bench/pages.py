"""UI: the server-side render time of every page (AppTest), and the bytes each page sends to
the browser (a real server and Chromium, counting the websocket frames), with a big dataset
and many runs in the store.

The store holds a dataset of ``--rows`` rows (1,000,000 by default) with one real run trained
on it (MLP, 1 epoch, every baseline), and ``--runs`` runs in all: the others are copies of
that run's record and folder, so every page has a full history to list. A page that dumped a
whole table, or drew every point of a million-row chart, would show here as megabytes.

    python bench/pages.py [--rows 1000000] [--runs 50] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import make_csv  # noqa: E402

BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]


def build_store(home: Path, rows: int, runs: int) -> tuple[str, str]:
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    store = Store.open(home)
    csv = home.parent / "big.csv"
    make_csv(csv, rows, 20)
    started = time.perf_counter()
    record, _ = datasets.register_file(store, csv)
    print(f"registered {rows:,} rows in {time.perf_counter() - started:.1f}s", flush=True)
    spec = RunSpec(DataSpec(record.id, "segment_0"), template="mlp", train=TrainSpec(epochs=1))
    started = time.perf_counter()
    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id)
    print(f"trained one run (MLP 1 epoch + baselines) in {time.perf_counter() - started:.0f}s", flush=True)
    done = store.run(run_id)
    for _ in range(runs - 1):
        copy = store.create_run(done.spec, record.id, done.template, done.target, 1)
        shutil.copytree(store.run_dir(run_id), store.run_dir(copy), dirs_exist_ok=True)
        store.update_run(copy, status="done", task=done.task, metric=done.metric,
                         higher_is_better=done.higher_is_better, result=done.result, test_score=done.test_score,
                         started_at=time.time(), finished_at=time.time(), progress=1.0, phase="Finished")
    return record.id, run_id


def pages(dataset_id: str, run_id: str) -> list[tuple[str, dict]]:
    return [("home", {}), ("data", {"dataset": dataset_id}), ("train", {"dataset": dataset_id}),
            ("train", {"run": run_id}), ("compare", {"run": run_id}), ("predict", {"run": run_id}), ("runs", {})]


def render_times(home: Path, dataset_id: str, run_id: str, reps: int) -> dict[str, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import use_app_router_in_apptest

    use_app_router_in_apptest()
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)  # AppTest's notes on running bare
    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0")
    out = {}
    for page, params in pages(dataset_id, run_id):
        times = []
        for rep in range(reps + 1):  # the first opens caches, as the first visitor does
            if rep == 0:
                st.cache_data.clear()
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            at.switch_page(f"pages/{page}.py")
            for k, v in params.items():
                at.query_params[k] = v
            started = time.perf_counter()
            at.run()
            times.append(time.perf_counter() - started)
            assert not at.exception, (page, at.exception)
        label = page + ("?" + "&".join(params) if params else "")
        out[label] = {"first": times[0], "again": statistics.median(times[1:])}
        print(f"  {label:18s} first {times[0]:.2f}s, again {out[label]['again']:.2f}s", flush=True)
    return out


def page_bytes(home: Path, dataset_id: str, run_id: str, shots: Path | None = None) -> dict[str, int]:
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, DLCORE_HOME=str(home), DLCORE_WORKERS="0")
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                               "--server.headless", "true"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = {}
    try:
        time.sleep(4)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
            for page_key, params in pages(dataset_id, run_id):
                page = browser.new_page(viewport={"width": 1400, "height": 2400})
                received: list[int] = []
                cdp = page.context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.on("Network.webSocketFrameReceived",
                       lambda e, into=received: into.append(_frame_bytes(e["response"])))
                query = "&".join(f"{k}={v}" for k, v in params.items())
                path = "" if page_key == "home" else page_key
                page.goto(f"http://127.0.0.1:{port}/{path}" + (f"?{query}" if query else ""))
                page.wait_for_selector("h1", timeout=120_000)  # the page's title: its script has started
                quiet, last, deadline = 0, -1, time.monotonic() + 120
                while quiet < 6 and time.monotonic() < deadline:
                    # Done when the script is not running and nothing new has arrived for 3 s.
                    time.sleep(0.5)
                    running = page.query_selector("[data-testid='stStatusWidget']") is not None
                    quiet = quiet + 1 if sum(received) == last and not running else 0
                    last = sum(received)
                label = page_key + ("?" + "&".join(params) if params else "")
                out[label] = sum(received)
                print(f"  {label:18s} {out[label] / 1024:.0f} KB over the websocket", flush=True)
                if shots is not None:
                    shots.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(shots / f"{label.replace('?', '-')}.png"), full_page=True)
                page.close()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return out


def _frame_bytes(frame: dict) -> int:
    """A websocket frame's size: binary frames (Streamlit's protobuf) arrive base64-encoded."""
    data = frame.get("payloadData", "")
    return len(data) * 3 // 4 if frame.get("opcode") == 2 else len(data.encode())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--shots", default=None, help="save a screenshot of each page in this folder")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-pages-")) / "home"
    dataset_id, run_id = build_store(home, args.rows, args.runs)
    print(f"\nserver-side render time per page (AppTest; {args.rows:,} rows, {args.runs} runs):")
    times = render_times(home, dataset_id, run_id, args.reps)
    print("\nwhat each page sends to the browser (real server, Chromium):")
    sizes = page_bytes(home, dataset_id, run_id, Path(args.shots) if args.shots else None)
    print("\n" + json.dumps({"render_seconds": times, "bytes": sizes}))


if __name__ == "__main__":
    main()
