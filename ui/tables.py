"""Page helpers for tables: the explanation of a table model (importance, dependence, one row's
waterfall), the row form shared by Predict and Explain, picking a test row to explain, and
matching the columns of a file to score to the model's when the file names them differently."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pandas as pd
import streamlit as st

from dlcore import evaluate, formats
from dlcore.errors import DlcoreError
from dlcore.store import RunRecord
from dlcore.tables import charts as table_charts
from dlcore.tables import matching, text
from dlcore.tables import scoring as table_scoring
from dlcore.tables.reader import read_table
from ui import common
from ui.text import html, md

__all__ = ["importance_view", "dependence_view", "row_view", "words_view", "class_words_view", "row_form", "row_inputs",
           "test_row_choices", "match_columns"]


def importance_view(result: dict[str, Any]) -> None:
    """Permutation importance as a chart and in words."""
    model = evaluate.display_name(result["model"])
    items = result["importance"]
    st.plotly_chart(table_charts.importance_chart(items, result["metric_title"], model), width="stretch")
    clear = [d for d in items if d["mean"] > 2 * d["std"] and d["mean"] > 0]
    unclear = [d["feature"] for d in items if d not in clear]
    words = []
    if clear:
        top = clear[0]
        words.append(f"Shuffling **{md(top['feature'])}** costs {formats.number(top['mean'])} of {result['metric_title']} "
                     f"(± {formats.number(top['std'])}): {model} leans on it most.")
        if len(clear) > 1:
            words.append("Then " + ", ".join(f"**{md(d['feature'])}** ({formats.number(d['mean'])})" for d in clear[1:4]) + ".")
    else:
        words.append(f"No single column clearly matters to {model}: shuffling any one barely changes its score.")
    if unclear:
        shown = ", ".join(unclear[:8]) + (" …" if len(unclear) > 8 else "")
        words.append(f"{len(unclear)} column(s) make no clear difference: {shown}.")
    st.markdown(" ".join(words))
    st.caption(f"Permutation importance on {result['n_rows']:,} test rows, {result['n_repeats']} shuffles per column "
               f"(bars show the spread). Its score there: {result['metric_title']} {formats.number(result['score'])}. Columns that "
               "carry the same information share the credit, so each may look less important than the pair is.")


def dependence_view(result: dict[str, Any], target: str, prefer: str | None = None) -> None:
    """Partial dependence with individual curves, for the top columns. For a yes/no target the
    curves are of the class picked here (``prefer``: the rarer class, as on Decide); the saved
    curves are of the second class, and the first class's probability is one minus it."""
    items = result["dependence"]
    if not items:
        return
    st.markdown("**How the prediction moves with the top columns** (everything else about each row kept as it is)")
    classes = result["classes"]
    k = 0
    title = f"Predicted {html(target)}"  # a Plotly title: HTML, where a name could be a link
    flip = False
    if result["task"] == "binary":
        shown = st.selectbox("Probability of which class?", classes, key=f"pdp-binary-{result['model']}",
                             index=classes.index(prefer) if prefer in classes else 1,
                             help="Starts at the rarer class, the one you usually act on (as on the Decide page).")
        k, title, flip = 0, f"Probability of “{html(shown)}”", shown == classes[0]
        if flip:
            items = [{**item, "average": [[1 - v for v in a] for a in item["average"]],
                      "individual": [[[1 - v for v in row] for row in rows] for rows in item["individual"]]}
                     for item in items]
    elif result["task"] == "multiclass":
        label = st.selectbox("Probability of which class?", classes, key=f"pdp-class-{result['model']}")
        k = classes.index(label)
        title = f"Probability of “{html(label)}”"
    cols = st.columns(2)
    for i, item in enumerate(items):
        average = item["average"][min(k, len(item["average"]) - 1)]
        individual = item["individual"][min(k, len(item["individual"]) - 1)]
        with cols[i % 2]:
            st.plotly_chart(table_charts.dependence_chart({**item, "average": average, "individual": individual}, title),
                            width="stretch", key=f"pdp-{result['model']}-{i}")


def row_view(result: dict[str, Any], target: str, profile: dict[str, Any] | None = None) -> None:
    """One row's explanation: the sentence, the waterfall, and the numbers (values of personal-data
    columns masked for a session that may not see them; ``profile`` is the dataset's stored one)."""
    from ui import privacy

    result = privacy.shown_row(result, profile)
    st.success(md(result["sentence"]), icon=":material/lightbulb:")
    words_view(result)
    if "actual" in result:
        st.caption(f"Test row {result['test_row']}: its real {md(target)} is {md(result['actual'])}.")
    percent = result["task"] != "regression"
    value_title = (f"Probability of “{html(result['class'])}”" if percent else f"Predicted {html(target)}")
    st.plotly_chart(table_charts.contributions_chart(result["contributions"], result["base"], result["prediction"],
                                               value_title, percent=percent), width="stretch")
    table = pd.DataFrame(result["contributions"])
    # Text in the shared formats, so a push that rounds to nothing reads "0.0", never "-0.0",
    # and the sentence above rounds exactly as this table does.
    table["contribution"] = [formats.points(v, signed=True) if percent else formats.number(v, signed=True)
                             for v in table["contribution"]]
    st.dataframe(table.rename(columns={"feature": "Column", "value": "Value",
                                       "contribution": "Push (points)" if percent else "Push"}),
                 hide_index=True, width="stretch")
    st.caption("Shapley values (SHAP's permutation explainer against 100 training rows): each column's fair share of "
               "the difference between this row's prediction and the average one. They add up exactly.")
    for note in result.get("notes", []):
        st.caption(note)


def words_view(result: dict[str, Any]) -> None:
    """A row's text columns with the words that pushed its prediction marked in them."""
    if not result.get("words"):
        return
    st.info(md(result["words_sentence"]), icon=":material/format_quote:")
    odds = result["task"] != "regression"
    for col, found in result["words"].items():
        st.markdown(f"**{md(col)}**")
        if not found["text"]:
            st.caption("(no text in this row)")
            continue
        st.html(text.highlight_html(found["text"], found["effects"]))
        top = pd.DataFrame([{"Word": e["word"], "Push": e["effect"]} for e in found["effects"][:10]])
        if len(top):
            st.dataframe(top, hide_index=True, column_config={"Push": st.column_config.NumberColumn(format="%+.2f")})
    st.caption("Red words pushed the prediction up, green ones down (darker: more), as in the chart below. A word's "
               "push is how much the prediction changes when the word is taken out of the text" +
               (f", in log-odds of “{result['class']}” (+0.7 about doubles the odds), so a word still counts when "
                "the model is already sure." if odds else "."))


def class_words_view(result: dict[str, Any]) -> None:
    """The words that matter most for each class (or the value), with their spread."""
    words = result.get("words")
    if not words:
        return
    st.markdown("**The words that matter most, per class** (the push of each word on the log-odds of the row's "
                "own class when it is taken out, averaged over the test rows that have it; spread: its standard "
                "deviation over those rows)")
    cols = st.columns(min(3, len(words)))
    for i, (label, items) in enumerate(words.items()):
        with cols[i % len(cols)]:
            st.markdown(f"“{md(label)}”")
            st.dataframe(pd.DataFrame(items).rename(columns={"word": "Word", "mean": "Push", "std": "Spread",
                                                             "rows": "Rows"}),
                         hide_index=True, column_config={"Push": st.column_config.NumberColumn(format="%+.3f"),
                                                         "Spread": st.column_config.NumberColumn(format="%.3f")})


def row_form(run: RunRecord) -> dict[str, Any] | None:
    """A typed-in row, starting from typical values; None until submitted."""
    with st.form("explain-row"):
        values = row_inputs(run)
        asked = st.form_submit_button("Explain this row", type="primary")
    return values if asked else None


def row_inputs(run: RunRecord) -> dict:
    """One input per column of a table run, starting at a typical training value; call inside a form."""
    features = run.result["features"]
    defaults = run.result["input_defaults"]
    values: dict = {}
    cols = st.columns(3)
    for i, col in enumerate(features["numeric"] + features["datetime"] + features["categorical"]):
        spec = defaults.get(col, {})
        box = cols[i % 3]
        if spec.get("kind") == "numeric":
            default = spec.get("default")
            values[col] = box.number_input(md(col), value=float(default) if default is not None else 0.0, format="%g")
        elif spec.get("kind") == "categorical":
            values[col] = box.selectbox(md(col), spec.get("choices") or [""], index=0)
        else:
            values[col] = box.text_input(md(col), value=spec.get("default") or "")
    for col in features.get("text", []):  # free text gets a whole line: descriptions, tickets, reviews
        values[col] = st.text_area(md(col), value=defaults.get(col, {}).get("default") or "", height=100)
    return values


def test_row_choices(y_true: np.ndarray, output: np.ndarray, task: str, classes: list[str]) -> pd.DataFrame:
    """The test rows with what the model said, to pick one to explain (worst misses first)."""
    y = np.asarray(y_true)
    out = np.asarray(output)
    if task == "regression":
        pred = out.reshape(-1)
        frame = pd.DataFrame({"row": np.arange(len(y)), "actual": y, "predicted": pred, "error": np.abs(pred - y)})
        return frame.sort_values("error", ascending=False)
    codes = y.astype(int)
    pred = out.argmax(axis=1)
    frame = pd.DataFrame({"row": np.arange(len(y)), "actual": np.asarray(classes, dtype=object)[codes],
                          "predicted": np.asarray(classes, dtype=object)[pred],
                          "confidence": out.max(axis=1), "right": pred == codes})
    return frame.sort_values(["right", "confidence"], ascending=[True, False])


# ---- matching a file's columns to the model's ----------------------------------------------
BLANK = "\x00blank"  # the choice "score it as missing" (no column name holds a NUL)
_HOW = {"chosen": "chosen", "saved": "saved with this run", "similar name": "same name, written differently",
        "values": "matched by its values", "blank": "scored as missing"}


@st.cache_data(max_entries=4, show_spinner="Reading the file's columns…")
def _file_rows(file_id: str, name: str, _content: bytes) -> pd.DataFrame | None:
    """The uploaded file's rows (a seeded sample of a big one), read as the scoring reads them;
    None when it cannot be read (the scoring then says why, in the page's usual place)."""
    try:
        frame, _ = read_table(_content, name=name)
    except DlcoreError:
        return None
    return frame.sample(matching.MAX_ROWS, random_state=0) if len(frame) > matching.MAX_ROWS else frame


def match_columns(run: RunRecord, model: str, upload: Any) -> Callable[[], None] | None:
    """The column-matching step, for a file whose columns have other names than the model's:
    each of the model's columns beside the file's column proposed for it (matched by name, by the
    matching saved with the run, or by values), the rest chosen from a list ranked by fit. A column
    scored blank shows how much the model relies on it. Returns what to do when the file is sent
    to be scored (keep the matching with the run, where the scoring job finds it), or None when
    every column is there under its own name."""
    store = common.store()
    frame = _file_rows(upload.file_id, upload.name, upload.getvalue())
    if frame is None:
        return None
    expected = {e.name: e for e in table_scoring.expected_of(store, run)}
    proposal = matching.propose(list(expected.values()), frame, matching.load_mappings(store, run.id))
    if proposal.identical:
        return None
    explanation, title = table_scoring.explanation_of(store, run, model)
    st.markdown("##### Match the file's columns to the model's")
    others = [m for m in proposal.matches if m.how != "name"]
    same = [m.column for m in proposal.matches if m.how == "name"]
    as_saved = all(m.how == "saved" for m in others)
    if as_saved:
        pairs = ", ".join(f"{m.source} → {m.column}" for m in others[:6])
        more = f" and {len(others) - 6} more" if len(others) > 6 else ""
        st.success(md(f"The file's columns are matched as for the last file with these names (kept with this run): "
                       f"{pairs}{more}. Score it as it is, or change a match."), icon=":material/link:")
    else:
        st.caption(f"The file names {len(others)} of the model's {len(proposal.matches)} columns differently. Check "
                   "each match below; the matching is kept with this run, so the next file with these column names "
                   "scores in one click.")
    if same:
        more = " …" if len(same) > 10 else ""
        st.caption(md(f"{len(same)} column(s) have the model's names: {', '.join(same[:10])}{more}."))
    chosen: dict[str, str | None] = {}
    rows = st.expander("Change the matching") if as_saved else st.container()
    for i, m in enumerate(others):
        column = expected[m.column]
        left, right = rows.columns([2, 3], vertical_alignment="top")
        left.markdown(f"**{md(m.column)}**")
        left.caption(md(_upper_first(column.describe())))
        options = m.candidates + [c for c in frame.columns if c not in m.candidates] + [BLANK]
        index = options.index(m.source) if m.source in options else (options.index(BLANK) if m.how == "blank" else None)
        pick = right.selectbox(f"Column of the file for “{md(m.column)}”", options, index=index,
                               key=f"match-{upload.file_id}-{i}", placeholder="Choose the file's column",
                               format_func=lambda c: "(none: score it as missing)" if c == BLANK else c,
                               label_visibility="collapsed")
        if pick == BLANK:
            said = matching.reliance(explanation, m.column, title)
            if said.important is False:
                right.caption(md(said.sentence))
            else:  # relied on, or not known yet: never scored blank without a warning
                right.warning(md(said.sentence), icon=":material/warning:")
        elif pick is None:
            several = [c for c in m.candidates if m.fits.get(c, 0) >= matching.CLEAR]
            said = matching.reliance(explanation, m.column, title)
            right.caption(md((f"{' and '.join(several[:3])} could each be it, by their values: choose the one "
                               f"that holds {m.column}." if len(several) > 1 else
                               f"{_upper_first(m.reason)}: choose the file's column that holds it.")
                              + (f" {said.sentence}" if said.important is not None else "")))
        elif pick == m.source:
            right.caption(md(f"{_upper_first(_HOW.get(m.how, m.how))}: {m.reason}."))
        else:
            right.caption(md(f"Chosen: {matching.fit(column, frame[pick])[1]}."))
        if pick is not None:
            chosen[m.column] = None if pick == BLANK else pick

    def remember() -> None:
        if len(chosen) == len(others):  # a column still open: the scoring says what is missing
            matching.save_mapping(store, run.id, {c: c for c in same} | chosen)

    remember.open = [m.column for m in others if m.column not in chosen]  # type: ignore[attr-defined]
    return remember


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
