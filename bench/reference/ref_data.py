import pandas as pd
import streamlit as st
from widgets import chart, link

st.title("Data")
upload_tab, sample_tab = st.tabs(["Upload a file", "Try a sample"])
with upload_tab:
    st.file_uploader("A table", type=["csv", "xlsx", "parquet", "zip"])
with sample_tab:
    st.selectbox("Sample data", ["penguins", "wine", "diabetes"])
    st.button("Use this sample")
st.header("big.csv")
c1, c2, c3, c4 = st.columns(4)
c1.metric("Rows", "1,000,000")
c2.metric("Columns", 20)
c3.metric("File size", "115.41 MB")
c4.metric("Stored", "2026-01-01")
st.warning("A column warning.")
st.subheader("Columns")
st.caption("Type is what each column looks like.")
table = pd.DataFrame([{"Column": f"amount_{i}", "Type": "numeric", "Missing": 0.0, "Distinct values": 1000 + i,
                       "Distribution": [1, 3, 7, 12, 20, 12, 7, 3, 1, 1], "Notes": ""} for i in range(20)])
st.dataframe(table, hide_index=True, width="stretch", column_config={
    "Missing": st.column_config.ProgressColumn("Missing", format="percent", min_value=0.0, max_value=1.0),
    "Distribution": st.column_config.BarChartColumn("Distribution", y_min=0),
    "Notes": st.column_config.TextColumn("Notes", width="large")})
with st.expander("Look at one column"):
    st.selectbox("Column", list(table["Column"]), key="detail_column")
    st.plotly_chart(chart(1, 40), width="stretch")
st.subheader("What should the model predict?")
target = st.selectbox("Target column", list(table["Column"]) + ["segment_0"], index=20)
st.radio("Kind of prediction", ["binary", "multiclass", "regression"], index=1)
left, right = st.columns([1, 1])
with left:
    st.plotly_chart(chart(1, 6), width="stretch")
with right:
    st.success("The target looks ready for training.")
    link("train", "Next: choose a model and train it")
