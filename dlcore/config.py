"""Settings read from the environment, with the embedded defaults a fresh machine uses."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["home", "max_upload_bytes", "database_url", "local_workers"]


def home() -> Path:
    """The data folder: ``$DLCORE_HOME``, or ``./.dlcore`` by default."""
    return Path(os.environ.get("DLCORE_HOME", ".dlcore")).resolve()


def max_upload_bytes() -> int:
    """Largest file accepted, in bytes: ``$DLCORE_MAX_UPLOAD_MB`` (default 500 MB)."""
    return int(float(os.environ.get("DLCORE_MAX_UPLOAD_MB", "500")) * 1024 * 1024)


def database_url() -> str:
    """``$DLCORE_DATABASE_URL`` (PostgreSQL for a team server), else SQLite in the data folder."""
    url = os.environ.get("DLCORE_DATABASE_URL")
    return url or f"sqlite:///{home() / 'store.db'}"


def local_workers() -> int:
    """Training workers the app starts on first use: ``$DLCORE_WORKERS`` (default 1; 0 = none)."""
    return int(os.environ.get("DLCORE_WORKERS", "1"))
