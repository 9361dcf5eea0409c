"""Every page through Streamlit's AppTest, opened the way a shared link opens it."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT, churn_frame, start_worker, use_app_router_in_apptest
from tests.conftest import open_page as app

use_app_router_in_apptest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store holding one finished run, trained by the CLI in its own process."""
    folder = tmp_path_factory.mktemp("pages")
    home = folder / "home"
    data = folder / "churn.csv"
    churn_frame(240).to_csv(data, index=False)
    env = dict(os.environ, DLCORE_HOME=str(home))
    out = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(data), "--target", "churn", "--epochs", "3"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return home, json.loads(out.stdout)


def texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [e.value for e in at.info] + [e.value for e in at.warning]
    parts += [e.value for e in at.error] + [e.value for e in at.success] + [c.value for c in at.caption]
    parts += [h.value for h in at.title] + [h.value for h in at.subheader] + [h.value for h in at.header]
    return "\n".join(str(p) for p in parts)


def test_home_shows_the_path_and_latest_runs(trained):
    home, result = trained
    at = app(home, "home")
    assert not at.exception
    assert "honest answer" in texts(at)
    # Six steps, six different pages (Decide has its own card; no two cards open the same page).
    assert [link.label for link in at.page_link][:6] == ["Go to Data", "Go to Train", "Go to Compare", "Go to Explain",
                                                         "Go to Decide", "Go to Predict"]
    table = at.dataframe[0].value
    assert table["Run"].iloc[0].endswith(result["run_id"]) and table["Target"].iloc[0] == "churn"


def test_data_page_uploads_profiles_and_keeps_the_target(tmp_path):
    home = tmp_path / "home"
    at = app(home, "data")
    csv = churn_frame(120).to_csv(index=False, sep=";", decimal=",").encode("cp1252")
    at.file_uploader[0].upload("churn.csv", csv, "text/csv").run()
    assert not at.exception and not at.error
    dataset_id = at.query_params["dataset"]
    profile = at.dataframe[0].value
    assert profile["Column"].tolist() == ["tenure", "charges", "plan", "region", "churn"]
    assert profile.set_index("Column").loc["charges", "Type"] == "numeric"
    assert "semicolon" in texts(at).lower()
    from dlcore.store import Store

    assert Store.open(home).dataset(dataset_id).target is None  # looking changes nothing stored
    target_box = next(s for s in at.selectbox if s.label == "Target column")
    target_box.select("plan").run()
    record = Store.open(home).dataset(dataset_id)
    assert (record.target, record.task) == ("plan", "multiclass")
    # The same link opened fresh shows the same dataset with the chosen target.
    again = app(home, "data", dataset=dataset_id)
    assert next(s for s in again.selectbox if s.label == "Target column").value == "plan"


def test_data_page_bad_file_gets_a_clear_message_and_keeps_stored_data(tmp_path):
    home = tmp_path / "home"
    at = app(home, "data")
    at.file_uploader[0].upload("good.csv", churn_frame(60).to_csv(index=False).encode(), "text/csv").run()
    good = at.query_params["dataset"]
    at.file_uploader[0].upload("junk.csv", bytes(range(256)) * 50, "text/csv").run()
    assert not at.exception
    assert "does not look like" in " ".join(e.value for e in at.error)
    from dlcore.store import Store

    assert [d.id for d in Store.open(home).list_datasets()] == [good]


@pytest.mark.slow
def test_train_page_submits_a_run_and_puts_its_id_in_the_url(tmp_path):
    home = tmp_path / "home"
    at = app(home, "data")
    next(b for b in at.button if b.label == "Use this sample").click().run()
    dataset_id = at.query_params["dataset"]
    at = app(home, "train", dataset=dataset_id)
    assert not at.exception
    at.form_submit_button[0].click().run()
    run_id = at.query_params.get("run")
    assert run_id, texts(at)
    from dlcore.store import Store

    run = Store.open(home).run(run_id)
    assert run.status == "queued" and run.dataset_id == dataset_id
    assert "Waiting for a free worker" in texts(at) or "queued" in texts(at)


def test_compare_opened_from_a_link_shows_leaderboard_and_verdict(trained):
    home, result = trained
    at = app(home, "compare", run=result["run_id"])
    assert not at.exception
    board = at.dataframe[0].value
    assert len(board) == 5 and set(board["Kind"]) == {"deep", "baseline"}
    assert board["ROC AUC"].tolist() == sorted(board["ROC AUC"], reverse=True)
    verdicts = [e.value for e in at.success] + [e.value for e in at.info] + [e.value for e in at.error]
    assert any("baseline" in v for v in verdicts)


def test_compare_with_an_unknown_run_says_so(trained):
    home, _ = trained
    at = app(home, "compare", run="doesnotexist")
    assert not at.exception
    assert "No run with id 'doesnotexist'" in at.error[0].value


def test_runs_page_lists_runs_with_links(trained):
    home, result = trained
    at = app(home, "runs")
    assert not at.exception
    table = at.dataframe[0].value
    assert table["Run"].iloc[0] == f"/compare?run={result['run_id']}"


def test_predict_what_if_scores_in_a_worker(trained):
    home, result = trained
    worker = start_worker(home, "--only", "score")
    try:
        at = app(home, "predict", run=result["run_id"])
        assert not at.exception
        assert "The file needs these 4 columns" in at.expander[0].label
        at.form_submit_button[0].click().run(timeout=120)
        prediction = [m for m in at.metric if m.label == "Prediction"]
        assert prediction and prediction[0].value in ("yes", "no")
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def modules_loaded_by_pages(home, pages: list[tuple[str, dict]]) -> list[str]:
    """Run ``pages`` (name, query) in a fresh process, as a server would, and return the
    TensorFlow and Keras modules that process ended up with (expected: none)."""
    code = f"""
import os, sys
os.environ["DLCORE_HOME"] = {str(home)!r}
os.environ["DLCORE_WORKERS"] = "0"
sys.path.insert(0, {str(ROOT)!r})
from tests.conftest import use_app_router_in_apptest
use_app_router_in_apptest()
from streamlit.testing.v1 import AppTest
for page, params in {pages!r}:
    at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=60)
    at.switch_page(f"pages/{{page}}.py")
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, (page, at.exception)
print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


def test_pages_never_import_tensorflow_in_the_server_process(trained):
    home, result = trained
    run = {"run": result["run_id"]}
    pages = [("home", {}), ("data", {}), ("train", {}), ("compare", run), ("predict", run), ("runs", {}), ("train", run),
             ("explain", run), ("decide", run)]
    assert modules_loaded_by_pages(home, pages) == []


@pytest.mark.slow  # a real Python process
def test_dlcore_imports_without_streamlit():
    code = ("import sys; sys.modules['streamlit'] = None\n"
            "import dlcore, dlcore.cli, dlcore.runner, dlcore.jobs, dlcore.charts, dlcore.scoring, dlcore.datasets\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.slow
def test_stop_button_ends_training_and_the_run_is_still_evaluated(tmp_path):
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store
    from tests.conftest import wait_until

    home = tmp_path / "home"
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(3000).to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(store, RunSpec(DataSpec(record.id, "churn"),
                                          train=TrainSpec(epochs=500, patience=500, batch_size=16)))
    worker = start_worker(home)
    try:
        wait_until(lambda: len(store.epochs(run_id)) >= 1, timeout=120)
        at = app(home, "train", run=run_id)
        assert not at.exception
        at.button(key=f"stop-{run_id}").click().run()
        assert store.run(run_id).stop_requested
        wait_until(lambda: store.run(run_id).status == "stopped", timeout=120)
    finally:
        worker.terminate()
        worker.wait(timeout=20)
    run = store.run(run_id)
    assert run.result["deep"]["stopped_by_user"] and run.result["deep"]["epochs_run"] < 500
    assert len(run.result["leaderboard"]["rows"]) == 5
    at = app(home, "compare", run=run_id)
    assert "stopped early by request" in texts(at)


def test_train_page_refuses_a_one_class_target_before_queuing(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    home = tmp_path / "home"
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(60).assign(churn="no").to_csv(index=False).encode(), "one.csv")
    at = app(home, "train", dataset=record.id)
    next(s for s in at.selectbox if s.label.startswith("Target")).select("churn")
    at.form_submit_button[0].click().run()
    assert not at.exception
    assert any("same value" in e.value and "'no'" in e.value for e in at.error)
    assert "run" not in at.query_params and store.list_runs() == []


def test_data_page_says_once_why_a_one_class_target_cannot_be_learned(tmp_path):
    home = tmp_path / "home"
    at = app(home, "data")
    at.file_uploader[0].upload("one.csv", churn_frame(60).assign(churn="no").to_csv(index=False).encode(), "text/csv").run()
    assert not at.exception and not at.error  # nothing is said about a target before one is chosen
    next(s for s in at.selectbox if s.label == "Target column").select("churn").run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "same value ('no') in every row" in errors[0]
    assert not [link for link in at.page_link if link.label.startswith("Next:")]
