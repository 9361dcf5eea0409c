"""The report (one HTML file that opens with no network) and rerunning a run exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import playwright.sync_api as playwright
import pytest

from dlcore.outputs import load_test_outputs
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import ROOT, churn_frame


def cli(home, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, DLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "dlcore", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    home = folder / "home"
    data = folder / "churn.csv"
    churn_frame(400).to_csv(data, index=False)
    out = cli(home, "fit", str(data), "--target", "churn", "--epochs", "4")
    assert out.returncode == 0, out.stderr
    return home, json.loads(out.stdout)


def test_report_cli_writes_one_file_with_the_answer_the_explanation_and_how_to_reproduce(fitted, tmp_path):
    from dlcore.handover import decision
    from dlcore.store import Store

    home, fit = fitted
    store = Store.open(home)
    run = store.run(fit["run_id"])
    decision.save_decision(store, run.id, decision.Decision(
        model=fit["leaderboard"][0]["model"], threshold=0.35, money=decision.Money(150, 20, 0, 0, "$"),
        positive="yes", negative="no", profit_per_row=12.5))
    path = tmp_path / "report.html"
    out = cli(home, "report", run.id, "-o", str(path), "--explain")
    assert out.returncode == 0, out.stderr
    assert "opens with no network" in out.stderr
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<script src" not in text and "<link" not in text  # all inline
    assert fit["verdict"].split(":")[0] in text  # the verdict, word for word up to its figures
    best = fit["leaderboard"][0]
    assert f"{best['test_score']:.4f}" in text and f"{best['ci'][0]:.4f} – {best['ci'][1]:.4f}" in text
    dataset = store.dataset(run.dataset_id)
    assert dataset.sha256 in text and "&quot;seed&quot;: 42" in text and "tensorflow" in text
    assert "relies on" in text and "Permutation importance" in text  # worked out by --explain
    assert "<b>0.350</b>" in text and "$150" in text  # the saved threshold and its money
    (store.run_dir(run.id) / "decision.json").unlink()


@pytest.mark.browser
def test_report_opens_in_a_browser_with_no_network_and_draws_its_charts(fitted, tmp_path):
    from dlcore.handover.report import build_report
    from dlcore.store import Store

    home, fit = fitted
    path = tmp_path / "offline.html"
    path.write_text(build_report(Store.open(home), fit["run_id"]), encoding="utf-8")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True, viewport={"width": 1200, "height": 1600})
        page = context.new_page()
        outside, errors = [], []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(path.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg", timeout=30_000)
        page.wait_for_timeout(500)
        plots = page.locator(".js-plotly-plot").count()
        drawn = page.locator(".js-plotly-plot .main-svg").count()
        heading = page.locator("h1").inner_text()
        browser.close()
    assert plots >= 4 and drawn >= plots  # leaderboard, confusion matrix, ROC, importance (+ dependence)
    assert errors == [] and outside == []
    assert "churn" in heading


def test_rerun_trains_the_same_spec_and_the_scores_match(fitted):
    from dlcore.store import Store

    home, fit = fitted
    out = cli(home, "rerun", fit["run_id"])
    assert out.returncode == 0, out.stderr
    again = json.loads(out.stdout)
    assert again["run_id"] != fit["run_id"]
    first = {r["model"]: r["test_score"] for r in fit["leaderboard"]}
    second = {r["model"]: r["test_score"] for r in again["leaderboard"]}
    assert second == first  # exactly: same split, seed, settings and machine
    store = Store.open(home)
    assert store.run(again["run_id"]).spec == store.run(fit["run_id"]).spec
    _, a, _ = load_test_outputs(store, fit["run_id"])
    _, b, _ = load_test_outputs(store, again["run_id"])
    assert all(np.array_equal(a[m], b[m]) for m in a)
