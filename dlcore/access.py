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
import logging
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dlcore.errors import AccessError, SpecError

__all__ = ["Actor", "LOCAL", "LOCAL_WORKSPACE", "ROLES", "ACTIONS", "ROLE_ACTIONS", "KINDS", "permits",
           "least_role", "not_found", "TOKEN_ROLE", "team_mode", "admins", "allowed_domains", "email_allowed",
           "secrets_path", "ACTION_WORDS", "retention_days", "normalise_email", "require_verified_email",
           "signed_in_actor", "session_hours", "session_key"]

log = logging.getLogger("dlcore.access")
_warned: set[tuple[str, ...]] = set()  # each warning once per process: the checks run at every render


def _warn_once(key: tuple[str, ...], message: str, *args: object) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message, *args)

ROLES = ("owner", "editor", "viewer")
ACTIONS = ("view", "download_report", "upload", "train", "score", "explain", "decide", "stop", "download_model",
           "manage_members", "manage_tokens", "delete", "read_audit")
_VIEWER = {"view", "download_report"}
_EDITOR = _VIEWER | {"upload", "train", "score", "explain", "decide", "stop", "download_model"}
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset(_VIEWER),
    "editor": frozenset(_EDITOR),
    "owner": frozenset(ACTIONS),
}
# What a request made with a workspace's API token may do there (``dlcore.api``): read and score,
# nothing else. Not a role a person can be given.
TOKEN_ROLE = "token"
ROLE_ACTIONS[TOKEN_ROLE] = frozenset({"view", "score"})
ACTION_WORDS = {
    "view": "opening it", "download_report": "downloading the report", "upload": "uploading data",
    "train": "training", "score": "scoring new data", "explain": "explaining a model",
    "decide": "saving a threshold", "stop": "stopping a run", "download_model": "downloading the model",
    "manage_members": "changing the members",
    "manage_tokens": "creating or revoking API tokens", "delete": "deleting", "read_audit": "reading the audit log",
}
# The kinds of record an id in a link can name, with the words the not-found answer uses.
KINDS = {"dataset": "dataset", "run": "run", "scoring": "scoring job", "explanation": "explanation",
         "workspace": "workspace"}

LOCAL_WORKSPACE = "local"


@dataclass(frozen=True)
class Actor:
    """Someone acting on the store: a signed-in user, or the built-in personal user.

    A user signed in through the web app carries the provider's ``issuer`` and ``subject`` (the
    OpenID Connect ``iss`` and ``sub``): the store knows an account by that pair and gives it the
    e-mail of record it was first seen with (``Store.as_actor``). An actor without them (the
    CLI's operator, a worker acting for whoever queued a job) is known by its e-mail alone."""

    email: str
    name: str | None = None
    issuer: str | None = field(default=None, compare=False)
    subject: str | None = field(default=None, compare=False)

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


def normalise_email(raw: object) -> str:
    """The one form of an e-mail address on this server: trimmed, lower-case, and checked to be one
    address (exactly one ``@`` with text on both sides, no spaces or control characters, at most
    254 characters). Sign-in, invitations, the CLI's ``--as`` and the allow-lists all pass through
    here, so ``" Carla@Example.com"`` is carla everywhere and ``x@evil.com@example.com`` nowhere.

    >>> normalise_email("  Carla@Example.COM ")
    'carla@example.com'
    """
    text = str(raw if raw is not None else "").strip().lower()
    local, at, domain = text.partition("@")
    if (not at or not local or not domain or "@" in domain or len(text) > 254 or domain.startswith(".")
            or domain.endswith(".") or ".." in domain or any(c.isspace() or ord(c) < 32 or c == "\x7f" for c in text)):
        shown = text if len(text) <= 80 else text[:80] + "…"
        raise SpecError(f"{shown!r} is not an email address (it needs exactly one @, text on both sides and no "
                        "spaces): write the address as name@example.com.")
    return text


def _is_email(raw: object) -> bool:
    try:
        normalise_email(raw)
    except SpecError:
        return False
    return True


def admins() -> list[str]:
    """Administrators, by email: ``$DLCORE_ADMINS`` (comma-separated) or ``[dlcore] admins``.
    An administrator is an owner of every shared workspace (never of someone's personal one).
    An entry that is not one address is left out, with a warning in the server's log."""
    found = []
    for entry in _setting("DLCORE_ADMINS", "admins"):
        if _is_email(entry):
            found.append(normalise_email(entry))
        else:
            _warn_once(("admin", entry), "DLCORE_ADMINS / [dlcore] admins: %r is not an e-mail address; it is ignored",
                       entry)
    return found


def allowed_domains() -> list[str]:
    """Email domains that may sign in at all: ``$DLCORE_ALLOWED_DOMAINS`` or ``[dlcore]
    allowed_domains``; empty lets every account of the provider in."""
    return [d.lstrip("@") for d in _setting("DLCORE_ALLOWED_DOMAINS", "allowed_domains")]


def email_allowed(email: str | None) -> bool:
    """Whether an e-mail may use this server: it is one address (see :func:`normalise_email`)
    whose domain, after the one ``@``, is allowed, or it is an administrator's."""
    if not _is_email(email):
        return False
    email = normalise_email(email)
    domains = allowed_domains()
    return not domains or email.split("@", 1)[1] in domains or email in admins()


def require_verified_email() -> bool:
    """Whether sign-in needs the provider's ``email_verified`` claim to be true (the default):
    ``$DLCORE_REQUIRE_VERIFIED_EMAIL=0`` or ``[dlcore] require_verified_email = false`` relaxes it
    for a provider that never sends the claim (each sign-in then logs a warning)."""
    raw = os.environ.get("DLCORE_REQUIRE_VERIFIED_EMAIL")
    if raw is None:
        raw = _secrets().get("dlcore", {}).get("require_verified_email", True)
    if isinstance(raw, str):
        return raw.strip().lower() not in ("0", "false", "no", "off")
    return bool(raw)


def _claim_true(value: object) -> bool:
    # Some providers send the claim as the string "true" (AWS Cognito did for years).
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def signed_in_actor(claims: Mapping) -> Actor:
    """The actor of a web sign-in, from the ID token's claims (Streamlit's ``st.user``): the
    provider's ``iss`` and ``sub`` name the account, its e-mail (normalised) must be verified
    by the provider and allowed on this server. Raises ``AccessError`` saying why not, in words
    the person can act on; nothing here depends on what any other user did."""
    issuer, subject = str(claims.get("iss") or "").strip(), str(claims.get("sub") or "").strip()
    raw = claims.get("email")
    if not raw:
        raise AccessError("The sign-in provider sent no e-mail address for this account, and this server knows its "
                          "users by their address. Sign in with an account that has one; for the administrator: "
                          "ask the provider for the 'email' scope.")
    try:
        email = normalise_email(raw)
    except SpecError:
        raise AccessError(f"The sign-in provider sent {str(raw)[:80]!r} as this account's e-mail, which is not one "
                          "address. Sign in with another account, or ask the administrator.") from None
    if not issuer or not subject:
        raise AccessError("The sign-in provider did not say which account signed in (no 'iss' or 'sub' claim). For "
                          "the administrator: configure an OpenID Connect provider in the [auth] section.")
    if not _claim_true(claims.get("email_verified")):
        if require_verified_email():
            raise AccessError(f"The sign-in provider has not verified that {email} belongs to this account. Verify "
                              "the address with the provider (follow the link it sent), then sign in again.")
        _warn_once(("unverified", issuer, subject, email), "sign-in of %s (%s, sub %s) without a verified e-mail: "
                   "DLCORE_REQUIRE_VERIFIED_EMAIL is off", email, issuer, subject)
    if not email_allowed(email):
        raise AccessError(f"The account {email} may not use this server. Sign in with an account of your "
                          "organisation, or ask the administrator to allow yours.")
    name = claims.get("name")
    return Actor(email, str(name) if name else None, issuer, subject)


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
