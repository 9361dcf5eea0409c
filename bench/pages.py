"""UI: the server-side render time of every page (AppTest), and the bytes each page sends to
the browser (a real server and Chromium, counting the websocket frames), with a big dataset
and many runs in the store.

The store holds a dataset of ``--rows`` rows (1,000,000 by default) with one real run trained
on it (MLP, 1 epoch, every baseline), and ``--runs`` runs in all: the others are copies of
that run's record and folder, so every page has a full history to list. A page that dumped a
whole table, or drew every point of a million-row chart, would show here as megabytes.

Render time: each page from navigation to its finished script in Chromium, against the bare
reference app in ``bench/reference/`` (the same router, sidebar and widgets drawn from
constants) served at the same time and visited in turn; ratio target 1.3. The servers note
every script run (``bench/timed_server.py``), which also gives each page's script time.

    python bench/pages.py [--rows 1000000] [--runs 50] [--reps 3] [--home DIR] [--no-bytes] [--apptest]
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

APP = ROOT / "app.py"  # ``--app``: another copy of the app (an older commit's) against the same store
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


def render_times(home: Path, dataset_id: str, run_id: str, reps: int) -> dict[str, dict]:
    """Each page's render time (first visit, then the median of ``reps`` more), and the bare
    reference page's (``bench/reference/``: the same widgets from constants) in the same session."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import use_app_router_in_apptest

    use_app_router_in_apptest()
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)  # AppTest's notes on running bare
    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0")
    out = {}

    def once(app: Path, page: str, params: dict) -> float:
        at = AppTest.from_file(str(app), default_timeout=300)
        at.switch_page(page)
        for k, v in params.items():
            at.query_params[k] = v
        started = time.perf_counter()
        at.run()
        assert not at.exception, (page, at.exception)
        return time.perf_counter() - started

    for page, params in pages(dataset_id, run_id):
        times, bare = [], []
        for rep in range(reps + 1):  # the first opens caches, as the first visitor does
            if rep == 0:
                st.cache_data.clear()
            times.append(once(ROOT / "app.py", f"pages/{page}.py", params))
            bare.append(once(ROOT / "bench" / "reference" / "app.py", f"ref_{page}.py", params))
        label = page + ("?" + "&".join(params) if params else "")
        again, ref = statistics.median(times[1:]), statistics.median(bare[1:])
        out[label] = {"first": times[0], "again": again, "reference": ref, "ratio": again / ref}
        print(f"  {label:18s} first {times[0]:.2f}s, again {again:.2f}s; bare page {ref:.2f}s; "
              f"ratio {again / ref:.2f} (target <= 1.3)", flush=True)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _timed_server(app: Path, home: Path, log: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    env = dict(os.environ, DLCORE_HOME=str(home), DLCORE_WORKERS="0", BENCH_RUN_LOG=str(log))
    server = subprocess.Popen([sys.executable, str(ROOT / "bench" / "timed_server.py"), str(app), "--server.port",
                               str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                              cwd=ROOT if app.is_relative_to(ROOT) else app.parent, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return server, port


def _runs_since(log: Path, since: float) -> list[dict]:
    if not log.exists():
        return []
    return [r for r in map(json.loads, log.read_text().splitlines()) if r["start"] >= since and not r["fragment"]]


def open_and_time(page, url: str, log: Path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Navigate to ``url`` and wait until the page's script has finished (and any rerun it asked
    for): the seconds from navigation to the last script run's end, and the server's seconds
    running scripts for it (from the timed server's log)."""
    started = time.time()
    page.goto(url)
    page.wait_for_selector("h1", timeout=120_000)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.25)
        runs = _runs_since(log, started)
        running = page.query_selector("[data-testid='stStatusWidget']") is not None
        if runs and not running and time.time() - max(r["end"] for r in runs) > 0.75:
            break
    runs = _runs_since(log, started)
    return max(r["end"] for r in runs) - started, sum(r["end"] - r["start"] for r in runs)


def browser_times(home: Path, dataset_id: str, run_id: str, reps: int) -> dict[str, dict]:
    """Each page from navigation to its finished script in Chromium, ours against the bare
    reference app (``bench/reference/``, the same widgets from constants), both served at once
    and visited in turn, so both see the same machine. Medians of ``reps`` visits after a first."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="bench-pages-logs-"))
    ours_log, ref_log = work / "ours.jsonl", work / "reference.jsonl"
    ours, ours_port = _timed_server(APP, home, ours_log)
    ref, ref_port = _timed_server(ROOT / "bench" / "reference" / "app.py", home, ref_log)
    out = {}
    try:
        time.sleep(5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
            # One more session stays open on each server, as on a server others use: when its last
            # session closes, Streamlit forgets its compiled page scripts, which a bench that
            # reloads the only tab would otherwise pay on every visit.
            for port in (ours_port, ref_port):
                browser.new_page().goto(f"http://127.0.0.1:{port}/runs")
            tab = browser.new_page(viewport={"width": 1400, "height": 1600})
            for page_key, params in pages(dataset_id, run_id):
                query = "&".join(f"{k}={v}" for k, v in params.items())
                path = "" if page_key == "home" else page_key
                tail = f"/{path}" + (f"?{query}" if query else "")
                mine, bare = [], []
                for _ in range(reps + 1):
                    mine.append(open_and_time(tab, f"http://127.0.0.1:{ours_port}{tail}", ours_log))
                    bare.append(open_and_time(tab, f"http://127.0.0.1:{ref_port}{tail}", ref_log))
                label = page_key + ("?" + "&".join(params) if params else "")
                total, server = (statistics.median(m[i] for m in mine[1:]) for i in (0, 1))
                ref_total, ref_server = (statistics.median(m[i] for m in bare[1:]) for i in (0, 1))
                out[label] = {"first": mine[0][0], "total": total, "server": server, "reference_total": ref_total,
                              "reference_server": ref_server, "ratio": total / ref_total}
                print(f"  {label:16s} ours {total:.2f}s (script {server:.2f}s, first visit {mine[0][0]:.2f}s); "
                      f"bare page {ref_total:.2f}s (script {ref_server:.2f}s); ratio {total / ref_total:.2f} "
                      f"(target <= 1.3)", flush=True)
            browser.close()
    finally:
        for server in (ours, ref):
            server.terminate()
            server.wait(timeout=30)
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
    ap.add_argument("--home", default=None,
                    help="keep the store in this folder, and reuse it when it is there (building it trains a run)")
    ap.add_argument("--apptest", action="store_true", help="also time each page in AppTest (its own floor is ~0.15 s)")
    ap.add_argument("--no-bytes", action="store_true", help="skip the real-browser measure of bytes sent")
    ap.add_argument("--app", default=None, help="time this app.py instead (e.g. an older commit's copy)")
    args = ap.parse_args()
    if args.app:
        global APP
        APP = Path(args.app).resolve()
    if args.home and (Path(args.home) / "ids.json").exists():
        ids = json.loads((Path(args.home) / "ids.json").read_text())
        home, dataset_id, run_id = Path(args.home) / "home", ids["dataset"], ids["run"]
    else:
        home = (Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="bench-pages-"))) / "home"
        dataset_id, run_id = build_store(home, args.rows, args.runs)
        (home.parent / "ids.json").write_text(json.dumps({"dataset": dataset_id, "run": run_id}))
    print(f"\neach page from navigation to its finished script, in Chromium ({args.rows:,} rows, {args.runs} runs):")
    browser = browser_times(home, dataset_id, run_id, args.reps)
    times = {}
    if args.apptest:
        print(f"\nserver-side render time per page (AppTest; {args.rows:,} rows, {args.runs} runs):")
        times = render_times(home, dataset_id, run_id, args.reps)
    sizes = {}
    if not args.no_bytes:
        print("\nwhat each page sends to the browser (real server, Chromium):")
        sizes = page_bytes(home, dataset_id, run_id, Path(args.shots) if args.shots else None)
    print("\n" + json.dumps({"browser_seconds": browser, "render_seconds": times, "bytes": sizes}))


if __name__ == "__main__":
    main()
