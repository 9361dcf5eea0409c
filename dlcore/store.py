"""The run store: datasets, runs, per-epoch metrics, scoring jobs, and artifact folders.

SQLAlchemy Core over SQLite (WAL) in ``$DLCORE_HOME`` by default, or any database URL (a
PostgreSQL server for a team) given as ``$DLCORE_DATABASE_URL``. Artifacts (uploads, models,
predictions) are files beside the database, always written to a temporary name and renamed,
so a crash or a full disk never leaves a half-written file under a real name.

Ids are random and unguessable (``secrets.token_urlsafe``): while there is no login, a link is
the only key to a dataset or a run.

On PostgreSQL many workers (or a cluster's dispatchers) claim jobs at once: a claim is one
statement, ``WITH picked AS (SELECT ... FOR UPDATE SKIP LOCKED) UPDATE ...``, so two claimers never
take the same row and never wait on each other; every transaction is one short statement or two,
never held across work. ``create_all`` upgrades a store made by an older version (new columns are added).
The artifact folder carries the store's id (``.dlcore-store-id``), so a worker on another machine
can check that it sees the same folder before it takes a job (``check_home``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa

from dlcore import config
from dlcore.errors import NotFoundError, StoreError

__all__ = ["Store", "DatasetRecord", "RunRecord", "ScoringRecord", "ExplanationRecord", "RUN_STATUSES", "EVALUATED", "new_id",
           "atomic_write", "this_worker", "display_url"]

RUN_STATUSES = ("queued", "running", "done", "stopped", "cancelled", "failed", "interrupted")
FINISHED = ("done", "stopped", "cancelled", "failed", "interrupted")
EVALUATED = ("done", "stopped")  # finished with a leaderboard and saved models
# A running run whose worker has not written a heartbeat for this long has lost its worker.
STALE_SECONDS = 45.0
# Beside the artifacts: the store's id, the same as in its database (see ``check_home``).
HOME_MARK = ".dlcore-store-id"

metadata = sa.MetaData()

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="tabular"),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("n_cols", sa.Integer, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("profile_json", sa.Text, nullable=False),
    sa.Column("report_json", sa.Text, nullable=False),
    sa.Column("target", sa.Text),
    sa.Column("task", sa.String(16)),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("dataset_id", sa.String(32), sa.ForeignKey("datasets.id"), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("spec_json", sa.Text, nullable=False),
    sa.Column("template", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("task", sa.String(16)),
    sa.Column("metric", sa.String(32)),
    sa.Column("higher_is_better", sa.Boolean),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("worker", sa.Text),  # host:pid of the process training it; "ray:host:pid" while a dispatcher hands it over
    sa.Column("node", sa.Text),  # the machine (a cluster's node: its address and id) that trained it; added later
    sa.Column("stop_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("epochs_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("epochs_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("progress", sa.Float, nullable=False, server_default="0"),
    sa.Column("phase", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("test_score", sa.Float),
    sa.Column("result_json", sa.Text),
    sa.Column("versions_json", sa.Text),
)

epochs = sa.Table(
    "epochs",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True),
    sa.Column("loss", sa.Float),
    sa.Column("val_loss", sa.Float),
    sa.Column("metric", sa.Float),
    sa.Column("val_metric", sa.Float),
    sa.Column("seconds", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
)

scorings = sa.Table(
    "scorings",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("input_name", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("message", sa.Text),
    sa.Column("summary_json", sa.Text),
)

explanations = sa.Table(
    "explanations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # "global" (the whole model) or "row"
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("request_json", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("message", sa.Text),
    sa.Column("summary_json", sa.Text),
)


meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def new_id() -> str:
    """A random, URL-safe, unguessable id (96 bits) that never starts with "-", so a shell or
    the CLI never reads it as an option."""
    while (found := secrets.token_urlsafe(12)).startswith("-"):
        pass
    return found


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    sha256: str
    name: str
    kind: str
    format: str
    n_rows: int
    n_cols: int
    size_bytes: int
    created_at: float
    profile: dict
    report: dict
    target: str | None
    task: str | None

    @classmethod
    def from_row(cls, row: Any) -> "DatasetRecord":
        m = dict(row._mapping)
        m["profile"] = _loads(m.pop("profile_json"))
        m["report"] = _loads(m.pop("report_json"))
        return cls(**m)


@dataclass(frozen=True)
class RunRecord:
    id: str
    dataset_id: str
    status: str
    spec: dict
    template: str
    target: str
    task: str | None
    metric: str | None
    higher_is_better: bool | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    worker: str | None
    stop_requested: bool
    epochs_done: int
    epochs_total: int
    progress: float
    phase: str | None
    message: str | None
    test_score: float | None
    result: dict | None
    versions: dict | None = field(default=None)
    node: str | None = field(default=None)

    @classmethod
    def from_row(cls, row: Any) -> "RunRecord":
        m = dict(row._mapping)
        m["spec"] = _loads(m.pop("spec_json"))
        m["result"] = _loads(m.pop("result_json"))
        m["versions"] = _loads(m.pop("versions_json"))
        m["stop_requested"] = bool(m["stop_requested"])
        return cls(**m)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or (self.heartbeat_at if self.status != "running" else time.time())
        return max(0.0, (end or time.time()) - self.started_at)


@dataclass(frozen=True)
class ScoringRecord:
    id: str
    run_id: str
    model: str
    status: str
    input_name: str
    created_at: float
    finished_at: float | None
    message: str | None
    summary: dict | None

    @classmethod
    def from_row(cls, row: Any) -> "ScoringRecord":
        m = dict(row._mapping)
        m["summary"] = _loads(m.pop("summary_json"))
        return cls(**m)


@dataclass(frozen=True)
class ExplanationRecord:
    id: str
    run_id: str
    model: str
    kind: str
    status: str
    request: dict | None
    created_at: float
    finished_at: float | None
    message: str | None
    summary: dict | None

    @classmethod
    def from_row(cls, row: Any) -> "ExplanationRecord":
        m = dict(row._mapping)
        m["request"] = _loads(m.pop("request_json"))
        m["summary"] = _loads(m.pop("summary_json"))
        return cls(**m)


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    # The suffix is kept (Keras insists on ".keras") and the leading dot hides it from listings.
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        # Inside the try: a read-only data folder first refuses the new folder, and says so plainly.
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(
            f"Could not write {path.name} to the data folder {path.parent}: {exc.strerror or exc}. "
            "Free some disk space or make the folder writable, then try again; nothing stored was changed."
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def this_worker() -> str:
    """This process, as the store records who works on a job: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


_this_worker = this_worker  # the name older code and tests use


def display_url(url: str) -> str:
    """A database URL fit for a message: the password hidden."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unreadable database URL)"


class Store:
    """The store of one server: a database plus an artifact folder.

    >>> store = Store.open()            # $DLCORE_HOME, or ./.dlcore
    >>> store.list_runs(limit=5)        # newest first
    """

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.home = Path(home)
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"The data folder {self.home} cannot be created ({exc.strerror}). "
                "Set DLCORE_HOME to a writable folder."
            ) from None
        is_sqlite = url.startswith("sqlite")
        self.engine = sa.create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False} if is_sqlite else {},
            pool_pre_ping=not is_sqlite,
        )
        if is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            self.create_all()
        except sa.exc.OperationalError as exc:
            where = f"Check that {self.home} is writable." if is_sqlite else (
                f"Check DLCORE_DATABASE_URL ({display_url(url)}) and that the database server is running.")
            raise StoreError(f"The store database could not be opened ({exc.orig}). {where}") from None

    def create_all(self) -> None:
        """Create the tables, or upgrade a store made by an older version: a table it lacks is
        created, a column it lacks is added (every later column may be empty). Then make sure
        the store has an id, written beside the artifacts too (see ``check_home``)."""
        for attempt in range(3):
            try:
                metadata.create_all(self.engine)
                break
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
                # PostgreSQL: another process created the same table at the same moment.
                if attempt == 2:
                    raise
        inspector = sa.inspect(self.engine)
        for table in metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                ddl = sa.schema.CreateColumn(column).compile(dialect=self.engine.dialect)
                try:
                    with self.engine.begin() as conn:
                        conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))
                except (sa.exc.OperationalError, sa.exc.ProgrammingError):
                    # Another process upgrading the same store at the same moment added it first.
                    if column.name not in {c["name"] for c in sa.inspect(self.engine).get_columns(table.name)}:
                        raise
        self.store_id = self._store_id()

    def _store_id(self) -> str:
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "store_id")).scalar()
        if found is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(meta.insert().values(key="store_id", value=new_id()))
            except sa.exc.IntegrityError:  # another process made it first: use that one
                pass
            with self.engine.connect() as conn:
                found = conn.execute(sa.select(meta.c.value).where(meta.c.key == "store_id")).scalar()
            # The process that gave the store its id writes it beside the artifacts; a store made
            # before ids existed gets it from whoever opens it first (the app or a worker).
            self._write_mark(found)
        elif self._database_inside_home() and not (self.home / HOME_MARK).exists():
            self._write_mark(found)  # the database is inside the folder: the folder is this one
        return found

    def _database_inside_home(self) -> bool:
        database = sa.engine.make_url(self.url).database if self.url.startswith("sqlite") else None
        return bool(database) and Path(database).resolve().parent == self.home.resolve()

    def _write_mark(self, store_id: str) -> None:
        with contextlib.suppress(StoreError):  # a read-only folder says so where it is written to
            with atomic_write(self.home / HOME_MARK) as tmp:
                tmp.write_text(store_id + "\n")

    def check_home(self) -> None:
        """Refuse to work here unless this machine sees the store's artifact folder: the folder
        carries the id the database holds. A worker or a cluster node calls this before it takes
        a job, so a node that mounts nothing (or another folder) at the path takes none."""
        mark = self.home / HOME_MARK
        try:
            seen = mark.read_text().strip()
        except OSError as exc:
            seen, why = None, f"{mark.name} cannot be read there ({exc.strerror or exc})"
        else:
            why = "it holds another store's files"
        if seen != self.store_id:
            raise StoreError(
                f"This machine ({socket.gethostname()}) cannot see the data folder of the store at "
                f"{display_url(self.url)}: {self.home} is not that folder ({why}). Every node must see the "
                "shared data folder at the same path: mount it there and set DLCORE_HOME to it; until then "
                "this node takes no jobs."
            )

    @classmethod
    def open(cls, home: Path | str | None = None, url: str | None = None) -> "Store":
        """Open the store named by the environment (or by ``home`` / ``url``)."""
        home_path = Path(home).resolve() if home is not None else config.home()
        if url is None:
            url = os.environ.get("DLCORE_DATABASE_URL") or f"sqlite:///{home_path / 'store.db'}"
        return cls(url, home_path)

    # ---- folders -------------------------------------------------------------------------
    def dataset_dir(self, dataset_id: str) -> Path:
        return self.home / "datasets" / dataset_id

    def run_dir(self, run_id: str) -> Path:
        return self.home / "runs" / run_id

    def scoring_dir(self, scoring_id: str) -> Path:
        return self.home / "scorings" / scoring_id

    # ---- datasets ------------------------------------------------------------------------
    def dataset_by_hash(self, sha256: str) -> DatasetRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.sha256 == sha256)).first()
        return DatasetRecord.from_row(row) if row else None

    def has_dataset_of_size(self, size_bytes: int) -> bool:
        """Whether any stored dataset came from a file of this many bytes: an upload of another
        size cannot be one already stored, so it need not wait for its hash (``register_bytes``)."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(datasets.c.id).where(datasets.c.size_bytes == size_bytes).limit(1)).first() is not None

    def insert_dataset(self, **values: Any) -> DatasetRecord:
        values = dict(values)
        values["profile_json"] = json.dumps(values.pop("profile"))
        values["report_json"] = json.dumps(values.pop("report"))
        values.setdefault("created_at", time.time())
        with self.engine.begin() as conn:
            conn.execute(datasets.insert().values(**values))
        return self.dataset(values["id"])

    def dataset(self, dataset_id: str) -> DatasetRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id)).first()
        if row is None:
            raise NotFoundError(
                f"No dataset with id {dataset_id!r} on this server. The link may be mistyped, or the "
                "dataset was uploaded to another server: upload the file again on the Data page."
            )
        return DatasetRecord.from_row(row)

    def list_datasets(self, limit: int = 200) -> list[DatasetRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(datasets).order_by(datasets.c.created_at.desc()).limit(limit))
            return [DatasetRecord.from_row(r) for r in rows]

    def set_dataset_target(self, dataset_id: str, target: str | None, task: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(datasets.update().where(datasets.c.id == dataset_id).values(target=target, task=task))

    # ---- runs ----------------------------------------------------------------------------
    def create_run(self, spec: dict, dataset_id: str, template: str, target: str, epochs_total: int,
                   claim: bool = False, held_by: str | None = None) -> str:
        """Queue a run; with ``claim`` it is created already running for this process (the CLI);
        with ``held_by`` it is created handed to that cluster dispatcher (``reserve_runs``)."""
        self.dataset(dataset_id)  # a clear message if the dataset is gone
        run_id = new_id()
        now = time.time()
        claimed = {"status": "running", "started_at": now, "heartbeat_at": now, "worker": this_worker(),
                   "node": socket.gethostname()} if claim else {}
        if held_by and not claim:
            claimed = {"worker": held_by, "heartbeat_at": now}
        with self.engine.begin() as conn:
            conn.execute(
                runs.insert().values(
                    id=run_id,
                    dataset_id=dataset_id,
                    status="queued",
                    spec_json=json.dumps(spec),
                    template=template,
                    target=target,
                    created_at=time.time(),
                    epochs_total=epochs_total,
                    phase="Waiting for a free worker",
                ).values(**claimed)
            )
        return run_id

    def run(self, run_id: str) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFoundError(
                f"No run with id {run_id!r} on this server. The link may be mistyped or come from "
                "another server: see the Runs page for the runs kept here."
            )
        return RunRecord.from_row(row)

    def list_runs(self, dataset_id: str | None = None, limit: int = 200, statuses: tuple[str, ...] | None = None) -> list[RunRecord]:
        query = sa.select(runs).order_by(runs.c.created_at.desc()).limit(limit)
        if dataset_id:
            query = query.where(runs.c.dataset_id == dataset_id)
        if statuses:
            query = query.where(runs.c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [RunRecord.from_row(r) for r in conn.execute(query)]

    def update_run(self, run_id: str, **values: Any) -> None:
        for key in ("result", "versions"):
            if key in values:
                values[f"{key}_json"] = json.dumps(values.pop(key))
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(**values))

    def _take(self, table: sa.Table, where: tuple, n: int, **values: Any) -> list[str]:
        """Set ``values`` on up to ``n`` of the oldest rows matching ``where``; their ids.

        The UPDATE repeats ``where``, so a row changed by someone else since it was picked is
        left alone: safe with many workers on one database. On PostgreSQL the rows are picked
        with ``FOR UPDATE SKIP LOCKED`` in the same statement, so concurrent claimers never take
        one row twice and never queue behind each other's locks (SQLite has one writer at a time).
        """
        if self.engine.dialect.name == "postgresql":
            # A CTE runs once; "id IN (SELECT ... LIMIT n FOR UPDATE)" may be run again for
            # each row and take more than n (seen here: a claim of one took two).
            picked = (sa.select(table.c.id).where(*where).order_by(table.c.created_at).limit(n)
                      .with_for_update(skip_locked=True).cte("picked"))
            with self.engine.begin() as conn:
                return [r[0] for r in conn.execute(
                    table.update().where(table.c.id == picked.c.id, *where).values(**values).returning(table.c.id))]
        with self.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(
                sa.select(table.c.id).where(*where).order_by(table.c.created_at).limit(n + 4))]
        taken: list[str] = []
        for row_id in ids:
            if len(taken) == n:
                break
            with self.engine.begin() as conn:
                if conn.execute(table.update().where(table.c.id == row_id, *where).values(**values)).rowcount:
                    taken.append(row_id)
        return taken

    def _claim(self, table: sa.Table, *where: Any, **values: Any) -> str | None:
        """Mark the oldest queued row of ``table`` as running; None when nothing is queued."""
        taken = self._take(table, (table.c.status == "queued", *where), 1, status="running", **values)
        return taken[0] if taken else None

    def claim_next_run(self) -> str | None:
        """Claim the oldest queued run for this process (one no dispatcher has handed to a cluster)."""
        now = time.time()
        return self._claim(runs, runs.c.worker.is_(None), started_at=now, heartbeat_at=now, worker=this_worker(),
                           node=socket.gethostname(), phase="Starting")

    def reserve_runs(self, owner: str, n: int, phase: str, run_id: str | None = None) -> list[str]:
        """Hand up to ``n`` queued runs (or just ``run_id``) to ``owner`` (a cluster dispatcher,
        ``ray:host:pid``): they stay queued, with ``phase`` saying where they wait, until a node
        claims them (``claim_run``); no local worker takes them meanwhile."""
        where = (runs.c.status == "queued", runs.c.worker.is_(None), *((runs.c.id == run_id,) if run_id else ()))
        return self._take(runs, where, n, worker=owner, heartbeat_at=time.time(), phase=phase)

    def claim_run(self, run_id: str, node: str) -> bool:
        """Claim one queued run for this process on ``node`` (a cluster task that starts it).
        False when it is no longer queued (stopped meanwhile, or claimed by another)."""
        now = time.time()
        return bool(self._take(runs, (runs.c.id == run_id, runs.c.status == "queued"), 1, status="running",
                               started_at=now, heartbeat_at=now, worker=this_worker(), node=node, phase="Starting"))

    def touch_reserved(self, owner: str, phase: str | None = None) -> None:
        """A dispatcher's heartbeat for the queued runs it holds (and why they wait, if given)."""
        values: dict[str, Any] = {"heartbeat_at": time.time()}
        if phase is not None:
            values["phase"] = phase
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.status == "queued", runs.c.worker == owner).values(**values))

    def note_queued(self, phase: str) -> int:
        """Say on every queued run why it waits (shown on its page); the number of runs noted."""
        with self.engine.begin() as conn:
            return conn.execute(runs.update().where(runs.c.status == "queued").values(phase=phase)).rowcount

    def fail_run(self, run_id: str, message: str) -> bool:
        """Mark a running run failed with ``message`` (its epochs stay); False if it had already ended."""
        with self.engine.begin() as conn:
            return bool(conn.execute(runs.update().where(runs.c.id == run_id, runs.c.status == "running").values(
                status="failed", finished_at=time.time(), phase="Failed", message=message)).rowcount)

    def heartbeat(self, run_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(heartbeat_at=time.time()))

    def request_stop(self, run_id: str) -> None:
        """Ask a run to stop after its current batch; a queued run is stopped at once."""
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(stop_requested=True))
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "queued")
                .values(status="cancelled", finished_at=time.time(), phase="Cancelled before it started",
                        message="Cancelled before training started: nothing was trained.")
            )

    def stop_requested(self, run_id: str) -> bool:
        with self.engine.connect() as conn:
            return bool(conn.execute(sa.select(runs.c.stop_requested).where(runs.c.id == run_id)).scalar())

    def recover_interrupted(self, stale_after: float = STALE_SECONDS) -> list[str]:
        """Mark runs whose worker is gone as interrupted; their epochs so far stay in the store.

        A worker is gone when it ran on this host and its process no longer exists, or when it
        has written no heartbeat for ``stale_after`` seconds (a worker on another machine).
        """
        now = time.time()
        host = socket.gethostname()
        lost = []
        dead: set[str] = set()
        for run in self.list_runs(statuses=("running",), limit=10_000):
            worker_host, _, pid = (run.worker or ":").rpartition(":")
            dead_here = worker_host == host and pid.isdigit() and not _pid_alive(int(pid))
            stale = (run.heartbeat_at or 0) < now - stale_after
            if dead_here:
                dead.add(run.id)
            if dead_here or stale:
                lost.append(run.id)
        marked = []
        for run_id in lost:
            with self.engine.begin() as conn:
                changed = conn.execute(
                    runs.update()
                    .where(runs.c.id == run_id, runs.c.status == "running",
                           # a heartbeat written since the look above means the worker lives
                           sa.or_(runs.c.heartbeat_at.is_(None), runs.c.heartbeat_at < now - stale_after)
                           if run_id not in dead else sa.true())
                    .values(status="interrupted", finished_at=now, phase="Interrupted",
                            message="The worker training this run stopped (the server was restarted or the "
                                    "process ended). The epochs so far are kept; use Rerun to train it again.")
                ).rowcount
            if changed:
                marked.append(run_id)
        self.release_reservations(stale_after)
        return marked

    def release_reservations(self, stale_after: float = STALE_SECONDS) -> list[str]:
        """Put back in the queue the runs held by a dispatcher that is gone (its process ended on
        this host, or it has not touched them for ``stale_after`` seconds), for the next one."""
        now = time.time()
        host = socket.gethostname()
        gone = []
        for run in self.list_runs(statuses=("queued",), limit=10_000):
            if not run.worker:
                continue
            owner_host, _, pid = run.worker.removeprefix("ray:").rpartition(":")
            if (owner_host == host and pid.isdigit() and not _pid_alive(int(pid))) or (run.heartbeat_at or 0) < now - stale_after:
                gone.append((run.id, run.worker))
        released = []
        for run_id, owner in gone:
            with self.engine.begin() as conn:
                if conn.execute(runs.update().where(runs.c.id == run_id, runs.c.status == "queued", runs.c.worker == owner)
                                .values(worker=None, phase="Waiting for a free worker")).rowcount:
                    released.append(run_id)
        return released

    def fail_runs_of_worker(self, worker: str, message: str) -> list[str]:
        """Mark the runs a dead worker (``host:pid``) was training as failed, with the reason."""
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(
                sa.select(runs.c.id).where(runs.c.status == "running", runs.c.worker == worker))]
            for run_id in ids:
                conn.execute(runs.update().where(runs.c.id == run_id, runs.c.status == "running").values(
                    status="failed", finished_at=time.time(), phase="Failed", message=message))
        return ids

    # ---- epochs --------------------------------------------------------------------------
    def add_epoch(self, run_id: str, epoch: int, *, loss: float | None, val_loss: float | None,
                  metric: float | None, val_metric: float | None, seconds: float, epochs_total: int | None = None) -> None:
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(epochs.insert().values(
                run_id=run_id, epoch=epoch, loss=loss, val_loss=val_loss, metric=metric,
                val_metric=val_metric, seconds=seconds, created_at=now,
            ))
            values: dict[str, Any] = {"epochs_done": epoch, "heartbeat_at": now}
            if epochs_total:
                values["progress"] = min(1.0, epoch / epochs_total)
            conn.execute(runs.update().where(runs.c.id == run_id).values(**values))

    def epochs(self, run_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(epochs).where(epochs.c.run_id == run_id).order_by(epochs.c.epoch))
            return [dict(r._mapping) for r in rows]

    # ---- scoring jobs --------------------------------------------------------------------
    def create_scoring(self, run_id: str, model: str, input_name: str, scoring_id: str | None = None) -> str:
        scoring_id = scoring_id or new_id()
        with self.engine.begin() as conn:
            conn.execute(scorings.insert().values(
                id=scoring_id, run_id=run_id, model=model, status="queued", input_name=input_name,
                created_at=time.time(),
            ))
        return scoring_id

    def scoring(self, scoring_id: str) -> ScoringRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(scorings).where(scorings.c.id == scoring_id)).first()
        if row is None:
            raise NotFoundError(f"No scoring job with id {scoring_id!r} on this server.")
        return ScoringRecord.from_row(row)

    def claim_next_scoring(self) -> str | None:
        return self._claim(scorings)

    def finish_scoring(self, scoring_id: str, status: str, message: str | None = None, summary: dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(scorings.update().where(scorings.c.id == scoring_id).values(
                status=status, message=message, finished_at=time.time(),
                summary_json=json.dumps(summary) if summary is not None else None,
            ))


    # ---- explanation jobs ----------------------------------------------------------------
    def create_explanation(self, run_id: str, model: str, kind: str, request: dict | None = None) -> str:
        explanation_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(explanations.insert().values(
                id=explanation_id, run_id=run_id, model=model, kind=kind, status="queued",
                request_json=json.dumps(request) if request is not None else None, created_at=time.time(),
            ))
        return explanation_id

    def explanation(self, explanation_id: str) -> ExplanationRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(explanations).where(explanations.c.id == explanation_id)).first()
        if row is None:
            raise NotFoundError(f"No explanation with id {explanation_id!r} on this server.")
        return ExplanationRecord.from_row(row)

    def latest_explanation(self, run_id: str, model: str, kind: str) -> ExplanationRecord | None:
        """The newest explanation job of this kind for one model of a run, whatever its status."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(explanations).where(explanations.c.run_id == run_id, explanations.c.model == model,
                                              explanations.c.kind == kind)
                .order_by(explanations.c.created_at.desc()).limit(1)
            ).first()
        return ExplanationRecord.from_row(row) if row else None

    def explanation_progress(self, explanation_id: str, message: str) -> None:
        """Say how far a running explanation has got (shown on the page while it works)."""
        with self.engine.begin() as conn:
            conn.execute(explanations.update().where(explanations.c.id == explanation_id,
                                                     explanations.c.status == "running").values(message=message))

    def claim_next_explanation(self) -> str | None:
        return self._claim(explanations)

    def finish_explanation(self, explanation_id: str, status: str, message: str | None = None,
                           summary: dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(explanations.update().where(explanations.c.id == explanation_id).values(
                status=status, message=message, finished_at=time.time(),
                summary_json=json.dumps(summary) if summary is not None else None,
            ))

def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (exited, not yet reaped) still answers signal 0: look at its state.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
