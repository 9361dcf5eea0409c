"""A bare Streamlit app for ``bench/pages.py``: the same router, sidebar and widgets as each page
of the product, drawn from constants (no store, no data, no models): the floor a page's render
time is measured against."""

import sys
from pathlib import Path

import streamlit as st

if str(Path(__file__).parent) not in sys.path:  # the pages import widgets.py beside them
    sys.path.insert(0, str(Path(__file__).parent))

st.set_page_config(page_title="Reference", page_icon=":material/neurology:", layout="wide")
PAGES = [("home", "Home"), ("data", "Data"), ("train", "Train"), ("compare", "Compare"), ("predict", "Predict"),
         ("runs", "Runs")]
current = st.navigation([st.Page(f"ref_{key}.py", title=title, url_path=key, default=key == "home")
                         for key, title in PAGES], position="sidebar")
with st.sidebar:
    st.caption("A bare page: the same widgets, no data work.")
current.run()
