"""Shared fixtures: a fresh store per test, tiny seeded data sets, and real worker processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty data folder, named by DLCORE_HOME for everything in this process."""
    folder = tmp_path / "dlcore-home"
    monkeypatch.setenv("DLCORE_HOME", str(folder))
    monkeypatch.delenv("DLCORE_DATABASE_URL", raising=False)
    return folder


@pytest.fixture
def store(home, database):
    """The store in ``home``, on SQLite, or on PostgreSQL where a test asks for ``database``."""
    from dlcore.store import Store

    return Store.open(home)


# The two databases a store runs on. A test file runs a test on both with
# ``@pytest.mark.parametrize("database", DATABASES, indirect=True)`` and the ``store`` of this file
# (or its own fixtures) asking for ``database`` first.
DATABASES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server for the whole session, on a Unix socket only (tests/pg.py)."""
    from tests.pg import INSTALL, Postgres, pg_bin

    try:
        pg_bin("initdb")
    except RuntimeError:
        pytest.skip(f"PostgreSQL is not installed ({INSTALL}); CI installs it and runs these tests")
    server = Postgres.start()
    yield server
    server.stop()


@pytest.fixture
def database(request, home, monkeypatch):
    """"sqlite" (the default), or "postgresql": a fresh database on the session's server, named by
    DLCORE_DATABASE_URL for this process and the workers it starts, dropped afterwards."""
    kind = getattr(request, "param", "sqlite")
    if kind == "postgresql":
        server = request.getfixturevalue("postgres")
        url = server.new_database()
        monkeypatch.setenv("DLCORE_DATABASE_URL", url)
        yield kind
        server.drop_database(url)
    else:
        yield kind


# The quick tier (``-m "not slow"``) is marked here, by the fixtures a test uses, so a new test on a
# worker, PostgreSQL, a browser, a server or a cluster is left out of it without remembering to mark it.
# A fixture counts by its name and the module that defines it (two files may name a fixture alike).
FIXTURE_MARKS = {
    ("tests.conftest", "worker"): ("slow",),  # a real worker process: TensorFlow's import alone takes seconds
    ("tests.conftest", "postgres"): ("postgres", "slow"),
    ("tests.test_browser", "browser"): ("browser", "slow"),
    ("tests.test_browser", "server"): ("slow",),  # a real Streamlit server
    ("tests.test_faults", "browser"): ("browser", "slow"),
    ("tests.test_faults", "server"): ("slow",),
    ("tests.test_team_browser", "browser"): ("browser", "slow"),
    ("tests.test_team_browser", "team_server"): ("slow",),  # the app and an OpenID Connect provider
    ("tests.cluster.scenarios", "team"): ("cluster", "slow"),
    ("tests.cluster.scenarios", "browser"): ("browser", "slow"),
    ("tests.test_rest", "personal"): ("slow",),  # a trained run and python -m dlcore serve
    ("tests.test_rest", "team"): ("slow",),
}
# Module fixtures that train a real run (or several) for the tests of their file: a file's tests that use
# one wait for the training, however quick the test itself is.
FIXTURE_MARKS.update({(f"tests.{module}", name): ("slow",) for module, name in [
    ("test_bad_inputs", "good"), ("test_budget_runs", "cut_forecast"), ("test_bundle", "churn_run"),
    ("test_bundle", "price_run"), ("test_bundle", "shapes_run"), ("test_cli", "fitted"), ("test_explain", "explained"),
    ("test_explain_images", "blob_model"), ("test_explain_series", "shops_run"), ("test_first_steps", "runs"),
    ("test_forecast_runs", "forecast_run"), ("test_forecast_runs", "panel_run"), ("test_image_pages", "image_run"),
    ("test_image_runs", "image_run"), ("test_matching", "penguins"), ("test_no_outbound", "queued"),
    ("test_pages", "trained"), ("test_rare_class", "rare"), ("test_recommended", "not_clearly_better"),
    ("test_report", "fitted"), ("test_search", "budget_run"), ("test_team_cli", "team"),
    ("test_team_pages", "team_store"), ("test_text_pages", "trained"), ("test_verdict_speed", "runs"),
]})
IMPLY_SLOW = {"browser", "postgres", "cluster"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test by the fixtures it uses (FIXTURE_MARKS) and by its database; ``browser``,
    ``postgres`` and ``cluster`` each imply ``slow``, whether set here or on the test."""
    for item in items:
        found: set[str] = set()
        info = getattr(item, "_fixtureinfo", None)
        for name, defs in (info.name2fixturedefs.items() if info else ()):
            for fixturedef in defs:
                found.update(FIXTURE_MARKS.get((getattr(fixturedef.func, "__module__", ""), name), ()))
        if getattr(getattr(item, "callspec", None), "params", {}).get("database") == "postgresql":
            found.update(("postgres", "slow"))
        if IMPLY_SLOW & (found | {mark.name for mark in item.iter_markers()}):
            found.add("slow")
        for name in sorted(found - {mark.name for mark in item.iter_markers()}):
            item.add_marker(name)


def churn_frame(n: int = 240, seed: int = 0) -> pd.DataFrame:
    """A small binary problem with a clear signal, numbers and categories, and a few gaps."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 72, n).astype(float)
    charges = rng.normal(70, 20, n).round(2)
    plan = rng.choice(["basic", "plus", "premium"], n)
    region = rng.choice(["north", "south", "east", "west"], n)
    logit = -0.08 * tenure + 0.03 * (charges - 70) + np.where(plan == "basic", 1.2, -0.4)
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    frame = pd.DataFrame({"tenure": tenure, "charges": charges, "plan": plan, "region": region, "churn": churn})
    frame.loc[rng.choice(n, 8, replace=False), "charges"] = np.nan
    return frame


def regression_frame(n: int = 200, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.uniform(30, 200, n)
    rooms = rng.integers(1, 6, n).astype(float)
    city = rng.choice(["a", "b", "c"], n)
    price = 2000 * size + 15000 * rooms + np.where(city == "a", 50000, 0) + rng.normal(0, 20000, n)
    return pd.DataFrame({"size": size.round(1), "rooms": rooms, "city": city, "price": price.round(0)})


@pytest.fixture
def churn_csv(tmp_path) -> Path:
    path = tmp_path / "churn.csv"
    churn_frame().to_csv(path, index=False)
    return path


def python_on_path(bin_dir: Path) -> Path:
    """A ``python`` in ``bin_dir`` that runs the interpreter running the tests, with its packages.

    A wrapper that execs ``sys.executable``, not a symlink to it: a virtual environment is found
    from the path an interpreter is started by, so a symlink elsewhere would start the base
    Python without the environment's packages."""
    wrapper = bin_dir / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def start_worker(home: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, DLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen([sys.executable, "-m", "dlcore", "worker", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture
def worker(home, database):
    """A real worker process on this test's store (on its database)."""
    proc = start_worker(home)
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_here(store, spec):
    """Queue ``spec``, claim it and train it in this process as a worker would; the run, done."""
    from dlcore import runner

    run_id = runner.submit(store, spec)
    assert store.claim_next_run() == run_id
    runner.execute_run(store, run_id)
    run = store.run(run_id)
    assert run.status == "done", run.message
    return run


def wait_until(predicate, timeout: float = 120.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s")


def use_app_router_in_apptest() -> None:
    """AppTest resets Streamlit's legacy ``pages/`` flag before every run, which a real server
    clears for good at its first ``st.navigation`` call. Clear it after each reset, so AppTest
    runs app.py's router the way a server does after its first page view."""
    from streamlit.runtime.pages_manager import PagesManager

    if getattr(PagesManager, "_dlcore_patched", False):
        return
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init
    PagesManager._dlcore_patched = True


def shapes_zip(n_per_class: int = 20, size: int = 24, seed: int = 0, nest: str = "shapes/") -> bytes:
    """A ZIP of class folders with pictures a CNN tells apart in a few epochs: horizontal
    stripes, vertical stripes and a bright square, in colour, as PNG and JPEG, with noise."""
    import io
    import zipfile

    from PIL import Image

    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("horizontal", "vertical", "square"):
            for i in range(n_per_class):
                img = rng.integers(0, 60, size=(size, size, 3)).astype(np.uint8)
                offset = int(rng.integers(0, 3))
                if label == "horizontal":
                    img[offset::4, :, :] = 230
                elif label == "vertical":
                    img[:, offset::4, :] = 230
                else:
                    a, b = int(rng.integers(2, size // 2)), int(rng.integers(2, size // 2))
                    img[a:a + size // 3, b:b + size // 3, :] = 230
                fmt = "PNG" if i % 2 else "JPEG"
                out = io.BytesIO()
                Image.fromarray(img).save(out, format=fmt)
                archive.writestr(f"{nest}{label}/{label}-{i:03d}.{fmt.lower()}", out.getvalue())
        archive.writestr(f"{nest}README.txt", "not an image")
    return buffer.getvalue()


def open_page(home: Path, page: str, **params: str):
    """A page through AppTest on the store in ``home``, opened the way a shared link opens it."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["DLCORE_HOME"] = str(home)
    os.environ["DLCORE_WORKERS"] = "0"  # tests start their own workers when they need one
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.switch_page(f"pages/{page}.py")
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


# Next month's export of the penguins below, from another tool: every column has another name.
PENGUIN_NAMES = {"Espèce": "species", "Île": "island", "Longueur du bec (mm)": "bill_length_mm",
                 "Profondeur du bec (mm)": "bill_depth_mm", "Nageoire (mm)": "flipper_length_mm",
                 "Masse (g)": "body_mass_g", "Sexe": "sex", "Année": "year"}


def penguin_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Penguins measured as a French field team names them (accents, units in brackets): numbers in
    four distinct ranges, a year, two categories, and the sex to predict (clear in the sizes)."""
    rng = np.random.default_rng(seed)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], n, p=[0.45, 0.35, 0.2])
    means = {"Adelie": (38.8, 18.3, 190, 3700), "Gentoo": (47.5, 15.0, 217, 5076), "Chinstrap": (48.8, 18.4, 196, 3733)}
    size = np.array([means[s] for s in species])
    sex = rng.choice(["male", "female"], n)
    male = sex == "male"
    island = np.where(species == "Gentoo", "Biscoe", np.where(species == "Chinstrap", "Dream",
                                                              rng.choice(["Torgersen", "Biscoe", "Dream"], n)))
    return pd.DataFrame({
        "Espèce": species, "Île": island,
        "Longueur du bec (mm)": (size[:, 0] + rng.normal(0, 2.5, n) + 2 * male).round(1),
        "Profondeur du bec (mm)": (size[:, 1] + rng.normal(0, 0.9, n) + 1 * male).round(1),
        "Nageoire (mm)": (size[:, 2] + rng.normal(0, 6, n) + 4 * male).round(0),
        "Masse (g)": (size[:, 3] + rng.normal(0, 350, n) + 400 * male).round(-1),
        "Sexe": sex, "Année": rng.choice([2007, 2008, 2009], n),
    })
