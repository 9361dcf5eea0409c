"""Drift on a big scored file: the time ``dlcore.monitor`` adds to a scoring (compare every column
and the model's answers with the training rows, write the report) against the scoring itself
(read the file, preprocess, predict), same file, same process, alternating.

The run is a real one (MLP and the baselines on a churn table); the scored file has ``--rows``
rows with two columns shifted. The training rows' summary is worked out once per run and kept
(the first figure, "reference"); every later scoring pays only the comparison.

    python bench/drift.py [--rows 1000000] [--reps 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.disable(logging.WARNING)
    home = Path(tempfile.mkdtemp(prefix="bench-drift-"))
    try:
        from dlcore import datasets, monitor
        from dlcore.scoring import score_upload
        from dlcore.spec import DataSpec, RunSpec, TrainSpec
        from dlcore.store import Store
        from tests.conftest import churn_frame, run_here

        store = Store.open(home)
        record, _ = datasets.register_bytes(store, churn_frame(5000).to_csv(index=False).encode(), "churn.csv")
        run = run_here(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=3)))
        use = monitor.model_in_use(store, run)
        big = churn_frame(args.rows, seed=3).drop(columns=["churn"])
        big["charges"] = big["charges"] + 30
        big.loc[: args.rows // 4, "region"] = "offshore"
        content = big.to_csv(index=False).encode()
        print(f"run {run.id}: model in use {use.model}; scored file {args.rows:,} rows, {len(content) / 1e6:.0f} MB CSV")

        start = time.perf_counter()
        monitor.reference_of(store, use.run_id, use.model)
        print(f"reference (once per run, kept): {time.perf_counter() - start:.2f} s")
        scoring, drift = [], []
        for _ in range(args.reps):
            start = time.perf_counter()
            scored = score_upload(store, use.run_id, use.model, content, "big.csv")
            scoring.append(time.perf_counter() - start)
            start = time.perf_counter()
            report = monitor.drift_of_scoring(store, run, use.run_id, use.model, scored.table)
            drift.append(time.perf_counter() - start)
        s, d = statistics.median(scoring), statistics.median(drift)
        print(f"scoring (read, preprocess, predict): median {s:.2f} s over {args.reps}")
        print(f"drift (every column and the answers): median {d:.2f} s  -> ratio drift/scoring {d / s:.3f}")
        print(f"sentence: {report.sentence}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
