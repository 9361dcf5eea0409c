"""Load: several analysts at once on one server, each in their own browser.

Every session uploads its own table (its own file name and target column, so another
session's data would be recognisable anywhere on a page), submits a run, and watches it.
The runs queue for the server's workers and must all finish; no page may ever show another
session's file, target or run id; and while two runs train, a fresh browser opens pages and
the time until each page has drawn is measured against the same pages on an idle server.

    python bench/load.py [--sessions 4] [--workers 2] [--rows 3000] [--epochs 15] [--reps 3]
                         [--browsing 4] [--rotate] [--reference]

``tests/test_load.py`` runs it small, asserting the isolation and that every run finishes;
the render times are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402
from tests.conftest import churn_frame  # noqa: E402

PAGES = (("home", "Latest runs"), ("runs", "Runs"), ("compare", "How the models get it right and wrong"))


@dataclass
class Session:
    name: str  # file stem and target column: unique per session
    page: object = None
    run_id: str | None = None
    seen_foreign: list[str] = field(default_factory=list)
    checks: int = 0


def _table(path: Path, name: str, rows: int, seed: int) -> None:
    frame = churn_frame(rows, seed=seed).rename(columns={"churn": name})
    frame.to_csv(path, index=False)


def _submit(session: Session, url: str, data: Path, epochs: int) -> None:
    page = session.page
    page.goto(f"{url}/data")
    page.locator("input[type=file]").first.set_input_files(str(data))
    page.get_by_text("What should the model predict?").wait_for()
    # No column is chosen for the analyst: each session picks its own target, named as its file.
    page.get_by_role("combobox", name="Target column").click()
    page.get_by_role("option", name=session.name, exact=True).click()
    page.get_by_text("The target looks ready for training.").wait_for()
    page.get_by_role("link", name="Next: choose a model and train it").click()
    page.get_by_text("Model template").wait_for()
    page.get_by_text("Settings (the defaults suit most data)").click()
    page.get_by_label(re.compile("^Epochs")).fill(str(epochs))
    page.get_by_text("Advanced: against memorising").click()
    page.get_by_label(re.compile("^Patience")).fill("100")
    page.get_by_role("button", name="Train").click()
    try:
        page.wait_for_url(re.compile(r"run="), timeout=45_000)
    except Exception:  # noqa: BLE001 - a click swallowed by a rerun of a cold server: press once more
        page.get_by_role("button", name="Train").click()
        page.wait_for_url(re.compile(r"run="), timeout=90_000)
    session.run_id = re.search(r"run=([\w-]+)", page.url).group(1)


def _check(session: Session, others: list[Session]) -> None:
    """The session's page shows its own file and run, and nothing of any other session."""
    text = session.page.inner_text("body")
    session.checks += 1
    for other in others:
        for mark in (f"{other.name}.csv", other.run_id):
            if mark and mark in text:
                session.seen_foreign.append(mark)


def _time_pages(browser: object, url: str, run_id: str, reps: int, first: int = 0) -> dict[str, float]:
    """Median seconds from navigation to the page's own text on screen, in a fresh context;
    the pages in turn, starting with ``PAGES[first]``."""
    times: dict[str, list[float]] = {key: [] for key, _ in PAGES}
    order = PAGES[first % len(PAGES):] + PAGES[:first % len(PAGES)]
    for _ in range(reps):
        for key, marker in order:
            context = browser.new_context(viewport={"width": 1400, "height": 1800})
            page = context.new_page()
            query = f"?run={run_id}" if key == "compare" else ""
            started = time.perf_counter()
            page.goto(f"{url}/{'' if key == 'home' else key}{query}")
            page.get_by_text(marker, exact=False).first.wait_for(timeout=120_000)
            times[key].append(time.perf_counter() - started)
            context.close()
    return {key: statistics.median(values) for key, values in times.items()}


def _proc_table() -> dict[int, tuple[int, str, float]]:
    """Every process: its parent, its name, and the CPU seconds it and its reaped children used."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1:raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2:].split()
        # utime, stime, cutime, cstime are fields 14-17 of stat; ``fields`` starts at field 3.
        out[int(entry)] = (int(fields[1]), name, sum(int(v) for v in fields[11:15]) / tick)
    return out


def _machine_busy() -> float:
    """CPU seconds every process of the machine has used (all users, all sessions)."""
    values = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def cpu_by_part(server_pid: int) -> dict[str, float]:
    """CPU seconds so far of this bench's parts: the Streamlit server, its workers (the training
    and scoring processes it started), the browser (Chromium and Playwright's driver), this
    script; and the whole machine, other users' work included. A process that ended counts in
    the one that reaped it, so differences between two readings are the work done between."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)

    def tree(root: int) -> list[int]:
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    workers = [pid for pid in tree(server_pid) if pid != server_pid]
    ours = tree(os.getpid())
    browser = [pid for pid in ours if pid not in workers and pid != server_pid and pid != os.getpid()]
    seconds = {part: sum(table[pid][2] for pid in pids if pid in table)
               for part, pids in (("server", [server_pid]), ("workers", workers), ("browser", browser),
                                  ("bench script", [os.getpid()]))}
    seconds["whole machine"] = _machine_busy()
    return seconds


def _browse(pages: list, url: str, run_id: str, step: int) -> None:
    """Each browsing session opens its next page (Home, Runs, Compare in turn), as an analyst
    looking around does, while the others watch their runs."""
    for k, page in enumerate(pages):
        key, _ = PAGES[(step + k) % len(PAGES)]
        query = f"?run={run_id}" if key == "compare" else ""
        page.goto(f"{url}/{'' if key == 'home' else key}{query}", wait_until="commit")


def run_load(sessions: int = 4, workers: int = 2, rows: int = 3000, epochs: int = 15, reps: int = 3,
             home: Path | None = None, say=print, browsing: int = 0, profile: str | None = None,
             rotate: bool = False, reference: bool = False) -> dict:
    """Drive ``sessions`` browsers against one server; return what happened, with figures
    (``reps=0``: no page timing, only the isolation and the runs finishing). ``reference``: the
    bare app of ``bench/reference/`` (the same widgets from constants) is served beside ours and
    its pages are timed with ours, idle and busy, on the same machine at the same moments."""
    import playwright.sync_api as playwright

    from dlcore.store import Store

    folder = Path(home or tempfile.mkdtemp(prefix="dlcore-load-"))
    home_dir = folder / "home"
    home_dir.mkdir(parents=True, exist_ok=True)
    if profile:  # every script run of the server (fragments too) profiled, one file each
        server = Server(home_dir, workers=workers, launcher=("bench/timed_server.py",),
                        env={"BENCH_RUN_LOG": str(Path(profile) / "runs.jsonl"), "BENCH_PROFILE": str(profile),
                             "BENCH_PROFILE_FRAGMENTS": "1"})
    else:
        server = Server(home_dir, workers=workers)
    bare = _reference_server(folder) if reference else None
    result: dict = {"sessions": sessions, "workers": workers}
    try:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            store = Store.open(home_dir)
            warm = Session("warmup")
            if reps:
                # A finished run to open while the others train, and the idle page times.
                warm.page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
                warm.page.set_default_timeout(120_000)
                _table(folder / "warmup.csv", "warmup", rows, seed=99)
                _submit(warm, server.url, folder / "warmup.csv", 2)
                while store.run(warm.run_id).status not in ("done", "failed"):
                    time.sleep(0.5)
                result["idle"] = _time_pages(browser, server.url, warm.run_id, reps)
                if bare is not None:
                    result["bare_idle"] = _time_pages(browser, bare[1], warm.run_id, reps)
                result["idle_load_average"] = os.getloadavg()[0]
                say(f"idle server: {result['idle']}")

            people = [Session(f"target_{k}") for k in range(sessions)]
            submitted = time.perf_counter()
            for k, person in enumerate(people):
                person.page = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
                person.page.set_default_timeout(120_000)
                path = folder / f"{person.name}.csv"
                _table(path, person.name, rows, seed=k)
                _submit(person, server.url, path, epochs)
            result["submit_seconds"] = time.perf_counter() - submitted
            say(f"{sessions} runs submitted in {result['submit_seconds']:.1f}s: {[p.run_id for p in people]}")

            # While two runs train, time pages in a fresh browser; watch every session's page;
            # ``browsing`` more sessions (contexts of the same browser) open page after page.
            lookers = [browser.new_context(viewport={"width": 1400, "height": 1800}).new_page() for _ in range(browsing)]
            busy: list[dict[str, float]] = []
            bare_busy: list[dict[str, float]] = []
            step = 0
            cpu_from, busy_from, cpu_to, busy_to = None, 0.0, None, 0.0
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                states = [store.run(p.run_id).status for p in people]
                for person in people:
                    _check(person, [o for o in people + [warm] if o is not person])
                running = states.count("running")
                if lookers and running:
                    _browse(lookers, server.url, warm.run_id or people[0].run_id, step)
                    step += 1
                if running >= min(2, workers) and len(busy) < reps:
                    if cpu_from is None:
                        cpu_from, busy_from = cpu_by_part(server.proc.pid), time.monotonic()
                    busy.append(_time_pages(browser, server.url, warm.run_id, 1, first=len(busy) if rotate else 0))
                    if bare is not None:
                        bare_busy.append(_time_pages(browser, bare[1], warm.run_id, 1, first=len(bare_busy) if rotate else 0))
                    cpu_to, busy_to = cpu_by_part(server.proc.pid), time.monotonic()
                    result["busy_load_average"] = os.getloadavg()[0]
                if all(s in ("done", "stopped", "failed", "interrupted") for s in states):
                    break
                time.sleep(1.0)
            result["statuses"] = {p.run_id: store.run(p.run_id).status for p in people}
            result["all_seconds"] = time.perf_counter() - submitted
            if busy:
                result["busy"] = {key: statistics.median(b[key] for b in busy) for key, _ in PAGES}
                if bare_busy:
                    result["bare_busy"] = {key: statistics.median(b[key] for b in bare_busy) for key, _ in PAGES}
                result["busy_cpu"] = {part: cpu_to[part] - cpu_from[part] for part in cpu_to}
                result["busy_wall"] = busy_to - busy_from
            for person in people:  # the finished page, once more
                person.page.reload()
                person.page.get_by_text("See the leaderboard and charts").wait_for(timeout=120_000)
                _check(person, [o for o in people + [warm] if o is not person])
                if f"{person.name}.csv" not in person.page.inner_text("body"):
                    person.seen_foreign.append("(own file missing)")
            result["foreign"] = {p.name: p.seen_foreign for p in people}
            result["checks"] = sum(p.checks for p in people)
            browser.close()
    finally:
        server.stop()
        if bare is not None:
            bare[0].terminate()
            bare[0].wait(timeout=30)
    return result


def _reference_server(folder: Path) -> tuple[subprocess.Popen, str]:
    """The bare reference app (``bench/reference/app.py``) on a free port: its process and address."""
    from tests.browser import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "bench" / "reference" / "app.py"),
                             "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
                             "--browser.gatherUsageStats", "false"],
                            cwd=ROOT / "bench" / "reference", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the reference Streamlit app did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--browsing", type=int, default=0,
                        help="more sessions that open page after page while the runs train")
    parser.add_argument("--profile", default=None,
                        help="a folder: the server's every script run profiled there (bench/timed_server.py)")
    parser.add_argument("--rotate", action="store_true",
                        help="time the busy pages in a turning order (Home first, then Runs first, ...): the page "
                             "timed first meets the browsing sessions' page loads, which start just before it")
    parser.add_argument("--reference", action="store_true",
                        help="also serve the bare reference app (bench/reference/) and time its pages idle and busy "
                             "at the same moments: what the machine alone does to a page")
    args = parser.parse_args()
    out = run_load(args.sessions, args.workers, args.rows, args.epochs, args.reps, browsing=args.browsing,
                   profile=args.profile, rotate=args.rotate, reference=args.reference)
    print(f"\n{out['sessions']} sessions watching their runs, {args.browsing} browsing, {out['workers']} training "
          f"workers: runs {out['statuses']}")
    print(f"all runs finished {out['all_seconds']:.0f}s after the first submit; {out['checks']} page checks, "
          f"another session's data seen: {sum(len(v) for v in out['foreign'].values())} times")
    if out.get("busy_cpu"):
        wall, cores = out["busy_wall"], len(os.sched_getaffinity(0))
        print(f"while the busy pages were timed ({wall:.0f} s wall, {cores} cores = {wall * cores:.0f} CPU-s; "
              f"load average {out['busy_load_average']:.1f}), CPU seconds used by:")
        parts = out["busy_cpu"]
        others = parts["whole machine"] - sum(v for k, v in parts.items() if k != "whole machine")
        for part, used in [*parts.items(), ("other users' work", others)]:
            print(f"  {part:18} {used:7.1f} s  ({used / wall:4.2f} cores)")
    if "idle_load_average" in out:
        print(f"load average after the idle timings {out['idle_load_average']:.1f}")
    bare = "bare_idle" in out
    print(f"{'page':10} {'idle (s)':>9} {'2 training (s)':>15} {'ratio':>6}"
          + (f" {'bare idle':>10} {'bare busy':>10} {'bare ratio':>10}" if bare else ""))
    for key, _ in PAGES:
        idle, busy = out["idle"][key], out.get("busy", {}).get(key, float("nan"))
        line = f"{key:10} {idle:9.2f} {busy:15.2f} {busy / idle:6.2f}"
        if bare:
            b_idle, b_busy = out["bare_idle"][key], out.get("bare_busy", {}).get(key, float("nan"))
            line += f" {b_idle:10.2f} {b_busy:10.2f} {b_busy / b_idle:10.2f}"
        print(line)


if __name__ == "__main__":
    main()
