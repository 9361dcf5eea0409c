import pandas as pd
import streamlit as st
from widgets import chart, link, runs_table

st.title("Compare")
st.subheader("big.csv → predicts “segment_0”")
st.caption("Run 0123 · MLP · finished · 2026-01-01 10:00")
st.info("The deep model is not clearly better than the best baseline.")
c1, c2, c3 = st.columns(3)
c1.download_button("Report (HTML, opens offline)", data=b"x", file_name="r.html", on_click="ignore")
c2.download_button("Model bundle (ZIP)", data=b"x", file_name="b.zip", on_click="ignore")
c3.button("Rerun exactly")
st.caption("All models learned from the same training rows.")
board = pd.DataFrame([{"Rank": i + 1, "Model": m, "Kind": "baseline", "Accuracy": 0.17, "95% interval": "0.16 to 0.18",
                       "Balanced accuracy": 0.17, "Macro F1": 0.1, "Log loss": 1.79, "Fit time": "10s"}
                      for i, m in enumerate(["MLP", "dummy", "logistic regression", "random forest", "boosting"])])
st.dataframe(board, hide_index=True, width="stretch")
st.caption("Accuracy (higher is better).")
with st.expander("What the scores mean"):
    for m in ["Accuracy", "Balanced accuracy", "Macro F1", "Log loss"]:
        st.markdown(f"**{m}**: what it means.")
st.plotly_chart(chart(1, 5), width="stretch")
st.subheader("How the models get it right and wrong")
st.selectbox("Model", list(board["Model"]))
left, right = st.columns(2)
with left:
    st.plotly_chart(chart(1, 6), width="stretch")
    st.caption("Each row is the actual class.")
st.markdown("**Per class**")
st.dataframe(pd.DataFrame({"class": list("abcdef"), "precision": [0.2] * 6, "recall": [0.2] * 6, "f1": [0.2] * 6,
                           "support": [1000] * 6}), hide_index=True, width="stretch", column_config={
    "precision": st.column_config.ProgressColumn("Precision", format="percent", min_value=0.0, max_value=1.0),
    "recall": st.column_config.ProgressColumn("Recall", format="percent", min_value=0.0, max_value=1.0)})
st.subheader("Other runs on the same data and split")
st.caption("Same target, same seed and same split.")
runs_table(49)
c1, c2, c3 = st.columns(3)
with c1:
    link("predict", "Use a model on new data")
with c2:
    link("compare", "Why the models predict what they do")
with c3:
    link("train", "Training curves of this run")
