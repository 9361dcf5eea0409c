import streamlit as st
from widgets import runs_table

st.title("Runs")
st.segmented_control("Show", ["all", "queued", "running", "done", "stopped", "cancelled", "failed", "interrupted"],
                     default="all")
st.caption("50 run(s), newest first.")
runs_table(50)
