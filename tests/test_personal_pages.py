"""Pages with columns of personal data: the Data page names them and masks their values for a
session that may not see them; the Train page leaves them out and lets the analyst put one back."""

from __future__ import annotations

import pytest

from tests.conftest import open_page as app
from tests.conftest import use_app_router_in_apptest
from tests.test_personal import _people

use_app_router_in_apptest()


@pytest.fixture
def people(tmp_path):
    from dlcore import datasets
    from dlcore.store import Store

    home = tmp_path / "home"
    record, _ = datasets.register_bytes(Store.open(home), _people().to_csv(index=False).encode(), "customers.csv")
    return home, record.id


@pytest.mark.slow
def test_data_page_names_personal_columns_and_masks_their_values_when_asked(people, monkeypatch):
    home, dataset_id = people
    at = app(home, "data", dataset=dataset_id)
    assert not at.exception
    table = at.dataframe[0].value.set_index("Column")
    assert table.loc["contact", "Personal data"] == "email addresses"
    assert table.loc["card", "Personal data"] == "payment card numbers"
    assert table.loc["full_name", "Personal data"] == "people's names"
    assert table.loc["tenure", "Personal data"] == ""

    at.selectbox(key="detail_column").set_value("contact").run()
    assert any("personal: email addresses" in m.value for m in at.markdown)  # the badge, values shown
    charts = len(at.get("plotly_chart"))

    # A viewer of the dataset's workspace, signed in on a team server, sees the values masked.
    from dlcore import access
    from dlcore.store import Store, datasets
    from tests.test_team_pages import open_as

    raw = Store.open(home)
    alice = raw.as_actor(access.Actor("alice@example.com"))
    shared = alice.create_workspace("Customers")
    raw.as_actor(access.Actor("alice@example.com"), shared).add_member(shared, "carol@example.com", "viewer")
    with raw.engine.begin() as conn:
        conn.execute(datasets.update().where(datasets.c.id == dataset_id).values(workspace_id=shared))
    for name in ("DLCORE_AUTH", "DLCORE_HOME", "DLCORE_WORKERS"):
        monkeypatch.setenv(name, "")  # open_as sets them; monkeypatch puts back what was there before
    viewer = open_as(home, "data", "carol@example.com", shared, dataset=dataset_id)
    viewer.selectbox(key="detail_column").set_value("contact").run()
    assert not viewer.exception
    assert any("masked for your role" in i.value for i in viewer.info)
    assert not any("personal: email addresses" in m.value for m in viewer.markdown)
    assert len(viewer.get("plotly_chart")) == charts - 1
    owner = open_as(home, "data", "alice@example.com", shared, dataset=dataset_id)
    owner.selectbox(key="detail_column").set_value("contact").run()
    assert not owner.exception
    assert not any("masked for your role" in i.value for i in owner.info)


@pytest.mark.slow
def test_train_page_leaves_personal_columns_out_and_puts_one_back_when_asked(people):
    from dlcore.store import Store

    home, dataset_id = people
    at = app(home, "train", dataset=dataset_id)
    assert not at.exception
    at.selectbox[0].set_value("churn")
    put_back = next(m for m in at.multiselect if m.label.startswith("Columns of personal data"))
    assert put_back.options == ["full_name", "contact", "card"] and put_back.value == []
    at.form_submit_button[0].click().run()
    first = Store.open(home).run(at.query_params["run"])
    assert first.spec["data"]["features"] is None  # every usable column: personal ones left out

    at = app(home, "train", dataset=dataset_id)
    at.selectbox[0].set_value("churn")
    next(m for m in at.multiselect if m.label.startswith("Columns of personal data")).set_value(["contact"])
    at.form_submit_button[0].click().run()
    assert not at.exception
    second = Store.open(home).run(at.query_params["run"])
    features = second.spec["data"]["features"]
    assert "contact" in features and "full_name" not in features and "card" not in features
    assert "tenure" in features and "churn" not in features


@pytest.mark.slow
def test_cli_fit_names_personal_columns_and_refuses_to_put_back_one_that_is_not(tmp_path):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    data = tmp_path / "people.csv"
    _people().to_csv(data, index=False)
    env = dict(os.environ, DLCORE_HOME=str(tmp_path / "home"), DLCORE_WORKERS="0")
    done = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(data), "--target", "churn", "--use-personal",
                           "contact,tenure"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert "warning: Column 'contact' holds personal data: email addresses" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: --use-personal names 'tenure', which is not flagged as personal data; the flagged columns are: "
        "'full_name', 'contact', 'card'.")


def test_a_rows_explanation_and_a_scored_preview_hide_personal_values_only_when_masking():
    from streamlit.testing.v1 import AppTest

    def script():
        import streamlit as st

        from ui import privacy

        if st.session_state.get("viewer"):
            privacy.hide_personal_data()
        result = {"sentence": "80% likely to be “yes”, mostly because contact is a@b.org, which adds 30 points; "
                              "then tenure is 3, which adds 10 points.",
                  "contributions": [{"feature": "contact", "value": "a@b.org", "contribution": 0.3},
                                    {"feature": "tenure", "value": 3, "contribution": 0.1}]}
        profile = {"columns": [{"name": "contact", "personal": {"kind": "email", "share": 1.0, "details": []}},
                               {"name": "tenure", "personal": None}]}
        shown = privacy.shown_row(result, profile)
        st.write(shown["sentence"])
        st.write(", ".join(str(d["value"]) for d in shown["contributions"]))
        import pandas as pd

        scored = pd.DataFrame({"contact": ["a@b.org", None], "tenure": [3, 4], "prediction": ["yes", "no"]})
        st.dataframe(privacy.shown(scored, profile))  # as the Predict page shows a scored file

    at = AppTest.from_function(script).run()
    assert "contact is a@b.org" in at.markdown[0].value and at.markdown[1].value == "a@b.org, 3"
    assert at.dataframe[0].value["contact"].tolist()[0] == "a@b.org"
    at.session_state["viewer"] = True
    at.run()
    assert "contact is •••, which adds 30" in at.markdown[0].value and "a@b.org" not in at.markdown[0].value
    assert "tenure is 3" in at.markdown[0].value and at.markdown[1].value == "•••, 3"
    preview = at.dataframe[0].value
    assert preview["contact"].tolist()[0] == "•••" and preview["contact"].isna().tolist()[1]
    assert preview["tenure"].tolist() == [3, 4] and preview["prediction"].tolist() == ["yes", "no"]
