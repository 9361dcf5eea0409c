"""Where a page's server-side render time goes: cProfile over AppTest renders of one page, with
the store that ``bench/pages.py --keep`` leaves behind.

    python bench/profile_page.py HOME PAGE [key=value ...] [--reps 3] [--top 30]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("home")
    ap.add_argument("page")
    ap.add_argument("params", nargs="*")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--top", type=int, default=35)
    ap.add_argument("--sort", default="cumulative")
    args = ap.parse_args()
    from streamlit.testing.v1 import AppTest

    from tests.conftest import use_app_router_in_apptest

    use_app_router_in_apptest()
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.update(DLCORE_HOME=args.home, DLCORE_WORKERS="0")
    params = dict(p.split("=", 1) for p in args.params)

    def render() -> float:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.switch_page(f"pages/{args.page}.py")
        for k, v in params.items():
            at.query_params[k] = v
        started = time.perf_counter()
        at.run()
        assert not at.exception, at.exception
        return time.perf_counter() - started

    print(f"first {render():.2f}s")
    # AppTest runs the script in a thread of its own: profile inside that thread.
    from streamlit.runtime.scriptrunner import script_runner

    prof = cProfile.Profile()
    original = script_runner.ScriptRunner._run_script

    def profiled(self, *a, **kw):  # type: ignore[no-untyped-def]
        prof.enable()
        try:
            return original(self, *a, **kw)
        finally:
            prof.disable()

    script_runner.ScriptRunner._run_script = profiled
    times = [render() for _ in range(args.reps)]
    print("again " + ", ".join(f"{t:.2f}s" for t in times))
    pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
