"""Deep Learning Studio: the router. Page config, navigation over the pages, shared sidebar."""

from pathlib import Path

import streamlit as st

from ui import common, privacy, team, urls

# The icon is a file the app serves itself: a ":material/...:" icon makes every browser fetch the
# SVG from a font host on the internet.
st.set_page_config(page_title="Deep Learning Studio", page_icon=str(Path(__file__).parent / "ui" / "assets" / "icon.png"),
                   layout="wide")

# Team mode: nothing of the product before sign-in (and a plain refusal for an email not allowed).
team.gate()
current = urls.navigation()
with st.sidebar:
    st.caption(
        "Deep Learning Studio: bring a table, train deep models, and see honestly whether they "
        "beat the simple ones. Every page has a link you can share."
    )
    with common.guard():
        team.sidebar()
        # Viewers see personal-data columns masked; pages that open a record of another
        # workspace decide again by that workspace's role (ui.views.or_stop).
        privacy.hide_personal_data(team.role() == "viewer")
# A problem the analyst or the administrator can fix (a data folder that cannot be opened or
# written, say) is a plain message wherever it is raised, never a traceback.
with common.guard():
    common.ensure_workers()
    current.run()
