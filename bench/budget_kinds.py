"""Images and forecasts within a time budget, on public data shipped in packages.

- ``digits``: scikit-learn's 1,797 digits as a ZIP of 8x8 pictures (``dlcore.images``' sample),
  the deeper CNN searched within the budget (default: thorough, 1200 s); prints every model's
  test accuracy, the trials, the chosen settings, and elapsed / budget.
- ``co2``: statsmodels' Mauna Loa CO2, weekly, horizon 52, searched within the budget (default:
  standard, 300 s); prints every model's MASE per backtest window and whether the deep model
  beats the seasonal naive in every window.

    python bench/budget_kinds.py digits [--budget 1200]
    python bench/budget_kinds.py co2 [--budget 300] [--windows 3]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["digits", "co2"])
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--windows", type=int, default=3)
    args = parser.parse_args()
    if args.which == "digits":
        digits(args.budget or 1200.0)
    else:
        co2(args.budget or 300.0, args.windows)


if __name__ == "__main__":
    main()
