"""Team mode under attack, on the web side: names that try to be links, downloads from a page kept
open after one's removal, files under /media fetched without (or with someone else's, or a signed
out) sign-in, sessions that end on the server, open endpoints and framing.

Pages run through AppTest on a real store; the server tests start ``streamlit run app.py`` as the
README's Team server section configures it, with the OpenID Connect provider of tests/oidc.py on
loopback, sign in through Chromium and fetch with a plain HTTP client (httpx).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import httpx
import pytest
from markdown_it import MarkdownIt
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from dlcore import access
from dlcore.errors import DlcoreError
from dlcore.store import Store
from tests.conftest import ROOT, churn_frame
from tests.test_team_browser import browser, team_server  # noqa: F401 (the fixtures of a real team server)

ALICE, CARLA, DAVE, BOB = "alice@example.com", "carla@example.com", "dave@example.com", "bob@example.com"

HOSTILE_FILE = "[Open me](http:127.0.0.1:9).csv"
HOSTILE_COLUMN = "[Session expired - sign in again](http://evil.example/login)"
HOSTILE_TARGET = "[Pay here](http://evil.example/pay)"
HOSTILE_CATEGORY = "[Free upgrade](http://evil.example/cat) www.evil.example"
HOSTILE_WORKSPACE = "[Team](http://evil.example/ws)"
MARKERS = ("evil.example", "127.0.0.1")


def _team_env(home) -> dict:
    return dict(os.environ, DLCORE_HOME=str(home), DLCORE_AUTH="team", DLCORE_WORKERS="0",
                DLCORE_ALLOWED_DOMAINS="", DLCORE_ADMINS="", TF_CPP_MIN_LOG_LEVEL="2")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A run trained by the CLI as Alice in her shared workspace with a hostile name, on a file,
    columns, categories and a target named to be links; Carla a viewer and Dave an owner there."""
    folder = tmp_path_factory.mktemp("security-web")
    home = folder / "home"
    frame = churn_frame(240).rename(columns={"charges": HOSTILE_COLUMN, "churn": HOSTILE_TARGET})
    frame["plan"] = frame["plan"].replace({"basic": HOSTILE_CATEGORY})
    data = folder / HOSTILE_FILE
    frame.to_csv(data, index=False)
    env = _team_env(home)
    cli = [sys.executable, "-m", "dlcore", "--as", ALICE]
    for args in (["workspace", "create", HOSTILE_WORKSPACE],
                 ["workspace", "add", HOSTILE_WORKSPACE, CARLA, "--role", "viewer"],
                 ["workspace", "add", HOSTILE_WORKSPACE, DAVE, "--role", "owner"]):
        out = subprocess.run(cli + args, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=120)
        assert out.returncode == 0, out.stderr
    out = subprocess.run(cli + ["fit", str(data), "--target", HOSTILE_TARGET, "--epochs", "1", "--workspace",
                                HOSTILE_WORKSPACE], cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    run = Store.open(home).run(result["run_id"])
    return home, run.workspace_id, {"run": run.id, "dataset": run.dataset_id}


def open_as(home, page: str, user: str, workspace: str | None = None, sign_in: str = "first",
            **params: str) -> AppTest:
    """``page`` as ``user`` signed in; ``sign_in`` names the sign-in (its token's nonce)."""
    import streamlit as st

    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0", DLCORE_AUTH="team", DLCORE_ALLOWED_DOMAINS="",
                      DLCORE_ADMINS="")
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.user = {"is_logged_in": True, "email": user, "email_verified": True, "iss": "https://id.example.com",
               "sub": f"sub-{user}", "name": user.split("@")[0], "nonce": sign_in}
    if workspace:
        at.session_state["dlcore-workspace"] = workspace
    at.switch_page(f"pages/{page}.py")
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


@pytest.fixture(autouse=True)
def _restore_env():
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


# ---- names that try to be links (finding 8) ------------------------------------------------------
_MARKDOWN_FIELDS = {"body", "label", "help", "caption", "placeholder"}


def markdown_texts(at: AppTest) -> list[str]:
    """Every text the page hands Streamlit to render as Markdown: bodies of markdown, captions,
    alerts and headings, labels and help of widgets, expanders and tabs, radio options."""
    found: list[str] = []

    def fields(message, radio: bool = False) -> None:
        for descriptor, value in message.ListFields():
            repeated = getattr(descriptor, "is_repeated", None)
            repeated = descriptor.label == descriptor.LABEL_REPEATED if repeated is None else repeated
            if descriptor.message_type is not None:
                children = value if repeated else [value]
                for child in children:
                    fields(child, radio or descriptor.name == "radio")
            elif descriptor.type == descriptor.TYPE_STRING:
                values = list(value) if repeated else [value]
                if descriptor.name in _MARKDOWN_FIELDS or (radio and descriptor.name == "options"):
                    found.extend(values)

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ListFields"):
            fields(proto, getattr(node, "type", "") == "radio")
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


_RENDER = MarkdownIt("gfm-like")  # GitHub's Markdown with bare addresses made links, as Streamlit renders it


def injected_links(texts: list[str]) -> list[str]:
    links = []
    for text in texts:
        for anchor in re.findall(r"<a [^>]*>.*?</a>", _RENDER.render(text), re.DOTALL):
            if any(m in anchor for m in MARKERS):
                links.append(f"{anchor}   (from {text[:160]!r})")
    return links


def test_the_scan_finds_a_link_written_as_it_is():
    """The check itself: a hostile name written raw is a link; through ui.text.md it is not."""
    from ui import text

    assert injected_links([f"Uploaded {HOSTILE_FILE}", HOSTILE_COLUMN, f"In {HOSTILE_CATEGORY}"])
    assert not injected_links([f"Uploaded {text.md(HOSTILE_FILE)}", text.md(HOSTILE_COLUMN),
                               f"In {text.md(HOSTILE_CATEGORY)}", text.names([HOSTILE_TARGET, HOSTILE_WORKSPACE])])
    assert _RENDER.render(text.md(HOSTILE_COLUMN)).strip() == f"<p>{HOSTILE_COLUMN}</p>"  # reads as typed


PAGES_WITH = {"home": {}, "data": {"dataset": "dataset"}, "train": {"dataset": "dataset"}, "runs": {},
              "compare": {"run": "run"}, "explain": {"run": "run"}, "decide": {"run": "run"},
              "predict": {"run": "run"}, "workspace": {}}


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(PAGES_WITH))
def test_hostile_names_never_become_links(hostile, page):
    home, workspace, ids = hostile
    at = open_as(home, page, ALICE, workspace, **{k: ids[v] for k, v in PAGES_WITH[page].items()})
    assert not at.exception, at.exception
    texts = markdown_texts(at)
    assert texts, "the page wrote nothing"
    assert not injected_links(texts), "\n".join(injected_links(texts))


@pytest.mark.slow
def test_the_what_if_form_labels_hostile_columns_as_plain_text(hostile):
    home, workspace, ids = hostile
    at = open_as(home, "predict", ALICE, workspace, run=ids["run"])
    labels = [w.label for w in [*at.number_input, *at.selectbox, *at.text_input]]
    assert any("Session expired" in label for label in labels), labels  # the column is in the form
    assert not injected_links(labels)


# ---- downloads check access when they run (finding 4) -------------------------------------------
@pytest.fixture
def deferred_downloads(monkeypatch):
    """The data functions of the download buttons the page draws, by label-like file name."""
    captured: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def add_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        captured[file_name or ""] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", add_deferred)
    return captured


@pytest.mark.slow
def test_a_removed_member_downloads_nothing_from_a_page_she_kept_open(hostile, deferred_downloads):
    home, workspace, ids = hostile
    raw = Store.open(home)
    alice = raw.as_actor(access.Actor(ALICE), workspace)
    at = open_as(home, "compare", CARLA, workspace, run=ids["run"])
    assert not at.exception
    report = next(f for name, f in deferred_downloads.items() if name.endswith(".html"))
    assert b"<html" in report()[:2000].lower()  # while she is a member, the report downloads
    alice.remove_member(workspace, CARLA)
    try:
        with pytest.raises((DlcoreError, PermissionError)):
            report()
    finally:
        alice.add_member(workspace, CARLA, "viewer")


@pytest.mark.slow
def test_a_removed_owner_exports_no_audit_log_from_a_page_he_kept_open(hostile, deferred_downloads):
    home, workspace, ids = hostile
    raw = Store.open(home)
    alice = raw.as_actor(access.Actor(ALICE), workspace)
    at = open_as(home, "workspace", DAVE, workspace)
    assert not at.exception
    export = next(f for name, f in deferred_downloads.items() if name.startswith("audit-"))
    assert ALICE in export().decode()
    alice.remove_member(workspace, DAVE)
    alice.log("after_removal", workspace, "run", ids["run"], "an event Dave must not see")
    try:
        with pytest.raises((DlcoreError, PermissionError)):
            export()
    finally:
        alice.add_member(workspace, DAVE, "owner")


# ---- removing a member counts at her next click; sessions end on the server (finding 7) -----------
@pytest.mark.slow
def test_a_removed_member_sees_nothing_at_her_next_click(hostile):
    home, workspace, ids = hostile
    alice = Store.open(home).as_actor(access.Actor(ALICE), workspace)
    at = open_as(home, "compare", CARLA, workspace, run=ids["run"])
    assert not at.exception and not at.error
    alice.remove_member(workspace, CARLA)
    try:
        at.run()
        assert [e.value for e in at.error] == [access.not_found("run", ids["run"])]
    finally:
        alice.add_member(workspace, CARLA, "viewer")


def test_a_session_expires_after_the_configured_hours(store, monkeypatch):
    monkeypatch.setenv("DLCORE_SESSION_HOURS", "8")
    now = time.time()
    fresh, old = ({"iss": "https://id.example.com", "sub": "ann", "email": "ann@example.com", "iat": t, "nonce": n}
                  for t, n in ((now, "a"), (now - 9 * 3600, "b")))
    assert store.open_session(access.session_key(fresh), "ann@example.com", now) is None
    assert "sign-ins last 8 hours" in store.open_session(access.session_key(old), "ann@example.com", now - 9 * 3600)
    monkeypatch.setenv("DLCORE_SESSION_HOURS", "0.0003")  # about a second
    short = {**fresh, "nonce": "c"}
    assert store.open_session(access.session_key(short), "ann@example.com", time.time()) is None
    time.sleep(1.5)
    assert "sign-ins last 0.0003 hours" in store.session_problem(access.session_key(short), "ann@example.com")
    monkeypatch.setenv("DLCORE_SESSION_HOURS", "eight")
    with pytest.raises(ValueError, match="DLCORE_SESSION_HOURS='eight' is not a number of hours"):
        access.session_hours()


@pytest.mark.slow
def test_an_administrator_revokes_a_session_and_the_page_stops_at_the_next_click(hostile, tmp_path):
    home, workspace, ids = hostile
    at = open_as(home, "compare", CARLA, workspace, sign_in="to-revoke", run=ids["run"])
    assert not at.exception and not at.error and at.dataframe
    env = dict(_team_env(home), DLCORE_ADMINS="root@example.com")
    cli = [sys.executable, "-m", "dlcore", "--as"]
    listed = subprocess.run(cli + ["root@example.com", "session", "list", "--user", CARLA, "--json"], cwd=ROOT,
                            env=env, capture_output=True, text=True, check=False, timeout=120)
    assert listed.returncode == 0, listed.stderr
    key = access.session_key({"email": CARLA, "nonce": "to-revoke", "iss": "https://id.example.com",
                              "sub": f"sub-{CARLA}"})[:16]
    sessions = [s for s in json.loads(listed.stdout) if s["id"] == key]
    assert [(s["user"], s["status"]) for s in sessions] == [(CARLA, "active")], listed.stdout
    # Bob (no administrator) cannot see or end Carla's session: the answer of an id that does not exist.
    refused = subprocess.run(cli + [BOB, "session", "revoke", sessions[0]["id"]], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=False, timeout=120)
    assert refused.returncode == 1 and "No active session with id" in refused.stderr
    revoked = subprocess.run(cli + ["root@example.com", "session", "revoke", sessions[0]["id"]], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=False, timeout=120)
    assert revoked.returncode == 0 and revoked.stdout.strip() == "ended 1 session(s)", revoked.stderr
    at.run()
    assert [w.value for w in at.warning] == ["An administrator ended this session. Sign in again to go on."]
    assert not at.dataframe and not at.error  # nothing of the run
    again = open_as(home, "compare", CARLA, workspace, sign_in="next", run=ids["run"])  # she signs in anew
    assert not again.exception and not again.error and again.dataframe
    assert "ended this session" not in " ".join(w.value for w in again.warning)


# ---- a real server, as the README's Team server section sets it up (findings 5, 7, 12) -------------


def sign_in(browser, url: str, email: str):  # noqa: F811 (a page, not the fixture)
    """Sign ``email`` in through the provider's page (a first page load on a busy machine is slow)."""
    page = browser.new_context(accept_downloads=True).new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Continue").click()
    try:
        page.get_by_text(f"Signed in as {email}").wait_for(timeout=120_000)
    except Exception:  # noqa: BLE001 (Playwright's timeout: say what the page shows instead)
        raise AssertionError(f"{email} is not signed in; the page says: {page.locator('body').inner_text()[:2000]}") from None
    return page


def _cookies(page) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}


def _export_audit(page, url: str) -> str:
    """Open the Workspace page and export the audit log: the /media address the browser fetched."""
    page.goto(f"{url}/workspace")
    page.get_by_text("Audit log").first.wait_for(timeout=60_000)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export the audit log (CSV)").click()
    with open(download.value.path()) as exported:
        assert "sign_in" in exported.read()
    return download.value.url


@pytest.mark.slow
def test_media_files_are_served_only_to_the_live_sign_in_of_their_owner(team_server, browser):  # noqa: F811
    url, _home, _site = team_server
    page_a = sign_in(browser, url, "erin@example.com")
    media = _export_audit(page_a, url)
    assert "/media/" in media
    erin = _cookies(page_a)
    with httpx.Client(timeout=30) as http:
        assert http.get(media, cookies=erin).status_code == 200  # her own file, her live sign-in
        nobody = http.get(media)
        assert nobody.status_code == 401 and "erin@example.com" not in nobody.text
        forged = http.get(media, cookies={"_streamlit_user": "e30.forged.signature"})
        assert forged.status_code == 401

        page_f = sign_in(browser, url, "frank@example.com")
        other = http.get(media, cookies=_cookies(page_f))
        assert other.status_code == 404 and "erin@example.com" not in other.text

        # Erin signs out: the cookie she had, copied before, no longer opens her files or the pages.
        page_a.get_by_role("button", name="Sign out").click()
        page_a.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        stale = http.get(media, cookies=erin)
        assert stale.status_code == 401 and "erin@example.com" not in stale.text
        upload = http.put(f"{url}/_stcore/upload_file/x/y", cookies=erin, files={"file": ("a.csv", b"a,b\n1,2\n")})
        assert upload.status_code == 401

    copied = browser.new_context()
    copied.add_cookies([{"name": k, "value": v, "url": url} for k, v in erin.items()])
    tab = copied.new_page()
    tab.goto(url)
    tab.get_by_text("You signed out of this session. Sign in again to go on.").wait_for(timeout=30_000)
    assert tab.get_by_text("Signed in as").count() == 0
    copied.close()


@pytest.mark.slow
def test_open_endpoints_are_closed_and_no_page_can_be_framed(team_server):  # noqa: F811
    url, _home, _site = team_server
    with httpx.Client(timeout=30) as http:
        assert http.get(f"{url}/_stcore/metrics").status_code == 404
        page = http.get(url)
        assert page.status_code == 200
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"
        host = http.get(f"{url}/_stcore/host-config").json()
        assert not [o for o in host["allowedOrigins"] if "streamlit" in o], host["allowedOrigins"]
        assert http.get(f"{url}/_stcore/health").status_code == 200  # what a load balancer asks stays open
