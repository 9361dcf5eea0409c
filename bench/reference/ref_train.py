import streamlit as st
from widgets import chart, link, runs_table

st.title("Train")
if st.query_params.get("run"):
    st.subheader("MLP on big.csv → predicts “segment_0”")
    st.caption("Run 0123 · submitted 2026-01-01 10:00 · share this page's link.")
    status_col, stop_col = st.columns([4, 1])
    with status_col:
        st.markdown("**Status:** finished")
        st.progress(1.0, text="Trained 1 of 1 epochs.")
    st.plotly_chart(chart(4, 1), width="stretch")
    st.caption("Left: loss on training and validation rows. Right: accuracy.")
    st.info("The deep model is not clearly better than the best baseline.")
    c1, c2 = st.columns(2)
    with c1:
        link("compare", "See the leaderboard and charts")
    with c2:
        link("predict", "Use the model on new data")
    st.button("Rerun with the same settings")
    link("train", "Start another run on this data")
    st.stop()
st.subheader("Data: big.csv")
link("data", "Check the data and the target first")
with st.form("train"):
    st.selectbox("Target (what to predict)", [f"amount_{i}" for i in range(20)] + ["segment_0"], index=20)
    st.radio("Kind of prediction", ["auto", "binary", "multiclass", "regression"], horizontal=True)
    st.radio("Model template", ["mlp", "mlp_embeddings", "wide_deep"], captions=["a", "b", "c"])
    with st.expander("Settings (the defaults suit most data)"):
        c1, c2 = st.columns(2)
        c1.number_input("Epochs", 1, 1000, 20)
        c2.select_slider("Size", ["small", "medium", "large"], value="medium")
        c1.select_slider("Learning rate", [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03], value=0.001)
        c2.select_slider("Batch size", [16, 32, 64, 128, 256, 512, 1024], value=512)
    with st.expander("Advanced"):
        c1, c2 = st.columns(2)
        c1.slider("Dropout", 0.0, 0.6, 0.1, 0.05)
        c2.number_input("Patience", 1, 100, 5)
        c1.number_input("Seed", 0, 2**31 - 1, 42)
        c2.select_slider("L2 penalty", [0.0, 1e-6, 1e-5, 1e-4, 1e-3], value=0.0)
    st.form_submit_button("Train", type="primary")
st.subheader("Runs on this data")
runs_table(10)
