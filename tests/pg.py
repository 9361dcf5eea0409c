"""A throw-away PostgreSQL server for the tests: Debian's ``postgresql`` package (installed by the
README's test command), a fresh cluster in a temporary folder, reachable only through a Unix
socket in that folder (or on loopback, for the cluster tests), stopped and removed at the end.

    server = Postgres.start()               # initdb + pg_ctl start; a few seconds
    url = server.new_database()             # postgresql+psycopg://... of an empty database
    server.stop()

As root (CI) the server runs as Debian's ``postgres`` user: PostgreSQL refuses to run as root.
Durability is off (``fsync``, ``synchronous_commit``): the data is thrown away anyway.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["Postgres", "pg_bin"]

INSTALL = "apt-get install -y postgresql"


def pg_bin(name: str) -> str:
    """A PostgreSQL program: Debian keeps them in /usr/lib/postgresql/VERSION/bin, off the PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}")) or ([shutil.which(name)] if shutil.which(name) else [])
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed; the tests need it: {INSTALL}")
    return found[-1]


def server_user() -> str | None:
    """The user the server runs as: ``postgres`` when we are root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(f"PostgreSQL cannot run as root and there is no postgres user: {INSTALL}") from None
    return "postgres"


class Postgres:
    def __init__(self, folder: Path, host: str, port: int) -> None:
        self.folder = folder
        self.host = host  # a socket folder, or an address
        self.port = port

    @classmethod
    def start(cls, listen: str | None = None, port: int = 5432) -> "Postgres":
        """A fresh server; ``listen`` an address (e.g. 127.0.0.1) or None for the Unix socket only."""
        user = server_user()
        # Not under pytest's temporary folders: those are private to root, and the server runs as postgres.
        folder = Path(tempfile.mkdtemp(prefix="dlcore-pg-"))
        data = folder / "data"
        if user:
            shutil.chown(folder, user)
        run_as = {"user": user} if user else {}
        subprocess.run([pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync", "--locale=C"], check=True, capture_output=True, **run_as)
        options = (f"-k {folder} -p {port} -c listen_addresses='{listen or ''}' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        started = subprocess.run([pg_bin("pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60",
                                  "-o", options, "start"], capture_output=True, text=True, **run_as)
        if started.returncode:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{log[-2000:]}")
        return cls(folder, listen or str(folder), port)

    def url(self, database: str = "postgres") -> str:
        if self.host.startswith("/"):
            return f"postgresql+psycopg://postgres@/{database}?host={self.host}&port={self.port}"
        return f"postgresql+psycopg://postgres@{self.host}:{self.port}/{database}"

    def _admin(self, sql: str) -> list[tuple]:
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user="postgres", dbname="postgres", autocommit=True) as conn:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

    def new_database(self) -> str:
        """The URL of a new, empty database (one per test)."""
        name = f"t_{secrets.token_hex(6)}"
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {_name(url)} WITH (FORCE)")

    def sql(self, url: str, query: str) -> list[tuple]:
        """Run ``query`` on the database of ``url``; its rows."""
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user="postgres", dbname=_name(url), autocommit=True) as conn:
            cur = conn.execute(query)
            return cur.fetchall() if cur.description else []

    def stop(self) -> None:
        user = server_user()
        subprocess.run([pg_bin("pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True, **({"user": user} if user else {}))
        shutil.rmtree(self.folder, ignore_errors=True)


def _name(url: str) -> str:
    import sqlalchemy as sa

    return sa.engine.make_url(url).database
