"""A model at work in a real browser: score a drifted file and see the sentence and the chart,
upload its outcomes and see the realized score and the alert, retrain on newer data, compare the
challenger with the model in use, promote it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server
from tests.conftest import ROOT, churn_frame

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture
def server(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    srv = Server(home)
    yield srv
    srv.stop()


def test_score_a_drifted_file_outcomes_alert_retrain_and_promote(server, tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    data = tmp_path / "churn.csv"
    churn_frame(600).to_csv(data, index=False)
    env = dict(os.environ, DLCORE_HOME=str(server.home), TF_CPP_MIN_LOG_LEVEL="2")
    fit = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(data), "--target", "churn", "--epochs", "2"],
                         check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert fit.returncode == 0, fit.stderr
    run_id = json.loads(fit.stdout)["run_id"]
    moved = churn_frame(300, seed=7).assign(id=range(300))
    moved["charges"] = moved["charges"] + 60
    moved.drop(columns=["churn"]).to_csv(tmp_path / "may.csv", index=False)
    truth = moved[["id", "churn"]].assign(churn=np.where(moved["churn"] == "yes", "no", "yes"))  # the world turned
    truth.to_csv(tmp_path / "may-outcomes.csv", index=False)

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 2600}).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{server.url}/predict?run={run_id}")
        page.get_by_text("Score a file").wait_for()
        page.locator("input[type=file]").first.set_input_files(str(tmp_path / "may.csv"))
        page.get_by_role("button", name="Score the file").click()
        page.get_by_text("Scored 300 rows of may.csv").wait_for(timeout=120_000)
        page.get_by_text("This file differs from the training data in charges (").wait_for()
        page.locator(".js-plotly-plot").first.wait_for()  # the drifted column, training vs this file

        page.get_by_role("link", name="This scoring on Monitor: upload its true outcomes later").click()
        page.get_by_text("The true outcomes came back?").wait_for()
        page.locator("input[type=file]").first.set_input_files(str(tmp_path / "may-outcomes.csv"))
        page.get_by_role("button", name="Compare with the predictions").click()
        page.get_by_text("worse than promised").first.wait_for(timeout=60_000)
        body = page.inner_text("body")
        assert "the test rows promised" in body and "below the" in body

        newer, _ = datasets.register_bytes(Store.open(server.home), churn_frame(600, seed=21).to_csv(index=False)
                                           .encode(), "june.csv")
        page.reload()
        page.get_by_role("button", name="Retrain on newer data").click()
        page.get_by_text("Challenger ").first.wait_for()
        for _ in range(300):  # the server's worker trains it; the page shows it finished on a reload
            page.reload()
            page.get_by_text("Challenger ").first.wait_for()
            if page.get_by_role("button", name="Compare with the model in use on the newest labelled rows").count():
                break
            page.wait_for_timeout(1000)
        page.get_by_role("button", name="Compare with the model in use on the newest labelled rows").click()
        page.get_by_text("paired interval").wait_for(timeout=120_000)
        page.get_by_role("button", name="Promote: use the challenger").click()
        page.get_by_text("of the retrained run").first.wait_for()
        assert newer.id
        browser.close()
    run = Store.open(server.home).run(run_id)
    from dlcore import monitor

    use = monitor.model_in_use(Store.open(server.home), run)
    assert use.promoted and use.run_id != run_id
