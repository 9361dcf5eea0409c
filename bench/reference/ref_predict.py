import streamlit as st

st.title("Predict")
st.subheader("Predict “segment_0” with a model trained on big.csv")
st.selectbox("Model", ["MLP", "dummy", "logistic regression", "random forest", "boosting"], key="predict-model")
st.caption("Showing MLP: the best on the test rows.")
with st.expander("The file needs these 19 columns (others are ignored)"):
    st.write(", ".join(f"`amount_{i}`" for i in range(19)))
tab_file, tab_row = st.tabs(["Score a file", "What if? (one row)"])
with tab_file:
    st.file_uploader("A table to score", type=["csv", "xlsx", "parquet"], key="score-file")
with tab_row:
    st.caption("Change a few values and see how the prediction moves.")
    with st.form("what-if"):
        cols = st.columns(3)
        for i in range(18):
            cols[i % 3].number_input(f"amount_{i}", value=100.0)
        cols[0].selectbox("segment_1", ["north", "south"])
        cols[1].date_input("signup", value=None)
        st.form_submit_button("Predict", type="primary")
