"""Data: upload a file or pick a sample, read its profile, choose the target."""

import pandas as pd
import streamlit as st

import ui
from dlcore import cache, charts, datasets, images
from dlcore import tables as tabular
from dlcore.errors import DlcoreError
from dlcore.tables import samples, text
from dlcore.tables.personal import Finding, describe
from ui import common, privacy, team, urls, views
from ui import images as image_views
from ui import series as series_views
from ui.text import md

ui.route_through_app()

st.title("Data")
store = common.store()


load_frame = common.frame


@st.cache_data(max_entries=32, show_spinner="Reading the text…")
def text_profile(dataset_id: str, column: str, target: str, task: str) -> dict:
    frame = load_frame(dataset_id)
    return text.column_profile(frame[column], frame[target], task)


@st.cache_data(max_entries=32, show_spinner="Checking the target…")
def target_checks(dataset_id: str, target: str, task: str) -> tuple[list[str], list[str], str | None]:
    """Warnings about the target, leak warnings, and the error that blocks training (if any)."""
    frame = load_frame(dataset_id)
    try:
        warnings = tabular.check_target(frame, target, task)
    except DlcoreError as exc:
        return [], [], str(exc)
    return warnings, tabular.leakage_warnings(frame, target, task), None


upload_tab, sample_tab = st.tabs(["Upload a file", "Try a sample"])
with upload_tab:
    uploaded = st.file_uploader(
        "A table: CSV (any separator, decimal commas and European files are fine), Excel (.xlsx) or Parquet; "
        "or images: a ZIP with one folder per class (cats/…, dogs/…), or images plus a CSV of file names and labels",
        # Pictures are accepted too, so a lone photo gets our message (upload a ZIP of class folders)
        # rather than the browser's bare "files are not allowed".
        type=["csv", "tsv", "txt", "gz", "json", "jsonl", "xlsx", "xls", "parquet", "zip", "png", "jpg", "jpeg", "bmp", "gif", "webp"],
        help="The file is stored on this server at once and named by its content: uploading the same file "
        "again opens the same dataset. Images may be PNG, JPEG, BMP, GIF or WEBP, of any size and colour.",
    )
    # The uploader keeps its file across reruns; register each new file once per session.
    if uploaded is not None and st.session_state.get("registered_upload") != uploaded.file_id:
        # Marked first, so a refused file is not read again on every click; its message stays.
        st.session_state["registered_upload"] = uploaded.file_id
        st.session_state.pop("upload_error", None)
        with common.guard(), st.spinner(f"Reading and profiling {md(uploaded.name)}…"):
            try:
                record, created = datasets.register_bytes(store, uploaded.getvalue(), uploaded.name, answer_first=True)
            except DlcoreError as exc:
                st.session_state["upload_error"] = str(exc)
                raise
            urls.set_ids(dataset=record.id, run=None)
            st.toast("Stored as a new dataset." if created else "This file was already here: opened the stored dataset.")
    elif uploaded is not None and st.session_state.get("upload_error"):
        st.error(st.session_state["upload_error"], icon=":material/error:")
with sample_tab:
    every_sample = {**samples.SAMPLES, **images.IMAGE_SAMPLES}
    key = st.selectbox(
        "Sample data that ships with the installed packages",
        list(every_sample),
        format_func=lambda k: f"{every_sample[k].title}: {every_sample[k].description}",
    )
    if st.button("Use this sample", icon=":material/dataset:"):
        with common.guard():
            record, _ = datasets.register_sample(store, key)
            urls.set_ids(dataset=record.id, run=None)

dataset_id = urls.get_id(urls.DATASET)
if not dataset_id:
    views.pick_dataset("data", "Datasets on this server")
record = views.or_stop(store.dataset, dataset_id)
st.header(md(record.name))
team.delete_dataset(record.id)
if record.kind == "image":
    image_views.dataset_view(record)
    st.stop()
profile = datasets.profile_of(record)

c1, c2, c3, c4 = st.columns(4)
c1.metric("Rows", f"{record.n_rows:,}")
c2.metric("Columns", record.n_cols)
c3.metric("File size", f"{record.size_bytes / 1024 / 1024:.2f} MB" if record.size_bytes > 100_000 else f"{record.size_bytes / 1024:.1f} KB")
c4.metric("Stored", common.when(record.created_at).split(" ")[0], help=f"Stored {common.when(record.created_at)}")
for note in record.report.get("notes", []):
    st.info(note, icon=":material/info:")
for warning in profile.warnings:
    st.warning(warning, icon=":material/warning:")

st.subheader("Columns")
st.caption(
    "Type is what each column looks like: **numeric**, **categorical** (a few repeated values), **datetime**, "
    "**text** (free sentences) or **identifier** (a different value in almost every row). Free text is read "
    "word by word; identifiers and constant columns are left out of training."
)
def privacy_label(found: dict | None) -> str:
    return describe(Finding.from_dict(found)) if found else ""


table = pd.DataFrame([
    {
        "Column": c.name,
        "Type": c.kind,
        "Missing": c.missing_share,
        "Distinct values": c.n_unique,
        "Distribution": c.hist_counts,
        "Personal data": privacy_label(c.personal),
        "Notes": " ".join(c.warnings),
    }
    for c in profile.columns
])
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        "Missing": st.column_config.ProgressColumn("Missing", format="percent", min_value=0.0, max_value=1.0),
        # Bars start at zero: by default each cell's axis starts at its smallest count, and a
        # column of 168 and 165 rows would show one bar and one empty cell.
        "Distribution": st.column_config.BarChartColumn("Distribution", help="Histogram, or counts of the top values",
                                                        y_min=0),
        "Notes": st.column_config.TextColumn("Notes", width="large"),
    },
)
with st.expander("Look at one column"):
    column = st.selectbox("Column", [c.name for c in profile.columns], key="detail_column")
    found = profile.column(column).personal
    if found and privacy.masking():
        st.info(f"'{md(column)}' holds personal data ({privacy_label(found)}): its values are masked for your role in "
                "this workspace.", icon=":material/shield_person:")
    else:
        if found:
            st.markdown(privacy.badge(found) + " Shown because you may see it; left out of the model inputs "
                        "unless put back on the Train page, and kept out of reports and bundles.")
        # A dataset never changes: each chart of it is drawn once and shared (``dlcore.cache``).
        st.plotly_chart(cache.for_dataset(dataset_id, "distribution", lambda c: charts.distribution_chart(
            load_frame(dataset_id)[c], c), column), width="stretch")

if series_views.time_columns(dataset_id):
    series_views.data_view(record, [c.name for c in profile.columns if c.kind == "numeric"])

st.subheader("What should the model predict?")
columns = [c.name for c in profile.columns]
frame = load_frame(dataset_id)


def save_target() -> None:
    """Store the analyst's choice when they make it (not on every view), so a link shows it."""
    chosen = st.session_state[f"target-{dataset_id}"]
    try:
        task = tabular.infer_task(frame[chosen])
    except DlcoreError:
        task = None
    # The store of this click's run (not the render that drew the box): a role changed since counts.
    with common.guard():  # a viewer's choice is refused by the store, in words
        common.store().set_dataset_target(dataset_id, chosen, task)


def save_task() -> None:
    with common.guard():
        common.store().set_dataset_target(dataset_id, target, st.session_state[f"task-{dataset_id}-{target}"])


target = st.selectbox(
    "Target column",
    columns,
    # Nothing is checked before the analyst picks a target: a warning about a column nobody chose
    # (a rare value in whatever column came last) would be noise.
    index=columns.index(record.target) if record.target in columns else None,
    placeholder="Choose the column to predict",
    help="The column the model learns to predict from the others.",
    key=f"target-{dataset_id}",
    on_change=save_target,
)
if target is None:
    st.caption("Pick the column to predict: its balance and any problem with it show here. You can also pick it "
               "on the Train page.")
    urls.link("train", "Next: choose a model and train it", dataset=dataset_id, icon=":material/arrow_forward:")
    st.stop()

def _infer_task(column: str) -> str | Exception:
    try:
        return tabular.infer_task(frame[column])
    except DlcoreError as exc:
        return exc


inferred = cache.for_dataset(dataset_id, "task", _infer_task, target)
try:
    if isinstance(inferred, Exception):
        raise inferred
except DlcoreError as exc:  # nothing to learn from this column: say why once, and stop here
    st.error(str(exc), icon=":material/error:")
    st.stop()
TASK_WORDS = {
    "binary": "Binary classification: one of two outcomes (yes/no, churn/stay)",
    "multiclass": "Multiclass classification: one of several categories",
    "regression": "Regression: a number (a price, an amount, a duration)",
}
options = list(TASK_WORDS)
chosen_task = record.task if (record.target == target and record.task in options) else inferred
task = st.radio(
    "Kind of prediction",
    options,
    index=options.index(chosen_task) if chosen_task in options else 0,
    format_func=lambda t: TASK_WORDS[t] + (" (detected)" if t == inferred else ""),
    key=f"task-{dataset_id}-{target}",
    on_change=save_task,
)

warnings, leaks, blocking = target_checks(dataset_id, target, task)
left, right = st.columns([1, 1])
with left:
    if task == "regression":
        st.plotly_chart(cache.for_dataset(dataset_id, "distribution", lambda c: charts.distribution_chart(
            frame[c], c), target), width="stretch")
    else:
        st.plotly_chart(cache.for_dataset(dataset_id, "balance", lambda c: charts.class_balance_chart(frame[c]),
                                          target), width="stretch")
with right:
    if blocking:
        st.error(blocking, icon=":material/error:")
    for w in warnings:
        st.warning(w, icon=":material/warning:")
    for w in leaks:
        st.warning(w, icon=":material/visibility:")
    if not blocking:
        if not (warnings or leaks):
            st.success("The target looks ready for training.", icon=":material/check_circle:")
        urls.link("train", "Next: choose a model and train it", dataset=dataset_id, icon=":material/arrow_forward:")

# A free-text column that carries personal data (emails inside comments) shows its words only to
# those who may see it.
text_columns = [c.name for c in profile.columns if c.kind == "text" and c.name != target
                and not (c.personal and privacy.masking())]
if text_columns:
    st.subheader("Text columns")
    st.caption("The models read these columns' words (and pieces of words, so misspellings and languages written "
               "without spaces work). Every word is learned from your own rows: no pretrained language model is "
               "downloaded, so very small tables give the text little to learn from.")
    for column in text_columns:
        found = text_profile(dataset_id, column, target, task)
        with st.expander(f"{md(column)}: about {found['median_words']:.0f} words per row", expanded=len(text_columns) == 1):
            scripts = ", ".join(f"{k} {v:.0%}" for k, v in found["scripts"].items()) or "no letters"
            st.markdown(f"Writing: {scripts}.")
            for note in found["notes"]:
                st.warning(note, icon=":material/visibility:" if "give the answer away" in note else ":material/warning:")
            left, right = st.columns([1, 1])
            with left:
                st.plotly_chart(charts.distribution_chart(pd.Series(found["lengths"], name="words"), "Words per row"),
                                width="stretch", key=f"text-lengths-{column}")
            with right:
                st.markdown("**Most telling words** " + ("per class" if task != "regression" else "per range of the target"))
                rows = [{"Group": g, "Words": ", ".join(w["word"] for w in items)} for g, items in found["words"].items()]
                st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
