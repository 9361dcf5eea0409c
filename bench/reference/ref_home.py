import streamlit as st
from widgets import link, runs_table

st.title("Deep Learning Studio")
st.markdown("Bring your own table, train deep-learning models on it without writing code, and watch them learn.")
for start in range(0, 6, 3):
    for i, col in enumerate(st.columns(3)):
        with col.container(border=True, height="stretch"):
            st.markdown(f"**{start + i + 1}. Step**")
            st.caption("What this step does, in a sentence or two.")
            link("data", "Go to Data")
st.subheader("Latest runs")
runs_table(8)
link("runs", "All runs")
