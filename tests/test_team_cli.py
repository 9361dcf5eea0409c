"""The CLI in team mode, as an administrator scripts it: real ``python -m dlcore`` processes on one
store, the lines of docs/team-server.md run as written, then every user (owner, editor, viewer, someone
outside the workspace) against every command. One tiny run (one epoch of iris) is trained, by those lines."""

import json
import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlcore import access
from tests.conftest import ROOT, python_on_path

OWNER, EDITOR, VIEWER, OUTSIDER = "ann@example.com", "bob@example.com", "carla@example.com", "dan@example.com"
MISSING = "NoSuchId00000000"


def readme_blocks() -> list[str]:
    """The two bash blocks of the "command line in team mode" paragraph (docs/team-server.md), as written."""
    text = (ROOT / "docs" / "team-server.md").read_text()
    section = text[text.index("**The command line in team mode.**"):]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)[:2]
    assert len(blocks) == 2 and all("python -m dlcore" in b for b in blocks)
    return blocks


@dataclass
class Team:
    folder: Path
    home: Path
    env: dict
    run_id: str
    dataset_id: str
    data: Path


def _env(folder: Path, home: Path) -> dict:
    bin_dir = folder / "bin"  # ``python`` in the documented lines is this interpreter
    bin_dir.mkdir(exist_ok=True)
    python_on_path(bin_dir)
    env = {k: v for k, v in os.environ.items() if k not in ("DLCORE_USER", "DLCORE_AUTH")}
    return dict(env, DLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT),
                PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", DLCORE_ADMINS="", DLCORE_ALLOWED_DOMAINS="",
                DLCORE_SECRETS=str(folder / "no-secrets.toml"))


def bash(team_folder: Path, env: dict, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=team_folder, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> Team:
    from dlcore.tables import samples

    folder = tmp_path_factory.mktemp("team_cli")
    home = folder / "home"
    env = _env(folder, home)
    out = bash(folder, env, readme_blocks()[0])
    assert out.returncode == 0, out.stderr
    result = json.loads((folder / "run.json").read_text())
    data = folder / "iris.csv"
    data.write_bytes(samples.sample_csv_bytes("iris"))
    return Team(folder, home, dict(env, DLCORE_AUTH="team"), result["run_id"], result["dataset_id"], data)


def cli(team: Team, user: str | None, *args, env: dict | None = None) -> subprocess.CompletedProcess:
    who = ["--as", user] if user else []
    return subprocess.run([sys.executable, "-m", "dlcore", *who, *map(str, args)], cwd=ROOT, env=env or team.env,
                          capture_output=True, text=True, timeout=240, check=False)


def error_line(out: subprocess.CompletedProcess) -> str:
    """The refusal: exit 1 and exactly one line on stderr, ``error: ...``."""
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), (out.returncode, out.stderr)
    return lines[0]


def refusal(role: str, words: str, least: str) -> str:
    return (f"error: You are a {role} of the workspace 'Sales', and {words} needs the {least} role there. "
            "Ask an owner of the workspace to change your role.")


FIT = ("fit", "{data}", "--target", "nope", "--epochs", "1", "--workspace", "Sales")  # 'nope': past the gate, no training
PREDICT = ("predict", "{run}", "{data}", "-o", "{out}/scored.csv")
EXPLAIN = ("report", "{run}", "--explain", "-o", "{out}/report.html")
REPORT = ("report", "{run}", "-o", "{out}/report.html")
BUNDLE = ("bundle", "{run}", "-o", "{out}/model.zip")
RERUN = ("rerun", "{run}")
RUNS = ("runs", "--json")
DELETE_RUN = ("delete", "run", "{run}")
DELETE_DATA = ("delete", "dataset", "{dataset}")
AUDIT = ("audit", "Sales", "--json")
ADD = ("workspace", "add", "Sales", "erin@example.com", "--role", "viewer")
REMOVE = ("workspace", "remove", "Sales", "erin@example.com")

# user x command -> "ok", "no column" (let through to the data: the column 'nope' is not there),
# "not found" (the words of an id that does not exist), "not a member" (those of a workspace
# that does not exist), or (role, words, least role) of a refusal. In this order: the viewer
# asks for the explanation before an editor has made it.
TABLE = [
    (OWNER, FIT, "no column"), (EDITOR, FIT, "no column"),
    (VIEWER, FIT, ("viewer", "uploading data", "editor")), (OUTSIDER, FIT, "not a member"),
    (OWNER, PREDICT, "ok"), (EDITOR, PREDICT, "ok"),
    (VIEWER, PREDICT, ("viewer", "scoring new data", "editor")), (OUTSIDER, PREDICT, "not found"),
    (VIEWER, EXPLAIN, ("viewer", "explaining a model", "editor")), (OUTSIDER, EXPLAIN, "not found"),
    (EDITOR, EXPLAIN, "ok"), (OWNER, EXPLAIN, "ok"), (VIEWER, REPORT, "ok"), (OUTSIDER, REPORT, "not found"),
    (VIEWER, BUNDLE, ("viewer", "downloading the model", "editor")), (EDITOR, BUNDLE, "ok"),
    (OUTSIDER, BUNDLE, "not found"),
    (VIEWER, RERUN, ("viewer", "training", "editor")), (OUTSIDER, RERUN, "not found"),
    (OWNER, RUNS, "ok"), (EDITOR, RUNS, "ok"), (VIEWER, RUNS, "ok"), (OUTSIDER, RUNS, "ok"),
    (EDITOR, DELETE_RUN, ("editor", "deleting", "owner")), (VIEWER, DELETE_RUN, ("viewer", "deleting", "owner")),
    (OUTSIDER, DELETE_RUN, "not found"),
    (EDITOR, DELETE_DATA, ("editor", "deleting", "owner")), (OUTSIDER, DELETE_DATA, "not found"),
    (OWNER, AUDIT, "ok"), (EDITOR, AUDIT, ("editor", "reading the audit log", "owner")),
    (VIEWER, AUDIT, ("viewer", "reading the audit log", "owner")), (OUTSIDER, AUDIT, "not a member"),
    (EDITOR, ADD, ("editor", "changing the members", "owner")), (VIEWER, ADD, ("viewer", "changing the members", "owner")),
    (OUTSIDER, ADD, "not a member"), (OWNER, ADD, "ok"),
    (VIEWER, REMOVE, ("viewer", "changing the members", "owner")), (OUTSIDER, REMOVE, "not a member"),
    (OWNER, REMOVE, "ok"),
]


def _fill(args, team: Team, out: Path, run: str | None = None, dataset: str | None = None) -> list[str]:
    return [a.format(run=run or team.run_id, dataset=dataset or team.dataset_id, data=team.data, out=out) for a in args]


@pytest.mark.parametrize("user, args, expected", TABLE,
                         ids=[f"{u.split('@')[0]}-{'-'.join(a[:2]).strip('{}')}" for u, a, _ in TABLE])
def test_every_user_against_every_command(team, tmp_path, user, args, expected):
    out = cli(team, user, *_fill(args, team, tmp_path))
    if expected == "ok":
        assert out.returncode == 0, out.stderr
        if args == RUNS:  # only what the user may see
            ids = [r["run_id"] for r in json.loads(out.stdout)]
            assert ids == ([] if user == OUTSIDER else [team.run_id])
        if args == PREDICT:
            assert len((tmp_path / "scored.csv").read_text().splitlines()) == 151
        if args == AUDIT:
            assert {r["action"] for r in json.loads(out.stdout)} >= {"create_workspace", "add_member", "upload", "train"}
    elif expected == "no column":
        assert "error: There is no column 'nope'" in out.stderr and out.returncode == 1
    elif expected == "not found":  # the words of an id that names nothing (compared by process below)
        kind, record = ("dataset", team.dataset_id) if args == DELETE_DATA else ("run", team.run_id)
        assert error_line(out) == f"error: {access.not_found(kind, record)}"
    elif expected == "not a member":  # the words of a workspace that does not exist (compared below)
        assert error_line(out) == (f"error: You are not a member of a workspace named 'Sales' (or there is none on this "
                                   f"server); yours are: 'Personal ({OUTSIDER})' (owner). Ask an owner of the "
                                   "workspace to add you.")
    else:
        assert error_line(out) == refusal(*expected)
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("args", [PREDICT, DELETE_DATA, ("workspace", "add", "Sales", "x@example.com", "--role", "owner")])
def test_another_workspaces_record_answers_exactly_as_one_that_does_not_exist(team, tmp_path, args):
    mine = error_line(cli(team, OUTSIDER, *_fill(args, team, tmp_path)))
    fake = [("Nowhere" if a == "Sales" else a) for a in _fill(args, team, tmp_path, run=MISSING, dataset=MISSING)]
    none = error_line(cli(team, OUTSIDER, *fake))
    for real, missing in ((team.run_id, MISSING), (team.dataset_id, MISSING), ("'Sales'", "'Nowhere'")):
        mine, none = mine.replace(real, "<X>"), none.replace(missing, "<X>")
    assert mine == none


def test_team_mode_without_a_user_says_how_to_name_one(team):
    out = cli(team, None, "runs", "--json")
    line = error_line(out)
    assert "--as EMAIL" in line and "DLCORE_USER" in line
    named = cli(team, None, "runs", "--json", env=dict(team.env, DLCORE_USER=VIEWER))
    assert named.returncode == 0 and [r["run_id"] for r in json.loads(named.stdout)] == [team.run_id]
    after = cli(team, None, "runs", "--json", "--as", OUTSIDER)  # --as after the command, and over DLCORE_USER
    assert after.returncode == 0 and json.loads(after.stdout) == []


def test_workspaces_are_listed_with_roles_and_names_must_be_clear(team):
    out = cli(team, VIEWER, "workspace", "list", "--json")
    rows = json.loads(out.stdout)
    assert [(r["name"], r["role"], r["personal"]) for r in rows] == [
        (f"Personal ({VIEWER})", "owner", True), ("Sales", "viewer", False)]
    # a name in other letters finds the one workspace it can mean; once two fit, the user picks
    assert cli(team, EDITOR, "runs", "--json", "--workspace", "SALES").returncode == 0
    made = cli(team, OWNER, "workspace", "create", "sales")
    assert made.returncode == 0 and made.stdout.startswith("created the workspace 'sales' (id ")
    line = error_line(cli(team, OWNER, "runs", "--json", "--workspace", "SALES"))
    assert line.startswith("error: 'SALES' could name several of your workspaces: 'Sales', 'sales'")
    assert cli(team, EDITOR, "runs", "--json", "--workspace", "SALES").returncode == 0  # Bob is only in one
    line = error_line(cli(team, OWNER, "workspace", "create", "Sales"))
    assert "already a workspace named 'Sales'" in line
    bad = error_line(cli(team, OWNER, "workspace", "add", "Sales", "not-an-email", "--role", "editor"))
    assert "is not an email address" in bad
    personal = error_line(cli(team, OWNER, "runs", env=dict(team.env, DLCORE_AUTH="personal")))
    assert "--as names a user only in team mode" in personal


def test_deletion_leaves_no_row_or_file_and_the_audit_shows_who_did_what(team):
    out = bash(team.folder, team.env, readme_blocks()[1])
    assert out.returncode == 0, out.stderr
    assert f"deleted run {team.run_id}" in out.stdout and "nothing of it is left" in out.stdout
    gone = cli(team, OWNER, "delete", "dataset", team.dataset_id)
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.startswith(f"deleted dataset {team.dataset_id} (iris.csv) with its 0 runs")
    with sqlite3.connect(team.home / "store.db") as db:
        for table in ("runs", "epochs", "scorings", "explanations"):
            column = "id" if table == "runs" else "run_id"
            assert db.execute(f"SELECT count(*) FROM {table} WHERE {column} = ?", (team.run_id,)).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM datasets WHERE id = ?", (team.dataset_id,)).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)
    left = [p for p in team.home.rglob("*") if team.run_id in str(p) or team.dataset_id in str(p)]
    assert left == []
    # The owner's own audit log, as JSON and as the CSV the Workspace page exports
    rows = json.loads(cli(team, OWNER, "audit", "Sales", "--json").stdout)
    done = {(r["user"], r["action"]) for r in rows}
    assert done >= {(OWNER, "create_workspace"), (OWNER, "add_member"), (EDITOR, "upload"), (EDITOR, "train"),
                    (OWNER, "score"), (EDITOR, "score"), (EDITOR, "explain"), (VIEWER, "download_report"),
                    (EDITOR, "download_model"), (OWNER, "remove_member"), (OWNER, "delete_run"),
                    (OWNER, "delete_dataset")}
    assert not {r["user"] for r in rows} & {OUTSIDER, "system"}  # refusals leave the workspace's log alone
    assert [r["at"] for r in rows] == sorted((r["at"] for r in rows), reverse=True)
    csv_text = cli(team, OWNER, "audit", "Sales").stdout
    assert csv_text.splitlines()[0] == "time_utc,user,action,kind,id,detail"
    assert f"{OWNER},delete_run,run,{team.run_id}," in csv_text
    assert cli(team, VIEWER, "workspace", "list", "--json").stdout.count('"Sales"') == 0  # removed by the docs' lines
