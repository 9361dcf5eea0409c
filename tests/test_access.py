"""Workspaces, roles and the one access rule, asked in the store (dlcore.access, Store.as_actor).

The rule table is tested as a table: every role against every action, through the entry point
that does the action (the store's reads, queued jobs, downloads, member changes, deletion).
A record of another workspace, for every kind of id, raises the not-found answer of an id that
does not exist. Deletion is checked by listing the data folder and the tables.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from dlcore import access, datasets, jobs
from dlcore.access import Actor
from dlcore.errors import AccessError, NotFoundError, SpecError
from dlcore.handover import decision
from dlcore.store import Store, metadata
from tests.conftest import churn_frame

ALICE, BOB, CAROL, DAVE = (Actor(f"{n}@example.com") for n in ("alice", "bob", "carol", "dave"))
ROLE_OF = {"owner": ALICE, "editor": BOB, "viewer": CAROL}


def _finished_run(store: Store, dataset_id: str) -> str:
    """A run as a worker leaves it when it finishes (no training needed to test access)."""
    run_id = store.create_run({"data": {"dataset_id": dataset_id}}, dataset_id, "mlp", "churn", 1)
    store.update_run(run_id, status="done", result={"leaderboard": {"rows": [{"model": "mlp"}]}, "models": {"mlp": {}}})
    (store.run_dir(run_id) / "models").mkdir(parents=True)
    (store.run_dir(run_id) / "models" / "mlp.keras").write_bytes(b"model")
    return run_id


@pytest.fixture
def team(tmp_path, monkeypatch):
    """A shared workspace 'Churn team' owned by Alice, with Bob as editor and Carol as viewer;
    Dave signed in but in none of it. One dataset and one finished run, with a scoring and an
    explanation, in the shared workspace."""
    monkeypatch.setenv("DLCORE_AUTH", "team")
    monkeypatch.delenv("DLCORE_ADMINS", raising=False)
    monkeypatch.delenv("DLCORE_ALLOWED_DOMAINS", raising=False)
    raw = Store.open(tmp_path / "home")
    alice = raw.as_actor(ALICE)
    shared = alice.create_workspace("Churn team")
    alice = raw.as_actor(ALICE, shared)
    alice.add_member(shared, BOB.email, "editor")
    alice.add_member(shared, CAROL.email, "viewer")
    csv = churn_frame(60).to_csv(index=False).encode()
    record, _ = datasets.register_bytes(alice, csv, "churn.csv")
    run_id = _finished_run(alice, record.id)
    scoring_id = alice.create_scoring(run_id, "mlp", "new.csv")
    explanation_id = alice.create_explanation(run_id, "mlp", "global")
    ids = {"dataset": record.id, "run": run_id, "scoring": scoring_id, "explanation": explanation_id}
    return raw, shared, ids, csv


def _do(store: Store, action: str, shared: str, ids: dict, csv: bytes) -> None:
    """Do ``action`` through the code path the pages and the CLI use for it."""
    raw_run = ids["run"]
    if action == "view":
        store.run(raw_run)
        store.dataset(ids["dataset"])
        store.scoring(ids["scoring"])
        store.explanation(ids["explanation"])
    elif action in ("download_report", "download_model"):
        store.note_download(action.removeprefix("download_"), raw_run)
    elif action == "upload":
        datasets.register_bytes(store, csv + b"\n", "churn-2.csv")
    elif action == "train":
        store.create_run({"data": {}}, ids["dataset"], "mlp", "churn", 1)
    elif action == "score":
        jobs.submit_scoring(store, raw_run, "mlp", csv, "new.csv")
    elif action == "explain":
        store.create_explanation(raw_run, "mlp", "global")
    elif action == "decide":
        decision.save_decision(store, raw_run, decision.Decision("mlp", 0.5, decision.Money(1, 1, 1, 1), "yes",
                                                                 "no", 0.0))
    elif action == "stop":
        store.request_stop(raw_run)
    elif action == "manage_members":
        store.add_member(shared, "erin@example.com", "viewer")
    elif action == "manage_tokens":
        token_id, _ = store.create_token(shared, "billing system")
        store.revoke_token(shared, token_id)
    elif action == "delete":
        throwaway = _finished_run(Store.open(store.home), ids["dataset"])
        store.delete_run(throwaway)
    elif action == "read_audit":
        store.audit_log(shared)
    else:
        raise AssertionError(f"no entry point for {action}")


EXPECTED = {  # the table: viewer reads and downloads reports; editor works; owner administers
    "owner": set(access.ACTIONS),
    "editor": {"view", "download_report", "upload", "train", "score", "explain", "decide", "stop", "download_model"},
    "viewer": {"view", "download_report"},
}


@pytest.mark.parametrize("role", access.ROLES)
def test_every_role_against_every_action(team, role):
    raw, shared, ids, csv = team
    store = raw.as_actor(ROLE_OF[role], shared)
    for action in access.ACTIONS:
        assert store.allowed(ROLE_OF[role], action, ("run", ids["run"])) == (action in EXPECTED[role]), action
        if action in EXPECTED[role]:
            _do(store, action, shared, ids, csv)
        else:
            with pytest.raises(AccessError, match=f"You are a {role} of the workspace 'Churn team'"):
                _do(store, action, shared, ids, csv)
    assert access.ROLE_ACTIONS[role] == EXPECTED[role]


def test_a_refused_scoring_leaves_no_file(team):
    raw, shared, ids, csv = team
    before = sorted(raw.home.rglob("*"))
    with pytest.raises(AccessError):
        jobs.submit_scoring(raw.as_actor(CAROL, shared), ids["run"], "mlp", csv, "new.csv")
    assert sorted(raw.home.rglob("*")) == before


@pytest.mark.parametrize("kind", ["dataset", "run", "scoring", "explanation"])
def test_another_workspaces_record_is_not_found_in_the_words_of_a_missing_id(team, kind):
    raw, shared, ids, csv = team
    dave = raw.as_actor(DAVE)
    load = getattr(dave, kind)
    with pytest.raises(NotFoundError) as theirs:
        load(ids[kind])
    missing = "A" * len(ids[kind])
    with pytest.raises(NotFoundError) as nothing:
        load(missing)
    assert str(theirs.value) == access.not_found(kind, ids[kind])
    assert str(theirs.value).replace(ids[kind], missing) == str(nothing.value)
    said = str(theirs.value).replace(ids[kind], "")  # the id itself is random and may hold "60"
    assert "churn" not in said and "60" not in said
    # every action on it, too: the same answer, never "you are not allowed"
    for action in access.ACTIONS:
        with pytest.raises(NotFoundError) as refused:
            dave.require(action, kind, ids[kind])
        assert str(refused.value) == str(theirs.value)
        assert not dave.allowed(DAVE, action, (kind, ids[kind]))


def test_lists_show_only_the_current_workspace_of_a_member(team):
    raw, shared, ids, csv = team
    assert [r.id for r in raw.as_actor(CAROL, shared).list_runs()] == [ids["run"]]
    assert raw.as_actor(DAVE).list_runs() == [] and raw.as_actor(DAVE).list_datasets() == []
    assert raw.as_actor(DAVE, shared).workspace_id != shared  # a workspace one is not in is not entered
    names = [w["name"] for w in raw.as_actor(CAROL).workspaces_of()]
    assert names == ["Personal (carol@example.com)", "Churn team"]
    assert "Personal (alice@example.com)" not in names


def test_the_names_a_runs_list_shows_come_only_from_datasets_the_user_sees(team):
    raw, shared, ids, _ = team
    name = raw.dataset(ids["dataset"]).name
    assert raw.as_actor(CAROL, shared).dataset_names([ids["dataset"], ids["dataset"], "nope"]) == {ids["dataset"]: name}
    assert raw.as_actor(DAVE).dataset_names([ids["dataset"]]) == {}  # another workspace's: as if it did not exist
    assert raw.as_actor(DAVE).dataset_names([]) == {}


def test_the_same_file_in_two_workspaces_is_two_datasets(team):
    raw, shared, ids, csv = team
    mine, created = datasets.register_bytes(raw.as_actor(DAVE), csv, "churn.csv")
    assert created and mine.id != ids["dataset"] and mine.workspace_id == raw.as_actor(DAVE).workspace_id
    again, created = datasets.register_bytes(raw.as_actor(DAVE), csv, "churn.csv")
    assert not created and again.id == mine.id


def test_a_worker_acts_for_the_user_who_queued_the_job(team):
    raw, shared, ids, csv = team
    bob = raw.as_actor(BOB, shared)
    run_id = bob.create_run({"data": {}}, ids["dataset"], "mlp", "churn", 1)
    worker = raw.for_job("run", run_id)
    assert worker.actor == Actor(BOB.email) and worker.run(run_id).created_by == BOB.email
    raw.as_actor(ALICE, shared).remove_member(shared, BOB.email)
    with pytest.raises(NotFoundError):  # Bob lost access: his queued job sees nothing of the workspace
        raw.for_job("run", run_id).run(run_id)
    scoring_worker = raw.for_job("scoring", ids["scoring"])
    assert scoring_worker.actor == ALICE and scoring_worker.scoring(ids["scoring"]).run_id == ids["run"]


def test_owners_see_requests_for_access_and_add_in_one_step(team):
    raw, shared, ids, csv = team
    dave = raw.as_actor(DAVE)
    dave.request_access("run", ids["run"])
    dave.request_access("run", "no-such-run-here")  # behaves the same for the asker, and nobody sees it
    alice = raw.as_actor(ALICE, shared)
    asked = alice.access_requests(shared)
    assert [(r["email"], r["resource_id"]) for r in asked] == [(DAVE.email, ids["run"])]
    with pytest.raises(AccessError):
        raw.as_actor(CAROL, shared).access_requests(shared)
    alice.add_member(shared, DAVE.email, "viewer")
    assert alice.access_requests(shared) == []
    assert raw.as_actor(DAVE).run(ids["run"]).id == ids["run"]


def test_member_changes_refuse_bad_input_in_words(team):
    raw, shared, ids, csv = team
    alice = raw.as_actor(ALICE, shared)
    with pytest.raises(SpecError, match="not an email address"):
        alice.add_member(shared, "bob", "viewer")
    with pytest.raises(SpecError, match="pick one of owner, editor, viewer"):
        alice.add_member(shared, "erin@example.com", "admin")
    with pytest.raises(SpecError, match="last owner"):
        alice.remove_member(shared, ALICE.email)
    with pytest.raises(SpecError, match="already a workspace named 'Churn team'"):
        alice.create_workspace("Churn  team")


def test_admins_and_allowed_domains(team, monkeypatch):
    raw, shared, ids, csv = team
    monkeypatch.setenv("DLCORE_ADMINS", "root@corp.example")
    monkeypatch.setenv("DLCORE_ALLOWED_DOMAINS", "example.com")
    root = Actor("root@corp.example")
    assert access.email_allowed("x@example.com") and access.email_allowed(root.email)
    assert not access.email_allowed("x@elsewhere.org") and not access.email_allowed("no-at-sign")
    assert raw.role_of(root, shared) == "owner"
    alice_personal = raw.as_actor(ALICE).workspace_id
    assert raw.role_of(root, alice_personal) is None  # never someone's personal workspace
    with pytest.raises(SpecError, match="cannot sign in to this server"):
        raw.as_actor(ALICE, shared).add_member(shared, "x@elsewhere.org", "viewer")


def test_team_mode_from_the_secrets_file(tmp_path, monkeypatch):
    monkeypatch.delenv("DLCORE_AUTH", raising=False)
    secrets = tmp_path / "secrets.toml"
    monkeypatch.setenv("DLCORE_SECRETS", str(secrets))
    assert not access.team_mode()
    secrets.write_text('[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\n\n'
                       '[dlcore]\nadmins = ["Boss@Example.com"]\nallowed_domains = ["example.com"]\n')
    assert access.team_mode() and access.admins() == ["boss@example.com"] and access.allowed_domains() == ["example.com"]
    monkeypatch.setenv("DLCORE_AUTH", "personal")
    assert not access.team_mode()


def _rows_naming(store: Store, ids: list[str]) -> list[str]:
    """Every row of every table (but the audit log) that holds one of ``ids`` in any column."""
    found = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "audit":
                continue
            for row in conn.execute(sa.select(table)):
                if any(str(v) in ids for v in row):
                    found.append(f"{table.name}: {tuple(row)}")
    return found


def _files_naming(home: Path, ids: list[str]) -> list[str]:
    return [str(p) for p in home.rglob("*") if any(i in str(p) for i in ids)]


def test_deleting_a_dataset_leaves_no_file_and_no_row(team):
    raw, shared, ids, csv = team
    (raw.scoring_dir(ids["scoring"])).mkdir(parents=True, exist_ok=True)
    (raw.scoring_dir(ids["scoring"]) / "scored.csv").write_text("a\n1\n")
    (raw.dataset_dir(ids["dataset"]) / "pixels-32.npy").write_bytes(b"cached")
    alice = raw.as_actor(ALICE, shared)
    plan = alice.deletion_plan("dataset", ids["dataset"])
    assert plan["runs"] == 1 and plan["scorings"] == 1 and plan["explanations"] == 1 and plan["files"] >= 4
    everything = list(ids.values())
    assert _rows_naming(raw, everything) and _files_naming(raw.home, everything)
    with pytest.raises(AccessError):
        raw.as_actor(BOB, shared).delete_dataset(ids["dataset"])
    alice.delete_dataset(ids["dataset"])
    assert _rows_naming(raw, everything) == []
    assert _files_naming(raw.home, everything) == []
    with pytest.raises(NotFoundError):
        alice.delete_dataset(ids["dataset"])
    log = alice.audit_log(shared)
    assert [r["action"] for r in log][:2] == ["delete_dataset", "delete_run"]
    assert all(r["detail"] is None for r in log if r["resource_id"] in everything)  # the name is gone too


def test_the_audit_log_keeps_each_step_and_exports_csv(team):
    raw, shared, ids, csv = team
    alice = raw.as_actor(ALICE, shared)
    alice.note_download("model", ids["run"])
    alice.note_download("report", ids["run"])
    actions = [r["action"] for r in reversed(alice.audit_log(shared))]
    assert actions == ["create_workspace", "add_member", "add_member", "upload", "train", "score", "explain",
                       "download_model", "download_report"]
    text = alice.audit_csv(shared)
    lines = text.splitlines()
    assert lines[0] == "time_utc,user,action,kind,id,detail"
    assert lines[1].split(",")[1:5] == ["alice@example.com", "download_report", "run", ids["run"]]
    assert len(lines) == 10


def test_retention_deletes_old_finished_runs(team):
    raw, shared, ids, csv = team
    queued = raw.create_run({"data": {}}, ids["dataset"], "mlp", "churn", 1)
    assert raw.delete_expired_runs(days=1) == []
    assert raw.delete_expired_runs(days=0) == [ids["run"]]  # the queued run is not finished: kept
    assert [r.id for r in raw.list_runs()] == [queued]
    assert not raw.run_dir(ids["run"]).exists()


def test_personal_mode_is_one_user_who_owns_everything(tmp_path, monkeypatch):
    monkeypatch.delenv("DLCORE_AUTH", raising=False)
    monkeypatch.setenv("DLCORE_SECRETS", str(tmp_path / "none.toml"))
    raw = Store.open(tmp_path / "home")
    record, _ = datasets.register_bytes(raw, churn_frame(40).to_csv(index=False).encode(), "churn.csv")
    run_id = _finished_run(raw, record.id)
    mine = raw.as_actor(access.LOCAL)
    assert not access.team_mode() and mine.workspace_id == access.LOCAL_WORKSPACE
    assert [r.id for r in mine.list_runs()] == [run_id] and mine.dataset(record.id).workspace_id == "local"
    assert all(mine.allowed(access.LOCAL, a, ("run", run_id)) for a in access.ACTIONS)


def test_an_old_store_is_migrated_into_the_built_in_workspace(tmp_path):
    fixture = Path(__file__).parent / "fixtures" / "store_a572544.zip"
    with zipfile.ZipFile(fixture) as zf:
        zf.extractall(tmp_path)
    raw = Store.open(tmp_path)
    every = raw.list_runs()
    assert every and all(r.workspace_id == access.LOCAL_WORKSPACE for r in every)
    assert [r.id for r in raw.as_actor(access.LOCAL).list_runs()] == [r.id for r in every]
    assert raw.as_actor(DAVE).list_runs() == []
    with pytest.raises(NotFoundError):
        raw.as_actor(DAVE).run(every[0].id)
    shutil.rmtree(tmp_path)
