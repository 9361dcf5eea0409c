"""Teams: the server-side render time of the pages with the access checks (team mode, a signed-in
user, the store bound to them: every read by id asks for their role, every list is filtered by
workspace) against the same pages without them (the unbound store, no sign-in), same run, same
process, alternating; and the cost of one checked read against an unchecked one.

The store holds one real run (MLP, a few epochs, the baselines) and ``--runs`` copies of it, all
in one shared workspace of the signed-in user, so every list has a history to filter.

    python bench/access.py [--rows 3000] [--runs 50] [--reps 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

EMAIL = "alice@example.com"


def build_store(home: Path, rows: int, runs: int) -> tuple[str, str, str]:
    from dlcore import access, datasets, runner
    from dlcore.spec import DataSpec, RunSpec, TrainSpec
    from dlcore.store import Store
    from tests.conftest import churn_frame

    raw = Store.open(home)
    alice = raw.as_actor(access.Actor(EMAIL))
    shared = alice.create_workspace("Bench team")
    alice = raw.as_actor(access.Actor(EMAIL), shared)
    alice.remember_workspace(shared)
    record, _ = datasets.register_bytes(alice, churn_frame(rows).to_csv(index=False).encode(), "churn.csv")
    run_id = runner.submit(alice, RunSpec(DataSpec(record.id, "churn"), template="mlp", train=TrainSpec(epochs=3)),
                           claim=True)
    runner.execute_run(raw, run_id)
    done = raw.run(run_id)
    for _ in range(runs - 1):
        copy = alice.create_run(done.spec, record.id, done.template, done.target, 1)
        shutil.copytree(raw.run_dir(run_id), raw.run_dir(copy), dirs_exist_ok=True)
        raw.update_run(copy, status="done", task=done.task, metric=done.metric, higher_is_better=done.higher_is_better,
                       result=done.result, test_score=done.test_score, started_at=time.time(),
                       finished_at=time.time(), progress=1.0, phase="Finished")
    return shared, record.id, run_id


def render(page: str, params: dict, checked: bool):  # type: ignore[no-untyped-def]
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import ui.common

    os.environ["DLCORE_AUTH"] = "team" if checked else "personal"
    ui.common.store = ORIGINAL_STORE if checked else ui.common.server_store
    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.user = {"is_logged_in": True, "email": EMAIL, "email_verified": True, "iss": "https://id.example.com",
               "sub": "alice-account", "name": "Alice"}
    at.switch_page(f"pages/{page}.py")
    for key, value in params.items():
        at.query_params[key] = value
    started = time.perf_counter()
    at.run()
    seconds = time.perf_counter() - started
    if at.exception or at.error:
        raise RuntimeError(f"{page} {params} ({'checked' if checked else 'unchecked'}): "
                           f"{[e.value for e in at.exception] or [e.value for e in at.error]}")
    return seconds


ORIGINAL_STORE = None


def main() -> None:
    global ORIGINAL_STORE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-access-"))
    home = folder / "home"
    os.environ.update(DLCORE_HOME=str(home), DLCORE_WORKERS="0", DLCORE_SECRETS=str(folder / "none.toml"))
    shared, dataset_id, run_id = build_store(home, args.rows, args.runs)

    import ui.common
    from tests.conftest import use_app_router_in_apptest

    use_app_router_in_apptest()
    ORIGINAL_STORE = ui.common.store
    render("home", {}, False)  # Streamlit's loggers exist from here: quiet their notes on running bare
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    pages = [("home", {}), ("runs", {}), ("data", {"dataset": dataset_id}), ("train", {"run": run_id}),
             ("compare", {"run": run_id}), ("predict", {"run": run_id})]
    for page, params in pages:  # warm both ways once (imports, caches of the server store)
        render(page, params, True)
        render(page, params, False)
    print(f"{args.runs} runs in the workspace; medians of {args.reps} renders, alternating", flush=True)
    print(f"{'page':<26}{'checked':>10}{'unchecked':>11}{'ratio':>8}")
    ratios = []
    for page, params in pages:
        times = {True: [], False: []}
        for _ in range(args.reps):
            for checked in (True, False):
                times[checked].append(render(page, params, checked))
        on, off = statistics.median(times[True]), statistics.median(times[False])
        ratios.append(on / off)
        label = page + (f"?{next(iter(params))}=" if params else "")
        print(f"{label:<26}{on:>9.3f}s{off:>10.3f}s{on / off:>8.2f}", flush=True)
    print(f"median ratio over the pages: {statistics.median(ratios):.2f}")

    from dlcore import access
    from dlcore.store import Store

    raw = Store.open(home)
    bound = raw.as_actor(access.Actor(EMAIL), shared)
    for label, store in (("checked", bound), ("unchecked", raw)):
        started = time.perf_counter()
        for _ in range(500):
            store.run(run_id)
        print(f"store.run(id), {label}: {(time.perf_counter() - started) / 500 * 1e3:.2f} ms")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
