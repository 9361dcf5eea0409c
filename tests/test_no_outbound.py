"""No outbound calls: the analyst's browser asks only the app's own address for anything, on every
page; the Streamlit server and the workers it starts look up and connect to no other host; and
the shipped configuration keeps Streamlit from asking checkip.amazonaws.com for the machine's
address at start.

How the server side is watched: the server runs with ``tests/netaudit`` first on its PYTHONPATH,
whose ``sitecustomize`` adds a CPython audit hook (PEP 578) in that process and in every Python
process it starts (the workers inherit the environment). The hook writes down every name look-up
(``socket.getaddrinfo``, ``gethostbyname``...) and every connect or datagram with its destination,
and refuses those for another machine, so a mistake is recorded without anything leaving. The
app's own code is not changed or patched for the test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server
from tests.conftest import ROOT, churn_frame, wait_until

playwright = pytest.importorskip("playwright.sync_api")

AUDIT = str(ROOT / "tests" / "netaudit")


def _audit_env(log) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([AUDIT, str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            "DLCORE_NET_AUDIT": str(log)}


def _events(log) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


_BANNER = ("from streamlit import config\nconfig.get_config_options(force_reparse=True)\n"
           "from streamlit.web import bootstrap\nbootstrap._print_url(False)\n")


@pytest.mark.slow  # real Streamlit processes
def test_the_shipped_config_keeps_streamlit_from_asking_for_the_external_address(tmp_path):
    """Streamlit prints its start-up URLs from the config in the folder it starts in: with ours,
    no look-up; with the same file less ``browser.serverAddress``, it asks checkip.amazonaws.com
    (and connects a UDP socket towards 8.8.8.8 to learn the local address), which the hook
    records and refuses."""
    ours = tmp_path / "ours.log"
    done = subprocess.run([sys.executable, "-c", _BANNER], cwd=ROOT, env=dict(os.environ, **_audit_env(ours)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "URL: http://localhost:" in done.stdout
    assert [e for e in _events(ours) if not e["allowed"]] == []

    bare = tmp_path / "bare"
    (bare / ".streamlit").mkdir(parents=True)
    config = (ROOT / ".streamlit" / "config.toml").read_text()
    assert "\nserverAddress = " in config
    (bare / ".streamlit" / "config.toml").write_text(
        "\n".join(line for line in config.splitlines() if not line.startswith("serverAddress")))
    control = tmp_path / "control.log"
    subprocess.run([sys.executable, "-c", _BANNER], cwd=bare, env=dict(os.environ, **_audit_env(control)),
                   capture_output=True, text=True, timeout=60)
    refused = {e["target"] for e in _events(control) if not e["allowed"]}
    assert "'checkip.amazonaws.com'" in refused


@pytest.fixture(scope="module")
def queued(tmp_path_factory):
    """A data folder with a dataset and a small run (with baselines) queued: the server's own
    worker trains it while the hook watches, and then every page has its content: leaderboard,
    charts, the scoring form, the money sliders."""
    from dlcore import datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store

    home = tmp_path_factory.mktemp("outbound") / "home"
    store = Store.open(home)
    record, _ = datasets.register_bytes(store, churn_frame(300).to_csv(index=False).encode(), "customers.csv")
    spec = RunSpec(data=DataSpec(record.id, "churn"), template="mlp",
                   train=TrainSpec(epochs=2, batch_size=32, size="small", seed=1))
    return home, record.id, runner.submit(store, spec)


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's Chromium")
def test_every_page_asks_only_the_apps_own_address(queued):
    from dlcore.store import Store
    from ui import urls

    home, dataset_id, run_id = queued
    log = home.parent / "server-net.log"
    server = Server(home, env=_audit_env(log))
    store = Store.open(home)
    own = urlparse(server.url).netloc
    asked: list[str] = []
    elsewhere: list[str] = []

    def route(r) -> None:
        if urlparse(r.request.url).netloc == own:
            r.continue_()
        else:
            elsewhere.append(r.request.url)
            r.abort()

    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 1800})
            context.route("**/*", route)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.on("request", lambda req: asked.append(req.url))
            page.on("websocket", lambda ws: asked.append(ws.url))
            icons = set()
            # The first page view starts the server's workers; one of them trains the queued run.
            page.goto(server.url, wait_until="networkidle")
            wait_until(lambda: store.run(run_id).status in ("done", "failed"), timeout=300)
            assert store.run(run_id).status == "done", store.run(run_id).message
            for key, info in urls.PAGES.items():
                path = "" if key == "home" else info.url_path
                query = {"data": f"?{urls.DATASET}={dataset_id}", "home": ""}.get(key, f"?{urls.RUN}={run_id}")
                page.goto(f"{server.url}/{path}{query}", wait_until="networkidle")
                page.locator("[data-testid='stMainBlockContainer'] h1, [data-testid='stMainBlockContainer'] h2, "
                             "[data-testid='stMainBlockContainer'] h3").first.wait_for()
                assert page.locator("[data-testid='stException']").count() == 0, key
                icons.update(page.evaluate(
                    "() => [...document.querySelectorAll('link[rel~=icon]')].map(l => l.href)"))
            browser.close()
    finally:
        server.stop()

    assert elsewhere == []
    schemes_elsewhere = [u for u in asked if urlparse(u).scheme not in ("data", "blob", "about")
                         and urlparse(u).netloc != own]
    assert schemes_elsewhere == []
    assert len(asked) > 50  # every page's scripts, styles, fonts and the websocket were seen
    assert icons and all(urlparse(i).netloc == own for i in icons), icons
    events = _events(log)
    started = [e["target"] for e in events if e["event"] == "start"]
    assert any("app.py" in s for s in started), started  # the server was watched
    assert any("worker" in s for s in started), started  # and so were the workers it started, one of which trained
    assert [e for e in events if not e["allowed"]] == []
