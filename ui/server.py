"""What the web server does before a page or a file is served: the team-mode identity check on
every path that serves a user's files, and the security headers of every answer.

Streamlit serves a download, an image or a chart's file under ``/media/<id>`` to any request that
names the id, with no sign-in; it answers ``/_stcore/metrics`` to anyone. In team mode the
middleware here stands in front of those routes (``app.py`` mounts it with ``st.App``):

- ``/media/…`` is served only to a request whose identity cookie is a live sign-in (recorded by
  the pages, not signed out, revoked or expired: ``Store.session_problem``) of the user whose
  page made the file; anything else is 401 (no or dead sign-in) or 404 (another user's file);
- ``/_stcore/upload_file/…`` needs a live sign-in too (the page checks the role before it keeps
  a byte);
- ``/_stcore/metrics`` is not served (404).

Every answer, in both modes, forbids framing (``X-Frame-Options: DENY``, CSP ``frame-ancestors
'none'``), sniffing and cross-site referrers. The WebSocket (``/_stcore/stream``) is left to
Streamlit: the page's gate (``ui.team.gate``) checks the sign-in at every run.

Other routes of the same server (the REST endpoint under ``/v1/``) add their own to the lists
``middleware()`` and ``routes()`` return; ``app.py`` passes both to ``st.App``.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import logging
import threading
import time
from typing import Any

from dlcore import access
from dlcore.errors import DlcoreError
from dlcore.store import Store

_LOG = logging.getLogger(__name__)

__all__ = ["SECURITY_HEADERS", "TeamGate", "identity", "made_for", "middleware", "routes"]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def middleware() -> list[Any]:
    """The middleware ``st.App`` puts in front of Streamlit's own routes (outermost first)."""
    from starlette.middleware import Middleware

    return [Middleware(TeamGate)]


def routes() -> list[Any]:
    """Routes of this app beside Streamlit's (none of its own yet)."""
    return []


def identity(cookies: dict[str, str]) -> dict | None:
    """What the signed identity cookie says (Streamlit's ``st.user``), or None when there is none
    or its signature does not hold."""
    from streamlit.web.server.starlette.starlette_websocket import (
        _get_signed_cookie_with_chunks,
    )

    try:
        raw = _get_signed_cookie_with_chunks(cookies, "_streamlit_user")
        payload = json.loads(raw) if raw else None
    except Exception:  # noqa: BLE001 (a forged, truncated or foreign cookie, whatever breaks, is no identity)
        return None
    if not isinstance(payload, dict) or not payload.get("is_logged_in") or not payload.get("email"):
        return None
    return payload


# Files a deferred download produced (``ui.common.deferred``): Streamlit keeps them under an id
# that no page session owns, so the content's digest says for whom it was made. Bounded: old
# entries go (such a file is then refused, and a click makes it again).
_MADE_FOR: collections.OrderedDict[str, set[str]] = collections.OrderedDict()
_MADE_LOCK = threading.Lock()
_MADE_MAX = 2000


def made_for(data: bytes, email: str) -> None:
    """Note that ``data`` is a download made for ``email`` (their page's deferred download)."""
    digest = hashlib.sha256(data).hexdigest()
    with _MADE_LOCK:
        _MADE_FOR.setdefault(digest, set()).add(email.lower())
        _MADE_FOR.move_to_end(digest)
        while len(_MADE_FOR) > _MADE_MAX:
            _MADE_FOR.popitem(last=False)


@functools.lru_cache(maxsize=1)
def _store() -> Store:
    """The server's store, opened once (the pages' own opening may be creating its tables at the
    same moment: SQLite then says a table already exists, so this asks again)."""
    for attempt in range(5):
        try:
            return Store.open()
        except DlcoreError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _owners(file_name: str) -> tuple[bool, set[str]]:
    """Whether Streamlit holds the media file ``file_name`` (``<id>.<ext>``), and the emails of the
    users whose page sessions (or deferred downloads) it was made for."""
    import os

    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return False, set()
    runtime = Runtime.instance()
    manager = runtime.media_file_mgr
    file_id = os.path.splitext(file_name)[0]
    try:
        content = manager._storage.get_file(file_name).content  # Streamlit 1.67 (pinned) internals
    except Exception:  # noqa: BLE001 (MediaFileStorageError and kin: no such file)
        return False, set()
    owners: set[str] = set()
    with manager._lock:
        sessions = [sid for sid, files in manager._files_by_session_and_coord.items() if file_id in files.values()]
    for sid in sessions:
        info = runtime._session_mgr.get_session_info(sid)
        email = (getattr(info.session, "_user_info", None) or {}).get("email") if info is not None else None
        if email:
            owners.add(str(email).lower())
    if isinstance(content, bytes):
        with _MADE_LOCK:
            owners |= _MADE_FOR.get(hashlib.sha256(content).hexdigest(), set())
    return True, owners


def _check(path: str, cookies: dict[str, str]) -> tuple[int, str] | None:
    """The refusal (status, words) of a team-mode request for ``path``, or None to serve it."""
    if path == "/_stcore/metrics":
        return 404, "Not found."
    media = path.startswith("/media/")
    if not (media or path.startswith("/_stcore/upload_file")):
        return None
    who = identity(cookies)
    if who is None:
        return 401, "Sign in to this server first."
    try:  # the same checks as the page's gate: a verified, allowed e-mail of a named account
        email = access.signed_in_actor(who).email
    except DlcoreError:
        return 401, "Sign in to this server first."
    try:
        problem = _store().session_problem(access.session_key(who), email)
    except DlcoreError as exc:  # the database cannot be read: refuse, and say why in the server's log
        _LOG.error("The sign-in of a request for %s could not be checked: %s", path, exc)
        return 503, "The server cannot check sign-ins right now; try again in a moment."
    if problem is not None:
        return 401, "Your sign-in has ended: open the app and sign in again."
    if media:
        held, owners = _owners(path[len("/media/"):])
        if not held or email not in owners:
            return 404, "File not found."
    return None


class TeamGate:
    """ASGI middleware: security headers on every answer; in team mode, the identity check in front
    of the routes that serve users' files (see the module's docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(h for h in SECURITY_HEADERS if h[0] not in names)]
            await send(message)

        if access.team_mode():
            from anyio import to_thread
            from starlette.requests import Request
            from starlette.responses import PlainTextResponse

            request = Request(scope)
            refusal = await to_thread.run_sync(_check, _local_path(scope["path"]), dict(request.cookies))
            if refusal is not None:
                answer = PlainTextResponse(refusal[1], status_code=refusal[0], headers={"Cache-Control": "no-store"})
                await answer(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)


def _local_path(path: str) -> str:
    """``path`` without the server's ``server.baseUrlPath`` prefix."""
    from streamlit import config

    base = "/" + str(config.get_option("server.baseUrlPath") or "").strip("/")
    if base != "/" and (path == base or path.startswith(base + "/")):
        path = path[len(base):] or "/"
    return path
