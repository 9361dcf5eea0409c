"""Scale: how training time grows with rows, for the MLP and for the baseline suite, and the
memory an upload needs, up to millions of rows. Writes a small chart (PNG, drawn by Plotly in
Debian's Chromium) for the README.

For each size a fresh process runs the CLI's path (``python -m dlcore fit``: upload, profile,
split, MLP for ``--epochs``, every baseline, the leaderboard with its bootstrap) and reports
the time of each part from the run's result, and its peak resident memory. A separate fresh
process measures the peak memory of the upload alone (what the Streamlit server does); the
server also holds the uploaded bytes themselves, so its peak is that plus the file's size.
The upload limit is raised for the run (``DLCORE_MAX_UPLOAD_MB=4000``): 5,000,000 rows of this
table are 560 MB, over the server's default limit of 500 MB.

    python bench/scale.py [--rows 100000,1000000,5000000] [--epochs 1] [--chart bench/scale.png]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.epoch_overhead import make_frame  # noqa: E402
from bench.ingest import measure  # noqa: E402


def write_csv(path: Path, rows: int) -> None:
    """The benchmark table (16 numbers, 4 categories, a yes/no target) written in chunks."""
    chunk = 500_000
    for i, start in enumerate(range(0, rows, chunk)):
        part = make_frame(min(chunk, rows - start), seed=i).round(3)  # three decimals, as exported amounts have
        part.to_csv(path, index=False, header=i == 0, mode="w" if i == 0 else "a")


def fit(path: Path, home: Path, epochs: int) -> dict:
    env = dict(os.environ, DLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(path), "--target", "y", "--epochs", str(epochs)],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(out.stdout)
    from dlcore.store import Store

    run = Store.open(home).run(result["run_id"])
    models = run.result["models"]
    return {"wall": wall, "mlp": models["mlp"]["fit_seconds"],
            "baselines": sum(m["fit_seconds"] for n, m in models.items() if m["family"] != "deep"),
            "per_baseline": {n: m["fit_seconds"] for n, m in models.items() if m["family"] != "deep"},
            # ru_maxrss of children is the largest child so far: exact for the first size, a floor after.
            "peak_mb": max(peak, before) / 1024, "train_rows": run.result["rows"]["train"]}


def chart(rows: list[int], results: list[dict], path: Path) -> None:
    import plotly.graph_objects as go
    from playwright.sync_api import sync_playwright

    from bench.pages import BROWSER_ARGS

    fig = go.Figure()
    for key, name, color in (("mlp", "MLP (1 epoch)", "#1f4e9c"), ("baselines", "baseline suite", "#7f7f7f"),
                             ("wall", "whole run, upload to leaderboard", "#e8710a")):
        fig.add_trace(go.Scatter(x=rows, y=[r[key] for r in results], mode="lines+markers", name=name,
                                 line={"color": color}))
    fig.update_layout(template="plotly_white", width=640, height=360, margin=dict(l=60, r=20, t=50, b=50),
                      title="Training time against rows (2 CPU cores)", legend={"x": 0.02, "y": 0.98})
    fig.update_xaxes(type="log", title_text="rows in the uploaded table")
    fig.update_yaxes(type="log", title_text="seconds")
    html = path.with_suffix(".html")
    fig.write_html(html, include_plotlyjs=True, full_html=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        page = browser.new_page(viewport={"width": 660, "height": 380})
        page.goto(html.as_uri())
        page.wait_for_selector(".main-svg")
        page.screenshot(path=str(path))
        browser.close()
    html.unlink()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", default="100000,1000000,5000000")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--chart", default=None, help="write the chart here (PNG)")
    args = ap.parse_args()
    sizes = [int(r) for r in args.rows.split(",")]
    # The server's upload limit (500 MB by default) would refuse the biggest table; the CLI and
    # a server configured for it read such files, and their cost is what is measured here.
    os.environ.setdefault("DLCORE_MAX_UPLOAD_MB", "4000")
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    results = []
    for rows in sizes:
        path = work / f"rows-{rows}.csv"
        write_csv(path, rows)
        size_mb = path.stat().st_size / 1024 / 1024
        upload = measure("ours", path, work / f"upload-{rows}")
        r = fit(path, work / f"home-{rows}", args.epochs)
        r.update(rows=rows, size_mb=size_mb, upload_peak_mb=upload["peak_mb"], upload_seconds=upload["seconds"])
        results.append(r)
        print(f"{rows:>10,} rows ({size_mb:,.0f} MB): upload {upload['seconds']:.1f}s, peak {upload['peak_mb']:,.0f} MB "
              f"above the libraries (+ the file's bytes in the server: {upload['peak_mb'] + size_mb:,.0f} MB); "
              f"fit: MLP {r['mlp']:.1f}s, baselines {r['baselines']:.1f}s "
              f"({', '.join(f'{k} {v:.1f}s' for k, v in r['per_baseline'].items())}), whole run {r['wall']:.0f}s",
              flush=True)
        path.unlink()
    if args.chart:
        chart(sizes, results, Path(args.chart))
        print(f"chart: {args.chart}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
