"""Images and forecasts within a time budget, on public data shipped in packages.

- ``digits``: scikit-learn's 1,797 digits as a ZIP of 8x8 pictures (``dlcore.images``' sample),
  the deeper CNN searched within the budget (default: thorough, 1200 s); prints every model's
  test accuracy, the trials, the chosen settings, and elapsed / budget.
- ``co2``: statsmodels' Mauna Loa CO2, weekly, horizon 52, searched within the budget (default:
  standard, 300 s); prints every model's MASE per backtest window and whether the deep model
  beats the seasonal naive in every window.

- ``sunspots``: statsmodels' yearly sunspots (309 years), a small series, with the suggested
  horizon, look-back and windows.
- ``ratios``: each case above at the given budgets (default: co2 and sunspots at 20 s and 60 s,
  digits at 60 s), each in a fresh process as a worker runs it (Keras' import counted), printing
  the budget used per run (the run's own clock, from when it started) and the whole command's
  time, with the load average before and after.

    python bench/budget_kinds.py digits [--budget 1200]
    python bench/budget_kinds.py co2 [--budget 300] [--windows 3]
    python bench/budget_kinds.py sunspots [--budget 60]
    python bench/budget_kinds.py ratios [--cases co2:20,co2:60,sunspots:20,sunspots:60,digits:60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _run(store, spec):  # type: ignore[no-untyped-def]
    from dlcore import runner

    run_id = runner.submit(store, spec, claim=True)
    runner.execute_run(store, run_id, say=lambda m: print("  ", m, flush=True))
    return store.run(run_id)


def _board(run) -> None:  # type: ignore[no-untyped-def]
    board = run.result["leaderboard"]
    print(f"status {run.status}; elapsed {run.result.get('elapsed_s')} s of {run.result.get('budget_s')} s "
          f"(ratio {run.result.get('elapsed_s', 0) / run.result.get('budget_s', 1):.3f})")
    print(f"{'model':28} {'family':9} {'test':>8} {'cv':>8} {'cv interval':>20} {'trials':>6} {'fit s':>7}")
    for r in board["rows"]:
        ci = "-" if r.get("cv_ci") is None else f"[{r['cv_ci'][0]:.3f}, {r['cv_ci'][1]:.3f}]"
        cv = "-" if r.get("cv_score") is None else f"{r['cv_score']:.4f}"
        print(f"{r['model']:28} {r['family']:9} {r['test_score']:8.4f} {cv:>8} {ci:>20} {str(r.get('trials')):>6} "
              f"{(r.get('fit_seconds') or 0):7.1f}")
    for note in run.result.get("budget_notes") or []:
        print("note:", note)
    for name, chosen in run.result["search"]["chosen"].items():
        if chosen["params"]:
            print(f"chosen for {name}: {chosen['words']}")


def digits(budget: float) -> None:
    from dlcore import datasets
    from dlcore.images.samples import sample_digits_zip
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    store = Store.open(tempfile.mkdtemp())
    record, _ = datasets.register_bytes(store, sample_digits_zip(), "digits.zip")
    # As the Train page starts it for digits: mirroring off (the classes are characters).
    run = _run(store, RunSpec(DataSpec(record.id, "label"), template="cnn_deep",
                              train=TrainSpec(budget=budget, batch_size=32, flip=False)))
    _board(run)


def co2(budget: float, windows: int) -> None:
    import statsmodels.datasets.co2 as source

    from dlcore import datasets
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    frame = source.load_pandas().data.rename_axis("week").reset_index()
    store = Store.open(tempfile.mkdtemp())
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "co2.csv")
    run = _run(store, RunSpec(DataSpec(record.id, "co2", task="forecast"), template="lstm",
                              train=TrainSpec(budget=budget, batch_size=32),
                              forecast=ForecastSpec(time_col="week", horizon=52, windows=windows)))
    _board(run)
    rows = {r["model"]: r for r in run.result["leaderboard"]["rows"]}
    deep = next(r for r in rows.values() if r["family"] == "deep")
    seasonal = rows["seasonal_naive"]
    print("MASE per window, deep vs seasonal naive:",
          [(round(d, 3), round(s, 3)) for d, s in zip(deep["cv_folds"], seasonal["cv_folds"])])
    print("deep beats the seasonal naive in every window:",
          all(d < s for d, s in zip(deep["cv_folds"], seasonal["cv_folds"])))
    print(f"look-back {run.result['series']['lookback']}, season {run.result['series']['season_length']}")


def sunspots(budget: float) -> None:
    import statsmodels.datasets.sunspots as source

    from dlcore import datasets
    from dlcore.spec import DataSpec, ForecastSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    frame = source.load_pandas().data
    frame["YEAR"] = frame["YEAR"].astype(int).astype(str) + "-01-01"
    store = Store.open(tempfile.mkdtemp())
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "sunspots.csv")
    run = _run(store, RunSpec(DataSpec(record.id, "SUNACTIVITY", task="forecast"), template="lstm",
                              train=TrainSpec(budget=budget, batch_size=32),
                              forecast=ForecastSpec(time_col="YEAR")))
    _board(run)


def ratios(cases: str) -> None:
    """Each case in a fresh process; the budget used per run and per command, with the load."""
    import os
    import re
    import subprocess
    import time

    print(f"{'case':14} {'budget':>7} {'run s':>7} {'ratio':>6} {'command s':>9} {'load before':>11} {'load after':>10}  notes")
    for case in cases.split(","):
        which, budget = case.split(":")
        load_before = os.getloadavg()[0]
        started = time.monotonic()
        out = subprocess.run([sys.executable, __file__, which, "--budget", budget], capture_output=True, text=True,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        command = time.monotonic() - started
        found = re.search(r"elapsed ([0-9.]+) s of ([0-9.]+) s", out.stdout)
        elapsed = float(found.group(1)) if found else float("nan")
        notes = " | ".join(line.strip()[6:70] for line in out.stdout.splitlines() if line.startswith("note:"))
        print(f"{which:14} {float(budget):7.0f} {elapsed:7.1f} {elapsed / float(budget):6.2f} {command:9.1f} "
              f"{load_before:11.1f} {os.getloadavg()[0]:10.1f}  {notes[:160]}", flush=True)
        if not found:
            print(out.stdout[-2000:], out.stderr[-2000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["digits", "co2", "sunspots", "ratios"])
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--cases", default="co2:20,co2:60,sunspots:20,sunspots:60,digits:60")
    args = parser.parse_args()
    if args.which == "ratios":
        ratios(args.cases)
    elif args.which == "digits":
        digits(args.budget or 1200.0)
    elif args.which == "sunspots":
        sunspots(args.budget or 60.0)
    else:
        co2(args.budget or 300.0, args.windows)


if __name__ == "__main__":
    main()
