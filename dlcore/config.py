"""Settings read from the environment, with the embedded defaults a fresh machine uses."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "home",
    "max_upload_bytes",
    "max_unzipped_bytes",
    "max_zip_files",
    "max_image_pixels",
    "database_url",
    "local_workers",
    "executor",
    "ray_address",
    "ray_cpus",
    "ray_resources",
    "ray_dashboard",
    "worker_nice",
    "worker_threads",
    "api_max_bytes",
    "api_max_rows",
    "api_wait_seconds",
]

EXECUTORS = ("local", "ray")


def home() -> Path:
    """The data folder: ``$DLCORE_HOME``, or ``./.dlcore`` by default."""
    return Path(os.environ.get("DLCORE_HOME", ".dlcore")).resolve()


def max_upload_bytes() -> int:
    """Largest file accepted, in bytes: ``$DLCORE_MAX_UPLOAD_MB`` (default 500 MB)."""
    return int(float(os.environ.get("DLCORE_MAX_UPLOAD_MB", "500")) * 1024 * 1024)


def max_unzipped_bytes() -> int:
    """Most bytes a ZIP of images may unpack to: ``$DLCORE_MAX_UNZIPPED_MB`` (default 2000 MB)."""
    return int(float(os.environ.get("DLCORE_MAX_UNZIPPED_MB", "2000")) * 1024 * 1024)


def max_zip_files() -> int:
    """Most entries a ZIP may hold: ``$DLCORE_MAX_ZIP_FILES`` (default 100,000)."""
    return int(os.environ.get("DLCORE_MAX_ZIP_FILES", "100000"))


def max_image_pixels() -> int:
    """Largest image, as width x height: ``$DLCORE_MAX_IMAGE_PIXELS`` (default 150,000,000)."""
    return int(os.environ.get("DLCORE_MAX_IMAGE_PIXELS", "150000000"))


def api_max_bytes() -> int:
    """Largest body the REST endpoint reads, in bytes: ``$DLCORE_API_MAX_MB`` (default 10 MB)."""
    return int(float(os.environ.get("DLCORE_API_MAX_MB", "10")) * 1024 * 1024)


def api_max_rows() -> int:
    """Most rows one REST request may score: ``$DLCORE_API_MAX_ROWS`` (default 10,000); a bigger
    batch is several requests, or a file scored on the Predict page."""
    return int(os.environ.get("DLCORE_API_MAX_ROWS", "10000"))


def api_wait_seconds() -> float:
    """How long a REST request waits for a scoring worker before it answers 503:
    ``$DLCORE_API_WAIT_SECONDS`` (default 120; a cold worker loads TensorFlow first)."""
    return float(os.environ.get("DLCORE_API_WAIT_SECONDS", "120"))


def database_url() -> str:
    """``$DLCORE_DATABASE_URL`` (PostgreSQL for a team server), else SQLite in the data folder."""
    url = os.environ.get("DLCORE_DATABASE_URL")
    return url or f"sqlite:///{home() / 'store.db'}"


def local_workers() -> int:
    """Training workers the app starts on first use: ``$DLCORE_WORKERS`` (default 1; 0 = none)."""
    return int(os.environ.get("DLCORE_WORKERS", "1"))


def executor() -> str:
    """Where queued jobs run: ``$DLCORE_EXECUTOR``, ``local`` (default: worker processes on this
    machine) or ``ray`` (tasks on the Ray cluster at ``$RAY_ADDRESS``, or on a local Ray)."""
    from dlcore.errors import SpecError

    value = os.environ.get("DLCORE_EXECUTOR", "local").strip().lower() or "local"
    if value not in EXECUTORS:
        raise SpecError(f"DLCORE_EXECUTOR is {value!r}; set it to one of: {', '.join(EXECUTORS)}.")
    return value


def ray_address() -> str | None:
    """``$RAY_ADDRESS`` (Ray's own setting: the head node's ``host:port``); None starts a local Ray."""
    return os.environ.get("RAY_ADDRESS", "").strip() or None


def ray_cpus() -> float:
    """CPUs one training run asks the cluster for: ``$DLCORE_RAY_CPUS`` (default 1)."""
    from dlcore.errors import SpecError

    raw = os.environ.get("DLCORE_RAY_CPUS", "1")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise SpecError(f"DLCORE_RAY_CPUS is {raw!r}; set it to a positive number of CPUs, e.g. 1 or 4.")
    return value


def ray_resources() -> dict[str, float]:
    """Custom Ray resources one training run asks for besides CPUs, as JSON (``$DLCORE_RAY_RESOURCES``,
    e.g. ``{"trainer": 1}`` to train only on nodes started with ``--resources '{"trainer": 4}'``)."""
    import json

    from dlcore.errors import SpecError

    raw = os.environ.get("DLCORE_RAY_RESOURCES", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
        if not isinstance(value, dict) or not all(isinstance(v, (int, float)) and v > 0 for v in value.values()):
            raise ValueError
    except ValueError:
        raise SpecError(f"DLCORE_RAY_RESOURCES is {raw!r}; set it to a JSON object of positive amounts, "
                        'e.g. {"trainer": 1}.') from None
    return {str(k): float(v) for k, v in value.items()}


def ray_dashboard() -> bool:
    """Whether a local Ray started for the app serves its dashboard: ``$DLCORE_RAY_DASHBOARD=1`` (default off)."""
    return os.environ.get("DLCORE_RAY_DASHBOARD", "0").strip().lower() in ("1", "true", "yes", "on")


WORKER_NICE = 10  # the default: the app's workers yield the CPU to the server's page views


def worker_nice() -> int:
    """How far below the web server's priority the app's workers (and Ray tasks) run:
    ``$DLCORE_WORKER_NICE``, 0 to 19 (default 10; 0 runs them at the server's priority). While
    training fills every core, a page still draws promptly: training yields the moments the
    server needs and takes the rest."""
    from dlcore.errors import SpecError

    raw = os.environ.get("DLCORE_WORKER_NICE", str(WORKER_NICE)).strip()
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 19:
        raise SpecError(f"DLCORE_WORKER_NICE is {raw!r}; set it to a whole number from 0 (the server's "
                        "priority) to 19 (the lowest), e.g. 10.")
    return value


def worker_threads(n_train: int) -> int | None:
    """Threads one worker's TensorFlow and numeric libraries (BLAS, OpenMP, joblib) may use:
    ``$DLCORE_WORKER_THREADS``, else the machine's cores shared among the ``n_train`` training
    workers, so that workers training at once never ask for more threads than there are cores.
    None when that is every core (one worker: the libraries' own default)."""
    from dlcore.errors import SpecError

    raw = os.environ.get("DLCORE_WORKER_THREADS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise SpecError(f"DLCORE_WORKER_THREADS is {raw!r}; set it to a positive whole number of "
                            "threads, e.g. 2, or leave it unset to share the cores among the workers.")
        return value
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cores // max(1, n_train))
    return None if share >= cores else share
