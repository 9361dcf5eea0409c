"""Deep Learning Studio: the router. Page config, navigation over the pages, shared sidebar."""

from pathlib import Path

import streamlit as st

if __name__ != "__main__":
    # Imported by `streamlit run app.py` (it finds this st.App and serves it with uvicorn), which runs
    # this same file as the page script below: the server's routes and its middleware. Routes: the
    # REST endpoint (dlcore.api: scoring under /v1/, its documentation at /docs); the server process
    # never loads TensorFlow, so the endpoint queues each request for the app's scoring worker (started
    # on first use, as a page view starts it) and waits for its answer. Middleware: in team mode the
    # identity check in front of every path that serves a user's files (ui/server.py).
    from dlcore import api
    from ui import common, server

    app = st.App(__file__, routes=[*server.routes(), *api.routes("queued", prepare=common.ensure_workers)],
                 middleware=server.middleware())
else:
    from dlcore import access
    from ui import common, privacy, team, urls

    # The icon is a file the app serves itself: a ":material/...:" icon makes every browser fetch the
    # SVG from a font host on the internet.
    st.set_page_config(page_title="Deep Learning Studio",
                       page_icon=str(Path(__file__).parent / "ui" / "assets" / "icon.png"), layout="wide")

    # Team mode: nothing of the product before sign-in (and a plain refusal for an email not allowed).
    team.gate()
    current = urls.navigation()
    with st.sidebar:
        st.caption(
            "Deep Learning Studio: bring a table, train deep models, and see honestly whether they "
            "beat the simple ones. Every page has a link you can share."
        )
        # Viewers see personal-data columns masked; pages that open a record of another workspace
        # decide again by that workspace's role (ui.views.or_stop). Masked first in team mode, so a
        # sidebar that fails (a store that cannot be read) never leaves the values shown.
        privacy.hide_personal_data(access.team_mode())
        with common.guard():
            team.sidebar()
            privacy.hide_personal_data(team.role() not in ("editor", "owner"))
    # A problem the analyst or the administrator can fix (a data folder that cannot be opened or
    # written, say) is a plain message wherever it is raised, never a traceback.
    with common.guard():
        common.ensure_workers()
        current.run()
