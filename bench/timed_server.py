"""A Streamlit server that notes every script run it makes (start, end, page, query) in the file
named by ``BENCH_RUN_LOG``, one JSON line each: the server-side time of each page view, for
``bench/pages.py`` and ``bench/load.py``. With ``BENCH_PROFILE`` set to a folder, each script
run's cProfile statistics are saved there too (with ``BENCH_PROFILE_FRAGMENTS`` set, a fragment's
reruns also, named ``<page>-fragment-…``). Otherwise exactly ``streamlit run``.

    BENCH_RUN_LOG=runs.jsonl python bench/timed_server.py app.py --server.port 8600
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def main() -> None:
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.web import cli

    path = os.environ["BENCH_RUN_LOG"]
    lock = threading.Lock()
    original = script_runner.ScriptRunner._run_script

    profile_to = os.environ.get("BENCH_PROFILE")  # a folder: one cProfile file per script run
    if profile_to:
        os.makedirs(profile_to, exist_ok=True)

    def timed(self, rerun_data):  # type: ignore[no-untyped-def]
        started, cpu = time.time(), time.thread_time()
        prof = None
        if profile_to and (not rerun_data.fragment_id or os.environ.get("BENCH_PROFILE_FRAGMENTS")):
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        try:
            return original(self, rerun_data)
        finally:
            if prof is not None:
                prof.disable()
                kind = "-fragment" if rerun_data.fragment_id else ""
                prof.dump_stats(os.path.join(profile_to, f"{rerun_data.page_name or 'page'}{kind}-{started:.3f}.prof"))
            note = {"start": started, "end": time.time(), "cpu": time.thread_time() - cpu,
                    "query": rerun_data.query_string, "page": rerun_data.page_name,
                    "fragment": bool(rerun_data.fragment_id), "session": id(self)}
            with lock, open(path, "a") as fh:
                fh.write(json.dumps(note) + "\n")

    script_runner.ScriptRunner._run_script = timed
    sys.argv = ["streamlit", "run", *sys.argv[1:]]
    cli.main()


if __name__ == "__main__":
    main()
