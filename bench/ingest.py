"""Ingest: reading, typing and profiling a big CSV through the app's path, against
``pandas.read_csv`` alone on the same file; and the peak memory of each against the file's size.

Each side runs in its own fresh process (so one's memory cannot hide in the other's), several
times; the medians are printed with the ratios. Targets: time at most 1.5, memory at most 3.

    python bench/ingest.py [--rows 1000000] [--cols 20] [--reps 3] [--before DIR]

``--before DIR`` also measures the upload of another checkout (``git archive main | tar -x -C
DIR``), alternating with this one, so before and after are taken in the same minutes.
Besides the wall time, each side's CPU seconds (every thread of the process) are printed: on a
shared machine the wall time swings with the other work, the CPU seconds much less.

"ours" is ``datasets.register_bytes(answer_first=True)``, what the Data page does: sniff the
encoding, separator and decimal mark, type every column, profile it (kinds, histograms,
warnings), hash, keep the file and write the store row; the page answers then. The Parquet copy
workers load is written after (also timed: "until ready"); peak memory covers both. Memory is the
peak resident size above the process's size once its libraries are imported and it has read one small file (as a running server has), so
both sides are charged for the data only. "ours" holds the uploaded bytes in memory, as an
upload does.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent

MEASURE = r"""
import json, resource, sys, time
import pandas as pd
which, path, home = sys.argv[1], sys.argv[2], sys.argv[3]
warm = b"a,b,c\n1,x,2020-01-01\n2,y,2020-01-02\n" * 20
if which == "ours":
    from dlcore import datasets
    from dlcore.store import Store
    store = Store.open(home)
    datasets.register_bytes(store, warm, "warm.csv")  # a running server has read a file before
else:
    import io
    pd.read_csv(io.BytesIO(warm))
def rss_mb():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) / 1024
stages = {}
if which == "ours":  # where the time goes: the upload's own reading and profiling, timed as they run
    from dlcore.tables import upload

    def timed(key, fn):
        def run(*args, **kwargs):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(*args, **kwargs)
            stages[key], stages[key + "_cpu"] = time.perf_counter() - t0, time.process_time() - c0
            return out
        return run

    upload.read_table = timed("read_and_type", upload.read_table)
    upload.profile_frame = timed("profile", upload.profile_frame)
before = rss_mb()
started, cpu_started = time.perf_counter(), time.process_time()
if which == "bare":
    frame = pd.read_csv(path)
    rows = len(frame)
else:
    with open(path, "rb") as fh:
        content = fh.read()
    record, _ = datasets.register_bytes(store, content, "big.csv", answer_first=True)  # as the Data page does
    rows = record.n_rows
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
if which == "ours":
    from dlcore import ready
    from dlcore.tables.reader import rebuild_copy
    ready.wait(store, record.id, rebuild_copy, poll=0.01)
ready_seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "ready_seconds": ready_seconds, "peak_mb": peak - before, "rows": rows,
                  **stages}))
"""


def make_csv(path: Path, rows: int, cols: int, seed: int = 0) -> None:
    """Numbers, a few categories, a date and some empty cells: what an export from a CRM looks like."""
    rng = np.random.default_rng(seed)
    n_cat = max(1, cols // 5)
    n_num = cols - n_cat - 1
    frame = pd.DataFrame(rng.normal(100, 30, size=(rows, n_num)).round(2), columns=[f"amount_{i}" for i in range(n_num)])
    frame.iloc[rng.random(rows) < 0.02, 0] = np.nan
    for j in range(n_cat):
        frame[f"segment_{j}"] = rng.choice(["north", "south", "east", "west", "online", "partner"], rows)
    frame["signup"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1500, rows), unit="D")
    frame.to_csv(path, index=False)


def measure(which: str, path: Path, home: Path, code: Path = ROOT) -> dict:
    env = dict(os.environ, DLCORE_HOME=str(home), PYTHONPATH=str(code))
    out = subprocess.run([sys.executable, "-c", MEASURE, which, str(path), str(home)], cwd=code, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(label: str, ours: list[dict], bare: list[dict], size_mb: float) -> None:
    med = lambda rows, key: statistics.median(r[key] for r in rows)  # noqa: E731
    t_ours, t_bare, c_ours, c_bare = med(ours, "seconds"), med(bare, "seconds"), med(ours, "cpu"), med(bare, "cpu")
    m_ours, m_bare = med(ours, "peak_mb"), med(bare, "peak_mb")
    read, prof, read_cpu, prof_cpu = (med(ours, k) for k in ("read_and_type", "profile", "read_and_type_cpu", "profile_cpu"))
    ratios = ", ".join(f"{o['seconds'] / b['seconds']:.2f}" for o, b in zip(ours, bare, strict=True))
    print(f"\n[{label}] stages (median): read and type {read:.2f}s (ratio {read / t_bare:.2f}; CPU {read_cpu:.2f}s), "
          f"profile {prof:.2f}s (CPU {prof_cpu:.2f}s); the rest (hash, store row) {t_ours - read - prof:.2f}s")
    t_ready = med(ours, "ready_seconds")
    print(f"[{label}] until the kept file and the stored copy are written too (workers may start): {t_ready:.2f}s, "
          f"ratio {t_ready / t_bare:.2f}")
    print(f"[{label}] time until the page answers (median): ours {t_ours:.2f}s, pandas.read_csv {t_bare:.2f}s, "
          f"ratio {t_ours / t_bare:.2f} (each rep: {ratios}; target <= 1.5); CPU seconds {c_ours:.2f} / {c_bare:.2f} "
          f"= {c_ours / c_bare:.2f}")
    print(f"[{label}] peak memory above the libraries (median): ours {m_ours:.0f} MB = {m_ours / size_mb:.2f} x the file "
          f"(target <= 3); read_csv {m_bare:.0f} MB = {m_bare / size_mb:.2f} x; ours / read_csv {m_ours / m_bare:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--cols", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--before", type=Path, help="another checkout whose upload is measured too, alternating")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    path = work / "big.csv"
    make_csv(path, args.rows, args.cols)
    size_mb = path.stat().st_size / 1024 / 1024
    print(f"{args.rows:,} rows x {args.cols} columns, {size_mb:.0f} MB CSV; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    ours, bare, before = [], [], []
    for rep in range(args.reps):
        bare.append(measure("bare", path, work / f"home-b{rep}"))
        ours.append(measure("ours", path, work / f"home-{rep}"))  # a fresh store: a real first upload
        line = (f"rep {rep + 1}: ours {ours[-1]['seconds']:.2f}s / {ours[-1]['peak_mb']:.0f} MB, "
                f"read_csv {bare[-1]['seconds']:.2f}s / {bare[-1]['peak_mb']:.0f} MB")
        if args.before:
            before.append(measure("ours", path, work / f"home-before-{rep}", args.before.resolve()))
            line += f", before {before[-1]['seconds']:.2f}s / {before[-1]['peak_mb']:.0f} MB"
        print(line + f"; load average {os.getloadavg()[0]:.1f}", flush=True)
    summary("this checkout", ours, bare, size_mb)
    if args.before:
        summary(f"before: {args.before}", before, bare, size_mb)


if __name__ == "__main__":
    main()
