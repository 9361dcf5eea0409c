"""What a page render no longer pays for (issue 20), kept right: the secrets file is parsed only
when it changes, an access check's role is remembered for one render and never longer, the
runs lists read only what they show, and the app's workers run below the server's priority with
their share of the cores. Correctness only; the time saved is measured by bench/pages.py and
bench/load.py."""

from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from dlcore import access, config, datasets, jobs
from dlcore.access import Actor
from dlcore.errors import NotFoundError, SpecError
from dlcore.jobs import LocalPool
from dlcore.store import RunRow, Store
from tests.conftest import ROOT, churn_frame, use_app_router_in_apptest

use_app_router_in_apptest()

ALICE, CAROL, DAVE = (Actor(f"{n}@example.com") for n in ("alice", "carol", "dave"))


@pytest.fixture
def team(tmp_path, monkeypatch):
    """Alice's shared workspace with Carol as a viewer, one dataset and two runs in it (one with
    a verdict); Dave signed in, in none of it."""
    monkeypatch.setenv("DLCORE_AUTH", "team")
    monkeypatch.delenv("DLCORE_ADMINS", raising=False)
    monkeypatch.delenv("DLCORE_ALLOWED_DOMAINS", raising=False)
    raw = Store.open(tmp_path / "home")
    shared = raw.as_actor(ALICE).create_workspace("Churn team")
    alice = raw.as_actor(ALICE, shared)
    alice.add_member(shared, CAROL.email, "viewer")
    record, _ = datasets.register_bytes(alice, churn_frame(60).to_csv(index=False).encode(), "churn.csv")
    first = alice.create_run({"data": {"dataset_id": record.id}}, record.id, "mlp", "churn", 3)
    second = alice.create_run({"data": {"dataset_id": record.id}}, record.id, "mlp_embed", "churn", 3)
    alice.update_run(second, status="done", metric="roc_auc", test_score=0.81, started_at=100.0, finished_at=160.0,
                     result={"leaderboard": {"rows": [{"model": "mlp_embed"}],
                                             "verdicts": [{"outcome": "not_clearly_better"}, {"outcome": "worse"}]}})
    raw.as_actor(DAVE)
    return raw, shared, record.id, (first, second)


def test_the_secrets_file_is_read_again_when_it_changes_and_the_setting_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("DLCORE_AUTH", raising=False)
    monkeypatch.delenv("DLCORE_ADMINS", raising=False)
    secrets = tmp_path / "secrets.toml"
    monkeypatch.setenv("DLCORE_SECRETS", str(secrets))
    assert not access.team_mode() and access.admins() == []
    secrets.write_text('[auth]\nredirect_uri = "x"\n[dlcore]\nadmins = ["a@example.com"]\n')
    assert access.team_mode() and access.admins() == ["a@example.com"]
    # Rewritten at once with the same size: the content, not the clock, says it changed.
    secrets.write_text('[misc]\nredirect_uri = "x"\n[dlcore]\nadmins = ["b@example.com"]\n')
    assert not access.team_mode() and access.admins() == ["b@example.com"]
    secrets.write_text("[auth\nbroken")
    assert not access.team_mode()  # a file that does not parse configures nothing, as before
    secrets.write_text('[auth]\nredirect_uri = "x"\n')
    assert access.team_mode()
    monkeypatch.setenv("DLCORE_AUTH", "personal")  # the setting, read on every call, beats the file
    assert not access.team_mode()
    monkeypatch.setenv("DLCORE_AUTH", "team")
    secrets.unlink()
    assert access.team_mode()
    monkeypatch.delenv("DLCORE_AUTH")
    assert not access.team_mode()  # the file is gone
    monkeypatch.setenv("DLCORE_SECRETS", str(tmp_path / "other.toml"))
    (tmp_path / "other.toml").write_text('[auth]\nredirect_uri = "y"\n')
    assert access.team_mode()  # another file named by the setting


def test_a_remembered_role_serves_one_render_and_never_another_user(team):
    raw, shared, dataset_id, (first, _) = team
    render = raw.as_actor(CAROL, shared).remembering_roles()
    # A read by id asks the membership in its own query (one query, found or not); the checks of
    # actions ask the role, once per render.
    assert render.run(first).id == first and render.dataset(dataset_id).id == dataset_id
    assert render.allowed(CAROL, "view", ("run", first)) and not render.allowed(CAROL, "train", ("run", first))
    assert render._roles == {(CAROL.email, shared): "viewer"}  # every check of the render: one question
    dave = render.as_actor(DAVE)  # a copy shares what was remembered, by user
    with pytest.raises(NotFoundError):
        dave.run(first)
    assert not dave.allowed(DAVE, "view", ("run", first))
    assert render._roles[(DAVE.email, shared)] is None
    assert render.run(first).id == first  # Carol's role is still hers
    raw.as_actor(ALICE, shared).remove_member(shared, CAROL.email)
    with pytest.raises(NotFoundError):  # the next render asks again
        raw.as_actor(CAROL, shared).remembering_roles().run(first)
    # A change made through a remembering copy forgets what it remembered.
    alice = raw.as_actor(ALICE, shared).remembering_roles()
    assert alice.role_of(CAROL, shared) is None
    alice.add_member(shared, CAROL.email, "editor")
    assert alice.role_of(CAROL, shared) == "editor"
    alice.remove_member(shared, CAROL.email)
    assert alice.role_of(CAROL, shared) is None


def _said(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("title", "subheader", "markdown", "caption", "error", "warning", "info")
                     for e in getattr(at, kind))


def _open_data_page(home, user: Actor, workspace: str, dataset_id: str) -> AppTest:
    import streamlit as st

    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0", DLCORE_AUTH="team")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.user = {"is_logged_in": True, "email": user.email, "email_verified": True, "iss": "https://id.example.com",
               "sub": f"sub-{user.email}", "name": user.email.split("@")[0]}
    at.session_state["dlcore-workspace"] = workspace
    at.switch_page("pages/data.py")
    at.query_params["dataset"] = dataset_id
    return at.run()


def test_a_member_removed_between_two_renders_of_one_session_sees_nothing_at_the_second(team, monkeypatch):
    raw, shared, dataset_id, _ = team
    for name in ("DLCORE_HOME", "DLCORE_WORKERS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after the test
    at = _open_data_page(raw.home, CAROL, shared, dataset_id)
    assert not at.exception
    assert "What should the model predict?" in _said(at) and access.not_found("dataset", dataset_id) not in _said(at)
    raw.as_actor(ALICE, shared).remove_member(shared, CAROL.email)
    at.run()  # the same session's next render
    assert not at.exception
    assert access.not_found("dataset", dataset_id) in _said(at) and "What should the model predict?" not in _said(at)


def test_a_render_remembers_roles_in_one_place_and_the_next_starts_afresh(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DLCORE_AUTH", "personal")

    def script() -> None:
        import streamlit as st

        from ui import common

        one, two = common.store(), common.store()
        st.session_state.setdefault("memos", []).append((one, two))

    at = AppTest.from_function(script, default_timeout=60).run()
    at.run()
    (a1, a2), (b1, b2) = at.session_state["memos"]
    assert a1 is a2 and b1 is b2  # one remembering store for a whole render
    assert a1._roles is not None and b1._roles is not a1._roles  # and a fresh one for the next


def test_runs_lists_read_only_what_they_show_and_only_the_users_workspace(team):
    raw, shared, dataset_id, (first, second) = team
    carol = raw.as_actor(CAROL, shared)
    rows, records = carol.list_run_rows(), carol.list_runs()
    assert [r.id for r in rows] == [r.id for r in records] == [second, first]
    for row, record in zip(rows, records):
        for name in RunRow.__dataclass_fields__:
            if name != "outcome":
                assert getattr(row, name) == getattr(record, name), name
        assert row.duration == record.duration
    assert [r.outcome for r in rows] == ["not_clearly_better", None]  # the deep model's verdict: the first
    assert [r.id for r in carol.list_run_rows(statuses=("done",))] == [second]
    assert [r.id for r in carol.list_run_rows(dataset_id="other")] == []
    assert [r.id for r in carol.list_run_rows(limit=1)] == [second]
    assert raw.as_actor(DAVE).list_run_rows() == []  # another workspace's runs are not listed
    assert len(raw.list_run_rows()) == 2  # the system sees every workspace


def test_worker_settings_say_what_is_wrong(monkeypatch):
    monkeypatch.delenv("DLCORE_WORKER_NICE", raising=False)
    monkeypatch.delenv("DLCORE_WORKER_THREADS", raising=False)
    assert config.worker_nice() == config.WORKER_NICE == 10
    for bad in ("-1", "20", "low"):
        monkeypatch.setenv("DLCORE_WORKER_NICE", bad)
        with pytest.raises(SpecError, match=f"DLCORE_WORKER_NICE is '{bad}'.*0 .* to 19"):
            config.worker_nice()
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert config.worker_threads(1) is None  # one worker: the libraries' own default, every core
    assert config.worker_threads(2) == 4 and config.worker_threads(3) == 2 and config.worker_threads(16) == 1
    monkeypatch.setenv("DLCORE_WORKER_THREADS", "3")
    assert config.worker_threads(1) == 3
    monkeypatch.setenv("DLCORE_WORKER_THREADS", "0")
    with pytest.raises(SpecError, match="DLCORE_WORKER_THREADS is '0'"):
        config.worker_threads(2)


def _environ(pid: int) -> dict[str, str]:
    raw = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_the_apps_workers_run_below_the_servers_priority_with_their_share_of_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("DLCORE_WORKER_NICE", "7")
    monkeypatch.setenv("DLCORE_WORKER_THREADS", "1")
    for name in jobs.THREAD_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "5")  # set by whoever started the server: kept
    pool = LocalPool(tmp_path / "home", n_train=2, executor="local")
    pool.ensure()
    try:
        assert len(pool.procs) == 3  # two trainers and the scorer
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        for proc in pool.procs.values():
            # The priority is set before the worker's program starts, so it holds from its first line.
            assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(19, ours + 7)
            env = _environ(proc.pid)
            assert [env.get(name) for name in jobs.THREAD_SETTINGS] == ["1", "1", "1", "5", "1"]
        assert os.getpriority(os.PRIO_PROCESS, 0) == ours  # the server keeps its own
    finally:
        pool.stop()
