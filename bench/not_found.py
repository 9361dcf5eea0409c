"""Not-found parity in time: ``store.run(id)`` by a signed-in user for a run of a workspace they
are not in, against an id that does not exist, and against a run they may see (same store, same
process, alternating). The ratio other/missing near 1 means the answer's time does not tell an
outsider that the id exists.

    python bench/not_found.py [--reps 2000] [--database-url postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-not-found-"))
    os.environ.update(DLCORE_AUTH="team", DLCORE_SECRETS=str(folder / "none.toml"))

    from dlcore import datasets
    from dlcore.access import Actor
    from dlcore.errors import NotFoundError
    from dlcore.store import Store, new_id
    from tests.conftest import churn_frame

    raw = Store.open(folder / "home", url=args.database_url)
    alice, dave = Actor("alice@example.com"), Actor("dave@example.com")
    shared = raw.as_actor(alice).create_workspace(f"Bench {new_id()}")
    owner = raw.as_actor(alice, shared)
    record, _ = datasets.register_bytes(owner, churn_frame(60).to_csv(index=False).encode(), "churn.csv")
    theirs = owner.create_run({"data": {}}, record.id, "mlp", "churn", 1)
    outsider = raw.as_actor(dave)
    own_record, _ = datasets.register_bytes(outsider, churn_frame(60, seed=1).to_csv(index=False).encode(), "c.csv")
    mine = outsider.create_run({"data": {}}, own_record.id, "mlp", "churn", 1)

    def once(run_id: str) -> float:
        started = time.perf_counter()
        try:
            outsider.run(run_id)
        except NotFoundError:
            pass
        return time.perf_counter() - started

    cases = {"another workspace's run": theirs, "an id that does not exist": new_id(), "their own run": mine}
    for run_id in cases.values():  # warm the pool and the statement cache
        for _ in range(50):
            once(run_id)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.reps):
        for name, run_id in cases.items():
            times[name].append(once(run_id))
    medians = {name: statistics.median(t) * 1e3 for name, t in times.items()}
    print(f"store.run(id) by a signed-in user, median of {args.reps}, alternating ({raw.engine.dialect.name})")
    for name, ms in medians.items():
        print(f"  {name:<28}{ms:8.3f} ms")
    other, missing = medians["another workspace's run"], medians["an id that does not exist"]
    print(f"ratio another workspace's run / missing id: {other / missing:.2f}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
