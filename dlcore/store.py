"""The run store: datasets, runs, per-epoch metrics, scoring jobs, and artifact folders.

SQLAlchemy Core over SQLite (WAL) in ``$DLCORE_HOME`` by default, or any database URL (a
PostgreSQL server for a team) given as ``$DLCORE_DATABASE_URL``. Artifacts (uploads, models,
predictions) are files beside the database, always written to a temporary name and renamed,
so a crash or a full disk never leaves a half-written file under a real name.

Ids are random and unguessable (``secrets.token_urlsafe``). Who may read or change a record is
decided here too: ``as_actor`` gives a store bound to a user (and their current workspace) whose
every read by id, list and queued job asks ``allowed`` (see ``dlcore.access``); a record of
another workspace raises the very ``NotFoundError`` of an id that does not exist. The unbound
store (workers, the CLI's administration, tests) acts as the system and sees everything.

On PostgreSQL many workers (or a cluster's dispatchers) claim jobs at once: a claim is one
statement, ``WITH picked AS (SELECT ... FOR UPDATE SKIP LOCKED) UPDATE ...``, so two claimers never
take the same row and never wait on each other; every transaction is one short statement or two,
never held across work. ``create_all`` upgrades a store made by an older version (new columns are added).
The artifact folder carries the store's id (``.dlcore-store-id``), so a worker on another machine
can check that it sees the same folder before it takes a job (``check_home``).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import sqlalchemy as sa

from dlcore import access, config
from dlcore.access import LOCAL_WORKSPACE, Actor
from dlcore.errors import AccessError, DeletedError, NotFoundError, SpecError, StoreError

__all__ = ["Store", "DatasetRecord", "RunRecord", "RunRow", "ScoringRecord", "ExplanationRecord", "RUN_STATUSES", "EVALUATED", "new_id",
           "atomic_write", "folder_with_room", "this_worker", "display_url"]

RUN_STATUSES = ("queued", "running", "done", "stopped", "cancelled", "failed", "interrupted")
FINISHED = ("done", "stopped", "cancelled", "failed", "interrupted")
EVALUATED = ("done", "stopped")  # finished with a leaderboard and saved models
# A running run whose worker has not written a heartbeat for this long has lost its worker.
STALE_SECONDS = 45.0
# Beside the artifacts: the store's id, the same as in its database (see ``check_home``).
HOME_MARK = ".dlcore-store-id"
# A record folder no row names is removed once nothing in it changed for this long: an upload
# writes its files before its row, and a large one may take minutes (``Store.sweep_orphans``).
ORPHAN_SECONDS = 3600.0

log = logging.getLogger("dlcore.store")

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
    # Added later (teams): the workspace that holds it (a store made before is migrated to the
    # built-in one), and who uploaded it.
    sa.Column("workspace_id", sa.String(32), index=True),
    sa.Column("created_by", sa.Text),
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
    sa.Column("workspace_id", sa.String(32), index=True),  # always its dataset's; added later
    sa.Column("created_by", sa.Text),  # the user who queued it: its worker acts for them
    # When the step named by ``phase`` began (a baseline's fit, a trial), so a live page says how long
    # it has taken so far; added later.
    sa.Column("step_started_at", sa.Float),
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

# The epochs of each trial of a search, numbered within the trial: the live page draws the current
# trial's curves as its epochs end, and a finished run the chosen trial's. (``epochs`` numbers every
# epoch of the run one after another, trials and folds alike.)
trial_epochs = sa.Table(
    "trial_epochs",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("trial", sa.Integer, primary_key=True),
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
    sa.Column("created_by", sa.Text),
    # The run whose model scored the file when it is not this run's own (a retrained challenger
    # promoted to be this run's model in use, ``dlcore.monitor``); added later.
    sa.Column("model_run_id", sa.String(32)),
)

# ---- a model at work (dlcore.monitor): outcomes that came back, the model in use -------------
outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("scoring_id", sa.String(32), nullable=False, index=True),  # the scored file they belong to
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.Column("summary_json", sa.Text, nullable=False),  # realized score, promised interval, sentence
)

model_changes = sa.Table(
    "model_changes",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id"), nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.Column("use_run_id", sa.String(32), nullable=False),  # the run whose model is now in use
    sa.Column("use_model", sa.Text, nullable=False),
    sa.Column("detail_json", sa.Text),  # the comparison behind a promotion, or "reverted"
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
    sa.Column("created_by", sa.Text),
)

# ---- teams (dlcore.access): workspaces, members, access requests, the audit log --------------
workspaces = sa.Table(
    "workspaces",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # Not unique: two teams may both call theirs "Sales", and a name says nothing of who exists
    # (a store made when it was unique loses that constraint in ``_migrate_identity``).
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("personal_of", sa.Text, unique=True),  # the user's email (of record) for a personal workspace
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.Text),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column("workspace_id", sa.String(32), sa.ForeignKey("workspaces.id"), primary_key=True),
    sa.Column("email", sa.Text, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("added_at", sa.Float, nullable=False),
    sa.Column("added_by", sa.Text),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("email", sa.Text, primary_key=True),  # the e-mail of record: shown, and matched by invitations
    sa.Column("name", sa.Text),
    sa.Column("first_seen", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("last_workspace", sa.String(32)),  # the one picked last: a new session opens there
    # The sign-in provider's account (OpenID Connect ``iss`` and ``sub``) that holds this e-mail;
    # empty until that account first signs in (a user known so far from the CLI or an older store).
    sa.Column("issuer", sa.Text),
    sa.Column("subject", sa.Text),
    sa.Index("ix_users_account", "issuer", "subject", unique=True),
)

access_requests = sa.Table(
    "access_requests",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # None when the id named nothing: the request is kept, and no owner sees it.
    sa.Column("workspace_id", sa.String(32), index=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("resource_id", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
)

audit = sa.Table(
    "audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.Float, nullable=False, index=True),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("workspace_id", sa.String(32), index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(16)),
    sa.Column("resource_id", sa.Text),
    sa.Column("detail", sa.Text),
)

# One row per sign-in (team mode): Streamlit's identity cookie is self-contained for 30 days, so
# the server keeps what ends a session (sign-out, an administrator, the time limit) here.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # access.session_key of the sign-in
    sa.Column("email", sa.Text, nullable=False, index=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("ended_by", sa.Text),  # the user (signed out) or the administrator who revoked it
)


# API tokens of the REST endpoint (``dlcore.api``): one workspace each, kept only as the SHA-256
# of the secret (shown once, at creation); a revoked token is deleted, its use stays in the audit log.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("workspace_id", sa.String(32), nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("created_by", sa.Text),
    sa.Column("last_used_at", sa.Float),
)

# The tables whose dead rows hold the data's names and values after a delete (``Store._scrub``).
SCRUBBED = ("datasets", "runs", "epochs", "scorings", "explanations", "audit", "access_requests",
            "outcomes", "model_changes")

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
    workspace_id: str | None = field(default=None)
    created_by: str | None = field(default=None)

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
    workspace_id: str | None = field(default=None)
    created_by: str | None = field(default=None)
    step_started_at: float | None = field(default=None)

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
class RunRow:
    """What a list of runs shows of one run (``Store.list_run_rows``): its record without the
    spec, the library versions and the result, of which only the deep model's verdict is kept."""

    id: str
    dataset_id: str
    status: str
    template: str
    target: str
    metric: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    test_score: float | None
    outcome: str | None  # the first verdict's outcome ("better", ...); None before there is one

    duration = RunRecord.duration


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
    created_by: str | None = field(default=None)
    model_run_id: str | None = field(default=None)

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
    created_by: str | None = field(default=None)

    @classmethod
    def from_row(cls, row: Any) -> "ExplanationRecord":
        m = dict(row._mapping)
        m["request"] = _loads(m.pop("request_json"))
        m["summary"] = _loads(m.pop("summary_json"))
        return cls(**m)


# The folders that hold one record's files each (``Store.dataset_dir``, ``run_dir``, ``scoring_dir``).
RECORD_AREAS = ("datasets", "runs", "scorings")
# Beside the artifacts: one empty file per deleted record, named by a hash of its id (no name of
# the data), which every write into that record's folder looks for (``atomic_write``).
TOMBSTONES = ".deleted"
TOMBSTONE_DAYS = 30.0  # a job still writing for a record deleted this long ago is not waited for


def _tombstone(home: Path, record_id: str) -> Path:
    return home / TOMBSTONES / hashlib.sha256(record_id.encode()).hexdigest()[:32]


def _record_folder(path: Path) -> Path | None:
    """The folder of the record ``path`` lies in (``HOME/runs/ID`` for ``HOME/runs/ID/explain/x.json``)."""
    for folder in path.parents:
        if folder.parent.name in RECORD_AREAS:
            return folder
    return None


def _is_deleted(folder: Path | None) -> bool:
    return folder is not None and _tombstone(folder.parent.parent, folder.name).exists()


def _deleted_meanwhile(folder: Path) -> DeletedError:
    """Remove what a job wrote for a record deleted while it ran (the delete's own removal may
    have run before this write); the error that ends the job."""
    shutil.rmtree(folder, ignore_errors=True)
    return DeletedError(f"{folder.parent.name[:-1].title()} {folder.name} was deleted while this job ran; "
                        "nothing more of it is written.")


@contextlib.contextmanager
def atomic_write(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    A file of a deleted record (a run deleted while it trains, on this machine or a cluster node)
    is never written back: a write into its folder raises ``DeletedError`` before it starts, and
    one that lands as the record is deleted removes the folder again. The delete buries the id
    first (``Store._bury``) and looks after this rename, so one of the two always sees the other."""
    # The suffix is kept (Keras insists on ".keras") and the leading dot hides it from listings.
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    record = _record_folder(path)
    if _is_deleted(record):
        raise _deleted_meanwhile(record)
    try:
        # Inside the try: a read-only data folder first refuses the new folder, and says so plainly.
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        if _is_deleted(record):  # its folder was removed under it
            raise _deleted_meanwhile(record) from None
        raise StoreError(_cannot_write(path.name, path.parent, exc.strerror or str(exc))) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    if _is_deleted(record):
        raise _deleted_meanwhile(record)


def _cannot_write(what: str, folder: Path, reason: str) -> str:
    return (f"Could not write {what} to the data folder {folder}: {reason}. "
            "Free some disk space or make the folder writable, then try again; nothing stored was changed.")


def folder_with_room(folder: Path, what: str, need_bytes: int) -> None:
    """Make ``folder`` for files written after an upload has answered, and check now that they
    can be: a read-only data folder, or one without room for ``need_bytes`` (and a megabyte more),
    refuses the upload in the words of ``atomic_write`` before anything is stored."""
    import errno

    try:
        folder.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(folder).free
    except OSError as exc:
        raise StoreError(_cannot_write(what, folder, exc.strerror or str(exc))) from None
    if free < need_bytes + 2**20:
        raise StoreError(_cannot_write(what, folder, f"{os.strerror(errno.ENOSPC)} ({free / 1e6:,.1f} MB free, "
                                                     f"{need_bytes / 1e6:,.1f} MB needed)"))


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

    # Unbound: the system (workers, administration). ``as_actor`` binds a copy to a user.
    actor: Actor | None = None
    workspace_id: str | None = None
    # ``remembering_roles``: each (user, workspace) role asked once while this copy lives (one page
    # render); None asks the database every time.
    _roles: dict | None = None

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
        self._migrate_to_workspaces()
        self._migrate_identity()

    def _migrate_to_workspaces(self) -> None:
        """The built-in user's workspace exists, and every record made before workspaces (or by
        the system) belongs to it: a store from an older version opens with nothing lost."""
        with contextlib.suppress(sa.exc.IntegrityError):  # another process made it first
            with self.engine.begin() as conn:
                if conn.execute(sa.select(workspaces.c.id).where(workspaces.c.id == LOCAL_WORKSPACE)).first() is None:
                    now = time.time()
                    conn.execute(workspaces.insert().values(id=LOCAL_WORKSPACE, name="Personal",
                                                            personal_of=access.LOCAL.email, created_at=now))
                    conn.execute(members.insert().values(workspace_id=LOCAL_WORKSPACE, email=access.LOCAL.email,
                                                         role="owner", added_at=now))
        with self.engine.begin() as conn:
            for table in (datasets, runs):
                conn.execute(table.update().where(table.c.workspace_id.is_(None)).values(workspace_id=LOCAL_WORKSPACE))

    def _migrate_identity(self) -> None:
        """A store made when workspace names were unique across the server loses that constraint
        (it let anyone take the name of a colleague's personal workspace, and told outsiders which
        names exist); users get their sign-in account's index. Safe to run from many processes."""
        with contextlib.suppress(sa.exc.IntegrityError, sa.exc.ProgrammingError):  # made by another process
            with self.engine.begin() as conn:
                conn.execute(sa.text("CREATE UNIQUE INDEX IF NOT EXISTS ix_users_account ON users (issuer, subject)"))
        unique_names = [c for c in sa.inspect(self.engine).get_unique_constraints("workspaces")
                        if c["column_names"] == ["name"]]
        if not unique_names:
            return
        if self.engine.dialect.name != "sqlite":
            for constraint in unique_names:
                with self.engine.begin() as conn:
                    conn.execute(sa.text(f'ALTER TABLE workspaces DROP CONSTRAINT IF EXISTS "{constraint["name"]}"'))
            return
        # SQLite cannot drop a constraint: the table is made again without it, in one transaction
        # that holds the write lock, with foreign keys off so the members' references stay as they are.
        fresh = workspaces.to_metadata(sa.MetaData(), name="workspaces_rebuilt")
        create = str(sa.schema.CreateTable(fresh).compile(dialect=self.engine.dialect))
        columns = ", ".join(c.name for c in workspaces.columns)
        raw = self.engine.raw_connection()
        try:
            dbapi = raw.driver_connection
            before = dbapi.isolation_level
            dbapi.isolation_level = None
            try:
                dbapi.execute("PRAGMA foreign_keys=OFF")
                dbapi.execute("BEGIN IMMEDIATE")
                try:
                    if _sqlite_unique_on(dbapi, "workspaces", "name"):  # another process may have done it
                        dbapi.execute("DROP TABLE IF EXISTS workspaces_rebuilt")
                        dbapi.execute(create)
                        dbapi.execute(f"INSERT INTO workspaces_rebuilt ({columns}) SELECT {columns} FROM workspaces")
                        dbapi.execute("DROP TABLE workspaces")
                        dbapi.execute("ALTER TABLE workspaces_rebuilt RENAME TO workspaces")
                    dbapi.execute("COMMIT")
                except BaseException:
                    dbapi.execute("ROLLBACK")
                    raise
            finally:
                dbapi.execute("PRAGMA foreign_keys=ON")
                dbapi.isolation_level = before
        finally:
            raw.close()

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
    def _content_key(self, sha256: str) -> str:
        """The dataset's content key: the file's SHA-256 in the built-in workspace, else that hash
        keyed by the workspace, so the same file uploaded in two workspaces is two datasets and an
        upload never finds (nor hints at) a file of a workspace the uploader is not in."""
        workspace = self.workspace_id or LOCAL_WORKSPACE
        return sha256 if workspace == LOCAL_WORKSPACE else hashlib.sha256(f"{workspace}:{sha256}".encode()).hexdigest()

    def dataset_by_hash(self, sha256: str) -> DatasetRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.sha256 == self._content_key(sha256))).first()
        return DatasetRecord.from_row(row) if row else None

    def has_dataset_of_size(self, size_bytes: int) -> bool:
        """Whether any stored dataset came from a file of this many bytes: an upload of another
        size cannot be one already stored, so it need not wait for its hash (``register_bytes``)."""
        workspace = self.workspace_id or LOCAL_WORKSPACE  # only this workspace's files count, as for the hash
        with self.engine.connect() as conn:
            return conn.execute(sa.select(datasets.c.id).where(
                datasets.c.size_bytes == size_bytes, datasets.c.workspace_id == workspace).limit(1)).first() is not None

    def insert_dataset(self, **values: Any) -> DatasetRecord:
        """Keep a new dataset in the current workspace (the acting user must be an editor there)."""
        workspace = self.workspace_id or LOCAL_WORKSPACE
        self._require_in(workspace, "upload")
        values = dict(values)
        values["sha256"] = self._content_key(values["sha256"])
        values["profile_json"] = json.dumps(values.pop("profile"))
        values["report_json"] = json.dumps(values.pop("report"))
        values.setdefault("created_at", time.time())
        values.update(workspace_id=workspace, created_by=self._email())
        with self.engine.begin() as conn:
            conn.execute(datasets.insert().values(**values))
        self.log("upload", workspace, "dataset", values["id"], values.get("name"))
        return self.dataset(values["id"])

    def dataset(self, dataset_id: str) -> DatasetRecord:
        with self.engine.connect() as conn:
            row = conn.execute(self._seen(sa.select(datasets).where(datasets.c.id == dataset_id),
                                          datasets.c.workspace_id)).first()
        if row is None:
            raise NotFoundError(access.not_found("dataset", dataset_id))
        return DatasetRecord.from_row(row)

    def dataset_names(self, dataset_ids: Any) -> dict[str, str]:
        """The names of these datasets, by id, in one query that reads only the names (a list of
        runs shows them; a dataset's record parses its whole profile). A dataset that is gone,
        or that the acting user may not see, is left out."""
        ids = sorted(set(dataset_ids))
        if not ids:
            return {}
        query = sa.select(datasets.c.id, datasets.c.name, datasets.c.workspace_id).where(datasets.c.id.in_(ids))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return {row.id: row.name for row in rows if self._sees(row.workspace_id)}

    def list_datasets(self, limit: int = 200) -> list[DatasetRecord]:
        query = sa.select(datasets).order_by(datasets.c.created_at.desc()).limit(limit)
        if self.actor is not None:
            query = query.where(datasets.c.workspace_id == self.workspace_id)
        with self.engine.connect() as conn:
            return [DatasetRecord.from_row(r) for r in conn.execute(query)]

    def set_dataset_target(self, dataset_id: str, target: str | None, task: str | None) -> None:
        self.require("upload", "dataset", dataset_id)
        with self.engine.begin() as conn:
            conn.execute(datasets.update().where(datasets.c.id == dataset_id).values(target=target, task=task))

    # ---- runs ----------------------------------------------------------------------------
    def create_run(self, spec: dict, dataset_id: str, template: str, target: str, epochs_total: int,
                   claim: bool = False, held_by: str | None = None) -> str:
        """Queue a run; with ``claim`` it is created already running for this process (the CLI);
        with ``held_by`` it is created handed to that cluster dispatcher (``reserve_runs``).
        The run goes to its dataset's workspace, where the acting user must be an editor."""
        workspace = self.require("train", "dataset", dataset_id)  # a clear message if the dataset is gone
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
                    workspace_id=workspace,
                    created_by=self._email(),
                ).values(**claimed)
            )
        self.log("train", workspace, "run", run_id, template)
        return run_id

    def run(self, run_id: str) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(self._seen(sa.select(runs).where(runs.c.id == run_id), runs.c.workspace_id)).first()
        if row is None:
            raise NotFoundError(access.not_found("run", run_id))
        return RunRecord.from_row(row)

    def list_runs(self, dataset_id: str | None = None, limit: int = 200, statuses: tuple[str, ...] | None = None) -> list[RunRecord]:
        query = self._runs_listed(sa.select(runs), dataset_id, limit, statuses)
        with self.engine.connect() as conn:
            return [RunRecord.from_row(r) for r in conn.execute(query)]

    def _runs_listed(self, query: Any, dataset_id: str | None, limit: int, statuses: tuple[str, ...] | None) -> Any:
        """A list of runs' rule, whatever columns it reads: this workspace's runs (in team mode),
        of one dataset and in some states when asked, newest first."""
        query = query.order_by(runs.c.created_at.desc()).limit(limit)
        if self.actor is not None:
            query = query.where(runs.c.workspace_id == self.workspace_id)
        if dataset_id:
            query = query.where(runs.c.dataset_id == dataset_id)
        if statuses:
            query = query.where(runs.c.status.in_(statuses))
        return query

    def list_run_rows(self, dataset_id: str | None = None, limit: int = 200,
                      statuses: tuple[str, ...] | None = None) -> list[RunRow]:
        """The runs ``list_runs`` gives, reading only what a list of runs shows (``RunRow``): the
        spec and the versions are not read, and of the result only the verdict is kept."""
        shown = [runs.c[name] for name in RunRow.__dataclass_fields__ if name != "outcome"]
        query = self._runs_listed(sa.select(*shown, runs.c.result_json), dataset_id, limit, statuses)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for row in rows:
            m = dict(row._mapping)
            verdicts = ((_loads(m.pop("result_json")) or {}).get("leaderboard") or {}).get("verdicts") or []
            out.append(RunRow(**m, outcome=verdicts[0].get("outcome") if verdicts else None))
        return out

    def update_run(self, run_id: str, **values: Any) -> None:
        """Change a run's record. A run deleted meanwhile raises ``DeletedError``: the worker
        training it stops there, and nothing of it is written back."""
        for key in ("result", "versions"):
            if key in values:
                values[f"{key}_json"] = json.dumps(values.pop(key))
        with self.engine.begin() as conn:
            if not conn.execute(runs.update().where(runs.c.id == run_id).values(**values)).rowcount:
                raise DeletedError(access.not_found("run", run_id))

    def _take(self, table: sa.Table, where: tuple, n: int, wait: bool = False, **values: Any) -> list[str]:
        """Set ``values`` on up to ``n`` of the oldest rows matching ``where``; their ids.

        The UPDATE repeats ``where``, so a row changed by someone else since it was picked is
        left alone: safe with many workers on one database. On PostgreSQL the rows are picked
        with ``FOR UPDATE SKIP LOCKED`` in the same statement, so concurrent claimers never take
        one row twice and never queue behind each other's locks (SQLite has one writer at a time).
        ``wait``: take a row another transaction holds once it lets go, rather than skip it (a claim
        of one known row: skipped, it read as "already taken" while only a heartbeat held it).
        """
        if self.engine.dialect.name == "postgresql":
            # A CTE runs once; "id IN (SELECT ... LIMIT n FOR UPDATE)" may be run again for
            # each row and take more than n (seen here: a claim of one took two).
            picked = (sa.select(table.c.id).where(*where).order_by(table.c.created_at).limit(n)
                      .with_for_update(skip_locked=not wait).cte("picked"))
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
        return bool(self._take(runs, (runs.c.id == run_id, runs.c.status == "queued"), 1, wait=True, status="running",
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

    def heartbeat(self, run_id: str) -> bool:
        """Say the run's worker lives; False when the run was deleted (its worker stops)."""
        with self.engine.begin() as conn:
            return bool(conn.execute(runs.update().where(runs.c.id == run_id).values(heartbeat_at=time.time())).rowcount)

    def request_stop(self, run_id: str) -> None:
        """Ask a run to stop after its current batch; a queued run is stopped at once."""
        self.require("stop", "run", run_id)
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.id == run_id).values(stop_requested=True))
            conn.execute(
                runs.update()
                .where(runs.c.id == run_id, runs.c.status == "queued")
                .values(status="cancelled", finished_at=time.time(), phase="Cancelled before it started",
                        message="Cancelled before training started: nothing was trained.")
            )

    def stop_requested(self, run_id: str) -> bool:
        """Whether the run should stop: asked to, or deleted while it trains."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(runs.c.stop_requested).where(runs.c.id == run_id)).first()
        return row is None or bool(row.stop_requested)

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
        values: dict[str, Any] = {"epochs_done": epoch, "heartbeat_at": now}
        if epochs_total:
            values["progress"] = min(1.0, epoch / epochs_total)
        with self.engine.begin() as conn:
            # The run's row first: a run deleted meanwhile gets no epoch (and its worker stops).
            if not conn.execute(runs.update().where(runs.c.id == run_id).values(**values)).rowcount:
                raise DeletedError(access.not_found("run", run_id))
            conn.execute(epochs.insert().values(
                run_id=run_id, epoch=epoch, loss=loss, val_loss=val_loss, metric=metric,
                val_metric=val_metric, seconds=seconds, created_at=now,
            ))

    def epochs(self, run_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(epochs).where(epochs.c.run_id == run_id).order_by(epochs.c.epoch))
            return [dict(r._mapping) for r in rows]

    def add_trial_epoch(self, run_id: str, trial: int, epoch: int, *, loss: float | None, val_loss: float | None,
                        metric: float | None, val_metric: float | None, seconds: float) -> None:
        """Record epoch ``epoch`` (from 1) of search trial ``trial`` (from 0) as it ends."""
        with self.engine.begin() as conn:
            conn.execute(trial_epochs.insert().values(
                run_id=run_id, trial=trial, epoch=epoch, loss=loss, val_loss=val_loss, metric=metric,
                val_metric=val_metric, seconds=seconds, created_at=time.time()))

    def trial_epochs(self, run_id: str, trial: int | None = None) -> tuple[int | None, list[dict]]:
        """One trial's epochs, in order: ``trial``'s, or by default the latest trial's (the one
        training now, while a search runs); returns that trial's number (None before any epoch)."""
        with self.engine.connect() as conn:
            if trial is None:
                trial = conn.execute(sa.select(sa.func.max(trial_epochs.c.trial))
                                     .where(trial_epochs.c.run_id == run_id)).scalar()
                if trial is None:
                    return None, []
            rows = conn.execute(sa.select(trial_epochs).where(trial_epochs.c.run_id == run_id,
                                                              trial_epochs.c.trial == trial)
                                .order_by(trial_epochs.c.epoch))
            return trial, [dict(r._mapping) for r in rows]

    # ---- scoring jobs --------------------------------------------------------------------
    def create_scoring(self, run_id: str, model: str, input_name: str, scoring_id: str | None = None,
                       model_run_id: str | None = None) -> str:
        """Queue a scoring of a file for a run; ``model_run_id``: the run whose ``model`` scores it,
        when that is another run of the same workspace (a promoted challenger)."""
        workspace = self.require("score", "run", run_id)
        if model_run_id is not None and model_run_id != run_id:
            if self.require("score", "run", model_run_id) != workspace:
                raise NotFoundError(access.not_found("run", model_run_id))
        else:
            model_run_id = None
        scoring_id = scoring_id or new_id()
        with self.engine.begin() as conn:
            conn.execute(scorings.insert().values(
                id=scoring_id, run_id=run_id, model=model, status="queued", input_name=input_name,
                created_at=time.time(), created_by=self._email(), model_run_id=model_run_id,
            ))
        self.log("score", workspace, "run", run_id, model)
        return scoring_id

    def scoring(self, scoring_id: str) -> ScoringRecord:
        with self.engine.connect() as conn:
            row = conn.execute(self._seen(sa.select(scorings, runs.c.workspace_id).join(runs, runs.c.id == scorings.c.run_id)
                                          .where(scorings.c.id == scoring_id), runs.c.workspace_id)).first()
        if row is None:
            raise NotFoundError(access.not_found("scoring", scoring_id))
        return ScoringRecord.from_row(_without(row, "workspace_id"))

    def list_scorings(self, run_id: str, limit: int = 500) -> list[ScoringRecord]:
        """A run's scorings, newest first (not found unless the acting user sees the run)."""
        self.run(run_id)
        with self.engine.connect() as conn:
            return [ScoringRecord.from_row(r) for r in conn.execute(
                sa.select(scorings).where(scorings.c.run_id == run_id).order_by(scorings.c.created_at.desc())
                .limit(limit))]

    def update_scoring_summary(self, scoring_id: str, summary: dict) -> None:
        """Replace a finished scoring's summary (its drift, added after it was scored)."""
        with self.engine.begin() as conn:
            conn.execute(scorings.update().where(scorings.c.id == scoring_id).values(summary_json=json.dumps(summary)))

    # ---- outcomes and the model in use (dlcore.monitor) ------------------------------------
    def add_outcome(self, run_id: str, scoring_id: str, summary: dict, outcome_id: str | None = None) -> str:
        """Keep the outcomes that came back for a scored file (editors: as scoring), audited."""
        workspace = self.require("score", "run", run_id)
        if self.scoring(scoring_id).run_id != run_id:
            raise NotFoundError(access.not_found("scoring", scoring_id))
        outcome_id = outcome_id or new_id()
        with self.engine.begin() as conn:
            conn.execute(outcomes.insert().values(id=outcome_id, run_id=run_id, scoring_id=scoring_id,
                                                  created_at=time.time(), created_by=self._email(),
                                                  summary_json=json.dumps(summary)))
        self.log("outcomes", workspace, "run", run_id, scoring_id)
        return outcome_id

    def outcomes_of(self, run_id: str) -> list[dict]:
        """Every outcome record of a run, oldest first: id, scoring_id, created_at, created_by, summary."""
        self.run(run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outcomes).where(outcomes.c.run_id == run_id)
                                .order_by(outcomes.c.created_at)).all()
        return [{**{k: v for k, v in r._mapping.items() if k != "summary_json"}, "summary": _loads(r.summary_json)}
                for r in rows]

    def latest_outcomes(self, run_ids: Any) -> dict[str, dict]:
        """The newest outcome summary of each of these runs that has one (a list of runs shows its
        alert), in one query; the runs are those the caller listed (and so may see)."""
        ids = sorted(set(run_ids))
        if not ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(outcomes.c.run_id, outcomes.c.summary_json).where(outcomes.c.run_id.in_(ids))
                                .order_by(outcomes.c.created_at)).all()
        return {r.run_id: _loads(r.summary_json) for r in rows}

    def change_model(self, run_id: str, use_run_id: str, use_model: str, detail: dict | None = None) -> str:
        """Point a run's model in use at ``use_model`` of ``use_run_id`` (itself, or a run of the same
        workspace): editors (as saving a threshold is), audited; the history is kept, so it can be undone."""
        workspace = self.require("decide", "run", run_id)
        if self.require("view", "run", use_run_id) != workspace:
            raise NotFoundError(access.not_found("run", use_run_id))
        change_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(model_changes.insert().values(id=change_id, run_id=run_id, created_at=time.time(),
                                                       created_by=self._email(), use_run_id=use_run_id,
                                                       use_model=use_model,
                                                       detail_json=json.dumps(detail) if detail else None))
        self.log("model_in_use", workspace, "run", run_id, f"{use_run_id}/{use_model}")
        return change_id

    def model_changes(self, run_id: str) -> list[dict]:
        """A run's changes of the model in use, newest first."""
        self.run(run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(model_changes).where(model_changes.c.run_id == run_id)
                                .order_by(model_changes.c.created_at.desc(), model_changes.c.id)).all()
        return [{**{k: v for k, v in r._mapping.items() if k != "detail_json"}, "detail": _loads(r.detail_json)}
                for r in rows]

    def claim_next_scoring(self) -> str | None:
        return self._claim(scorings)

    def claim_scoring(self, scoring_id: str) -> bool:
        """Claim one queued scoring for this process (the REST server scoring its own request);
        False when a worker took it first."""
        return self._claim(scorings, scorings.c.id == scoring_id) is not None

    def finish_scoring(self, scoring_id: str, status: str, message: str | None = None, summary: dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(scorings.update().where(scorings.c.id == scoring_id).values(
                status=status, message=message, finished_at=time.time(),
                summary_json=json.dumps(summary) if summary is not None else None,
            ))

    # ---- teams: the acting user, workspaces, roles, access, the audit log, deletion ----------
    def as_actor(self, actor: Actor, workspace_id: str | None = None) -> "Store":
        """This store bound to ``actor``, working in ``workspace_id`` (one they belong to; else
        their personal workspace, made at their first action). The copy shares the engine.

        The bound actor is the account of record: the e-mail normalised, and for a web sign-in
        the e-mail the provider's account (``issuer``, ``subject``) was first seen with."""
        actor = self._account(actor)
        personal = LOCAL_WORKSPACE if actor.is_local else self._personal_workspace(actor.email)
        if workspace_id is None and not actor.is_local:
            with self.engine.connect() as conn:
                workspace_id = conn.execute(sa.select(users.c.last_workspace)
                                            .where(users.c.email == actor.email)).scalar()
        bound = copy.copy(self)
        bound.actor = actor
        bound.workspace_id = workspace_id if workspace_id and self.role_of(actor, workspace_id) else personal
        return bound

    def remember_workspace(self, workspace_id: str) -> None:
        """The workspace the acting user picked: their next session opens in it."""
        if self.actor is not None and self.role_of(self.actor, workspace_id) is not None:
            with self.engine.begin() as conn:
                conn.execute(users.update().where(users.c.email == self.actor.email.lower())
                             .values(last_workspace=workspace_id, last_seen=time.time()))

    def signed_in(self, token_issued: float | None) -> None:
        """Log a sign-in once per token the provider issued (a page reload is not a sign-in)."""
        detail = f"token issued {token_issued}" if token_issued else None
        workspace = self.ensure_user(self.actor) if self.actor is not None else LOCAL_WORKSPACE
        if detail:
            with self.engine.connect() as conn:
                if conn.execute(sa.select(audit.c.id).where(audit.c.email == self._email(), audit.c.action == "sign_in",
                                                            audit.c.detail == detail)).first() is not None:
                    return
        self.log("sign_in", workspace, "user", self._email(), detail)

    def for_job(self, kind: str, job_id: str) -> "Store":
        """The store a worker uses for a job: bound to the user who queued it (the system for a
        job queued before workspaces existed), so the job sees only what that user may see."""
        table = {"run": runs, "scoring": scorings, "explanation": explanations}[kind]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table.c.created_by).where(table.c.id == job_id)).first()
        if row is None or not row.created_by or row.created_by == "system":
            return self
        bound = copy.copy(self)
        bound.actor = Actor(row.created_by)
        bound.workspace_id = self._workspace_of(kind, job_id)
        return bound

    def _email(self) -> str:
        return self.actor.email if self.actor is not None else "system"

    def _account(self, actor: Actor) -> Actor:
        """The account of record for ``actor``, recorded at first sight.

        A web sign-in (``actor.subject`` set) is known by the provider's issuer and subject: the
        account seen first with an e-mail keeps it; a second account of the provider that claims
        the same address (re-created, or another provider's) is refused, so an unverified or
        recycled address never inherits someone's workspaces. A user so far known only by e-mail
        (from the CLI, or a store made before accounts were recorded) is claimed by the first
        sign-in with that verified address. An actor without a subject (the CLI's operator, a
        worker) is known by the normalised e-mail alone."""
        if actor.is_local:
            return actor
        email = access.normalise_email(actor.email)
        now = time.time()
        if actor.subject is None:
            with contextlib.suppress(sa.exc.IntegrityError):  # known already, or made at this moment
                with self.engine.begin() as conn:
                    if conn.execute(sa.select(users.c.email).where(users.c.email == email)).first() is None:
                        conn.execute(users.insert().values(email=email, name=actor.name, first_seen=now, last_seen=now))
            return Actor(email, actor.name)
        account = (users.c.issuer == actor.issuer, users.c.subject == actor.subject)
        with self.engine.begin() as conn:
            known = conn.execute(sa.select(users.c.email).where(*account)).scalar()
            if known is not None:
                conn.execute(users.update().where(*account).values(last_seen=now))
                return Actor(known, actor.name, actor.issuer, actor.subject)
        try:
            with self.engine.begin() as conn:
                claimed = conn.execute(users.update().where(users.c.email == email, users.c.subject.is_(None))
                                       .values(issuer=actor.issuer, subject=actor.subject, last_seen=now)).rowcount
                if not claimed:
                    if conn.execute(sa.select(users.c.email).where(users.c.email == email)).first() is not None:
                        raise AccessError(
                            f"The address {email} already belongs to another account on this server, so this "
                            "sign-in cannot use it. Sign in with the account you used before; if it was replaced "
                            "at the provider, ask the administrator of this server to release the address "
                            "(see docs/identity.md).")
                    conn.execute(users.insert().values(email=email, name=actor.name, first_seen=now, last_seen=now,
                                                       issuer=actor.issuer, subject=actor.subject))
        except sa.exc.IntegrityError:
            # The same account's other tab recorded it at this moment: it is known now.
            with self.engine.connect() as conn:
                known = conn.execute(sa.select(users.c.email).where(*account)).scalar()
            if known is None:
                raise
            email = known
        return Actor(email, actor.name, actor.issuer, actor.subject)

    def ensure_user(self, actor: Actor) -> str:
        """Record a user and make their personal workspace on first sight; its id.

        The personal workspace is found by its owner (``personal_of``), never by its name: names
        are not unique, so nobody can take a colleague's before their first sign-in."""
        if actor.is_local:
            return LOCAL_WORKSPACE
        email = access.normalise_email(actor.email)
        if actor.subject is not None or not self._user_known(email):
            email = self._account(actor).email
        return self._personal_workspace(email)

    def _personal_workspace(self, email: str) -> str:
        """The personal workspace of the user of record ``email``, made if it is not there yet."""
        mine = sa.select(workspaces.c.id).where(workspaces.c.personal_of == email)
        with self.engine.connect() as conn:
            found = conn.execute(mine).scalar()
        if found is not None:
            return found
        workspace_id = new_id()
        now = time.time()
        with contextlib.suppress(sa.exc.IntegrityError):  # the same user's other tab made it first
            with self.engine.begin() as conn:
                conn.execute(workspaces.insert().values(id=workspace_id, name=f"Personal ({email})", personal_of=email,
                                                        created_at=now, created_by=email))
                conn.execute(members.insert().values(workspace_id=workspace_id, email=email, role="owner", added_at=now,
                                                     added_by=email))
        with self.engine.connect() as conn:
            found = conn.execute(mine).scalar()
        if found is None:
            raise StoreError(f"The personal workspace of {email} could not be made in the store at "
                             f"{display_url(self.url)}. Check that the database is writable, then sign in again.")
        return found

    def release_account(self, email: str) -> bool:
        """Free an address from the sign-in account that holds it (administrators only), for a
        person whose account was replaced at the provider: their next verified sign-in claims it,
        with its workspaces. Whether an account held it."""
        email = access.normalise_email(email)
        if self.actor is not None and self.actor.email not in access.admins():
            raise AccessError("Releasing an address from its sign-in account is for the administrators of this server "
                              "(DLCORE_ADMINS or [dlcore] admins).")
        with self.engine.begin() as conn:
            released = conn.execute(users.update().where(users.c.email == email, users.c.subject.is_not(None))
                                    .values(issuer=None, subject=None)).rowcount
            personal = conn.execute(sa.select(workspaces.c.id).where(workspaces.c.personal_of == email)).scalar()
        if released:
            self.log("release_account", personal, "user", email)
        return bool(released)

    def _user_known(self, email: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(users.c.email).where(users.c.email == email)).first() is not None

    def remembering_roles(self) -> "Store":
        """A copy of this store that asks each (user, workspace) role once, for one page render:
        a render checks access on every read (a dozen checks of the same workspace, one query
        each). Meant to live only as long as the render, so a role changed by someone else is
        seen at the next one; a change made through this copy forgets what it remembered."""
        bound = copy.copy(self)
        bound._roles = {}
        return bound

    def _forget_roles(self) -> None:
        if self._roles is not None:
            self._roles.clear()

    def role_of(self, actor: Actor | None, workspace_id: str | None) -> str | None:
        """``actor``'s role in a workspace (None: not a member). The system owns everything; an
        administrator owns every shared workspace (not another user's personal one)."""
        if workspace_id is None:
            return None
        if actor is None:
            return "owner"
        memo = self._roles
        if memo is None:
            return self._ask_role(actor, workspace_id)
        key = (actor.email.lower(), workspace_id)
        if key not in memo:
            memo[key] = self._ask_role(actor, workspace_id)
        return memo[key]

    def _ask_role(self, actor: Actor, workspace_id: str) -> str | None:
        if actor.email.startswith(TOKEN_ACTOR):  # an API token: its own workspace only, to view and score
            with self.engine.connect() as conn:
                held = conn.execute(sa.select(api_tokens.c.workspace_id)
                                    .where(api_tokens.c.id == actor.email[len(TOKEN_ACTOR):])).scalar()
            return access.TOKEN_ROLE if held is not None and held == workspace_id else None
        with self.engine.connect() as conn:
            role = conn.execute(sa.select(members.c.role).where(
                members.c.workspace_id == workspace_id, members.c.email == actor.email.lower())).scalar()
            if role is None and actor.email.lower() in access.admins():
                personal = conn.execute(sa.select(workspaces.c.personal_of).where(workspaces.c.id == workspace_id)).first()
                role = "owner" if personal is not None and personal.personal_of is None else None
        return role

    def _workspace_of(self, kind: str, record_id: str) -> str | None:
        """The workspace holding a record; None when no such record exists."""
        if kind == "workspace":
            query = sa.select(workspaces.c.id).where(workspaces.c.id == record_id)
        elif kind in ("dataset", "run"):
            table = datasets if kind == "dataset" else runs
            query = sa.select(table.c.workspace_id).where(table.c.id == record_id)
        elif kind in ("scoring", "explanation"):
            table = scorings if kind == "scoring" else explanations
            query = sa.select(runs.c.workspace_id).join(table, table.c.run_id == runs.c.id).where(table.c.id == record_id)
        else:
            raise ValueError(f"unknown kind of record {kind!r}; the kinds are {', '.join(access.KINDS)}")
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def allowed(self, actor: Actor | None, action: str, resource: tuple[str, str]) -> bool:
        """The one question: may ``actor`` do ``action`` to ``resource`` (``(kind, id)``, e.g.
        ``("run", run_id)`` or ``("workspace", workspace_id)``)? False for a record that does not exist."""
        return access.permits(self.role_of(actor, self._workspace_of(*resource)), action)

    def _sees(self, workspace_id: str | None) -> bool:
        return self.actor is None or self.role_of(self.actor, workspace_id) is not None

    def _seen(self, query: Any, workspace_column: Any) -> Any:
        """``query`` limited to records of workspaces the acting user sees, in the same statement:
        a record of another workspace and an id that does not exist are the same work (one query,
        no row), so the time of the answer does not tell them apart either."""
        if self.actor is None:
            return query
        return query.where(workspace_column.in_(self._workspaces_seen(self.actor)))

    def _workspaces_seen(self, actor: Actor) -> Any:
        """The ids of the workspaces ``actor`` has a role in, as a subquery (the rule of ``_ask_role``)."""
        if actor.email.startswith(TOKEN_ACTOR):  # an API token sees its own workspace (``role_of``)
            return sa.select(api_tokens.c.workspace_id).where(api_tokens.c.id == actor.email[len(TOKEN_ACTOR):])
        email = actor.email.lower()
        mine = sa.select(members.c.workspace_id).where(members.c.email == email)
        if email in access.admins():
            return sa.union(mine, sa.select(workspaces.c.id).where(workspaces.c.personal_of.is_(None)))
        return mine

    def require(self, action: str, kind: str, record_id: str) -> str:
        """Refuse unless the acting user may do ``action`` to the record; its workspace's id.
        A record they may not see is not found, in the words of an id that does not exist."""
        workspace = self._workspace_of(kind, record_id)
        if workspace is None or not self._sees(workspace):
            raise NotFoundError(access.not_found(kind, record_id))
        self._require_in(workspace, action)
        return workspace

    def _require_in(self, workspace_id: str, action: str) -> None:
        role = self.role_of(self.actor, workspace_id)
        if not access.permits(role, action):
            if role is None:
                raise NotFoundError(access.not_found("workspace", workspace_id))
            raise AccessError(
                f"You are a {role} of the workspace {self.workspace(workspace_id)['name']!r}, and "
                f"{access.ACTION_WORDS[action]} needs the {access.least_role(action)} role there. Ask an owner "
                "of the workspace to change your role.")

    def workspace(self, workspace_id: str) -> dict:
        """One workspace (id, name, personal_of) the acting user belongs to."""
        with self.engine.connect() as conn:
            row = conn.execute(self._seen(sa.select(workspaces).where(workspaces.c.id == workspace_id),
                                          workspaces.c.id)).first()
        if row is None:
            raise NotFoundError(access.not_found("workspace", workspace_id))
        return dict(row._mapping)

    def workspaces_of(self, actor: Actor | None = None) -> list[dict]:
        """The workspaces a user belongs to, personal first, each with their role."""
        actor = actor or self.actor
        if actor is None:
            return []
        email = actor.email.lower()
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                sa.select(workspaces, members.c.role).join(members, members.c.workspace_id == workspaces.c.id)
                .where(members.c.email == email).order_by(workspaces.c.created_at))]
            if email in access.admins():
                have = {r["id"] for r in rows}
                rows += [{**dict(r._mapping), "role": "owner"} for r in conn.execute(
                    sa.select(workspaces).where(workspaces.c.personal_of.is_(None)).order_by(workspaces.c.created_at))
                    if r.id not in have]
        return sorted(rows, key=lambda r: (r["personal_of"] != email, r["created_at"]))

    def create_workspace(self, name: str) -> str:
        """A shared workspace, with the acting user as its owner; its id."""
        name = " ".join(name.split())
        if not name or len(name) > 80:
            raise SpecError(f"A workspace name must have 1 to 80 characters; got {name!r}.")
        if name.casefold() == "personal" or name.casefold().startswith("personal ("):
            raise SpecError(f"{name!r}: 'Personal' and names that begin with 'Personal (' are kept for each user's "
                            "own workspace, so nobody mistakes a shared one for theirs. Pick another name.")
        # Names are unique only among the creator's own workspaces (so their switcher tells them
        # apart): whether another team uses the name is never asked, so never told.
        if name in {w["name"] for w in self.workspaces_of()}:
            raise SpecError(f"There is already a workspace named {name!r} among yours: pick another name.")
        email = self._email()
        workspace_id = new_id()
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(workspaces.insert().values(id=workspace_id, name=name, created_at=now, created_by=email))
            conn.execute(members.insert().values(workspace_id=workspace_id, email=email, role="owner",
                                                 added_at=now, added_by=email))
        self._forget_roles()
        self.log("create_workspace", workspace_id, "workspace", workspace_id, name)
        return workspace_id

    def members_of(self, workspace_id: str) -> list[dict]:
        self.workspace(workspace_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(members).where(members.c.workspace_id == workspace_id).order_by(members.c.added_at))]

    def add_member(self, workspace_id: str, email: str, role: str) -> None:
        """Add a colleague (or change their role); owners only."""
        self._require_member_change(workspace_id)
        if role not in access.ROLES:
            raise SpecError(f"Unknown role {role!r}; pick one of {', '.join(access.ROLES)}.")
        email = access.normalise_email(email)
        if not access.email_allowed(email) and access.allowed_domains():
            raise SpecError(f"{email} cannot sign in to this server (its domain is not one of "
                            f"{', '.join(access.allowed_domains())}): add an address of an allowed domain.")
        if self.workspace(workspace_id)["personal_of"] == email and role != "owner":
            raise SpecError("The owner of a personal workspace stays its owner.")
        with self.engine.begin() as conn:
            changed = conn.execute(members.update().where(members.c.workspace_id == workspace_id, members.c.email == email)
                                   .values(role=role)).rowcount
            if not changed:
                conn.execute(members.insert().values(workspace_id=workspace_id, email=email, role=role,
                                                     added_at=time.time(), added_by=self._email()))
            conn.execute(access_requests.update().where(access_requests.c.workspace_id == workspace_id,
                                                        access_requests.c.email == email).values(status="granted"))
        self._forget_roles()
        self.log("add_member", workspace_id, "member", email, role)

    def remove_member(self, workspace_id: str, email: str) -> None:
        self._require_member_change(workspace_id)
        email = access.normalise_email(email)
        owners = [m["email"] for m in self.members_of(workspace_id) if m["role"] == "owner"]
        if owners == [email]:
            raise SpecError(f"{email} is the last owner of this workspace: add another owner first.")
        with self.engine.begin() as conn:
            conn.execute(members.delete().where(members.c.workspace_id == workspace_id, members.c.email == email))
        self._forget_roles()
        self.log("remove_member", workspace_id, "member", email)

    def _require_member_change(self, workspace_id: str) -> None:
        if self.role_of(self.actor, workspace_id) is None:
            raise NotFoundError(access.not_found("workspace", workspace_id))
        self._require_in(workspace_id, "manage_members")

    def request_access(self, kind: str, record_id: str) -> None:
        """Ask the owners of a record's workspace for access. Whether the id names anything or not,
        the asker sees the same; only an existing record's owners see the request."""
        if kind not in access.KINDS or self.actor is None:
            return
        workspace = self._workspace_of(kind, record_id)
        email = self._email()
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(access_requests.c.id).where(
                access_requests.c.email == email, access_requests.c.kind == kind,
                access_requests.c.resource_id == record_id, access_requests.c.status == "open")).first()
            if exists is None:
                conn.execute(access_requests.insert().values(id=new_id(), workspace_id=workspace, email=email, kind=kind,
                                                             resource_id=record_id[:64], created_at=time.time()))
        if workspace is not None:
            self.log("ask_access", workspace, kind, record_id)

    def access_requests(self, workspace_id: str) -> list[dict]:
        """Open requests for access to a workspace (its owners only)."""
        self._require_member_change(workspace_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(access_requests).where(access_requests.c.workspace_id == workspace_id,
                                                 access_requests.c.status == "open")
                .order_by(access_requests.c.created_at))]

    # ---- API tokens (the REST endpoint, dlcore.api) ----------------------------------------------
    def create_token(self, workspace_id: str, name: str) -> tuple[str, str]:
        """A new API token of a workspace (owners only): its id and the secret, which is shown this
        once and kept only as its SHA-256. The secret names its id, so a check reads one row."""
        self._require_token_change(workspace_id)
        name = " ".join(name.split())
        if not name or len(name) > 80:
            raise SpecError(f"A token's name must have 1 to 80 characters (say what calls the API with it, e.g. "
                            f"'billing system'); got {name!r}.")
        token_id = new_id().replace("_", "x")  # "_" separates the id from the secret
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with self.engine.begin() as conn:
            conn.execute(api_tokens.insert().values(id=token_id, workspace_id=workspace_id, name=name,
                                                    sha256=_token_hash(secret), created_at=time.time(),
                                                    created_by=self._email()))
        self.log("create_token", workspace_id, "token", token_id, name)
        return token_id, secret

    def tokens_of(self, workspace_id: str) -> list[dict]:
        """A workspace's API tokens (owners only): id, name, who made it and when, when last used;
        never the secret, which the store does not keep."""
        self._require_token_change(workspace_id)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.created_by,
                          api_tokens.c.last_used_at)
                .where(api_tokens.c.workspace_id == workspace_id).order_by(api_tokens.c.created_at))]

    def revoke_token(self, workspace_id: str, token_id: str) -> None:
        """Delete an API token of a workspace (owners only): the next request with it gets 401."""
        self._require_token_change(workspace_id)
        with self.engine.begin() as conn:
            gone = conn.execute(api_tokens.delete().where(api_tokens.c.id == token_id,
                                                          api_tokens.c.workspace_id == workspace_id)).rowcount
        if not gone:
            raise NotFoundError(f"The workspace has no API token with id {token_id!r}: list them with "
                                "python -m dlcore token list WORKSPACE, or on the Workspace page.")
        self.log("revoke_token", workspace_id, "token", token_id)

    def for_token(self, secret: str) -> "Store | None":
        """The store bound to the API token ``secret`` (in its workspace, where it may view and
        score), or None for a token that is unknown, revoked or malformed."""
        found = TOKEN_SHAPE.fullmatch(secret or "")
        if found is None:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == found.group(1))).first()
        # Compared in constant time, so a caller cannot learn the hash a byte at a time.
        if row is None or not hmac.compare_digest(row.sha256, _token_hash(secret)):
            return None
        with self.engine.begin() as conn:
            conn.execute(api_tokens.update().where(api_tokens.c.id == row.id).values(last_used_at=time.time()))
        bound = copy.copy(self)
        bound.actor = Actor(f"{TOKEN_ACTOR}{row.id}", row.name)
        bound.workspace_id = row.workspace_id
        return bound

    def delete_tokens_of(self, workspace_id: str) -> int:
        """Delete every API token of a workspace (when the workspace itself is deleted); how many."""
        self._require_token_change(workspace_id)
        with self.engine.begin() as conn:
            return conn.execute(api_tokens.delete().where(api_tokens.c.workspace_id == workspace_id)).rowcount

    def _require_token_change(self, workspace_id: str) -> None:
        if self.role_of(self.actor, workspace_id) is None:
            raise NotFoundError(access.not_found("workspace", workspace_id))
        self._require_in(workspace_id, "manage_tokens")

    # ---- the audit log ---------------------------------------------------------------------
    def log(self, action: str, workspace_id: str | None, kind: str | None = None, resource_id: str | None = None,
            detail: str | None = None) -> None:
        """Add a line to the audit log: who did what, to what, when."""
        with self.engine.begin() as conn:
            conn.execute(audit.insert().values(at=time.time(), email=self._email(), workspace_id=workspace_id,
                                               action=action, kind=kind, resource_id=resource_id, detail=detail))

    # ---- sessions (team mode): sign-out and administrators end them, and they expire -----------
    def open_session(self, key: str, email: str, issued_at: float | None) -> str | None:
        """Why the sign-in ``key`` of ``email`` may not be used (signed out, revoked, expired), or
        None; recorded at first sight, to expire ``access.session_hours()`` after the provider issued
        its token (so an old cookie never starts a fresh session)."""
        now = time.time()
        email = email.strip().lower()
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.id == key)).first()
        if row is None:
            start = min(float(issued_at), now) if issued_at else now
            expires = start + access.session_hours() * 3600
            if expires <= now:
                return self._session_words(None, expired=True)
            with contextlib.suppress(sa.exc.IntegrityError):  # the same sign-in's other tab recorded it first
                with self.engine.begin() as conn:
                    conn.execute(sessions.insert().values(id=key, email=email, created_at=now, expires_at=expires,
                                                          last_seen=now))
            return self.session_problem(key, email)
        problem = self.session_problem(key, email, row)
        if problem is None and now - row.last_seen > 60:
            with self.engine.begin() as conn:
                conn.execute(sessions.update().where(sessions.c.id == key).values(last_seen=now))
        return problem

    def session_problem(self, key: str, email: str, row: Any = None) -> str | None:
        """Why the recorded sign-in ``key`` may not be used by ``email`` now, or None. Never records:
        a sign-in the pages have not seen is refused (the server's routes ask this)."""
        if row is None:
            with self.engine.connect() as conn:
                row = conn.execute(sa.select(sessions).where(sessions.c.id == key)).first()
        if row is None or row.email != email.strip().lower():
            return "This sign-in is not known to the server. Sign in again."
        if row.ended_at is not None:
            return self._session_words(row)
        if row.expires_at <= time.time():
            return self._session_words(row, expired=True)
        return None

    @staticmethod
    def _session_words(row: Any, expired: bool = False) -> str:
        if expired:
            return (f"Your session has ended: sign-ins last {access.session_hours():g} hours on this server "
                    "(DLCORE_SESSION_HOURS). Sign in again to go on.")
        if row.ended_by == row.email:
            return "You signed out of this session. Sign in again to go on."
        return "An administrator ended this session. Sign in again to go on."

    def end_session(self, key: str) -> None:
        """Sign-out: the sign-in ``key`` ends for good (its cookie, copied or not, is refused from now
        on). Only its holder knows the key: the page derives it from the session's own cookie."""
        email = self._email()
        with self.engine.begin() as conn:
            ended = conn.execute(sessions.update().where(sessions.c.id == key, sessions.c.ended_at.is_(None))
                                 .values(ended_at=time.time(), ended_by=sessions.c.email)).rowcount
        if ended:
            self.log("sign_out", None, "user", email)

    def _sees_all_sessions(self) -> bool:
        return self.actor is None or self.actor.email.lower() in access.admins()

    def list_sessions(self, email: str | None = None, include_ended: bool = False) -> list[dict]:
        """Sign-ins, newest first: every user's for an administrator (or ``email``'s), else the
        acting user's own. ``status`` says active, signed out, revoked or expired."""
        query = sa.select(sessions).order_by(sessions.c.created_at.desc())
        if not self._sees_all_sessions():
            query = query.where(sessions.c.email == self._email())
        if email:
            query = query.where(sessions.c.email == email.strip().lower())
        now = time.time()
        out = []
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                status = ("signed out" if row.ended_at is not None and row.ended_by == row.email else
                          "revoked" if row.ended_at is not None else "expired" if row.expires_at <= now else "active")
                if include_ended or status == "active":
                    out.append({**row._mapping, "status": status})
        return out

    def revoke_sessions(self, session_id: str | None = None, email: str | None = None) -> int:
        """End sign-ins now (an administrator: anyone's; a user: their own): one, by its id or a
        prefix of at least 8 characters, or every active one of ``email``. How many ended; an id
        the acting user may not see is not found, as one that does not exist."""
        if (session_id is None) == (email is None):
            raise SpecError("Name one session id, or a user's email to end all of their sessions.")
        now = time.time()
        active = [s for s in self.list_sessions(email=email) if s["expires_at"] > now]
        if session_id is not None:
            session_id = session_id.strip().lower()
            active = [s for s in active if len(session_id) >= 8 and s["id"].startswith(session_id)]
            if len(active) != 1:
                raise NotFoundError(f"No active session with id {session_id!r} here, or more than one starts so: "
                                    "see `python -m dlcore session list` for the ids (at least 8 characters).")
        with self.engine.begin() as conn:
            for s in active:
                conn.execute(sessions.update().where(sessions.c.id == s["id"], sessions.c.ended_at.is_(None))
                             .values(ended_at=now, ended_by=self._email()))
        for s in active:
            self.log("revoke_session", None, "user", s["email"], s["id"][:16])
        return len(active)

    def note_download(self, what: str, run_id: str) -> None:
        """Refuse or record a download of a run's model (``"model"``) or report (``"report"``)."""
        workspace = self.require("download_model" if what == "model" else "download_report", "run", run_id)
        self.log(f"download_{what}", workspace, "run", run_id)

    def audit_log(self, workspace_id: str, limit: int = 5000) -> list[dict]:
        """The audit log of a workspace, newest first (owners only)."""
        if self.role_of(self.actor, workspace_id) is None:
            raise NotFoundError(access.not_found("workspace", workspace_id))
        self._require_in(workspace_id, "read_audit")
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                sa.select(audit).where(audit.c.workspace_id == workspace_id)
                .order_by(audit.c.at.desc(), audit.c.id.desc()).limit(limit))]

    def audit_csv(self, workspace_id: str) -> str:
        rows = self.audit_log(workspace_id)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["time_utc", "user", "action", "kind", "id", "detail"])
        for r in rows:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["at"]))
            # a leading = + - @ would be a formula in a spreadsheet: quote it away
            writer.writerow([when, *(("'" + v if v[:1] in "=+-@" else v) for v in
                                     (str(r[k] or "") for k in ("email", "action", "kind", "resource_id", "detail")))])
        return out.getvalue()

    # ---- deletion ----------------------------------------------------------------------------
    def deletion_plan(self, kind: str, record_id: str) -> dict:
        """What deleting a dataset (with every run of it) or one run removes: counts and bytes."""
        self.require("view", kind, record_id)
        run_ids = ([record_id] if kind == "run" else
                   [r.id for r in self._all_runs_of(record_id)])
        folders = [self.run_dir(r) for r in run_ids]
        with self.engine.connect() as conn:
            n_scorings = conn.execute(sa.select(sa.func.count()).select_from(scorings).where(scorings.c.run_id.in_(run_ids))).scalar()
            n_expl = conn.execute(sa.select(sa.func.count()).select_from(explanations)
                                  .where(explanations.c.run_id.in_(run_ids))).scalar()
            scoring_ids = [r[0] for r in conn.execute(sa.select(scorings.c.id).where(scorings.c.run_id.in_(run_ids)))]
            n_outcomes = conn.execute(sa.select(sa.func.count()).select_from(outcomes)
                                      .where(outcomes.c.run_id.in_(run_ids))).scalar()
        folders += [self.scoring_dir(s) for s in scoring_ids]
        if kind == "dataset":
            folders.append(self.dataset_dir(record_id))
        files = [p for f in folders if f.exists() for p in f.rglob("*") if p.is_file()]
        return {"runs": len(run_ids), "scorings": n_scorings, "outcomes": n_outcomes, "explanations": n_expl,
                "files": len(files),
                "bytes": sum(p.stat().st_size for p in files)}

    def _all_runs_of(self, dataset_id: str) -> list[RunRecord]:
        with self.engine.connect() as conn:
            return [RunRecord.from_row(r) for r in conn.execute(sa.select(runs).where(runs.c.dataset_id == dataset_id))]

    def delete_run(self, run_id: str, _checked: bool = False) -> None:
        """Delete one run and everything of it: epochs, scorings, explanations, their files (the
        models, scored files, threshold, explanations). Owners only.

        A running run (or a running scoring or explanation of it) is stopped: its id is buried
        first (``_bury``), so every later write of its worker, here or on a cluster node, is
        refused and removes what it wrote (``atomic_write``, ``update_run``), and the worker stops."""
        workspace = self._workspace_of("run", run_id) if _checked else self.require("delete", "run", run_id)
        self._delete_run(run_id)
        self._scrub()
        self.log("delete_run", workspace, "run", run_id)

    def _delete_run(self, run_id: str) -> None:
        with self.engine.connect() as conn:
            scoring_ids = [r[0] for r in conn.execute(sa.select(scorings.c.id).where(scorings.c.run_id == run_id))]
        self._bury([run_id, *scoring_ids])
        with self.engine.begin() as conn:
            # Read again inside the delete: a scoring queued since the look above goes too.
            scoring_ids += [r[0] for r in conn.execute(sa.select(scorings.c.id).where(
                scorings.c.run_id == run_id, scorings.c.id.not_in(scoring_ids)))]
            conn.execute(outcomes.delete().where(outcomes.c.run_id == run_id))
            conn.execute(model_changes.delete().where(model_changes.c.run_id == run_id))
            conn.execute(scorings.delete().where(scorings.c.run_id == run_id))
            conn.execute(explanations.delete().where(explanations.c.run_id == run_id))
            conn.execute(epochs.delete().where(epochs.c.run_id == run_id))
            conn.execute(trial_epochs.delete().where(trial_epochs.c.run_id == run_id))
            conn.execute(runs.delete().where(runs.c.id == run_id))
            conn.execute(access_requests.delete().where(access_requests.c.resource_id.in_([run_id, *scoring_ids])))
        self._bury(scoring_ids)
        for folder in (self.run_dir(run_id), *(self.scoring_dir(s) for s in scoring_ids)):
            shutil.rmtree(folder, ignore_errors=True)
        self._forget(run_id, scoring_ids)

    def delete_dataset(self, dataset_id: str) -> None:
        """Delete a dataset and everything derived from it: every run of it (as ``delete_run``,
        running ones stopped), its files (the upload, the Parquet copy, cached pixels). Owners only."""
        workspace = self.require("delete", "dataset", dataset_id)
        self._bury([dataset_id])  # a cache of its pixels or its copy being written is never written back
        for attempt in range(3):
            for run in self._all_runs_of(dataset_id):
                self._delete_run(run.id)
                self.log("delete_run", workspace, "run", run.id)
            try:
                with self.engine.begin() as conn:
                    conn.execute(datasets.delete().where(datasets.c.id == dataset_id))
                    conn.execute(access_requests.delete().where(access_requests.c.resource_id == dataset_id))
                break
            except sa.exc.IntegrityError:  # a run queued on it meanwhile holds it: that run goes too
                if attempt == 2:
                    raise
        shutil.rmtree(self.dataset_dir(dataset_id), ignore_errors=True)
        self._forget(dataset_id, [])
        self._scrub()
        self.log("delete_dataset", workspace, "dataset", dataset_id)

    def _bury(self, record_ids: list[str]) -> None:
        """Mark records deleted for every job still working for them, before their rows and files go."""
        if not record_ids:
            return
        folder = self.home / TOMBSTONES
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for record_id in record_ids:
                _tombstone(self.home, record_id).touch()
        except OSError as exc:  # nothing is deleted yet: the owner may try again
            raise StoreError(_cannot_write("the deletion mark", folder, exc.strerror or str(exc))) from None

    def _forget(self, record_id: str, others: list[str]) -> None:
        """The audit log keeps who did what and when, not what the deleted data was called."""
        with self.engine.begin() as conn:
            conn.execute(audit.update().where(audit.c.resource_id.in_([record_id, *others])).values(detail=None))

    def _scrub(self) -> None:
        """Leave no copy of deleted rows in the database's files. SQLite overwrites deleted content
        with zeros (``secure_delete``, set on every connection) and the write-ahead log, which
        still holds the pages as they were, is checkpointed and truncated. PostgreSQL keeps dead
        rows until a vacuum: the tables that hold names of the data are vacuumed (what stays in its
        WAL, its backups and freed disk blocks is the operator's: docs/security-operations.md)."""
        try:
            if self.engine.dialect.name == "sqlite":
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            elif self.engine.dialect.name == "postgresql":
                with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql(f"VACUUM {', '.join(SCRUBBED)}")
        except sa.exc.DBAPIError as exc:  # the delete itself is done; a busy database scrubs at the next one
            log.warning("deleted rows could not be scrubbed from the database files yet: %s", exc)

    def delete_expired_runs(self, days: float) -> list[str]:
        """Retention: delete the finished runs older than ``days`` (a worker's sweep); their ids."""
        cutoff = time.time() - days * 86400
        with self.engine.connect() as conn:
            old = [r[0] for r in conn.execute(sa.select(runs.c.id).where(runs.c.created_at < cutoff,
                                                                        runs.c.status.in_(FINISHED)))]
        for run_id in old:
            self.delete_run(run_id, _checked=True)
        return old

    def sweep_deleted(self, kind: str, record_id: str) -> bool:
        """After a job ends: if its record was deleted while it ran, remove whatever of it is on disk
        (the last sweep, after every write of the job). Whether it was gone."""
        table = {"dataset": datasets, "run": runs, "scoring": scorings}[kind]
        with self.engine.connect() as conn:
            if conn.execute(sa.select(table.c.id).where(table.c.id == record_id)).first() is not None:
                return False
        shutil.rmtree(self.home / f"{kind}s" / record_id, ignore_errors=True)
        return True

    def sweep_orphans(self, min_age: float = ORPHAN_SECONDS) -> list[Path]:
        """Remove record folders that no row names (a refused or crashed upload, a job's late
        write): those of a deleted record at once, others once nothing in them changed for
        ``min_age`` seconds, so a folder an upload is still writing (its row not yet stored) stays.
        Tombstones older than ``TOMBSTONE_DAYS`` go too. The folders removed; each is logged."""
        now = time.time()
        removed = []
        for area, table in (("datasets", datasets), ("runs", runs), ("scorings", scorings)):
            root = self.home / area
            try:
                folders = [f for f in root.iterdir() if f.is_dir()]
            except OSError:
                continue
            if not folders:
                continue
            with self.engine.connect() as conn:
                known = {r[0] for r in conn.execute(sa.select(table.c.id).where(
                    table.c.id.in_([f.name for f in folders])))}
            for folder in folders:
                if folder.name in known or not (_is_deleted(folder) or _newest_change(folder) < now - min_age):
                    continue
                shutil.rmtree(folder, ignore_errors=True)
                log.warning("removed %s: no record of the store names it (a refused or unfinished upload, or a job's "
                            "write after its record was deleted)", folder)
                removed.append(folder)
        with contextlib.suppress(OSError):
            for stone in (self.home / TOMBSTONES).iterdir():
                if stone.stat().st_mtime < now - TOMBSTONE_DAYS * 86400:
                    stone.unlink(missing_ok=True)
        return removed

    # ---- explanation jobs ----------------------------------------------------------------
    def create_explanation(self, run_id: str, model: str, kind: str, request: dict | None = None) -> str:
        workspace = self.require("explain", "run", run_id)
        explanation_id = new_id()
        with self.engine.begin() as conn:
            conn.execute(explanations.insert().values(
                id=explanation_id, run_id=run_id, model=model, kind=kind, status="queued",
                request_json=json.dumps(request) if request is not None else None, created_at=time.time(),
                created_by=self._email(),
            ))
        self.log("explain", workspace, "run", run_id, model)
        return explanation_id

    def explanation(self, explanation_id: str) -> ExplanationRecord:
        with self.engine.connect() as conn:
            row = conn.execute(self._seen(sa.select(explanations, runs.c.workspace_id)
                                          .join(runs, runs.c.id == explanations.c.run_id)
                                          .where(explanations.c.id == explanation_id), runs.c.workspace_id)).first()
        if row is None:
            raise NotFoundError(access.not_found("explanation", explanation_id))
        return ExplanationRecord.from_row(_without(row, "workspace_id"))

    def latest_explanation(self, run_id: str, model: str, kind: str) -> ExplanationRecord | None:
        """The newest explanation job of this kind for one model of a run, whatever its status."""
        self.run(run_id)  # not found unless the acting user sees the run
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(explanations).where(explanations.c.run_id == run_id, explanations.c.model == model,
                                              explanations.c.kind == kind)
                .order_by(explanations.c.created_at.desc()).limit(1)
            ).first()
        return ExplanationRecord.from_row(row) if row else None

    def explanation_progress(self, explanation_id: str, message: str) -> None:
        """Say how far a running explanation has got (shown on the page while it works); one
        deleted meanwhile raises ``DeletedError``, which ends its work."""
        with self.engine.begin() as conn:
            if conn.execute(explanations.update().where(explanations.c.id == explanation_id,
                                                        explanations.c.status == "running")
                            .values(message=message)).rowcount:
                return
            if conn.execute(sa.select(explanations.c.id).where(explanations.c.id == explanation_id)).first() is None:
                raise DeletedError(access.not_found("explanation", explanation_id))

    def claim_next_explanation(self) -> str | None:
        return self._claim(explanations)

    def finish_explanation(self, explanation_id: str, status: str, message: str | None = None,
                           summary: dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(explanations.update().where(explanations.c.id == explanation_id).values(
                status=status, message=message, finished_at=time.time(),
                summary_json=json.dumps(summary) if summary is not None else None,
            ))

TOKEN_PREFIX = "dls_"  # lets a secret scanner (and a person) recognise a leaked token
TOKEN_ACTOR = "token:"  # the acting "email" of a request made with a token: "token:<id>" in the audit log
TOKEN_SHAPE = re.compile(rf"{TOKEN_PREFIX}([A-Za-z0-9-]{{16}})_[A-Za-z0-9_-]{{43}}")


def _token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _without(row: Any, key: str) -> Any:
    """A row's mapping less one joined column, in the shape ``from_row`` takes."""
    mapping = dict(row._mapping)
    mapping.pop(key, None)
    return type("Row", (), {"_mapping": mapping})()


def _newest_change(folder: Path) -> float:
    """When anything in ``folder`` last changed (the folder itself, or any file in it)."""
    newest = 0.0
    with contextlib.suppress(OSError):
        newest = folder.stat().st_mtime
        for path in folder.rglob("*"):
            with contextlib.suppress(OSError):
                newest = max(newest, path.stat().st_mtime)
    return newest


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


def _sqlite_unique_on(dbapi_conn: Any, table: str, column: str) -> bool:
    """Whether a SQLite table has a unique index (or constraint) on exactly ``column``."""
    for index in dbapi_conn.execute(f"PRAGMA index_list({table})").fetchall():
        if index[2] and [r[2] for r in dbapi_conn.execute(f'PRAGMA index_info("{index[1]}")').fetchall()] == [column]:
            return True
    return False


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA secure_delete=ON")  # deleted rows are overwritten, not left in free pages
    cur.close()
