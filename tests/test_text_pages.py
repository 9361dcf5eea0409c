"""The pages with a free-text column: Data profiles it, Explain marks a row's words, Predict's
what-if takes a text box (AppTest, on a run trained by the CLI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, start_worker, use_app_router_in_apptest
from tests.conftest import open_page as app
from tests.test_text import EN_FILLER, EN_KEYS, texts_frame

use_app_router_in_apptest()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text-pages")
    home = folder / "home"
    data = folder / "texts.csv"
    texts_frame(EN_KEYS, EN_FILLER, 240).to_csv(data, index=False)
    env = dict(os.environ, DLCORE_HOME=str(home))
    out = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(data), "--target", "label", "--epochs", "12"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return home, json.loads(out.stdout)


def test_data_page_profiles_the_text_column(trained):
    home, result = trained
    at = app(home, "data", dataset=result["dataset_id"])
    assert not at.exception
    at.selectbox(key=f"target-{result['dataset_id']}").select("label").run()
    assert "Text columns" in [h.value for h in at.subheader]
    assert any("Writing: Latin 100%" in m.value for m in at.markdown)
    words = at.dataframe[-1].value
    row = words.set_index("Group").loc["games", "Words"]
    assert set(row.split(", ")[:4]) <= set(EN_KEYS["games"])


def test_explain_and_predict_read_a_typed_text(trained):
    home, result = trained
    worker = start_worker(home, "--only", "score")
    try:
        at = app(home, "predict", run=result["run_id"])
        assert not at.exception
        assert at.expander[0].label == "The file needs these 2 columns (others are ignored)"
        at.text_area[0].set_value("a new strategy game for multiplayer nights")
        at.form_submit_button[0].click().run(timeout=120)
        prediction = [m for m in at.metric if m.label == "Prediction"]
        assert prediction and prediction[0].value == "games"

        at = app(home, "explain", run=result["run_id"])
        assert not at.exception
        at.radio[0].set_value("typed").run()
        at.text_area[0].set_value("our hotel and flight for the week")
        at.button(key="FormSubmitter:explain-row-Explain this row").click().run(timeout=120)
        assert not at.exception
        said = next(i.value for i in at.info if "mostly because of" in i.value)
        assert "likely to be 'travel', mostly because of '" in said
        assert "'hotel'" in said or "'flight'" in said
    finally:
        worker.terminate()
        worker.wait(timeout=20)


def test_train_page_reads_text_columns_unless_one_is_left_out(trained):
    from dlcore.store import Store

    home, result = trained
    at = app(home, "train", dataset=result["dataset_id"])
    assert not at.exception
    chooser = at.multiselect[0]
    assert chooser.value == ["description"]
    assert any("no pretrained language model is downloaded" in c.value for c in at.caption)
    chooser.unselect("description")  # inside the form: sent with the Train button
    at.button(key="FormSubmitter:train-Train").click().run(timeout=60)
    assert not at.exception
    store = Store.open(home)
    runs = store.list_runs(dataset_id=result["dataset_id"])
    assert len(runs) == 2, [r.spec["data"] for r in runs]
    assert runs[0].spec["data"]["features"] == ["amount"]
