"""Run every benchmark, one after another: ``python -m bench`` (about 40 minutes on 2 cores),
or ``python -m bench --quick`` (smaller data and fewer repetitions, about 10 minutes).

Each script measures our path against a bare reference in the same session and prints
medians and the ratio; none of them passes or fails. Run one alone with
``python bench/NAME.py --help``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FULL = [
    ["epoch_overhead.py", "--reps", "5"],
    ["epoch_overhead.py", "--template", "cnn_deep", "--epochs", "6", "--reps", "3"],
    ["epoch_overhead.py", "--template", "lstm", "--epochs", "8", "--reps", "5"],
    ["first_point.py", "--reps", "3"],
    ["ingest.py", "--rows", "1000000", "--reps", "3"],
    ["personal.py", "--rows", "1000000", "--reps", "3"],
    ["baselines.py", "--rows", "100000", "--reps", "3"],
    ["pages.py", "--rows", "1000000", "--runs", "50", "--reps", "3"],
    ["load.py", "--sessions", "4", "--workers", "2", "--reps", "3", "--browsing", "4"],
    ["access.py", "--runs", "50", "--reps", "5"],
    ["train_memory.py", "--rows", "1000000"],
]
QUICK = [
    ["epoch_overhead.py", "--reps", "2", "--epochs", "4"],
    ["epoch_overhead.py", "--template", "lstm", "--epochs", "4", "--reps", "2"],
    ["first_point.py", "--reps", "1"],
    ["ingest.py", "--rows", "200000", "--reps", "2"],
    ["personal.py", "--rows", "200000", "--reps", "2"],
    ["baselines.py", "--rows", "20000", "--reps", "2"],
    ["pages.py", "--rows", "50000", "--runs", "10", "--reps", "1"],
    ["load.py", "--sessions", "2", "--workers", "2", "--rows", "1200", "--epochs", "6", "--reps", "1"],
    ["access.py", "--runs", "10", "--reps", "2"],
    ["train_memory.py", "--rows", "100000"],
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller data, fewer repetitions")
    args = ap.parse_args()
    for script, *rest in QUICK if args.quick else FULL:
        print(f"\n=== {script} {' '.join(rest)}", flush=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, str(ROOT / "bench" / script), *rest], cwd=ROOT, check=False)
        print(f"=== {time.perf_counter() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
