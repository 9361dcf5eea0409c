"""A Streamlit server that notes every script run it makes (start, end, page, query) in the file
named by ``BENCH_RUN_LOG``, one JSON line each: the server-side time of each page view, for
``bench/pages.py`` and ``bench/load.py``. Otherwise exactly ``streamlit run``.

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

    def timed(self, rerun_data):  # type: ignore[no-untyped-def]
        started, cpu = time.time(), time.thread_time()
        try:
            return original(self, rerun_data)
        finally:
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
