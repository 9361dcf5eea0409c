"""Home: what the product does, the five-step path, and the latest runs."""

import streamlit as st

import ui
from ui import common, urls, views

ui.route_through_app()

st.title("Deep Learning Studio")
st.markdown(
    "Bring your own table, train deep-learning models on it without writing code, and watch them learn. "
    "Every deep model is ranked against simple scikit-learn models trained on exactly the same rows, "
    "so you get an honest answer to *is this any better than the simple model?*, and a model you can use."
)

STEPS = [
    ("data", "1. Data", "Upload a table (CSV, Excel, Parquet), a ZIP of image folders or a time series, or try a "
                        "sample. Check the profile and pick what to predict."),
    ("train", "2. Train", "Pick the deep templates and how long you are willing to wait. Watch the search's trials "
                          "and curves live; Stop keeps the best so far."),
    ("compare", "3. Evaluate", "See the deep models against the baselines, by cross-validation and on held-out "
                               "rows, with 95% intervals and a plain verdict."),
    ("explain", "4. Understand", "See what a model relies on, and why it said what it said about one row."),
    ("decide", "5. Decide", "Set a yes/no model's cut-off from what a right flag earns and a wrong one costs."),
    ("predict", "6. Use", "Score a new file or try a what-if row with the winner, and download the results."),
]
PER_ROW = 3  # six cards in one row leave each link too narrow for its words ("Go to Compa")
for start in range(0, len(STEPS), PER_ROW):
    for col, (key, title, text) in zip(st.columns(PER_ROW), STEPS[start:start + PER_ROW]):
        with col.container(border=True, height="stretch"):
            st.markdown(f"**{title}**")
            st.caption(text)
            urls.link(key, f"Go to {urls.PAGES[key].title}")

st.subheader("Latest runs")
runs = common.store().list_run_rows(limit=8)
if runs:
    views.runs_table(runs)
    urls.link("runs", "All runs")
else:
    st.info("No runs yet. Start with **Data**: upload a file or pick a sample.", icon=":material/info:")
