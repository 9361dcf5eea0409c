"""Time to the verdict, side by side with AutoGluon, on the same table, split and test rows.

AutoGluon is installed by this script in its own virtual environment (``bench/.venv-autogluon``,
git-ignored; never a dependency of the product) and runs as one whole command there
(``presets="medium_quality"``), trained on our run's training and validation rows and scored on
our run's test rows with our metric code. Ours runs as

* ``cli``: the whole command ``python -m dlcore fit FILE --target COL ...``;
* ``app``: from ``runner.submit`` (as the Train page does) until the run's leaderboard is in the
  store, with a worker already started by ``jobs.LocalPool`` (as the app keeps one).

Each on the default path (``cli:default``: ``python -m dlcore fit FILE --target COL`` and no other
flag, the standard budget whose search ends once the verdict is settled; ``app:default``: the Train
page's defaults), with fixed settings (``--epochs 40``, the advanced path) and within a named budget
(``quick``, 60 s); AutoGluon with its defaults and with ``time_limit`` equal to our budget, without
its neural networks (``excluded_model_types``) and with them. On a budget, ours also prints when its
first verdict was in the record (``first_verdict_s``) and its ratio to AutoGluon's whole run.
Ours and AutoGluon alternate within each repetition; medians of ``--reps``. Every line prints the
test score beside the time, so a time is never compared without its quality.

    python bench/automl.py [--tables penguins,digits] [--reps 3] [--ours cli:fixed,app:quick] [--ag with:default]
    python bench/automl.py --install-only     # make the environment, print its size and time

The tables: a penguins-sized table (344 rows, the test suite's synthetic penguins with English
column names; target ``sex``), scikit-learn's digits as a pixel table (1,797 rows x 64
pixels; target ``digit``), and tables made here, in a temporary folder, that the test suite does
not use: ``species`` (344 penguins-like rows, 3 species of unequal sizes, a few missing values),
``churn`` (500 customers, a yes/no with a weak signal) and ``noise`` (300 flats whose price
nothing in the row bears on: the answer should be "nothing predicts"). ``--csv PATH:TARGET`` adds
any file of your own.

    python bench/automl.py --tables species,churn,noise --reps 1 --ours cli:default --ag without:default
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

AUTOGLUON = "autogluon.tabular[lightgbm,catboost,xgboost]==1.6.3"
# Its neural networks (NN_TORCH, FASTAI) need torch and fastai: the CPU build of torch where a
# local wheel offers it, else PyPI's.
AUTOGLUON_NN = ["autogluon.tabular[lightgbm,catboost,xgboost,fastai]==1.6.3"]
TORCH_CPU = "torch==2.13.0+cpu"
NN_TYPES = ["NN_TORCH", "FASTAI"]
VENV = ROOT / "bench" / ".venv-autogluon"
EPOCHS = 40

AG_JOB = r'''
import json, sys, time
t0 = time.perf_counter()
import pandas as pd
from autogluon.tabular import TabularPredictor
import autogluon.tabular as agt
imported = time.perf_counter() - t0
a = json.loads(sys.argv[1])
df = pd.read_csv(a["csv"])
test = df.iloc[a["test_rows"]]
train = df.drop(index=df.index[a["test_rows"]])
kw = {}
if a["time_limit"]:
    kw["time_limit"] = a["time_limit"]
if not a["nn"]:
    kw["excluded_model_types"] = a["nn_types"]
p = TabularPredictor(label=a["target"], problem_type=a["problem_type"], eval_metric=a["eval_metric"],
                     path=a["path"], verbosity=0)
t1 = time.perf_counter()
p.fit(train, presets="medium_quality", **kw)
fit = time.perf_counter() - t1
x = test.drop(columns=[a["target"]])
if a["problem_type"] == "regression":
    out = p.predict(x).to_frame("value")
else:
    out = p.predict_proba(x)
    out.columns = [str(c) for c in out.columns]
out.to_csv(a["out"], index=False)
board = p.leaderboard(silent=True)
print(json.dumps({"import_s": imported, "fit_s": fit, "version": agt.__version__, "best": p.model_best,
                  "models": [str(m) for m in board["model"]]}))
'''


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def install(nn: bool) -> dict:
    """Make the environment (once): AutoGluon without torch, then torch and fastai when ``nn``."""
    py = VENV / "bin" / "python"
    done: dict = {}
    if not py.exists():
        t = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", AUTOGLUON], check=True)
        done["install_s"] = round(time.monotonic() - t, 1)
    if nn and _run([str(py), "-c", "import torch, fastai"]).returncode != 0:
        t = time.monotonic()
        if _run([str(py), "-m", "pip", "install", "-q", *AUTOGLUON_NN, TORCH_CPU]).returncode != 0:
            subprocess.run([str(py), "-m", "pip", "install", "-q", *AUTOGLUON_NN], check=True)
        done["install_nn_s"] = round(time.monotonic() - t, 1)
    done["size_mb"] = round(sum(f.stat().st_size for f in VENV.rglob("*") if f.is_file() and not f.is_symlink()) / 2**20)
    ver = _run([str(py), "-c", "import autogluon.tabular as a, importlib.util as u; print(a.__version__, "
                "'torch' if u.find_spec('torch') else 'no-torch')"])
    done["version"] = ver.stdout.strip()
    return done


# ---- the tables ------------------------------------------------------------------------------
def species_frame() -> tuple:
    """344 penguins-like rows: three species of unequal sizes told apart by bill, flipper and mass,
    the sex shifting every size, and three missing values in each measured column."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    n = 344
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], n, p=[0.44, 0.36, 0.20])
    means = {"Adelie": (38.8, 18.3, 190, 3700), "Gentoo": (47.5, 15.0, 217, 5076), "Chinstrap": (48.8, 18.4, 196, 3733)}
    size = np.array([means[s] for s in species])
    sex = rng.choice(["male", "female"], n)
    scale = np.where(sex == "male", 1.04, 0.96)
    frame = pd.DataFrame({
        "island": np.where(species == "Gentoo", "Biscoe", np.where(species == "Chinstrap", "Dream",
                                                                   rng.choice(["Biscoe", "Dream", "Torgersen"], n))),
        "bill_length_mm": (rng.normal(size[:, 0], 2.7) * scale).round(1),
        "bill_depth_mm": (rng.normal(size[:, 1], 1.1) * scale).round(1),
        "flipper_length_mm": rng.normal(size[:, 2], 6.5).round(0),
        "body_mass_g": (rng.normal(size[:, 3], 450) * scale).round(-1),
        "sex": sex, "year": rng.choice([2007, 2008, 2009], n), "species": species})
    for column in ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex"]:
        frame.loc[rng.choice(n, 3, replace=False), column] = np.nan
    return frame, "species"


def churn_frame() -> tuple:
    """500 customers: churn from tenure, charges, the contract and support, with much noise."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(11)
    n = 500
    tenure, charges = rng.integers(1, 72, n), rng.normal(65, 30, n).clip(18, 120).round(2)
    contract = rng.choice(["month", "one year", "two year"], n, p=[0.55, 0.25, 0.2])
    support = rng.choice(["yes", "no"], n)
    logit = (-1.0 - 0.04 * tenure + 0.02 * (charges - 65) + np.where(contract == "month", 1.3, -0.6)
             + np.where(support == "no", 0.5, 0))
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"tenure": tenure, "monthly": charges, "contract": contract, "support": support,
                         "churn": churn}), "churn"


def noise_frame() -> tuple:
    """300 flats whose price is drawn with no regard to the rest of the row."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 300
    return pd.DataFrame({"Surface": rng.normal(80, 20, n).round(1), "Pièces": rng.integers(1, 6, n),
                         "Ville": rng.choice(["Lyon", "Paris", "Nantes", "Lille"], n), "Étage": rng.integers(0, 8, n),
                         "Prix (€)": rng.normal(250_000, 1300, n).round(0)}), "Prix (€)"


MADE = {"species": species_frame, "churn": churn_frame, "noise": noise_frame}


def make_table(name: str, folder: Path) -> tuple[Path, str, str]:
    """Write the table as CSV; returns its path, target and our task name."""
    import pandas as pd

    if name == "penguins":
        from tests.conftest import PENGUIN_NAMES, penguin_frame

        frame = penguin_frame(344, seed=0).rename(columns=PENGUIN_NAMES)
        target, task = "sex", "auto"
    elif name == "digits":
        from sklearn.datasets import load_digits

        bunch = load_digits()
        frame = pd.DataFrame(bunch.data.astype(int), columns=[f"p{i}" for i in range(bunch.data.shape[1])])
        frame["digit"] = bunch.target
        target, task = "digit", "classification"
    elif name in MADE:
        frame, target = MADE[name]()
        task = "auto"
    elif ":" in name:  # a file of one's own, PATH:TARGET
        path, target = name.rsplit(":", 1)
        return Path(path), target, "auto"
    else:
        raise SystemExit(f"unknown table {name!r}: penguins, digits, {', '.join(MADE)} or PATH:TARGET")
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path, target, task


# ---- ours ------------------------------------------------------------------------------------
def ours_cli(csv: Path, target: str, task: str, home: Path, budget: str | None) -> dict:
    cmd = [sys.executable, "-m", "dlcore", "fit", str(csv), "--target", target]
    if budget != "default":  # the default path: no flag at all
        cmd += ["--task", task] + (["--budget", budget] if budget else ["--epochs", str(EPOCHS)])
    env = dict(os.environ, DLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    t = time.monotonic()
    proc = _run(cmd, env=env, cwd=str(ROOT))
    seconds = time.monotonic() - t
    if proc.returncode != 0:
        raise SystemExit(f"ours failed: {proc.stderr[-2000:]}")
    out = json.loads(proc.stdout)
    return {"seconds": seconds, "run_id": out["run_id"], **_scores(home, out["run_id"])}


class App:
    """A store and its already-started worker, as the app has them; runs are submitted and
    timed until their leaderboard is in the store."""

    def __init__(self, home: Path) -> None:
        from dlcore import jobs
        from dlcore.store import Store

        self.home = home
        self.store = Store.open(home)
        self.pool = jobs.LocalPool(home, n_train=1, store=self.store)
        t = time.monotonic()
        self.pool.ensure()
        log = home / "logs" / "worker-train-0.log"
        while not (log.exists() and " ready (" in log.read_text(errors="replace")):
            if time.monotonic() - t > 600:
                raise SystemExit("the worker did not start within 10 minutes")
            time.sleep(0.1)
        self.start_s = time.monotonic() - t

    def fit(self, csv: Path, target: str, task: str, budget: float | None) -> dict:
        from dlcore import datasets, runner
        from dlcore.spec import DataSpec, RunSpec, TrainSpec, suggested_batch_size

        record, _ = datasets.register_bytes(self.store, csv.read_bytes(), csv.name)
        if budget == "default":  # the Train page's defaults: the standard budget
            from dlcore.budget import DEFAULT_PRESET, PRESETS

            spec = RunSpec(DataSpec(record.id, target), train=TrainSpec(budget=PRESETS[DEFAULT_PRESET]))
        else:
            spec = RunSpec(DataSpec(record.id, target, task=task),
                           train=TrainSpec(epochs=EPOCHS, budget=budget,
                                           batch_size=suggested_batch_size(record.n_rows)))
        t = time.monotonic()
        run_id = runner.submit(self.store, spec)
        while (run := self.store.run(run_id)).status in ("queued", "running"):
            time.sleep(0.05)
        seconds = time.monotonic() - t
        if run.status == "failed":
            raise SystemExit(f"app run failed: {run.message}")
        return {"seconds": seconds, "run_id": run_id, **_scores(self.home, run_id)}

    def close(self) -> None:
        self.pool.stop()


def _scores(home: Path, run_id: str) -> dict:
    from dlcore import evaluate
    from dlcore.store import Store

    run = Store.open(home).run(run_id)
    rows = run.result["leaderboard"]["rows"]
    deep = next(r for r in rows if r["family"] == "deep")
    search = run.result.get("search") or {}
    base = max((r for r in rows if r["family"] == "baseline" and r.get("cv_score") is not None),
               key=lambda r: r["cv_score"] * (1 if run.result["leaderboard"]["higher_is_better"] else -1), default=None)
    return {"score": rows[0]["test_score"], "best": rows[0]["model"], "deep_score": deep["test_score"],
            "deep_cv": deep.get("cv_score"), "base_cv": None if base is None else base["cv_score"],
            "ended": search.get("ended") or ("budget" if search else "epochs"),
            "trials": sum((search.get("trials") or {}).values()) if search else None,
            "first_verdict_s": run.result.get("first_verdict_s"), "elapsed_s": run.result.get("elapsed_s"),
            "nothing_predicts": bool(evaluate.nothing_predicts(run.result["leaderboard"]))}


def test_rows(home: Path, run_id: str) -> tuple[list[int], object, str, list]:
    from dlcore.outputs import load_test_outputs
    from dlcore.store import Store

    store = Store.open(home)
    y_true, _, rows = load_test_outputs(store, run_id)
    run = store.run(run_id)
    return [int(r) for r in rows], y_true, run.task, [str(c) for c in run.result["classes"]]


# ---- AutoGluon -------------------------------------------------------------------------------
def autogluon(csv: Path, target: str, split: tuple, work: Path, nn: bool, time_limit: float | None) -> dict:
    import numpy as np
    import pandas as pd

    from dlcore import evaluate

    rows, y_true, task, classes = split
    problem = {"binary": "binary", "multiclass": "multiclass"}.get(task, "regression")
    metric = evaluate.primary_metric(task)
    path = Path(tempfile.mkdtemp(dir=work))
    job = work / "ag_job.py"
    job.write_text(AG_JOB)
    args = {"csv": str(csv), "test_rows": rows, "target": target, "problem_type": problem,
            "eval_metric": {"roc_auc": "roc_auc", "accuracy": "accuracy", "rmse": "root_mean_squared_error"}[metric.key],
            "path": str(path / "model"), "out": str(path / "out.csv"), "nn": nn, "nn_types": NN_TYPES,
            "time_limit": time_limit}
    t = time.monotonic()
    proc = _run([str(VENV / "bin" / "python"), str(job), json.dumps(args)], cwd=str(path))
    seconds = time.monotonic() - t
    if proc.returncode != 0:
        raise SystemExit(f"AutoGluon failed: {proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    out = pd.read_csv(path / "out.csv")
    output = out["value"].to_numpy() if problem == "regression" else out[classes].to_numpy(dtype=np.float64)
    score = float(evaluate.score(task, y_true, output)[metric.key])
    shutil.rmtree(path, ignore_errors=True)
    return {"seconds": seconds, "score": score, "best": info["best"], "import_s": info["import_s"],
            "fit_s": info["fit_s"], "models": len(info["models"])}


# ---- the bench -------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="penguins,digits")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ours", default="cli:default,cli:fixed,app:fixed,cli:quick,app:quick",
                        help="ours as PATH:BUDGET, PATH cli or app, BUDGET default (no flag), fixed (--epochs 40) "
                             "or a budget")
    parser.add_argument("--no-autogluon", action="store_true",
                        help="ours only (where AutoGluon cannot be installed); said in the output")
    parser.add_argument("--ag", default="without:default,with:default,without:quick",
                        help="AutoGluon as NN:LIMIT, NN with or without its neural networks, LIMIT default or a "
                             "budget given as time_limit")
    parser.add_argument("--install-only", action="store_true")
    args = parser.parse_args()
    ours_cfgs = [(p, None if b == "fixed" else b) for p, b in (c.split(":") for c in args.ours.split(",") if c)]
    ag_cfgs = [] if args.no_autogluon else [
        (nn == "with", None if lim == "default" else lim)
        for nn, lim in (c.split(":") for c in args.ag.split(",") if c)]
    nn_modes = sorted({nn for nn, _ in ag_cfgs})
    print(f"load average at start: {os.getloadavg()}", flush=True)
    if ag_cfgs:
        print(f"AutoGluon environment: {install(True in nn_modes)}", flush=True)
    else:
        print("AutoGluon: not run (--no-autogluon); ours only, so no ratio to it is printed", flush=True)
    if args.install_only:
        return
    from dlcore.budget import parse_budget

    paths = {p for p, _ in ours_cfgs}
    work = Path(tempfile.mkdtemp(prefix="automl-"))
    results: dict[str, dict[str, list[dict]]] = {}
    app = None
    if "app" in paths:
        app = App(work / "app-home")
        print(f"app worker started and ready in {app.start_s:.1f} s (not counted: the app keeps it running)", flush=True)
    try:
        for table in args.tables.split(","):
            csv, target, task = make_table(table, work)
            home = work / f"cli-{table}"
            res = results.setdefault(table, {})
            split = None
            for rep in range(args.reps):
                first_ours = rep % 2 == 0 or split is None
                order = (["ours", "ag"] if first_ours else ["ag", "ours"])
                for side in order:
                    if side == "ours":
                        for path, budget in ours_cfgs:
                            name = f"ours {path} " + ("default path" if budget == "default" else
                                                      f"budget {budget}" if budget else f"epochs {EPOCHS}")
                            r = (ours_cli(csv, target, task, home, budget) if path == "cli"
                                 else app.fit(csv, target, task, budget if budget in (None, "default")
                                              else parse_budget(budget)))
                            if split is None:
                                split = test_rows(home if path == "cli" else app.home, r["run_id"])
                            res.setdefault(name, []).append(r)
                            print(f"[{table} rep {rep + 1}] {name}: {r['seconds']:.1f} s, score {r['score']:.4f} "
                                  f"({r['best']}; deep {r['deep_score']:.4f}; ended: {r['ended']}, trials {r['trials']}) "
                                  + (f"first verdict {r['first_verdict_s']:.1f} s into the run of "
                                     f"{r['elapsed_s']:.1f} s; "
                                     f"cross-validated deep {r['deep_cv']:.4f} vs best baseline {r['base_cv']:.4f}"
                                     f"{'; nothing predicts' if r['nothing_predicts'] else ''}; "
                                     if r.get("first_verdict_s") is not None else "")
                                  + f"load {os.getloadavg()[0]:.1f}", flush=True)
                    else:
                        for nn, lim in ag_cfgs:
                            name = f"AutoGluon {'with' if nn else 'without'} NN " + (f"time_limit {lim}" if lim else "default")
                            r = autogluon(csv, target, split, work, nn, parse_budget(lim) if lim else None)
                            res.setdefault(name, []).append(r)
                            print(f"[{table} rep {rep + 1}] {name}: {r['seconds']:.1f} s (import {r['import_s']:.1f}, "
                                  f"fit {r['fit_s']:.1f}), score {r['score']:.4f} ({r['best']} of {r['models']}) "
                                  f"load {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        if app is not None:
            app.close()
    print(f"\nload average at end: {os.getloadavg()}")
    for table, res in results.items():
        print(f"\n{table}: medians of {args.reps}")
        fastest = min(((statistics.median(r["seconds"] for r in runs), name) for name, runs in res.items()
                       if name.startswith("AutoGluon") and "default" in name), default=(math.nan, "none run"))
        print(f"  reference: the fastest AutoGluon default, {fastest[1]} {fastest[0]:.1f} s")
        for name, runs in res.items():
            sec = statistics.median(r["seconds"] for r in runs)
            score = statistics.median(r["score"] for r in runs)
            print(f"  {name:42s} {sec:7.1f} s  score {score:.4f}  ratio to the reference {sec / fastest[0]:5.2f}  "
                  f"(times {', '.join(format(r['seconds'], '.1f') for r in runs)})")
            firsts = [r["first_verdict_s"] for r in runs if r.get("first_verdict_s") is not None]
            if firsts:  # the goal: at most a third of AutoGluon's whole run
                first = statistics.median(firsts)
                gap = statistics.median(r["deep_cv"] - r["base_cv"] for r in runs if r.get("base_cv") is not None)
                print(f"  {'':42s} first verdict {first:5.1f} s, ratio to the reference {first / fastest[0]:5.2f} "
                      f"(goal <= 0.33); deep minus best baseline, cross-validated {gap:+.4f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
