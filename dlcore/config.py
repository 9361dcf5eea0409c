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
]


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


def database_url() -> str:
    """``$DLCORE_DATABASE_URL`` (PostgreSQL for a team server), else SQLite in the data folder."""
    url = os.environ.get("DLCORE_DATABASE_URL")
    return url or f"sqlite:///{home() / 'store.db'}"


def local_workers() -> int:
    """Training workers the app starts on first use: ``$DLCORE_WORKERS`` (default 1; 0 = none)."""
    return int(os.environ.get("DLCORE_WORKERS", "1"))
