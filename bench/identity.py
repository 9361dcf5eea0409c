"""Team sign-in: what knowing a user by the provider's account costs, and what upgrading a store
whose workspace names were unique across the server takes.

- ``signed_in_actor`` (the claims checked: verified e-mail, one address, allowed domain) runs at
  every render; against one checked read by id (``store.run``), which a render does a dozen times;
- ``as_actor`` (once per session) for a web sign-in (account looked up by issuer and subject)
  against one named by e-mail only (the CLI);
- the migration of a SQLite store with ``--workspaces`` workspaces (its table made again).

    python bench/identity.py [--workspaces 2000] [--reps 300]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def per_call(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    started = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - started) / reps


def main() -> None:
    from dlcore import access
    from dlcore.access import Actor
    from dlcore.store import Store, runs, workspaces

    parser = argparse.ArgumentParser()
    parser.add_argument("--workspaces", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=300)
    args = parser.parse_args()
    os.environ.update(DLCORE_AUTH="team", DLCORE_ALLOWED_DOMAINS="example.com", DLCORE_ADMINS="root@example.com")
    claims = {"iss": "https://id.example.com", "sub": "alice-account", "email": "Alice@Example.com",
              "email_verified": True, "name": "Alice"}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        alice = store.as_actor(access.signed_in_actor(claims))
        with store.engine.begin() as conn:  # a run row is all a checked read needs
            conn.execute(sa.text("INSERT INTO datasets (id, sha256, name, format, n_rows, n_cols, size_bytes, "
                                 "created_at, profile_json, report_json, workspace_id) VALUES ('d', 'h', 'x.csv', "
                                 "'csv', 1, 1, 1, 0, '{}', '{}', :w)"), {"w": alice.workspace_id})
            conn.execute(runs.insert().values(id="r", dataset_id="d", status="done", spec_json="{}", template="mlp",
                                              target="y", created_at=0, workspace_id=alice.workspace_id))
        claim = per_call(lambda: access.signed_in_actor(claims), args.reps)
        read = per_call(lambda: alice.run("r"), args.reps)
        print(f"signed_in_actor: {claim * 1e6:.0f} µs; store.run(id) checked: {read * 1e6:.0f} µs; "
              f"ratio {claim / read:.3f}")
        web = per_call(lambda: store.as_actor(access.signed_in_actor(claims)), args.reps // 3)
        cli = per_call(lambda: store.as_actor(Actor("alice@example.com")), args.reps // 3)
        print(f"as_actor, web sign-in: {web * 1e3:.2f} ms; by e-mail (CLI): {cli * 1e3:.2f} ms; ratio {web / cli:.2f}")

        old = Path(tmp) / "old.db"
        engine = sa.create_engine(f"sqlite:///{old}")
        meta = sa.MetaData()
        table = sa.Table("workspaces", meta, sa.Column("id", sa.String(32), primary_key=True),
                         sa.Column("name", sa.Text, nullable=False, unique=True),
                         sa.Column("personal_of", sa.Text, unique=True), sa.Column("created_at", sa.Float, nullable=False),
                         sa.Column("created_by", sa.Text))
        meta.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), [{"id": f"w{i}", "name": f"Team {i}", "created_at": i}
                                          for i in range(args.workspaces)])
        engine.dispose()
        started = time.perf_counter()
        upgraded = Store(f"sqlite:///{old}", Path(tmp) / "old-home")
        took = time.perf_counter() - started
        fresh = per_call(lambda: Store(f"sqlite:///{old}", Path(tmp) / "old-home"), 3)
        with upgraded.engine.connect() as conn:
            kept = conn.execute(sa.select(sa.func.count()).select_from(workspaces)).scalar()
        print(f"opening a store with {args.workspaces} workspaces, upgraded: {took:.3f} s, {kept} kept; "
              f"opening it again: {fresh:.3f} s; ratio {took / fresh:.2f}")


if __name__ == "__main__":
    main()
