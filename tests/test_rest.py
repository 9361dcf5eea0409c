"""The REST endpoint (``dlcore.api``): a real ``python -m dlcore serve`` process on a free loopback
port and a plain httpx client; the same answers as ``python -m dlcore predict`` on the same rows to
1e-9; the body and row limits; team mode's tokens (CLI, store on both databases, 401/404 parity);
and, marked slow, ``streamlit run app.py`` serving the endpoint beside the pages without loading
TensorFlow in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from dlcore import access, datasets
from dlcore.api import ApiProblem, parse_rows
from dlcore.errors import AccessError, NotFoundError
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from dlcore.store import Store
from tests.browser import Server, free_port
from tests.conftest import DATABASES, ROOT, churn_frame, run_here, use_app_router_in_apptest

OWNER, EDITOR, OUTSIDER = "ann@example.com", "bob@example.com", "dan@example.com"


def _env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DLCORE_USER", "DLCORE_AUTH", "DLCORE_DATABASE_URL")}
    return dict(env, DLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT), DLCORE_ADMINS="",
                DLCORE_ALLOWED_DOMAINS="", DLCORE_SECRETS=str(home.parent / "no-secrets.toml"), **extra)


class Serve:
    """``python -m dlcore serve`` on a free loopback port, as an operator starts it."""

    def __init__(self, home: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(home.parent / f"serve-{self.port}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "dlcore", "serve", "--host", "127.0.0.1", "--port",
                                      str(self.port)], cwd=ROOT, env=_env(home, **env), stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v1/openapi.json", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("python -m dlcore serve did not start")

    def predict(self, run_id: str, rows: list | None = None, token: str | None = None, **kwargs) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        body = kwargs.pop("content", None)
        if body is None:
            return httpx.post(f"{self.url}/v1/runs/{run_id}/predict", json={"rows": rows}, headers=headers,
                              timeout=180)
        return httpx.post(f"{self.url}/v1/runs/{run_id}/predict", content=body, headers=headers, timeout=180)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlcore", *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240, check=False)


def new_rows() -> pd.DataFrame:
    """Next month's customers: fresh rows, a category the model never saw, a gap, an extra column."""
    frame = churn_frame(40, seed=7).drop(columns=["churn"])
    frame.loc[3, "region"] = "space"
    frame.loc[5, "tenure"] = np.nan
    frame["customer"] = [f"c{i:03d}" for i in range(len(frame))]
    return frame


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", double_precision=15))


def cli_scores(env: dict, run_id: str, frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """``python -m dlcore predict`` on ``frame`` written as a CSV: the scored file, with the drift
    sentence it printed in ``attrs["drift"]`` (None when it printed none)."""
    data, out = folder / "new.csv", folder / "scored.csv"
    frame.to_csv(data, index=False)
    done = _cli(env, "predict", run_id, data, "-o", out)
    assert done.returncode == 0, done.stderr
    scored = pd.read_csv(out, encoding="utf-8-sig")
    said = [line.removeprefix("drift: ") for line in done.stderr.splitlines() if line.startswith("drift: ")]
    scored.attrs["drift"] = said[0] if said else None
    return scored


def assert_same_answers(answer: dict, scored: pd.DataFrame) -> None:
    assert answer["predictions"] == scored["prediction"].astype(str).tolist()
    got = np.array([[p[c] for c in answer["classes"]] for p in answer["probabilities"]])
    want = scored[[f"probability {c}" for c in answer["classes"]]].to_numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@pytest.fixture(scope="module")
def personal(tmp_path_factory):
    """A personal store with one finished run of the deep model alone (so Keras answers), and the
    endpoint serving it."""
    folder = tmp_path_factory.mktemp("rest")
    home = folder / "home"
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(240).to_csv(index=False).encode(), "churn.csv")
    run = run_here(store, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=2, seed=3), baselines=False))
    server = Serve(home, DLCORE_API_MAX_ROWS="50", DLCORE_API_MAX_MB="0.02")
    yield folder, home, run.id, server
    server.stop()


def test_the_endpoint_answers_like_the_command_line_to_1e_9(personal):
    folder, home, run_id, server = personal
    frame = new_rows()
    frame["charges"] += 60  # a month of much higher bills: the batch drifts in 'charges'
    response = server.predict(run_id, records(frame))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model"] == "mlp" and answer["classes"] == ["no", "yes"] and answer["run_id"] == run_id
    assert len(answer["predictions"]) == len(frame) == len(answer["probabilities"])
    assert all(abs(sum(p.values()) - 1) < 1e-6 for p in answer["probabilities"])
    scored = cli_scores(_env(home), run_id, frame, folder)
    assert_same_answers(answer, scored)
    # the batch's drift: the very sentence the command line prints for the same rows
    assert answer["drift"] == scored.attrs["drift"] and "charges" in answer["drift"]
    assert "charges" in answer["drifted_columns"]
    one = server.predict(run_id, records(frame.head(1))).json()
    assert one["drift"] is None and one["predictions"] == answer["predictions"][:1]  # one row: no distribution
    # the scoring's notes, as the page says them: the unseen region and the ignored column
    assert any("'region'" in n and "never saw" in n for n in answer["notes"])
    assert any("'customer'" in n for n in answer["notes"])
    # kept as one scoring of the run, like a file scored on the Predict page
    job = Store.open(home).scoring(answer["scoring_id"])
    assert job.status == "done" and job.run_id == run_id and job.summary["n_rows"] == len(frame)


def test_bad_columns_get_the_very_message_of_the_apps_scoring(personal):
    folder, home, run_id, server = personal
    frame = new_rows().drop(columns=["plan", "charges"])
    response = server.predict(run_id, records(frame))
    assert response.status_code == 422
    frame.to_csv(folder / "short.csv", index=False)
    refused = _cli(_env(home), "predict", run_id, folder / "short.csv", "-o", folder / "never.csv")
    assert refused.returncode == 1
    said = [line for line in refused.stderr.splitlines() if line.startswith("error: ")]
    assert response.json()["error"] == said[-1].removeprefix("error: ")
    assert "'charges'" in response.json()["error"] and "'plan'" in response.json()["error"]


def test_limits_and_malformed_bodies_get_clear_4xx_answers(personal):
    _, _, run_id, server = personal
    rows = records(new_rows())
    too_many = server.predict(run_id, rows * 2)  # 80 rows, over DLCORE_API_MAX_ROWS=50
    assert too_many.status_code == 413
    assert "80 rows" in too_many.json()["error"] and "50" in too_many.json()["error"]
    assert "DLCORE_API_MAX_ROWS" in too_many.json()["error"] and "batches" in too_many.json()["error"]
    big = json.dumps({"rows": rows[:5], "padding": "x" * 30_000}).encode()  # over DLCORE_API_MAX_MB=0.02
    too_big = server.predict(run_id, content=big)
    assert too_big.status_code == 413 and "DLCORE_API_MAX_MB" in too_big.json()["error"]
    not_json = server.predict(run_id, content=b"tenure,charges\n1,2\n")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    no_rows = server.predict(run_id, content=b'{"data": []}')
    assert no_rows.status_code == 422 and "without 'rows'" in no_rows.json()["error"]
    empty_row = server.predict(run_id, [rows[0], {"tenure": None}])
    assert empty_row.status_code == 422 and "Row 1" in empty_row.json()["error"]
    missing = server.predict("NoSuchRun0000000", rows[:2])
    assert missing.status_code == 404 and missing.json()["error"] == access.not_found("run", "NoSuchRun0000000")
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200 and "/v1/runs/{run_id}/predict" in docs.text
    assert "<script" not in docs.text and "src=" not in docs.text and "<link" not in docs.text  # nothing fetched
    spec = httpx.get(f"{server.url}/v1/openapi.json").json()
    assert spec["openapi"].startswith("3.1") and "/v1/runs/{run_id}/predict" in spec["paths"]
    assert spec["paths"]["/v1/runs/{run_id}/predict"]["post"]["requestBody"]["content"]["application/json"][
        "schema"]["properties"]["rows"]["maxItems"] == 50


@pytest.mark.parametrize("body, status, words", [
    (b"\xff\xfe", 400, "not UTF-8"),
    (b"[1, 2]", 422, "JSON array, without 'rows'"),
    (b'{"rows": []}', 422, "non-empty array"),
    (b'{"rows": [1]}', 422, "Row 0 of 'rows' is a JSON number"),
    (b'{"rows": [{"a": [1]}]}', 422, "Row 0, column 'a' holds a JSON array"),
    (b'{"rows": [{"a": NaN}]}', 422, "finite number"),
    (b'{"rows": [{}]}', 422, "Row 0 of 'rows' has no values"),
])
def test_parse_rows_names_what_is_wrong(body, status, words):
    with pytest.raises(ApiProblem) as refused:
        parse_rows(body, max_rows=10)
    assert refused.value.status == status and words in str(refused.value)
    assert parse_rows(b'{"rows": [{"a": 1, "b": "x", "c": null}]}', max_rows=10) == [{"a": 1, "b": "x", "c": None}]


# ---- team mode ------------------------------------------------------------------------------------
@pytest.mark.parametrize("database", DATABASES, indirect=True)
def test_tokens_are_kept_hashed_owned_by_their_workspace_and_revocable(store, database, monkeypatch):
    monkeypatch.setenv("DLCORE_AUTH", "team")
    ann = store.as_actor(access.Actor(OWNER))
    shared = ann.create_workspace("Churn team")
    ann.add_member(shared, EDITOR, "editor")
    token_id, secret = ann.create_token(shared, "billing system")
    assert secret.startswith("dls_") and token_id in secret
    listed = ann.tokens_of(shared)
    assert [t["id"] for t in listed] == [token_id] and "sha256" not in listed[0] and secret not in json.dumps(listed)
    bound = store.for_token(secret)
    assert bound.workspace_id == shared and bound.actor.email == f"token:{token_id}"
    assert bound.role_of(bound.actor, shared) == access.TOKEN_ROLE
    assert bound.allowed(bound.actor, "score", ("workspace", shared))
    assert not bound.allowed(bound.actor, "train", ("workspace", shared))
    assert not bound.allowed(bound.actor, "view", ("workspace", ann.ensure_user(access.Actor(OWNER))))
    assert store.for_token(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None  # one character off
    assert store.for_token("dls_nonsense") is None and store.for_token("") is None
    with pytest.raises(AccessError, match="creating or revoking API tokens needs the owner role"):
        store.as_actor(access.Actor(EDITOR), shared).create_token(shared, "mine")
    with pytest.raises(NotFoundError, match="No workspace with id"):
        store.as_actor(access.Actor(OUTSIDER)).tokens_of(shared)
    ann.revoke_token(shared, token_id)
    assert store.for_token(secret) is None and ann.tokens_of(shared) == []
    with pytest.raises(NotFoundError, match="no API token"):
        ann.revoke_token(shared, token_id)
    actions = [r["action"] for r in ann.audit_log(shared)]
    assert "create_token" in actions and "revoke_token" in actions
    ann.create_token(shared, "report job")
    assert ann.delete_tokens_of(shared) == 1 and ann.tokens_of(shared) == []


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    """A team server: Ann's shared workspace with a finished run, Dan's workspace apart, and the
    endpoint in team mode."""
    folder = tmp_path_factory.mktemp("rest_team")
    home = folder / "home"
    saved = os.environ.get("DLCORE_AUTH")
    os.environ["DLCORE_AUTH"] = "team"
    try:
        raw = Store.open(home)
        ann = raw.as_actor(access.Actor(OWNER))
        shared = ann.create_workspace("Churn team")
        ann.add_member(shared, EDITOR, "editor")
        ann = raw.as_actor(access.Actor(OWNER), shared)
        record, _ = datasets.register_bytes(ann, churn_frame(240).to_csv(index=False).encode(), "churn.csv")
        run = run_here(ann, RunSpec(DataSpec(record.id, "churn"), train=TrainSpec(epochs=1, seed=4)))
        raw.as_actor(access.Actor(OUTSIDER)).create_workspace("Dan's team")
    finally:
        if saved is None:
            os.environ.pop("DLCORE_AUTH")
        else:
            os.environ["DLCORE_AUTH"] = saved
    env = _env(home, DLCORE_AUTH="team")
    server = Serve(home, DLCORE_AUTH="team")
    yield folder, home, env, run.id, server
    server.stop()


def test_team_tokens_by_the_command_line_and_401_404_parity(team):
    folder, home, env, run_id, server = team
    made = _cli(env, "--as", OWNER, "token", "create", "Churn team", "--name", "billing system")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert "once" in made.stderr and secret.startswith("dls_")
    theirs = _cli(env, "--as", OUTSIDER, "token", "create", "Dan's team", "--name", "dan's job").stdout.strip()
    refused = _cli(env, "--as", EDITOR, "token", "create", "Churn team", "--name", "mine")
    assert refused.returncode == 1 and "needs the owner role" in refused.stderr
    listed = json.loads(_cli(env, "--as", OWNER, "token", "list", "Churn team", "--json").stdout)
    assert [t["name"] for t in listed] == ["billing system"] and listed[0]["last_used_at"] is None
    token_id = listed[0]["token_id"]
    assert secret.encode() not in (home / "store.db").read_bytes()  # kept only as its hash

    rows = records(new_rows().head(5))
    ok = server.predict(run_id, rows, token=secret)
    assert ok.status_code == 200, ok.text
    assert_same_answers(ok.json(), cli_scores(dict(env, DLCORE_USER=OWNER), run_id, new_rows().head(5), folder))
    for bad in (None, "dls_" + "A" * 16 + "_" + "B" * 43, secret + "x", "Basic " + secret):
        refused = server.predict(run_id, rows, token=bad)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert "API token" in refused.json()["error"]
    # another workspace's token: the run is not found, word for word as an id that does not exist
    other = server.predict(run_id, rows, token=theirs)
    missing = server.predict("NoSuchRun0000000", rows, token=theirs)
    assert other.status_code == missing.status_code == 404
    assert other.json()["error"].replace(run_id, "NoSuchRun0000000") == missing.json()["error"]
    assert "Churn" not in other.json()["error"]

    audit = json.loads(_cli(env, "--as", OWNER, "audit", "Churn team", "--json").stdout)
    assert {"action": "score", "user": f"token:{token_id}", "id": run_id} in [
        {k: a[k] for k in ("action", "user", "id")} for a in audit]
    assert any(a["action"] == "create_token" and a["id"] == token_id for a in audit)
    revoked = _cli(env, "--as", OWNER, "token", "revoke", "Churn team", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert server.predict(run_id, rows, token=secret).status_code == 401
    assert json.loads(_cli(env, "--as", OWNER, "token", "list", "Churn team", "--json").stdout) == []
    audit = json.loads(_cli(env, "--as", OWNER, "audit", "Churn team", "--json").stdout)
    assert any(a["action"] == "revoke_token" and a["id"] == token_id for a in audit)


def test_tokens_are_for_team_mode(tmp_path):
    done = _cli(_env(tmp_path / "home"), "token", "list", "Personal")
    assert done.returncode == 1 and "team mode" in done.stderr


# ---- mounted on the app's own server ----------------------------------------------------------------
@pytest.mark.slow
def test_streamlit_run_serves_the_endpoint_beside_the_pages_without_tensorflow(personal):
    folder, home, run_id, _ = personal
    server = Server(home, workers=1)
    try:
        page = httpx.get(server.url, timeout=30)
        assert page.status_code == 200 and "<div id=\"root\">" in page.text  # the pages are still there
        frame = new_rows()
        response = httpx.post(f"{server.url}/v1/runs/{run_id}/predict", json={"rows": records(frame)}, timeout=240)
        assert response.status_code == 200, response.text
        assert_same_answers(response.json(), cli_scores(_env(home), run_id, frame, folder))
        assert httpx.get(f"{server.url}/docs", timeout=30).status_code == 200
        refused = httpx.post(f"{server.url}/v1/runs/{run_id}/predict", json={"rows": []}, timeout=30)
        assert refused.status_code == 422
        # the server process scored through its scoring worker: TensorFlow never loaded in it
        maps = Path(f"/proc/{server.proc.pid}/maps").read_text()
        assert "tensorflow" not in maps and "libtensorflow" not in maps
    finally:
        server.stop()


# ---- the Workspace page -----------------------------------------------------------------------------
def _workspace_page(home: Path, user: str, workspace: str):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    use_app_router_in_apptest()  # a click's rerun reaches the page once, as on a server
    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0", DLCORE_AUTH="team")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.user = {"is_logged_in": True, "email": user, "email_verified": True, "iss": "https://id.example.com",
               "sub": f"sub-{user}", "name": user.split("@")[0]}
    at.session_state["dlcore-workspace"] = workspace
    at.switch_page("pages/workspace.py")
    return at.run()


def test_an_owner_creates_sees_once_and_revokes_a_token_on_the_workspace_page(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_AUTH", "team")
    for name in ("DLCORE_HOME", "DLCORE_WORKERS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after the page's own settings
    home = tmp_path / "home"
    raw = Store.open(home)
    ann = raw.as_actor(access.Actor(OWNER))
    shared = ann.create_workspace("Churn team")
    ann.add_member(shared, EDITOR, "editor")

    at = _workspace_page(home, OWNER, shared)
    assert not at.exception and "API tokens" in [s.value for s in at.subheader]
    next(t for t in at.text_input if t.label.startswith("What will call the API")).input("billing system")
    at = next(b for b in at.button if b.label == "Create a token").click().run()
    assert not at.exception and "shown this once" in at.success[0].value
    secret = at.code[0].value
    bound = raw.for_token(secret)
    assert bound is not None and bound.workspace_id == shared
    (token,) = ann.tokens_of(shared)
    assert at.success[0].value.startswith(f"Token {token['id']} created")
    at = _workspace_page(home, OWNER, shared)  # opened again: listed, and the secret is gone
    listed = next(d.value for d in at.dataframe if "For" in d.value.columns)
    assert not at.code and secret not in listed.to_string()
    assert listed["For"].tolist() == ["billing system"] and listed["Token"].tolist() == [token["id"]]
    at = next(s for s in at.selectbox if s.label == "Revoke a token").set_value(token["id"]).run()
    at = next(b for b in at.button if b.label == "Revoke").click().run()
    assert not at.exception and ann.tokens_of(shared) == [] and raw.for_token(secret) is None

    editor = _workspace_page(home, EDITOR, shared)
    assert not editor.exception and "API tokens" not in [s.value for s in editor.subheader]
