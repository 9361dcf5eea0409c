"""How close a table run keeps to its time budget: elapsed / budget, over a few budgets.

Each run executes in-process from ``runner.execute_run`` (the Keras import included, as in a
fresh worker) on a small churn table or a named sample; prints elapsed, budget and the ratio
(target: at most 1.10), and how the time went (loading, search, folds, saving).

    python bench/budget.py [--budgets 20,60] [--data churn|sample:breast_cancer] [--target COL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="20,60")
    parser.add_argument("--data", default="churn")
    parser.add_argument("--target", default="churn")
    args = parser.parse_args()
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    for budget in [float(b) for b in args.budgets.split(",")]:
        store = Store.open(tempfile.mkdtemp())
        if args.data == "churn":
            from tests.conftest import churn_frame

            record, _ = datasets.register_bytes(store, churn_frame(300).to_csv(index=False).encode(), "churn.csv")
        else:
            record, _ = datasets.register_sample(store, args.data.split(":", 1)[1])
        run_id = runner.submit(store, RunSpec(DataSpec(record.id, args.target), train=TrainSpec(budget=budget)))
        store.claim_next_run()
        started = time.monotonic()
        lines: list[str] = []
        runner.execute_run(store, run_id, say=lambda m: lines.append(f"  {time.monotonic() - started:6.1f} s  {m}"))
        elapsed = time.monotonic() - started
        print("\n".join(lines))
        print(f"budget {budget:.0f} s: elapsed {elapsed:.1f} s, ratio {elapsed / budget:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
