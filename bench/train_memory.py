"""Training memory: a worker's peak resident memory while one run trains the MLP and every
baseline on the benchmark table (``bench/scale.py``'s: 16 numbers, 4 categories, a yes/no
target), against the CSV's size; and where it peaks, phase by phase.

The table is registered first (as an upload does); then a fresh process executes the run the
way a worker does (``runner.execute_run``) while a thread samples its resident memory every
0.1 s and notes the run's phase. Target: peak at most 4 times the CSV.

    python bench/train_memory.py [--rows 1000000] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKER = r"""
import json, sys, threading, time
from dlcore import runner
from dlcore.store import Store
store = Store.open(sys.argv[1]); run_id = sys.argv[2]
def rss_mb():
    with open("/proc/self/status") as fh:
        return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS")) / 1024
import keras, sklearn.ensemble  # a worker has its libraries loaded before it takes a run
base = rss_mb()
peaks = {}
done = threading.Event()
def sample():
    while not done.is_set():
        try:
            phase = store.run(run_id).phase or "-"
        except Exception:
            phase = "-"
        key = phase.split(":")[0]
        peaks[key] = max(peaks.get(key, 0.0), rss_mb())
        time.sleep(0.1)
threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
runner.execute_run(store, run_id)
done.set()
run = store.run(run_id)
import resource
print(json.dumps({"status": run.status, "message": run.message, "seconds": time.perf_counter() - started,
                  "libraries_mb": base, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "phases": peaks, "models": (run.result or {}).get("models"),
                  "board": [(r["model"], r["test_score"], r.get("note"))
                            for r in (run.result or {}).get("leaderboard", {}).get("rows", [])]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--work", default=None, help="keep the CSV and the store here (reused when there)")
    args = ap.parse_args()
    from bench.scale import write_csv
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-trainmem-"))
    work.mkdir(parents=True, exist_ok=True)
    csv = work / f"table-{args.rows}.csv"
    if not csv.exists():
        write_csv(csv, args.rows)
    size_mb = csv.stat().st_size / 1024 / 1024
    # The bench's 5,000,000-row table is 560 MB, over the default upload limit a server sets.
    os.environ.setdefault("DLCORE_MAX_UPLOAD_MB", str(max(500, int(size_mb) + 1)))
    store = Store.open(work / "home")
    record, _ = datasets.register_file(store, csv)
    spec = RunSpec(DataSpec(record.id, "y"), template="mlp", train=TrainSpec(epochs=args.epochs))
    run_id = runner.submit(store, spec, claim=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    out = subprocess.run([sys.executable, "-c", WORKER, str(work / "home"), run_id], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode:
        print(out.stderr[-3000:])
        raise SystemExit(out.returncode)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{args.rows:,} rows, CSV {size_mb:.0f} MB; run {r['status']} in {r['seconds']:.0f}s "
          f"{r['message'] or ''}")
    print(f"worker peak resident memory {r['peak_mb']:.0f} MB = {r['peak_mb'] / size_mb:.2f} x the CSV (target <= 4); "
          f"of which the libraries before the run {r['libraries_mb']:.0f} MB; "
          f"above them {(r['peak_mb'] - r['libraries_mb']) / size_mb:.2f} x")
    for phase, mb in r["phases"].items():
        print(f"  peak during {phase!r}: {mb:.0f} MB")
    for name, score, note in r["board"]:
        print(f"  {name:22s} {score:.6f} {note or ''}")
    print(json.dumps({"rows": args.rows, "csv_mb": size_mb, **r}))


if __name__ == "__main__":
    main()
