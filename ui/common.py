"""The store, the local worker pool and small display helpers shared by every page."""

from __future__ import annotations

import contextlib
import datetime as dt
import weakref
from typing import Callable, Iterator

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dlcore import access, config
from dlcore.access import Actor
from dlcore.errors import AccessError, DlcoreError
from dlcore.jobs import LocalPool
from dlcore.store import Store

__all__ = ["store", "server_store", "actor", "frame", "ensure_workers", "guard", "when", "duration", "STATUS_WORDS",
           "status_label", "session_key", "session_problem", "deferred"]


@st.cache_resource(show_spinner=False)
def server_store() -> Store:
    """The server's store, unbound (the system). Opening it marks runs whose worker is gone as
    interrupted, and removes record folders no row names (workers sweep them on a schedule).
    Pages use ``store()``, bound to whoever is signed in."""
    opened = Store.open()
    opened.recover_interrupted()
    opened.sweep_orphans()
    return opened


def actor() -> Actor:
    """Who uses this session: the built-in user in personal mode, the signed-in one in team mode
    (app.py lets nobody further than the sign-in page before that)."""
    if not access.team_mode():
        return access.LOCAL
    if not st.user.get("is_logged_in"):
        st.error("Sign in first: this server is in team mode.", icon=":material/lock:")
        st.stop()
    try:  # the provider's account (issuer and subject), its verified and allowed e-mail
        return access.signed_in_actor(st.user.to_dict())
    except DlcoreError as exc:
        st.error(str(exc), icon=":material/block:")
        st.stop()


def store() -> Store:
    """The store as the session's user sees it, in the workspace picked in the sidebar: every
    read by id, every list and every queued job is checked in dlcore (``Store.as_actor``)."""
    who = actor()
    key = ((who.email, who.issuer, who.subject), st.session_state.get(WORKSPACE_KEY))
    bound = st.session_state.get("_dlcore_store")
    if bound is None or bound[0] != key or bound[1].engine is not server_store().engine:
        try:  # the account of record: refused if its address is another account's
            chosen = server_store().as_actor(who, key[1])
        except AccessError as exc:
            st.error(str(exc), icon=":material/block:")
            st.button("Sign out", on_click=st.logout)
            st.stop()
        # Kept under the workspace it settled on (None asks for the last one used), which is what
        # the sidebar's key says from now on: the next call of this render finds it.
        bound = ((key[0], chosen.workspace_id), chosen)
        st.session_state["_dlcore_store"] = bound
        st.session_state[WORKSPACE_KEY] = bound[1].workspace_id
    return _for_this_render(bound[1])


def _for_this_render(bound: Store) -> Store:
    """``bound``, remembering each access check's role until this script run ends (a page or a
    fragment's rerun): a render reads many records of the same workspace, each read checked.
    The next run asks the database again, so a role changed meanwhile counts at once."""
    ctx = get_script_run_ctx(suppress_warning=True)
    # Streamlit makes this object anew at the start of every script run (page or fragment) and
    # nowhere else: a weak reference to it names the run without a counter of our own.
    run = getattr(ctx, "parallel_coordinator", None) if ctx is not None else None
    if run is None:
        return bound
    held = st.session_state.get("_dlcore_render")
    if held is None or held[0]() is not run or held[1] is not bound:
        # A new page or fragment run: the sign-in is asked again too (a fragment's rerun does not
        # pass app.py's gate), so a session ended meanwhile stops at the user's next click.
        _stop_if_session_ended(bound)
        held = (weakref.ref(run), bound, bound.remembering_roles())
        st.session_state["_dlcore_render"] = held
    return held[2]


WORKSPACE_KEY = "dlcore-workspace"


def session_key() -> str | None:
    """The server's id of this browser's sign-in (``access.session_key``); None in personal mode."""
    if not access.team_mode() or not st.user.get("is_logged_in"):
        return None
    return access.session_key(st.user.to_dict())


def session_problem(bound: Store) -> str | None:
    """Why this session's sign-in may no longer be used (signed out, revoked, expired), or None.
    The first time a sign-in is seen it is recorded (to expire after ``DLCORE_SESSION_HOURS``)."""
    key = session_key()
    if key is None:
        return None
    return bound.open_session(key, actor().email, _number(st.user.get("iat")))


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _stop_if_session_ended(bound: Store) -> None:
    problem = session_problem(bound)
    if problem is not None:
        st.warning(problem, icon=":material/lock_clock:")
        st.stop()


def deferred(make: Callable[[Store], bytes | str]) -> Callable[[], bytes]:
    """A download button's ``data``, made when it is clicked by ``make(store)``: the store is the
    session's user as they stand *then* (roles asked again, the sign-in still live), never the
    render that drew the button, so removing a member stops downloads from a page they keep open.
    ``make`` must read through the store it gets (its reads are the access checks)."""
    key = session_key()
    bound = store()
    plain = st.session_state["_dlcore_store"][1] if "_dlcore_store" in st.session_state else bound
    email = actor().email if key is not None else ""

    def run() -> bytes:
        # Runs on Streamlit's thread pool, outside any page run: no st.* here.
        if key is not None:
            problem = plain.session_problem(key, email)
            if problem is not None:
                raise PermissionError(problem)
        data = make(plain)
        data = data.encode("utf-8") if isinstance(data, str) else data
        if key is not None:
            from ui import server

            server.made_for(data, email)
        return data

    return run


@st.cache_resource(max_entries=4, show_spinner="Loading the table…")
def frame(dataset_id: str) -> pd.DataFrame:
    """A dataset's table, one shared copy per dataset for every page and session (never modified)."""
    from dlcore import datasets

    return datasets.load_frame(store(), dataset_id)


@st.cache_resource(show_spinner=False)
def _pool() -> LocalPool:
    s = server_store()
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
