"""Every page through AppTest in team mode (personal mode: tests/test_pages.py and the rest), and
the sweep: every page opened with every id parameter of another workspace gives exactly the
answer of an id that does not exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from dlcore import access
from dlcore.store import Store, datasets, runs
from tests.conftest import ROOT, churn_frame, use_app_router_in_apptest

use_app_router_in_apptest()

ALICE, CAROL, BOB = "alice@example.com", "carol@example.com", "bob@example.com"
PAGES = [p.file.removeprefix("pages/").removesuffix(".py") for p in __import__("ui.urls").urls.PAGES.values()]
ID_PARAMS = ("dataset", "run", "scoring", "explanation")


@pytest.fixture(scope="module")
def team_store(tmp_path_factory):
    """A run trained by the CLI, moved into Alice's shared workspace 'Churn team' (Carol a viewer
    there), with a scoring and an explanation; Bob signed in, in none of it."""
    folder = tmp_path_factory.mktemp("team-pages")
    home = folder / "home"
    data = folder / "churn.csv"
    churn_frame(240).to_csv(data, index=False)
    env = dict(os.environ, DLCORE_HOME=str(home), DLCORE_AUTH="personal")
    out = subprocess.run([sys.executable, "-m", "dlcore", "fit", str(data), "--target", "churn", "--epochs", "1"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    raw = Store.open(home)
    alice = raw.as_actor(access.Actor(ALICE))
    shared = alice.create_workspace("Churn team")
    alice = raw.as_actor(access.Actor(ALICE), shared)
    alice.add_member(shared, CAROL, "viewer")
    run = raw.run(result["run_id"])
    with raw.engine.begin() as conn:  # the fixture's setup: the CLI trained it in the built-in workspace
        conn.execute(datasets.update().where(datasets.c.id == run.dataset_id).values(workspace_id=shared))
        conn.execute(runs.update().where(runs.c.id == run.id).values(workspace_id=shared))
    ids = {"dataset": run.dataset_id, "run": run.id,
           "scoring": alice.create_scoring(run.id, "dummy", "new.csv"),
           "explanation": alice.create_explanation(run.id, "dummy", "global")}
    raw.as_actor(access.Actor(BOB))
    return home, shared, ids


def open_as(home, page: str, user: str | None, workspace: str | None = None, **params: str) -> AppTest:
    import streamlit as st

    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0", DLCORE_AUTH="team")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.user = ({"is_logged_in": True, "email": user, "email_verified": True, "iss": "https://id.example.com",
                "sub": f"sub-{user}", "name": user.split("@")[0]} if user else {"is_logged_in": False})
    if workspace:
        at.session_state["dlcore-workspace"] = workspace
    at.switch_page(f"pages/{page}.py")
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def answer(at: AppTest, rows: bool = True) -> str:
    """Everything the page says, in order (with the tables' lengths unless ``rows`` is False)."""
    parts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success",
                 "button", "selectbox", "text_input"):
        parts += [f"{kind}: {getattr(e, 'value', None) if kind not in ('button', 'selectbox', 'text_input') else e.label}"
                  for e in getattr(at, kind)]
    parts += [f"link: {link.label}" for link in at.page_link]
    parts += [f"popover: {label}" for label in popovers(at)]
    parts += [f"table: {list(df.value.columns)} {len(df.value) if rows else ''}" for df in at.dataframe]
    return "\n".join(parts)


def popovers(at: AppTest) -> list[str]:
    return [b.proto.popover.label for b in at.get("popover")]


@pytest.fixture(autouse=True)
def _restore_env():
    saved = {k: os.environ.get(k) for k in ("DLCORE_AUTH", "DLCORE_HOME", "DLCORE_WORKERS")}
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.mark.parametrize("page", PAGES)
def test_nothing_of_the_product_before_sign_in(team_store, page):
    home, shared, ids = team_store
    at = open_as(home, page, None, run=ids["run"])
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"]
    assert ids["run"] not in answer(at) and "churn" not in answer(at) and not at.dataframe and not at.sidebar.selectbox


def test_an_email_outside_the_allowed_domain_is_refused(team_store, monkeypatch):
    home, shared, ids = team_store
    monkeypatch.setenv("DLCORE_ALLOWED_DOMAINS", "example.com")
    at = open_as(home, "home", "mallory@elsewhere.org")
    assert not at.exception and "may not use this server" in at.error[0].value
    assert [b.label for b in at.button] == ["Sign out"] and not at.dataframe


@pytest.mark.parametrize("page", PAGES)
def test_every_page_as_the_owner(team_store, page):
    home, shared, ids = team_store
    params = {"run": ids["run"]} if page not in ("data", "home", "runs", "workspace") else {}
    if page == "data":
        params = {"dataset": ids["dataset"]}
    at = open_as(home, page, ALICE, shared, **params)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.sidebar.selectbox[0].label == "Workspace"
    assert list(at.sidebar.selectbox[0].options) == [
        "Personal (alice@example.com) · owner", "Churn team · owner"]
    if page in ("compare", "explain", "decide", "predict", "train"):
        assert "Share" in popovers(at)
    if page == "compare":
        assert popovers(at) == ["Share", "Delete run"]
    if page == "runs":
        assert at.dataframe[0].value["Run"].iloc[0].endswith(ids["run"])
    if page == "workspace":
        assert "Audit log" in answer(at) and "Add a colleague by email" in answer(at)


def test_a_viewer_reads_but_cannot_train_score_or_download_the_model(team_store):
    home, shared, ids = team_store
    compare = open_as(home, "compare", CAROL, shared, run=ids["run"])
    assert not compare.exception and not compare.error
    assert "Rerun exactly" not in answer(compare) and popovers(compare) == ["Share"]
    downloads = [d.proto.label for d in compare.get("download_button")]
    assert any(label.startswith("Report") for label in downloads) and not any("bundle" in label for label in downloads)
    predict = open_as(home, "predict", CAROL, shared, run=ids["run"])
    assert "You are a viewer of this workspace: scoring new data needs the editor role" in predict.info[0].value
    assert not predict.get("file_uploader")
    train = open_as(home, "train", CAROL, shared, dataset=ids["dataset"])
    assert "training needs the editor role" in train.info[0].value
    workspace = open_as(home, "workspace", CAROL, shared)
    assert "Audit log" not in answer(workspace) and "Add a colleague by email" not in answer(workspace)


@pytest.mark.parametrize("page", PAGES)
def test_sweep_ids_of_another_workspace_answer_as_ids_that_do_not_exist(team_store, page):
    """Bob opens every page with each id of Alice's shared workspace: the page says exactly what it
    says for an id that names nothing (once the id itself is set aside)."""
    home, shared, ids = team_store
    for param in ID_PARAMS:
        real = ids[param]
        missing = "Z" * len(real)
        theirs = open_as(home, page, BOB, **{param: real})
        nothing = open_as(home, page, BOB, **{param: missing})
        assert not theirs.exception and not nothing.exception
        # Bob's own audit log (Workspace page) grows by his sign-in of each session: lengths aside there
        said = answer(theirs, rows=page != "workspace")
        assert said.replace(real, "<id>") == answer(nothing, rows=page != "workspace").replace(missing, "<id>"), \
            (page, param)
        assert "churn" not in said.lower() and "Churn team" not in said, (page, param)
        if page in ("train", "compare", "explain", "decide", "predict") and param == "run" or \
                page in ("data", "train") and param == "dataset":
            assert theirs.error[0].value == access.not_found(param, real)
            assert [b.label for b in theirs.main.button][-1] == "Ask for access"
            theirs.main.button[-1].click().run()
            nothing.main.button[-1].click().run()
            assert answer(theirs).replace(real, "<id>") == answer(nothing).replace(missing, "<id>")
            assert "Your request is noted" in theirs.info[0].value


@pytest.mark.parametrize("page", [p for p in PAGES if p != "workspace"])
def test_personal_mode_says_who_can_see_and_shows_no_team_controls(team_store, page):
    """Personal mode (every page with its ids: tests/test_pages.py): the one-line note, no sign-in,
    no switcher, no Workspace page; the team's records are not the built-in user's."""
    import streamlit as st

    home, shared, ids = team_store
    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0", DLCORE_AUTH="personal")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception and not at.error
    assert "anyone who can open this address sees everything" in at.sidebar.caption[-1].value
    assert "Sign in" not in [b.label for b in at.button] and not at.sidebar.selectbox
    assert "churn" not in answer(at).lower()  # Alice's shared workspace is not the built-in user's


def test_a_misconfigured_sign_in_is_a_message_for_the_administrator(team_store, tmp_path, monkeypatch):
    home, shared, ids = team_store
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    at = open_as(home, "home", None)
    at.button[0].click().run()
    assert not at.exception
    assert "Sign-in is not set up correctly on this server" in at.error[0].value
    assert "[auth] section of .streamlit/secrets.toml" in at.error[0].value


def test_an_unreachable_sign_in_provider_is_a_message_for_the_administrator(team_store, tmp_path, monkeypatch):
    """Streamlit alone shows a bare "Authentication error" page when the provider cannot be reached."""
    home, shared, ids = team_store
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(
        '[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\ncookie_secret = "s3cr3t-s3cr3t-s3cr3t"\n'
        'client_id = "app"\nclient_secret = "secret"\n'
        'server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"\n')
    monkeypatch.chdir(tmp_path)
    at = open_as(home, "home", None)
    at.button[0].click().run()
    assert not at.exception
    assert "cannot reach the sign-in provider at http://127.0.0.1:9/.well-known/openid-configuration" in at.error[0].value
    assert "server_metadata_url" in at.error[0].value
