"""Decide: set a yes/no model's threshold from money, and keep it for Predict."""

import numpy as np
import streamlit as st

import ui
from dlcore import charts, evaluate, outputs
from dlcore.errors import DlcoreError
from dlcore.evaluate import collapse
from dlcore.handover import decision
from ui import common, text, urls, views

ui.route_through_app()

st.title("Decide")
st.caption("Where should the cut-off be? Say what a right flag earns and what a false alarm and a miss cost; "
           "the page finds the threshold that earns most on the test rows.")
store = common.store()


def can_decide(r) -> bool:  # type: ignore[no-untyped-def]
    """A table run that predicts classes: yes/no, or one class against the rest (Predict applies it)."""
    return r.task in ("binary", "multiclass") and (r.result or {}).get("kind", "tabular") == "tabular"


run_id = urls.get_id(urls.RUN)
if not run_id:
    views.pick_finished_run("decide", "Which run's model will you act on?", can=can_decide,
                            none_yet="No finished run predicts classes from a table yet: thresholds from money are "
                                     "for yes/no targets (or one class against the rest). Train one first.")
run, dataset = views.open_finished_run(store, run_id, "decide", "thresholds need a finished run.")
if not can_decide(run):
    what = ("pictures, whose predictions Predict gives as every class's probability"
            if (run.result or {}).get("kind") == "image"
            else {"regression": "a number"}.get(run.task, "a forecast"))
    st.info(f"Thresholds from money are for tables with a yes/no target, or one class against the rest; this run "
            f"predicts {what}, so every prediction is used as it is. Predict scores new data with it.",
            icon=":material/info:")
    urls.link("predict", "Use the model on new data", run=run.id)
    st.stop()

classes = run.result["classes"]
board = run.result["leaderboard"]
models = views.recommended_first(board, [r["model"] for r in board["rows"] if not r["model"].startswith("dummy")]
                                  or [r["model"] for r in board["rows"]])
try:
    saved = decision.load_decision(store, run.id)
except (DlcoreError, ValueError, KeyError):
    saved = None
    st.warning("The threshold saved with this run could not be read; choose and save it again.")
y_true, outputs, _ = outputs.load_test_outputs(store, run.id)

model = st.selectbox("Model to act on", models, index=models.index(saved.model) if saved and saved.model in models else 0,
                     format_func=lambda m, mark=views.model_label(board, models): evaluate.display_name(m) + mark(m))
views.no_model_to_use(board)
rare = decision.rarer_class(y_true, classes)
start = saved.positive if saved and saved.positive in classes else rare
positive = st.selectbox("The class you act on" + ("" if run.task == "binary" else " (one class against the rest)"),
                        classes, index=classes.index(start), key="decide-class",
                        help="The model gives each row a probability for every class; a flag means it says this "
                             "class with at least the threshold's probability. Every other class counts as the rest.")
share = float(np.mean(np.asarray(y_true).astype(int) == classes.index(rare)))
counts = np.bincount(np.asarray(y_true).astype(int), minlength=len(classes))
if counts.min() == counts.max():  # no class is rarer: say so rather than call one "the rarer"
    st.caption(f"Preselected: “{rare}”, the first class: the classes are equally common here ({share:.0%} of the "
               "rows each). Choose the one you act on.")
else:
    st.caption(f"Preselected: “{rare}”, the rarer class ({share:.0%} of the rows; the split keeps the training rows' "
               "shares), which is usually the event you act on, such as a churn, a fraud or a default.")
negative = decision.other_side(classes, positive)
k = decision.class_column(classes, positive)
y = (np.asarray(y_true).astype(int) == k).astype(int)
p = np.asarray(outputs[model])[:, k]
dummy = next((m for m in outputs if m.startswith("dummy")), None)
flat = collapse.one_class_warning(y_true, outputs[model], classes, evaluate.display_name(model),
                                  outputs[dummy] if dummy and dummy != model else None, where="below")
if flat:
    st.warning(flat, icon=":material/warning:")

money0 = saved.money if saved else decision.Money()
st.markdown(f"**What is each outcome worth?** A *flag* means the model says “{text.md(positive)}” and you act on the row.")
c1, c2, c3, c4, c5 = st.columns([1, 2, 2, 2, 2])
currency = c1.text_input("Currency", value=money0.currency, max_chars=4)
value_tp = c2.number_input(f"Right flag: a real “{text.md(positive)}” you act on, value", value=float(money0.value_tp), step=10.0,
                           help="What acting on a row that really is this class earns or saves.")
cost_fp = c3.number_input("False alarm: acting on a row that did not need it, cost", value=float(money0.cost_fp),
                          step=1.0, help="The cost of acting on a row that is not this class (an offer, a call, a check).")
cost_fn = c4.number_input(f"Miss: a real “{text.md(positive)}” you do not act on, cost", value=float(money0.cost_fn), step=10.0,
                          help="Any cost of missing one, beyond losing the value of a right flag. Often 0.")
value_tn = c5.number_input("Right pass: leaving a row alone that needed nothing, value", value=float(money0.value_tn),
                           step=1.0, help="Usually 0.")
try:
    money = decision.Money(float(value_tp), float(cost_fp), float(cost_fn), float(value_tn), currency.strip() or "€")
except DlcoreError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

curve = decision.profit_curve(y, p, money)
best = decision.best_threshold(curve)
n = len(y)
scale_rows = st.number_input("Rows you would score in a month (to put the profit in your numbers)", min_value=1,
                             value=int(saved.rows_per_month) if saved and saved.rows_per_month else int(n), step=100,
                             help="Kept with the threshold when you use it in Predict.")
scale = scale_rows / n

# The slider follows the best threshold whenever the model, the class or the money change, so what the
# page calls best is what "Use" saves; a move of the slider after that is kept until the next change.
slider_key, asked = f"threshold-{model}-{k}", (model, k, money)
if st.session_state.get("decide-asked") != asked or slider_key not in st.session_state:
    st.session_state[slider_key] = round(float(min(best, 1.0)), 3)
    st.session_state["decide-asked"] = asked
chosen = st.slider("Threshold: flag a row when its probability is at least", 0.0, 1.0, step=0.001, format="%.3f",
                   key=slider_key, help="Follows the best one for the money above; move it to see the trade-off.")


def profit_at(threshold: float) -> float:
    c = decision.confusion_at(y, p, threshold)
    return money.profit(c["tp"], c["fp"], c["fn"], c["tn"])


low, high = decision.profit_interval(y, p, chosen, money, seed=int(run.spec["train"]["seed"]))
m1, m2, m3, m4 = st.columns(4)
m1.metric("Best threshold for this money", f"{min(best, 1.0):.3f}" if best <= 1.0 else "flag no one")
m2.metric(f"Profit at {chosen:.3f}, for {scale_rows:,} rows", money.money(profit_at(chosen) * scale),
          help=f"95% interval {money.money(low * scale_rows)} to {money.money(high * scale_rows)} (bootstrap over the "
               "test rows). The best threshold was picked on these same rows, so the real profit is likely a bit lower.")
m3.metric("If you act on every row", money.money(profit_at(0.0) * scale))
m4.metric("If you act on none", money.money(profit_at(np.inf) * scale))
st.caption(f"On the {n:,} test rows, scaled to {scale_rows:,}. 95% interval at {chosen:.3f}: "
           f"{money.money(low * scale_rows)} to {money.money(high * scale_rows)}. The profit on these rows at the "
           "best threshold is a little optimistic: the threshold was picked on them.")

if best <= 1.0 and profit_at(best) <= profit_at(0.0) + 1e-9:
    st.info(f"The model adds nothing over “act on everyone” at these costs: its best threshold earns the same as "
            f"acting on every row ({money.money(profit_at(0.0) * scale)}). It starts to pay when a false alarm costs "
            "more, compared with what a right flag earns.", icon=":material/info:")
elif best > 1.0:
    st.info("At these costs the best is to act on no row: every flag costs more than it earns on these test rows.",
            icon=":material/info:")
st.plotly_chart(charts.profit_chart(curve, money.currency, best, chosen, positive), width="stretch")
left, right = st.columns(2)
with left:
    st.plotly_chart(charts.confusion_matrix_chart(y, (p >= chosen).astype(int), [negative, positive]), width="stretch")
    counts = decision.confusion_at(y, p, chosen)
    st.caption(f"At {chosen:.3f}: {counts['tp']:,} right flags, {counts['fp']:,} false alarms, {counts['fn']:,} missed, "
               f"{counts['tn']:,} rightly left alone; {(counts['tp'] + counts['fp']) / n:.0%} of rows flagged.")
with right:
    st.plotly_chart(charts.gains_chart(decision.gains(y, p), positive), width="stretch")
    st.caption("Gain: act on the top rows by probability and see what share of all the real "
               f"“{text.md(positive)}” you reach. Lift: how many times better that is than picking rows at random.")

if saved:
    st.info(f"Saved for Predict: {evaluate.display_name(saved.model)} flags “{text.md(saved.positive)}” at probability "
            f"{saved.threshold:.3f} or more (right flag {saved.money.money(saved.money.value_tp)}, false alarm "
            f"{saved.money.money(saved.money.cost_fp)}, miss {saved.money.money(saved.money.cost_fn)}).",
            icon=":material/bookmark:")
if st.button(f"Use {chosen:.3f} in Predict", type="primary", icon=":material/check:"):
    with common.guard():
        decision.save_decision(store, run.id, decision.Decision(
            model=model, threshold=float(chosen), money=money, positive=positive, negative=negative,
            profit_per_row=profit_at(chosen) / n, rows_per_month=int(scale_rows)))
        st.success(f"Saved. Files scored with {evaluate.display_name(model)} now get a “decision” column: "
                   f"“{text.md(positive)}” at probability {chosen:.3f} or more, else “{text.md(negative)}”.")
        urls.link("predict", "Score a file with it", run=run.id)
