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
    ("data", "1. Data", "Upload a CSV, Excel or Parquet file, or try a sample. Check the profile and pick what to predict."),
    ("train", "2. Model", "Pick a template (a plain MLP, or one that learns embeddings for categories) and its settings."),
    ("train", "3. Train", "Watch the training and validation curves live. Stop whenever you like; the best epoch is kept."),
    ("compare", "4. Evaluate", "See the deep model against the baselines, with 95% intervals and a plain verdict."),
    ("explain", "5. Understand", "See what a model relies on and why it said what it said about one row; "
                                 "set a yes/no cut-off from money on Decide."),
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
