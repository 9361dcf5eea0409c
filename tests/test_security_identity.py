"""Identity and workspaces in team mode, attacked: each test plays one attack of the security review
and checks the store (on SQLite and PostgreSQL), the CLI (real processes), the pages (AppTest) or a
real sign-in (Chromium against the OpenID Connect provider process of tests/oidc.py).

- A colleague's personal workspace cannot be taken by name: sign-in never fails because of
  another user's action.
- Users are the provider's accounts (issuer and subject) with a verified e-mail; an unverified
  address, or a second account claiming a known one, gets nobody's workspaces.
- Workspace names need not be unique across the server, and no answer tells an outsider which
  names other teams use.
- E-mails are normalised and validated at one place (``access.normalise_email``) for sign-in,
  invitations, the CLI's ``--as`` and the allow-lists.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dlcore import access
from dlcore.access import Actor
from dlcore.errors import AccessError, SpecError
from dlcore.store import Store, members, users, workspaces
from tests.conftest import DATABASES, ROOT, use_app_router_in_apptest

use_app_router_in_apptest()

both = pytest.mark.parametrize("database", DATABASES, indirect=True)
ISSUER = "https://id.example.com"
VICTIM, DAVE, ANN, CARLA = "victim@example.com", "dave@example.com", "ann@example.com", "carla@example.com"


def signed_in(email: str, sub: str | None = None, issuer: str = ISSUER) -> Actor:
    """A web sign-in of the provider's account ``sub`` (by default one per address)."""
    return Actor(email, email.split("@")[0], issuer, sub or f"sub-{email}")


@pytest.fixture
def team(monkeypatch):
    monkeypatch.setenv("DLCORE_AUTH", "team")
    for name in ("DLCORE_ADMINS", "DLCORE_ALLOWED_DOMAINS", "DLCORE_REQUIRE_VERIFIED_EMAIL", "DLCORE_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DLCORE_SECRETS", "/nonexistent/secrets.toml")


# ---- 1. nobody can lock a colleague out -------------------------------------------------------
@both
def test_a_name_taken_before_the_first_sign_in_locks_nobody_out(team, store):
    dave = store.as_actor(Actor(DAVE))
    with pytest.raises(SpecError, match="kept for each user's own workspace"):
        dave.create_workspace(f"Personal ({VICTIM})")
    # A store that ran the old code may hold such a workspace already: it changes nothing either.
    with store.engine.begin() as conn:
        conn.execute(workspaces.insert().values(id="taken-by-dave", name=f"Personal ({VICTIM})",
                                                created_at=time.time(), created_by=DAVE))
        conn.execute(members.insert().values(workspace_id="taken-by-dave", email=DAVE, role="owner",
                                             added_at=time.time()))
    victim = store.as_actor(signed_in(VICTIM))
    mine = victim.workspace(victim.workspace_id)
    assert mine["personal_of"] == VICTIM and mine["id"] != "taken-by-dave"
    assert [(w["name"], w["role"]) for w in victim.workspaces_of()] == [(f"Personal ({VICTIM})", "owner")]
    assert store.role_of(Actor(DAVE), victim.workspace_id) is None
    assert store.as_actor(signed_in(VICTIM)).workspace_id == victim.workspace_id  # the next sign-in, too


def _cli_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCORE_")}
    return dict(env, DLCORE_HOME=str(tmp_path / "home"), DLCORE_AUTH="team", PYTHONPATH=str(ROOT),
                DLCORE_SECRETS=str(tmp_path / "no-secrets.toml"), DLCORE_WORKERS="0", **extra)


def cli(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlcore", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)


def test_the_cli_attack_of_the_review_locks_nobody_out(tmp_path):
    env = _cli_env(tmp_path)
    taken = cli(env, "--as", DAVE, "workspace", "create", f"Personal ({VICTIM})")
    assert "Traceback" not in taken.stderr
    listed = cli(env, "--as", VICTIM, "workspace", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(w["name"], w["role"], w["personal"]) for w in json.loads(listed.stdout)] == [
        (f"Personal ({VICTIM})", "owner", True)]
    assert taken.returncode == 1 and "kept for each user's own workspace" in taken.stderr


# ---- 6. accounts by issuer and subject, with a verified e-mail --------------------------------
CLAIMS = {"is_logged_in": True, "iss": ISSUER, "sub": "sub-ann", "email": ANN, "email_verified": True, "name": "Ann"}


def test_sign_in_needs_a_verified_email_and_names_the_account(team):
    ann = access.signed_in_actor(CLAIMS)
    assert (ann.email, ann.issuer, ann.subject, ann.name) == (ANN, ISSUER, "sub-ann", "Ann")
    assert access.signed_in_actor({**CLAIMS, "email_verified": "true"}).email == ANN  # a provider's string
    for verified in (False, None, "false", 0):
        with pytest.raises(AccessError, match=f"has not verified that {ANN} belongs to this account"):
            access.signed_in_actor({**CLAIMS, "email_verified": verified, "email": "ANN@EXAMPLE.COM"})
    with pytest.raises(AccessError, match="has not verified"):
        access.signed_in_actor({k: v for k, v in CLAIMS.items() if k != "email_verified"})
    for missing in ("iss", "sub"):
        with pytest.raises(AccessError, match="did not say which account signed in"):
            access.signed_in_actor({**CLAIMS, missing: ""})
    with pytest.raises(AccessError, match="sent no e-mail address"):
        access.signed_in_actor({**CLAIMS, "email": None})


def test_the_setting_relaxes_the_verified_email_with_a_warning(team, monkeypatch, caplog):
    monkeypatch.setenv("DLCORE_REQUIRE_VERIFIED_EMAIL", "0")
    monkeypatch.setattr(access, "_warned", set())  # warned once per process: this test may run again
    with caplog.at_level(logging.WARNING, logger="dlcore.access"):
        ann = access.signed_in_actor({k: v for k, v in CLAIMS.items() if k != "email_verified"})
    assert ann.email == ANN and "without a verified e-mail" in caplog.text
    monkeypatch.setenv("DLCORE_REQUIRE_VERIFIED_EMAIL", "1")
    with pytest.raises(AccessError):
        access.signed_in_actor({**CLAIMS, "email_verified": False})


@both
def test_users_are_the_providers_accounts_not_their_addresses(team, store):
    ann = store.as_actor(signed_in(ANN, "acct-1"))
    shared = ann.create_workspace("Sales")
    # A second account of the provider (self-service, re-created, another provider) with Ann's
    # address gets nothing of hers: it is refused, in words, and no row is written for it.
    for other in (signed_in(ANN, "acct-2"), signed_in("Ann@Example.com", "acct-1", issuer="https://other.example")):
        with pytest.raises(AccessError, match=f"The address {ANN} already belongs to another account"):
            store.as_actor(other)
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(users.c.email, users.c.issuer, users.c.subject)).all() == [
            (ANN, ISSUER, "acct-1")]
    # Ann's own account keeps her workspaces; where the provider now says another address, she
    # is still the account of record (what the members and invitations name).
    again = store.as_actor(signed_in("ann.new@example.com", "acct-1"), shared)
    assert again.actor.email == ANN and again.workspace_id == shared
    # A user the CLI's operator named before their first sign-in is claimed by that sign-in.
    store.as_actor(Actor(CARLA))
    ann.add_member(shared, CARLA, "viewer")
    carla = store.as_actor(signed_in(CARLA, "acct-9"), shared)
    assert carla.workspace_id == shared and store.role_of(carla.actor, shared) == "viewer"
    with pytest.raises(AccessError):
        store.as_actor(signed_in(CARLA, "acct-10"))


@both
def test_an_administrator_releases_the_address_of_a_replaced_account(team, store, monkeypatch):
    monkeypatch.setenv("DLCORE_ADMINS", "root@example.com")
    ann = store.as_actor(signed_in(ANN, "acct-1"))
    with pytest.raises(AccessError, match="already belongs to another account"):
        store.as_actor(signed_in(ANN, "acct-2"))
    with pytest.raises(AccessError, match="for the administrators of this server"):
        store.as_actor(Actor(DAVE)).release_account(ANN)
    assert store.as_actor(Actor("root@example.com")).release_account(" Ann@Example.com")
    assert store.as_actor(signed_in(ANN, "acct-2")).workspace_id == ann.workspace_id  # her new account
    with pytest.raises(AccessError, match="already belongs to another account"):
        store.as_actor(signed_in(ANN, "acct-1"))
    assert [r["action"] for r in store.as_actor(Actor(ANN)).audit_log(ann.workspace_id)] == ["release_account"]


def test_the_cli_releases_an_address_for_administrators_only(tmp_path):
    env = _cli_env(tmp_path, DLCORE_ADMINS="root@example.com")
    Store.open(tmp_path / "home").as_actor(signed_in(ANN, "acct-1"))
    refused = cli(env, "--as", DAVE, "account", "release", ANN)
    assert refused.returncode == 1 and "for the administrators of this server" in refused.stderr
    done = cli(env, "--as", "root@example.com", "account", "release", ANN)
    assert done.returncode == 0 and done.stdout.startswith(f"released {ANN}"), done.stderr
    assert Store.open(tmp_path / "home").as_actor(signed_in(ANN, "acct-2")).actor.email == ANN


def _open_home(home: Path, user: dict) -> AppTest:
    import streamlit as st

    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0", DLCORE_AUTH="team")
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.user = user
    at.switch_page("pages/home.py")
    return at.run()


def test_an_unverified_address_gets_nobodys_workspaces_on_the_pages(team, tmp_path):
    home = tmp_path / "home"
    raw = Store.open(home)
    ann = raw.as_actor(Actor(ANN))
    ann.create_workspace("Ann's budget")
    before = raw.as_actor(Actor(ANN)).workspaces_of()
    at = _open_home(home, {**CLAIMS, "sub": "self-service-7", "email": "ANN@EXAMPLE.COM", "email_verified": False})
    assert not at.exception
    said = " ".join(e.value for e in at.error)
    assert "has not verified that ann@example.com belongs to this account" in said
    assert [b.label for b in at.button] == ["Sign out"] and not at.sidebar.selectbox
    assert "Ann's budget" not in " ".join(str(m.value) for m in [*at.markdown, *at.caption])
    assert raw.as_actor(Actor(ANN)).workspaces_of() == before
    with raw.engine.connect() as conn:  # the account was never recorded
        assert conn.execute(sa.select(users.c.subject).where(users.c.subject == "self-service-7")).first() is None
    # The real Ann (verified) signs in and finds her workspace; the next, other account is refused.
    mine = _open_home(home, CLAIMS)
    assert not mine.exception and not mine.error
    assert "Ann's budget · owner" in list(mine.sidebar.selectbox[0].options)
    other = _open_home(home, {**CLAIMS, "sub": "self-service-7"})
    assert "already belongs to another account" in " ".join(e.value for e in other.error)
    assert not other.sidebar.selectbox


# ---- 10. workspace names say nothing of other teams ----------------------------------------------
@both
def test_two_teams_may_both_call_their_workspace_sales(team, store):
    alice = store.as_actor(signed_in("alice@example.com"))
    theirs = alice.create_workspace("Sales")
    dave = store.as_actor(signed_in(DAVE))
    mine = dave.create_workspace("Sales")  # no "There is already a workspace named 'Sales'" to an outsider
    assert mine != theirs
    assert [w["name"] for w in dave.workspaces_of()] == [f"Personal ({DAVE})", "Sales"]
    assert store.role_of(dave.actor, theirs) is None and store.role_of(alice.actor, mine) is None
    # Among one's own workspaces a name stays unique, so the switcher tells them apart.
    with pytest.raises(SpecError, match="already a workspace named 'Sales' among yours"):
        dave.create_workspace(" Sales ")
    # The personal names are refused with the same words whether that person exists or not.
    said = []
    for who in ("alice@example.com", "nobody@example.com"):
        with pytest.raises(SpecError) as refused:
            dave.create_workspace(f"Personal ({who})")
        said.append(str(refused.value).replace(who, "<X>"))
    assert said[0] == said[1]


@both
def test_an_old_store_with_unique_names_is_upgraded_in_place(team, home, database):
    """A store made when names were unique across the server (the tables as that version made
    them) opens with its workspaces, members and users kept, and names no longer unique."""
    url = os.environ.get("DLCORE_DATABASE_URL") or f"sqlite:///{home / 'store.db'}"
    home.mkdir(parents=True, exist_ok=True)
    old = sa.MetaData()
    old_workspaces = sa.Table("workspaces", old, sa.Column("id", sa.String(32), primary_key=True),
                              sa.Column("name", sa.Text, nullable=False, unique=True),
                              sa.Column("personal_of", sa.Text, unique=True),
                              sa.Column("created_at", sa.Float, nullable=False), sa.Column("created_by", sa.Text))
    old_members = sa.Table("members", old, sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"),
                                                     primary_key=True),
                           sa.Column("email", sa.Text, primary_key=True),
                           sa.Column("role", sa.String(16), nullable=False),
                           sa.Column("added_at", sa.Float, nullable=False), sa.Column("added_by", sa.Text))
    old_users = sa.Table("users", old, sa.Column("email", sa.Text, primary_key=True), sa.Column("name", sa.Text),
                         sa.Column("first_seen", sa.Float, nullable=False),
                         sa.Column("last_seen", sa.Float, nullable=False), sa.Column("last_workspace", sa.String(32)))
    engine = sa.create_engine(url)
    old.create_all(engine)
    now = time.time()
    with engine.begin() as conn:
        conn.execute(old_workspaces.insert(), [
            {"id": "ann-personal", "name": f"Personal ({ANN})", "personal_of": ANN, "created_at": now},
            {"id": "sales-1", "name": "Sales", "personal_of": None, "created_at": now + 1, "created_by": ANN}])
        conn.execute(old_members.insert(), [
            {"workspace_id": "ann-personal", "email": ANN, "role": "owner", "added_at": now},
            {"workspace_id": "sales-1", "email": ANN, "role": "owner", "added_at": now},
            {"workspace_id": "sales-1", "email": CARLA, "role": "viewer", "added_at": now}])
        conn.execute(old_users.insert().values(email=ANN, first_seen=now, last_seen=now, last_workspace="sales-1"))
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():  # what the old tables did
            conn.execute(old_workspaces.insert().values(id="sales-2", name="Sales", created_at=now))
    engine.dispose()

    store = Store.open(home)
    Store.open(home)  # a second process opening it afterwards finds nothing left to do
    ann = store.as_actor(signed_in(ANN))  # her first sign-in since: claims the user the old store knew
    assert ann.workspace_id == "sales-1"
    assert [(w["id"], w["role"]) for w in ann.workspaces_of()] == [("ann-personal", "owner"), ("sales-1", "owner")]
    assert store.role_of(Actor(CARLA), "sales-1") == "viewer"
    dave = store.as_actor(signed_in(DAVE))
    assert dave.create_workspace("Sales") != "sales-1"
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(users.c.subject).where(users.c.email == ANN)).scalar() == f"sub-{ANN}"
    # the members still point at workspaces that exist
    with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as conn:
        conn.execute(members.insert().values(workspace_id="no-such-workspace", email=DAVE, role="owner", added_at=now))


# ---- 11. one form of an e-mail, at one place ------------------------------------------------------
def test_emails_are_normalised_and_validated_at_one_place(team, monkeypatch):
    assert access.normalise_email("  Carla@Example.COM\t") == CARLA
    for bad in ("x@evil.com@example.com", "carla @example.com", "carla", "@example.com", "carla@", "",
                "carla@example.com\nbcc@evil.com", "carla@.example.com", "carla@example..com", "a" * 250 + "@x.com"):
        with pytest.raises(SpecError, match="is not an email address"):
            access.normalise_email(bad)
    monkeypatch.setenv("DLCORE_ALLOWED_DOMAINS", "example.com")
    monkeypatch.setenv("DLCORE_ADMINS", " Root@Corp.Example ,not-an-address, x@evil@corp.example")
    assert access.admins() == ["root@corp.example"]
    assert access.email_allowed(" Carla@Example.com") and access.email_allowed("ROOT@corp.example")
    assert not access.email_allowed("x@evil.com@example.com") and not access.email_allowed("carla@example.com.evil")
    with pytest.raises(AccessError, match="may not use this server"):
        access.signed_in_actor({**CLAIMS, "email": "x@elsewhere.org"})
    with pytest.raises(AccessError, match="not one address"):
        access.signed_in_actor({**CLAIMS, "email": "x@evil.com@example.com"})
    assert access.signed_in_actor({**CLAIMS, "email": " Ann@Example.com "}).email == ANN


@both
def test_an_address_with_a_space_or_capitals_is_the_same_user(team, store):
    carla = store.as_actor(Actor(CARLA))
    for written in (" carla@example.com", "Carla@Example.com ", "CARLA@EXAMPLE.COM"):
        again = store.as_actor(Actor(written))
        assert again.actor.email == CARLA and again.workspace_id == carla.workspace_id
    ann = store.as_actor(signed_in(ANN))
    shared = ann.create_workspace("Sales")
    ann.add_member(shared, "  Carla@Example.com ", "editor")
    assert store.role_of(Actor(CARLA), shared) == "editor"
    assert store.as_actor(signed_in(" CARLA@example.com"), shared).workspace_id == shared
    with pytest.raises(SpecError, match="is not an email address"):
        ann.add_member(shared, "x@evil.com@example.com", "viewer")
    ann.remove_member(shared, "CARLA@EXAMPLE.COM")
    assert store.role_of(Actor(CARLA), shared) is None
    with store.engine.connect() as conn:
        assert sorted(conn.execute(sa.select(users.c.email)).scalars()) == [ANN, CARLA]


def test_the_clis_as_goes_through_the_same_check(tmp_path):
    env = _cli_env(tmp_path, DLCORE_ALLOWED_DOMAINS="example.com")
    sneaky = cli(env, "--as", "x@evil.com@example.com", "workspace", "list", "--json")
    assert sneaky.returncode == 1 and "is not an email address" in sneaky.stderr
    plain = json.loads(cli(env, "--as", CARLA, "workspace", "list", "--json").stdout)
    spaced = cli(env, "--as", " Carla@Example.com ", "workspace", "list", "--json")
    assert spaced.returncode == 0, spaced.stderr
    assert json.loads(spaced.stdout) == plain and [w["name"] for w in plain] == [f"Personal ({CARLA})"]


# ---- the same attacks through a real sign-in: Chromium, st.login and the provider process --------
@pytest.fixture(scope="module")
def signin_server(tmp_path_factory):
    """The app in team mode, configured as the README's Team server section says, against the
    OpenID Connect provider process of tests/oidc.py; both on loopback."""
    pytest.importorskip("playwright.sync_api")
    from tests.browser import free_port
    from tests.test_team_browser import _wait_http, readme_team_config

    folder = tmp_path_factory.mktemp("identity-browser")
    home, site = folder / "home", folder / "site"
    (site / ".streamlit").mkdir(parents=True)
    app_port, provider_port = free_port(), free_port()
    (site / ".streamlit" / "config.toml").write_bytes((ROOT / ".streamlit" / "config.toml").read_bytes())
    (site / ".streamlit" / "secrets.toml").write_text(readme_team_config(app_port, provider_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLCORE_")}
    env.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0", TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
    log = open(folder / "servers.log", "wb")
    procs = [subprocess.Popen([sys.executable, "-m", "tests.oidc", str(provider_port)], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT),
             subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port",
                               str(app_port), "--server.address", "127.0.0.1", "--server.headless", "true"],
                              cwd=site, env=env, stdout=log, stderr=subprocess.STDOUT)]
    try:
        _wait_http(f"http://127.0.0.1:{provider_port}/.well-known/openid-configuration", procs[0], "the provider")
        _wait_http(f"http://127.0.0.1:{app_port}/_stcore/health", procs[1], "the app")
        yield f"http://127.0.0.1:{app_port}", home, f"http://127.0.0.1:{provider_port}"
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


def _sign_in(browser, url: str, email: str, account: str = "", verified: str = "true") -> str:
    """Sign in at the provider's page as ``email`` (its account id and whether the provider
    verified the address as given); what the app then says: "Signed in as ..." or its error."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Account id").fill(account)
    page.get_by_label("Address checked").select_option(verified)
    page.get_by_role("button", name="Continue").click()
    answer = page.get_by_text("Signed in as").or_(page.locator("[data-testid='stAlertContentError']")).first
    answer.wait_for(timeout=60_000)
    said = answer.inner_text().strip()
    context.close()
    return said


@pytest.mark.browser
def test_the_attacks_through_a_real_sign_in(signin_server):
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM, CHROMIUM_ARGS

    url, home, issuer = signin_server
    raw = Store.open(home)
    # A workspace named as the victim's personal one (as a store from before may hold it).
    with raw.engine.begin() as conn:
        conn.execute(workspaces.insert().values(id="taken-by-dave", name=f"Personal ({VICTIM})",
                                                created_at=time.time(), created_by=DAVE))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            assert _sign_in(browser, url, VICTIM) == f"Signed in as {VICTIM}"
            assert _sign_in(browser, url, ANN, "ann-account") == f"Signed in as {ANN}"
            unverified = _sign_in(browser, url, "ANN@EXAMPLE.COM", "self-service", verified="false")
            assert f"has not verified that {ANN} belongs to this account" in unverified
            assert "has not verified" in _sign_in(browser, url, "carla@example.com", verified="omit")
            second = _sign_in(browser, url, ANN, "another-ann")
            assert f"The address {ANN} already belongs to another account" in second
            assert _sign_in(browser, url, "Ann@Example.com", "ann-account") == f"Signed in as {ANN}"
        finally:
            browser.close()
    with raw.engine.connect() as conn:
        accounts = sorted(conn.execute(sa.select(users.c.email, users.c.issuer, users.c.subject)).all())
    assert [(e, s) for e, _, s in accounts] == [(ANN, "ann-account"), (VICTIM, accounts[1][2])]
    assert {i for _, i, _ in accounts} == {issuer}
    victim_personal = raw.ensure_user(Actor(VICTIM))
    assert victim_personal != "taken-by-dave" and raw.workspace(victim_personal)["personal_of"] == VICTIM
