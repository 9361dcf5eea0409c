"""Sign-in, the workspace switcher, sharing, asking for access and deletion, as the pages show them.

What a user may do is decided in dlcore (``Store.as_actor``); these views only hide the buttons
a role cannot use, so a crafted request is still refused by the store.
"""

from __future__ import annotations

import streamlit as st

from dlcore import access
from dlcore.errors import DlcoreError
from ui import common, text, urls

__all__ = ["gate", "sidebar", "sign_out", "share", "ask_access", "can", "delete_run", "delete_dataset", "role"]

PERSONAL_NOTE = ("Personal mode: anyone who can open this address sees everything here. To require sign-in, "
                 "configure it as docs/team-server.md shows.")


def gate() -> None:
    """In team mode, let nobody past this point before they sign in (or whose email is not allowed).
    Records the sign-in in the audit log once per session."""
    if not access.team_mode():
        return
    if not st.user.get("is_logged_in"):
        st.title("Deep Learning Studio")
        st.write("This server is shared by a team: sign in to see your workspaces.")
        if st.button("Sign in", type="primary", icon=":material/login:"):
            _login()
        st.stop()
    try:  # an unverified, malformed or not allowed e-mail, or no account named: refused in words
        who = access.signed_in_actor(st.user.to_dict())
    except DlcoreError as exc:
        st.error(str(exc), icon=":material/block:")
        st.button("Sign out", on_click=st.logout)
        st.stop()
    try:
        problem = common.session_problem(common.server_store())
    except DlcoreError as exc:  # the data folder or database cannot be opened: say so, plainly
        st.error(str(exc), icon=":material/error:")
        st.stop()
    if problem is not None:
        # The cookie still says who this is, but the server ended the sign-in: sign in anew.
        st.title("Deep Learning Studio")
        st.warning(problem, icon=":material/lock_clock:")
        if st.button("Sign in again", type="primary", icon=":material/login:"):
            _login()
        st.stop()
    signed = (who.issuer, who.subject)
    if st.session_state.get("_dlcore_signed_in") != signed:
        try:
            common.store().signed_in(st.user.get("iat"))
        except DlcoreError as exc:  # the data folder or database cannot be opened: say so, plainly
            st.error(str(exc), icon=":material/error:")
            st.stop()
        st.session_state["_dlcore_signed_in"] = signed


def _login() -> None:
    """``st.login`` with the one provider configured; a misconfiguration is a message for the
    administrator, never a traceback."""
    from streamlit.errors import StreamlitAPIException, StreamlitAuthError

    try:
        auth = dict(st.secrets.get("auth", {}))
    except (FileNotFoundError, StreamlitAPIException):
        auth = {}
    providers = [k for k, v in auth.items() if hasattr(v, "keys")]
    try:
        if "auth" not in st.secrets:
            raise StreamlitAuthError("there is no [auth] section in .streamlit/secrets.toml")
        problem = _provider_problem(auth, providers)
        if problem:
            st.error(problem, icon=":material/cloud_off:")
            return
        st.login(providers[0] if len(providers) == 1 and "client_id" not in auth else None)
    except (StreamlitAuthError, StreamlitAPIException) as exc:
        st.error(f"Sign-in is not set up correctly on this server: {exc}. For the administrator: check the [auth] "
                 "section of .streamlit/secrets.toml (redirect_uri, cookie_secret, client_id, client_secret, "
                 "server_metadata_url) as docs/team-server.md shows.", icon=":material/settings:")


def _provider_problem(auth: dict, providers: list[str]) -> str | None:
    """Why the sign-in provider cannot be reached from this server, or None. Streamlit itself
    answers an unreachable provider with a bare "Authentication error" page; the administrator
    needs the address and the error instead."""
    import urllib.error
    import urllib.request

    section = auth if "server_metadata_url" in auth else (dict(auth.get(providers[0], {})) if len(providers) == 1 else {})
    url = section.get("server_metadata_url")
    if not url:
        return None  # Streamlit's own check names the missing setting
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            answer.read(1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return (f"Sign-in is not possible right now: this server cannot reach the sign-in provider at {url} "
                f"({reason}). For the administrator: check server_metadata_url in the [auth] section of "
                ".streamlit/secrets.toml, and that this server can reach that address.")
    return None


def sidebar() -> None:
    """The mode line, and in team mode the workspace switcher and the sign-out button."""
    if not access.team_mode():
        st.caption(PERSONAL_NOTE)
        return
    store = common.store()
    spaces = store.workspaces_of()
    ids = [w["id"] for w in spaces]
    names = {w["id"]: f"{w['name']} · {w['role']}" for w in spaces}
    current = store.workspace_id if store.workspace_id in ids else ids[0]

    def switch() -> None:
        st.session_state[common.WORKSPACE_KEY] = st.session_state["dlcore-workspace-picker"]
        # The store of this click's run, not the one that drew the switcher: a role changed since counts.
        common.store().remember_workspace(st.session_state[common.WORKSPACE_KEY])

    st.selectbox("Workspace", ids, index=ids.index(current), format_func=names.get, key="dlcore-workspace-picker",
                 on_change=switch, help="Lists, uploads and new runs are in this workspace.")
    st.caption(f"Signed in as {text.md(store.actor.email)}")
    st.button("Sign out", on_click=sign_out, icon=":material/logout:")


def sign_out() -> None:
    """End this sign-in on the server (its cookie, even a copy, is refused from now on), then
    Streamlit's own sign-out (the cookie goes from this browser)."""
    key = common.session_key()
    if key is not None:
        common.store().end_session(key)
    st.logout()


def role(workspace_id: str | None = None) -> str | None:
    store = common.store()
    return store.role_of(store.actor, workspace_id or store.workspace_id)


def can(action: str, workspace_id: str | None = None) -> bool:
    """Whether to show the button for ``action`` (the store checks again when it is used)."""
    return access.permits(role(workspace_id), action)


def ask_access(kind: str, record_id: str) -> None:
    """Under the not-found answer: the same button and the same reply whether or not the id exists."""
    if not access.team_mode():
        return
    key = f"ask-{kind}-{record_id}"
    if st.session_state.get(key):
        st.info("Your request is noted. If this link names something on this server, its workspace's owners "
                "see your request and can add you in one click; open the link again once they have.",
                icon=":material/mark_email_read:")
        return
    if st.button("Ask for access", icon=":material/person_add:", key=f"{key}-button"):
        common.store().request_access(kind, record_id)
        st.session_state[key] = True
        st.rerun()


def share(run_id: str, page: str) -> None:
    """The Share button of a run page: the link to copy, and (owners) add a colleague by email."""
    store = common.store()
    run = store.run(run_id)
    with st.popover("Share", icon=":material/share:"):
        if not access.team_mode():
            st.caption("The link to this page (send it to a colleague):")
            st.code(_absolute(urls.href(page, run=run_id)), language=None)
            st.caption("Personal mode: anyone who can reach this address can open the link.")
            return
        st.caption("The link to this page (send it to a colleague; it opens only for members of its workspace):")
        st.code(_absolute(urls.href(page, run=run_id)), language=None)
        if not can("manage_members", run.workspace_id):
            st.caption("Only the owners of this run's workspace can add people to it.")
            return
        workspace = store.workspace(run.workspace_id)
        st.markdown(f"Add a colleague to the workspace **{text.md(workspace['name'])}**:")
        with st.form(f"share-{run_id}", clear_on_submit=True, border=False):
            email = st.text_input("Email", placeholder="name@example.com")
            chosen = st.selectbox("Role", access.ROLES, index=2, help="viewer: open pages and reports; editor: also "
                                  "upload, train, score and download models; owner: also members and deletion.")
            if st.form_submit_button("Add", icon=":material/person_add:"):
                with common.guard():
                    store.add_member(run.workspace_id, email, chosen)
                    st.success(f"{text.md(access.normalise_email(email))} is now a {chosen} of "
                               f"{text.md(workspace['name'])}.")


def _absolute(path: str) -> str:
    try:
        base = st.context.url or ""
    except AttributeError:
        base = ""
    if "//" in base:
        scheme, rest = base.split("//", 1)
        return f"{scheme}//{rest.split('/', 1)[0]}{path}"
    return path


def _plan_text(plan: dict) -> str:
    size = plan["bytes"] / 1e6
    return (f"{plan['runs']} run(s) with their models, {plan['scorings']} scoring(s), {plan['explanations']} "
            f"explanation(s), {plan['files']} file(s) ({size:.1f} MB)")


def delete_run(run_id: str) -> None:
    """Delete a run (owners): says what goes, asks once, then deletes and goes to Runs."""
    store = common.store()
    run = store.run(run_id)
    if not can("delete", run.workspace_id):
        return
    with st.popover("Delete run", icon=":material/delete:"):
        plan = store.deletion_plan("run", run_id)
        st.write(f"This deletes {_plan_text(plan)}: the scores, threshold, explanations and report go with it. "
                 "It cannot be undone.")
        if st.button("Delete for good", type="primary", key=f"delete-run-{run_id}"):
            with common.guard():
                store.delete_run(run_id)
                st.switch_page(urls.page("runs"))


def delete_dataset(dataset_id: str) -> None:
    """Delete a dataset with everything derived from it (owners)."""
    store = common.store()
    dataset = store.dataset(dataset_id)
    if not can("delete", dataset.workspace_id):
        return
    with st.popover("Delete dataset", icon=":material/delete:"):
        plan = store.deletion_plan("dataset", dataset_id)
        st.write(f"This deletes {text.md(dataset.name)} and everything made from it: {_plan_text(plan)}, the uploaded "
                 "file and its cached copies. It cannot be undone.")
        if st.button("Delete for good", type="primary", key=f"delete-dataset-{dataset_id}"):
            with common.guard():
                store.delete_dataset(dataset_id)
                urls.set_ids(dataset=None)
                st.rerun()
