"""The store, the local worker pool and small display helpers shared by every page."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

import pandas as pd
import streamlit as st

from dlcore import config
from dlcore.errors import DlcoreError
from dlcore.jobs import LocalPool
from dlcore.store import Store

__all__ = ["store", "frame", "ensure_workers", "guard", "when", "duration", "STATUS_WORDS", "status_label"]


@st.cache_resource(show_spinner=False)
def store() -> Store:
    """The server's store. Opening it marks runs whose worker is gone as interrupted."""
    opened = Store.open()
    opened.recover_interrupted()
    return opened


@st.cache_resource(max_entries=4, show_spinner="Loading the table…")
def frame(dataset_id: str) -> pd.DataFrame:
    """A dataset's table, one shared copy per dataset for every page and session (never modified)."""
    from dlcore import datasets

    return datasets.load_frame(store(), dataset_id)


@st.cache_resource(show_spinner=False)
def _pool() -> LocalPool:
    s = store()
    return LocalPool(s.home, n_train=config.local_workers(),
                     database_url=s.url if not s.url.startswith("sqlite") else None, store=s)


def ensure_workers() -> None:
    """Start (or restart) this server's workers; cheap when they are already running."""
    _pool().ensure()


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Show a dlcore error as a plain message on the page instead of a crash."""
    try:
        yield
    except DlcoreError as exc:
        st.error(str(exc), icon=":material/error:")


STATUS_WORDS = {
    "queued": "queued",
    "running": "training",
    "done": "finished",
    "stopped": "stopped early",
    "cancelled": "cancelled",
    "failed": "failed",
    "interrupted": "interrupted",
}
STATUS_ICONS = {
    "queued": ":material/hourglass_top:",
    "running": ":material/directions_run:",
    "done": ":material/check_circle:",
    "stopped": ":material/stop_circle:",
    "cancelled": ":material/block:",
    "failed": ":material/error:",
    "interrupted": ":material/warning:",
}


def status_label(status: str) -> str:
    """The status in words with an icon, for markdown (tables use ``STATUS_WORDS``)."""
    return f"{STATUS_ICONS.get(status, '')} {STATUS_WORDS.get(status, status)}".strip()


def when(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return dt.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
