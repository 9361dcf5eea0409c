"""Who may do what: the two modes, the roles, and the one rule table behind ``Store.allowed``.

Every record (dataset, run, scoring, explanation, and the files kept with them: thresholds,
reports, bundles) belongs to exactly one workspace; a user has one role in a workspace.

*Personal* mode (the default) has one built-in user, :data:`LOCAL`, who owns the built-in
workspace that holds everything. *Team* mode (``DLCORE_AUTH=team``, or an ``[auth]`` section in
``.streamlit/secrets.toml``) signs people in with OpenID Connect; each gets a personal workspace
at first sign-in and can create shared ones. One code path serves both: the pages and the
workers ask a store bound to the acting user (``Store.as_actor``), and that store asks
:func:`permits` for every read and every queued job. A record the user may not see is
"not found", with the same words as an id that does not exist (:func:`not_found`).

>>> permits("viewer", "view"), permits("viewer", "train"), permits("editor", "delete")
(True, False, False)
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Actor", "LOCAL", "LOCAL_WORKSPACE", "ROLES", "ACTIONS", "ROLE_ACTIONS", "KINDS", "permits",
           "least_role", "not_found", "team_mode", "admins", "allowed_domains", "email_allowed", "secrets_path",
           "ACTION_WORDS", "retention_days", "session_hours", "session_key"]

ROLES = ("owner", "editor", "viewer")
ACTIONS = ("view", "download_report", "upload", "train", "score", "explain", "decide", "stop", "download_model",
           "manage_members", "delete", "read_audit")
_VIEWER = {"view", "download_report"}
_EDITOR = _VIEWER | {"upload", "train", "score", "explain", "decide", "stop", "download_model"}
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(_VIEWER),
    "editor": frozenset(_EDITOR),
    "owner": frozenset(ACTIONS),
}
ACTION_WORDS = {
    "view": "opening it", "download_report": "downloading the report", "upload": "uploading data",
    "train": "training", "score": "scoring new data", "explain": "explaining a model",
    "decide": "saving a threshold", "stop": "stopping a run", "download_model": "downloading the model",
    "manage_members": "changing the members", "delete": "deleting", "read_audit": "reading the audit log",
}
# The kinds of record an id in a link can name, with the words the not-found answer uses.
KINDS = {"dataset": "dataset", "run": "run", "scoring": "scoring job", "explanation": "explanation",
         "workspace": "workspace"}

LOCAL_WORKSPACE = "local"


@dataclass(frozen=True)
class Actor:
    """Someone acting on the store: a signed-in user (by email), or the built-in personal user."""

    email: str
    name: str | None = None

    @property
    def is_local(self) -> bool:
        return self.email == LOCAL.email


LOCAL = Actor("local", "You")


def permits(role: str | None, action: str) -> bool:
    """Whether ``role`` (None: not a member) may do ``action``; an unknown action is a bug."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; the actions are {', '.join(ACTIONS)}")
    return role is not None and action in ROLE_ACTIONS[role]


def least_role(action: str) -> str:
    """The weakest role that may do ``action`` (for the refusal's wording)."""
    return next(r for r in reversed(ROLES) if permits(r, action))


def not_found(kind: str, record_id: str) -> str:
    """The one answer for an id that names nothing and for a record the user may not see."""
    words = KINDS[kind]
    text = (f"No {words} with id {record_id!r} here, or you have no access to it: ask the person who sent "
            "you the link to add you to its workspace.")
    if kind == "dataset":
        text += " Or upload the file again on the Data page."
    return text


def secrets_path() -> Path:
    """Where Streamlit reads the server's secrets (the app's folder): ``.streamlit/secrets.toml``."""
    return Path(os.environ.get("DLCORE_SECRETS", ".streamlit/secrets.toml"))


_secrets_read: tuple[bytes, dict] | None = None  # (the file's bytes, what they say): see _secrets


def _secrets() -> dict:
    """The secrets file's settings, parsed again only when its bytes change: every page render
    and many access checks ask, and parsing the TOML each time cost more than the check itself.
    Keyed by the content, not the modification time, so a file rewritten within the same clock
    tick is never read stale. The caller must not modify the dict."""
    global _secrets_read
    try:
        raw = secrets_path().read_bytes()
    except OSError:
        return {}
    held = _secrets_read
    if held is not None and held[0] == raw:
        return held[1]
    try:
        value = tomllib.loads(raw.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        value = {}
    _secrets_read = (raw, value)
    return value


def team_mode() -> bool:
    """Team mode: ``DLCORE_AUTH=team``, or sign-in configured (``[auth]`` in the secrets file).
    ``DLCORE_AUTH=personal`` keeps the personal mode whatever the secrets file says."""
    mode = os.environ.get("DLCORE_AUTH", "").strip().lower()
    if mode in ("team", "personal"):
        return mode == "team"
    return "auth" in _secrets()


def _setting(env: str, key: str) -> list[str]:
    raw = os.environ.get(env)
    if raw is None:
        raw = _secrets().get("dlcore", {}).get(key, [])
    values = raw.split(",") if isinstance(raw, str) else list(raw)
    return [v.strip().lower() for v in values if v and v.strip()]


def admins() -> list[str]:
    """Administrators, by email: ``$DLCORE_ADMINS`` (comma-separated) or ``[dlcore] admins``.
    An administrator is an owner of every shared workspace (never of someone's personal one)."""
    return _setting("DLCORE_ADMINS", "admins")


def allowed_domains() -> list[str]:
    """Email domains that may sign in at all: ``$DLCORE_ALLOWED_DOMAINS`` or ``[dlcore]
    allowed_domains``; empty lets every account of the provider in."""
    return [d.lstrip("@") for d in _setting("DLCORE_ALLOWED_DOMAINS", "allowed_domains")]


def email_allowed(email: str | None) -> bool:
    """Whether a signed-in email may use this server (its domain is allowed, or it is an admin)."""
    if not email or "@" not in email:
        return False
    email = email.lower()
    domains = allowed_domains()
    return not domains or email.rsplit("@", 1)[1] in domains or email in admins()


def retention_days() -> float | None:
    """``$DLCORE_RETENTION_DAYS``: runs older than this are deleted by the workers; unset keeps all."""
    raw = os.environ.get("DLCORE_RETENTION_DAYS", "").strip()
    return float(raw) if raw else None


def session_hours() -> float:
    """``$DLCORE_SESSION_HOURS`` (default 8, a working day): how long a sign-in lasts in team mode
    before the user must sign in again, whatever the identity cookie says (Streamlit's lasts 30 days)."""
    raw = os.environ.get("DLCORE_SESSION_HOURS", "").strip()
    try:
        hours = float(raw) if raw else 8.0
    except ValueError:
        raise ValueError(f"DLCORE_SESSION_HOURS={raw!r} is not a number of hours; set it to e.g. 8") from None
    if not hours > 0:
        raise ValueError(f"DLCORE_SESSION_HOURS={raw!r} must be more than 0 hours; set it to e.g. 8")
    return hours


def session_key(identity: dict) -> str:
    """The id of one sign-in: a digest of what the provider's identity token says about it (issuer,
    subject, email, time issued and the sign-in's nonce), the same in the page (``st.user``) and in
    the server's routes (the identity cookie decoded). A new sign-in gets a new key; the same cookie,
    copied or not, keeps its key, so a session record revoked at sign-out refuses that cookie.

    >>> session_key({"iss": "https://id.example.com", "sub": "1", "iat": 5, "nonce": "n"})[:12]
    '6c443cb84f5e'
    """
    fields = {k: identity.get(k) for k in ("iss", "sub", "email", "iat", "nonce")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()
