"""Team mode in a real browser: two people sign in through Streamlit's real ``st.login`` flow
against an OpenID Connect provider process on loopback (tests/oidc.py), with the documented Team
server configuration written as it stands there (addresses and client pointed at that provider).

A's run link opened by B is refused; A shares it with B as viewer; B then sees the leaderboard
but cannot train, score or download the model, and never sees A's personal workspace; A deletes
the run and no file or row of it remains; the audit log (exported as CSV) shows each step.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from dlcore import access, datasets, runner
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from dlcore.store import Store, metadata
from tests import oidc
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, free_port
from tests.conftest import ROOT, churn_frame

playwright = pytest.importorskip("playwright.sync_api")

ALICE, BOB = "alice@example.com", "bob@example.com"


def readme_team_config(app_port: int, provider_port: int) -> str:
    """The team server's sign-in configuration (docs/team-server.md), pointed at the test's app and provider."""
    text = (ROOT / "docs" / "team-server.md").read_text()
    section = text[text.index("## Sign-in, workspaces and roles"):]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    values = {
        "redirect_uri": f"http://127.0.0.1:{app_port}/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-of-enough-length-0123456789",
        "client_id": oidc.CLIENT_ID,
        "client_secret": oidc.CLIENT_SECRET,
        "server_metadata_url": f"http://127.0.0.1:{provider_port}/.well-known/openid-configuration",
    }
    for key, value in values.items():
        block, n = re.subn(rf'^{key} = ".*"$', f'{key} = "{value}"', block, flags=re.M)
        assert n == 1, f"the documented configuration has no {key} line"
    return block


def _wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{what} did not start")


@pytest.fixture(scope="module")
def team_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("team-browser")
    home, site = folder / "home", folder / "site"
    (site / ".streamlit").mkdir(parents=True)
    app_port, provider_port = free_port(), free_port()
    shutil.copy(ROOT / ".streamlit" / "config.toml", site / ".streamlit" / "config.toml")
    (site / ".streamlit" / "secrets.toml").write_text(readme_team_config(app_port, provider_port))
    env = dict(os.environ, DLCORE_HOME=str(home), DLCORE_WORKERS="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    env.pop("DLCORE_AUTH", None)
    log = open(folder / "servers.log", "wb")
    provider = subprocess.Popen([sys.executable, "-m", "tests.oidc", str(provider_port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    # The app runs from the site folder, where Streamlit (and dlcore) read the secrets file.
    app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                            str(app_port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                           cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_http(f"http://127.0.0.1:{provider_port}/.well-known/openid-configuration", provider, "the provider")
        _wait_http(f"http://127.0.0.1:{app_port}/_stcore/health", app, "the app")
        yield f"http://127.0.0.1:{app_port}", home, site
    finally:
        for proc in (app, provider):
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def sign_in(browser, url: str, email: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1600}, accept_downloads=True)
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Email").fill(email)  # the provider's own page
    page.get_by_role("button", name="Continue").click()
    page.get_by_text(f"Signed in as {email}").wait_for(timeout=30_000)
    return page


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def open_switcher(page) -> None:
    """Open the sidebar's workspace switcher (its options then show as a list)."""
    page.get_by_test_id("stSidebar").get_by_test_id("stSelectbox").locator("input, [role=combobox]").first.click()
    page.get_by_role("option").first.wait_for()


def error_text(page) -> str:
    alert = page.locator("[data-testid='stAlertContentError']").first
    alert.wait_for(timeout=30_000)
    return alert.locator("[data-testid='stMarkdownContainer']").inner_text().strip()


def test_two_people_share_a_run_through_real_sign_in(team_server, browser):
    url, home, site = team_server
    page_a = sign_in(browser, url, ALICE)
    page_a.get_by_text("Latest runs").wait_for()
    assert page_a.get_by_text("Sign in").count() == 0

    # Alice's work, through the same dlcore calls the Data and Train pages make, as Alice.
    raw = Store.open(home)
    alice = raw.as_actor(access.Actor(ALICE))
    datasets.register_bytes(alice, b"name,salary\nAnn,5100\nBen,4800\n", "salaries.csv")  # her personal workspace
    shared = alice.create_workspace("Churn team")
    alice = raw.as_actor(access.Actor(ALICE), shared)
    record, _ = datasets.register_bytes(alice, churn_frame(240).to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(alice, RunSpec(data=DataSpec(dataset_id=record.id, target="churn", task="binary"),
                                          template="mlp", train=TrainSpec(epochs=2, seed=0, batch_size=32)))
    deadline = time.monotonic() + 180
    while raw.run(run_id).status not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert raw.run(run_id).status == "done", raw.run(run_id).message
    assert raw.run(run_id).created_by == ALICE  # the server's worker trained it for Alice

    # Bob opens Alice's link: the answer of an id that does not exist, and Ask for access.
    page_b = sign_in(browser, url, BOB)
    page_b.goto(f"{url}/compare?run={run_id}")
    assert error_text(page_b) == access.not_found("run", run_id)
    page_b.goto(f"{url}/compare?run={'Q' * len(run_id)}")
    assert error_text(page_b) == access.not_found("run", "Q" * len(run_id))
    page_b.goto(f"{url}/compare?run={run_id}")
    page_b.get_by_role("button", name="Ask for access").click()
    page_b.get_by_text("Your request is noted").wait_for()
    assert [r["email"] for r in alice.access_requests(shared)] == [BOB]

    # Alice shares the run with Bob as a viewer from the run's page.
    page_a.goto(f"{url}/compare?run={run_id}")
    page_a.get_by_text("How the models get it right and wrong").wait_for(timeout=60_000)
    page_a.get_by_role("button", name="Share").click()
    page_a.get_by_label("Email").fill(BOB)
    page_a.get_by_role("button", name="Add").click()
    page_a.get_by_text(f"{BOB} is now a viewer of Churn team").wait_for()

    # Bob now reads the leaderboard, but cannot train, score or download the model.
    page_b.goto(f"{url}/compare?run={run_id}")
    page_b.get_by_text("How the models get it right and wrong").wait_for(timeout=60_000)
    page_b.get_by_role("button", name="Report (HTML, opens offline)").wait_for(timeout=30_000)
    page_b.wait_for_timeout(1000)  # the rest of the page has drawn
    shot(page_b, "team-viewer-compare")
    assert page_b.get_by_role("button", name="Model bundle (ZIP)").count() == 0
    assert page_b.get_by_role("button", name="Rerun exactly").count() == 0
    assert page_b.get_by_role("button", name="Delete run").count() == 0
    page_b.goto(f"{url}/predict?run={run_id}")
    page_b.get_by_text("scoring new data needs the editor role").wait_for()
    page_b.goto(f"{url}/train?dataset={record.id}")
    page_b.get_by_text("training needs the editor role").wait_for()
    # ... and sees nothing of Alice's personal workspace in any list.
    open_switcher(page_b)
    options = page_b.get_by_role("option").all_inner_texts()
    assert options == ["Personal (bob@example.com) · owner", "Churn team · viewer"]
    page_b.keyboard.press("Escape")
    for path in ("/", "/runs", "/data"):
        page_b.goto(url + path)
        page_b.wait_for_timeout(1500)
        body = page_b.locator("body").inner_text()
        assert "salaries" not in body and "alice@example.com" not in body.replace(f"Signed in as {BOB}", "")

    # Alice deletes the run: no file and no row of it remains.
    page_a.goto(f"{url}/compare?run={run_id}")
    with page_a.expect_download() as report:
        page_a.get_by_role("button", name="Report (HTML, opens offline)").click()
    assert "<html" in Path(report.value.path()).read_text()[:500].lower()
    page_a.get_by_role("button", name="Delete run").click()
    page_a.get_by_text("It cannot be undone").wait_for()
    page_a.get_by_role("button", name="Delete for good").click()
    page_a.wait_for_url(re.compile(r"/runs"), timeout=30_000)
    assert [p for p in home.rglob("*") if run_id in str(p)] == []
    with raw.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name != "audit":
                assert not [r for r in conn.execute(sa.select(table)) if run_id in map(str, r)], table.name

    # The audit log, exported as CSV from the Workspace page, shows each step.
    open_switcher(page_a)
    page_a.get_by_role("option", name="Churn team · owner").click()
    page_a.goto(f"{url}/workspace")
    page_a.get_by_text("Audit log").first.wait_for(timeout=30_000)
    shot(page_a, "team-workspace-page")
    with page_a.expect_download() as download:
        page_a.get_by_role("button", name="Export the audit log (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    steps = [(r["user"], r["action"]) for r in reversed(rows)]
    assert steps == [(ALICE, "create_workspace"), (ALICE, "upload"), (ALICE, "train"), (BOB, "ask_access"),
                     (ALICE, "add_member"), (ALICE, "download_report"), (ALICE, "delete_run")], steps
    # each person's sign-in is logged once (in their personal workspace), not at every page load
    for who in (ALICE, BOB):
        personal = raw.ensure_user(access.Actor(who))
        assert [r["action"] for r in raw.as_actor(access.Actor(who)).audit_log(personal)].count("sign_in") == 1
