"""A store made before the package layout changed (commit a572544) still opens: its saved models
score new files exactly as the old code scored them, and its runs' pages, reports, bundles,
explanations and thresholds still load.

``fixtures/store_a572544.zip`` is a whole data folder (SQLite database, uploads, models) made by
``fixtures/make_old_store.py`` with the old code: a yes/no table (MLP, a saved threshold and
explanation), a regression table (the embedding MLP), images (small CNN) and a forecast (LSTM),
and, under ``expected/``, the files the old code wrote when it scored new data.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT, open_page

FIXTURE = Path(__file__).parent / "fixtures" / "store_a572544.zip"


@pytest.fixture(scope="module")
def old_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("old-store")
    with zipfile.ZipFile(FIXTURE) as zf:
        zf.extractall(home)
    return home


@pytest.fixture(scope="module")
def manifest(old_home) -> dict:
    return json.loads((old_home / "expected" / "manifest.json").read_text())


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLCORE_HOME": str(home), "PYTHONPATH": str(ROOT), "DLCORE_WORKERS": "0"}
    return subprocess.run([sys.executable, "-m", "dlcore", *args], cwd=home, env=env, capture_output=True,
                          text=True, timeout=300)


def _same_table(got: bytes, want: bytes, rtol: float) -> None:
    """The same columns and rows; text equal, numbers equal within ``rtol`` (0: to the last digit)."""
    if got == want:
        return
    a = pd.read_csv(io.BytesIO(got), sep=None, engine="python", dtype=str, keep_default_na=False)
    b = pd.read_csv(io.BytesIO(want), sep=None, engine="python", dtype=str, keep_default_na=False)
    assert list(a.columns) == list(b.columns)
    assert a.shape == b.shape
    for col in a.columns:
        x, y = pd.to_numeric(a[col], errors="coerce"), pd.to_numeric(b[col], errors="coerce")
        if y.notna().all() and (b[col] != "").all():
            np.testing.assert_allclose(x.to_numpy(float), y.to_numpy(float), rtol=rtol, atol=0, err_msg=col)
        else:
            assert a[col].tolist() == b[col].tolist(), col
    assert rtol > 0, "the old code wrote other bytes than the new code"


def test_the_old_store_lists_its_four_runs(old_home, manifest):
    from dlcore.store import Store

    store = Store.open(old_home)
    runs = {r.id: r for r in store.list_runs()}
    for run in manifest["runs"]:
        record = runs[run["run_id"]]
        assert (record.status, record.template, record.result["kind"]) == ("done", run["template"], run["kind"])
        assert [r["model"] for r in record.result["leaderboard"]["rows"]] == [r["model"] for r in run["leaderboard"]]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["binary", "regression", "image", "forecast"])
def test_every_saved_model_scores_as_the_old_code_did(old_home, manifest, name):
    run = next(r for r in manifest["runs"] if r["name"] == name)
    assert run["scorings"]
    for scoring in run["scorings"]:
        out = old_home / "new-output.csv"
        done = _cli(old_home, "predict", run["run_id"], scoring["input"], "-o", str(out), "--model", scoring["model"])
        assert done.returncode == 0, done.stderr
        want = (old_home / scoring["output"]).read_bytes()
        # Forests add up their trees in the order their threads finish: the last digits of a
        # regression forest's mean differ from run to run, in the old code too.
        _same_table(out.read_bytes(), want, rtol=1e-9 if scoring["compare"] != "exact" else 0.0)


def test_the_old_threshold_explanation_report_and_bundle_still_load(old_home, manifest):
    from dlcore import explain
    from dlcore.handover import bundle, decision, report
    from dlcore.store import Store

    store = Store.open(old_home)
    binary = next(r for r in manifest["runs"] if r["name"] == "binary")
    chosen = decision.load_decision(store, binary["run_id"])
    assert chosen is not None and chosen.model == "mlp" and chosen.threshold == pytest.approx(0.425)
    saved = explain.load_global(store, binary["run_id"], "mlp")
    assert saved["importance"][0]["feature"] == "tenure"
    for run in manifest["runs"]:
        html = report.build_report(store, run["run_id"])
        assert run["run_id"] in html and "<h2>" in html
    with zipfile.ZipFile(io.BytesIO(bundle.build_bundle(store, binary["run_id"], "mlp"))) as zf:
        assert {"model.keras", "preprocess.json", "predict.py", "decision.json"} <= set(zf.namelist())


@pytest.mark.slow
@pytest.mark.parametrize("page", ["compare", "predict", "explain", "train"])
def test_the_old_runs_open_on_every_page(old_home, manifest, page):
    for run in manifest["runs"]:
        at = open_page(old_home, page, run=run["run_id"])
        assert not at.exception, (run["name"], at.exception)
        text = " ".join(str(e.value) for e in at.markdown) + " ".join(str(e.value) for e in at.error)
        assert "No run" not in text, (run["name"], text[:300])
