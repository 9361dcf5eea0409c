"""Workspace (team mode): members and roles, requests for access, API tokens, a new shared workspace, the
audit log."""

import datetime as dt

import pandas as pd
import streamlit as st

import ui
from dlcore import access
from ui import common, team, text

ui.route_through_app()

st.title("Workspace")
store = common.store()
workspace = store.workspace(store.workspace_id)
role = team.role()
kind = "personal" if workspace["personal_of"] else "shared"
st.caption(f"{text.md(workspace['name'])} · a {kind} workspace · you are its {role}. Pick another in the sidebar.")

st.subheader("Members")
st.dataframe(pd.DataFrame([{"Email": m["email"], "Role": m["role"], "Added": common.when(m["added_at"])}
                           for m in store.members_of(workspace["id"])]), hide_index=True)
if team.can("manage_members"):
    with st.form("add-member", clear_on_submit=True):
        c1, c2 = st.columns([3, 1])
        email = c1.text_input("Add a colleague by email", placeholder="name@example.com")
        chosen = c2.selectbox("Role", access.ROLES, index=2)
        if st.form_submit_button("Add", icon=":material/person_add:"):
            with common.guard():
                store.add_member(workspace["id"], email, chosen)
                st.rerun()
    others = [m["email"] for m in store.members_of(workspace["id"]) if m["email"] != workspace["personal_of"]]
    if others:
        c1, c2 = st.columns([3, 1])
        leaving = c1.selectbox("Remove a member", others, index=None, placeholder="Choose a member")
        if c2.button("Remove", disabled=leaving is None):
            with common.guard():
                store.remove_member(workspace["id"], leaving)
                st.rerun()

    st.subheader("Asked for access")
    asked = store.access_requests(workspace["id"])
    if not asked:
        st.caption("Nobody is waiting. When someone opens a link of this workspace and asks for access, they show here.")
    for request in asked:
        c1, c2 = st.columns([3, 1])
        c1.write(f"**{text.md(request['email'])}** asked to open {request['kind']} {text.md(request['resource_id'])} "
                 f"({common.when(request['created_at'])})")
        if c2.button("Add as viewer", key=f"grant-{request['id']}", icon=":material/person_add:"):
            with common.guard():
                store.add_member(workspace["id"], request["email"], "viewer")
                st.rerun()

if team.can("manage_tokens"):
    st.subheader("API tokens")
    st.caption("Another system scores rows with this workspace's runs through the REST endpoint "
               "(POST /v1/runs/RUN_ID/predict, documented at /docs), sending one of these tokens. A token may "
               "only view and score, in this workspace only.")
    with st.form("new-token", clear_on_submit=True):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        label = c1.text_input("What will call the API with it?", placeholder="billing system")
        made = c2.form_submit_button("Create a token", icon=":material/key:")
    if made:  # the secret is shown in this render only, never kept in the session
        with common.guard():
            token_id, secret = store.create_token(workspace["id"], label)
            st.success(f"Token {token_id} created. Copy it now: it is shown this once (the server keeps only its "
                       "hash). Send it as 'Authorization: Bearer <token>'.", icon=":material/key:")
            st.code(secret, language=None)
    tokens = store.tokens_of(workspace["id"])
    if tokens:
        st.dataframe(pd.DataFrame([{"Token": t["id"], "For": t["name"], "Created by": t["created_by"] or "",
                                    "Created": common.when(t["created_at"]),
                                    "Last used": common.when(t["last_used_at"]) if t["last_used_at"] else "never"}
                                   for t in tokens]), hide_index=True)
        c1, c2 = st.columns([3, 1])
        names = {t["id"]: f"{t['name']} ({t['id']})" for t in tokens}
        revoking = c1.selectbox("Revoke a token", list(names), format_func=names.get, index=None,
                                placeholder="Choose a token")
        if c2.button("Revoke", disabled=revoking is None, icon=":material/key_off:"):
            with common.guard():
                store.revoke_token(workspace["id"], revoking)
                st.rerun()

if team.can("read_audit"):
    st.subheader("Audit log")
    rows = store.audit_log(workspace["id"])
    st.caption("Who signed in, uploaded, trained, scored, downloaded, changed members or deleted, and when.")
    st.dataframe(pd.DataFrame([{"When": dt.datetime.fromtimestamp(r["at"]).strftime("%Y-%m-%d %H:%M:%S"),
                                "Who": r["email"], "Action": r["action"], "What": r["kind"] or "",
                                "Id": r["resource_id"] or "", "Detail": r["detail"] or ""} for r in rows],
                              columns=["When", "Who", "Action", "What", "Id", "Detail"]),
                 hide_index=True, width="stretch")
    st.download_button("Export the audit log (CSV)", data=common.deferred(lambda s: s.audit_csv(workspace["id"])),
                       file_name=f"audit-{workspace['id']}.csv", mime="text/csv", icon=":material/download:",
                       on_click="ignore")

st.subheader("New shared workspace")
with st.form("new-workspace", clear_on_submit=True):
    name = st.text_input("Name", placeholder="Pricing team")
    if st.form_submit_button("Create", icon=":material/add:"):
        with common.guard():
            new = store.create_workspace(name)
            store.remember_workspace(new)
            st.session_state[common.WORKSPACE_KEY] = new
            st.rerun()
