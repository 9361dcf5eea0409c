"""Image datasets on the page: thumbnails read from the stored ZIP (Pillow only, no TensorFlow)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dlcore import charts, evaluate, images, jobs
from dlcore.errors import DlcoreError
from dlcore.store import DatasetRecord, RunRecord
from ui import common, scoring, text, urls, views

PER_CLASS = 8
MAX_CLASSES = 30


@st.cache_data(max_entries=256, show_spinner=False)
def thumbnails(dataset_id: str, entries: tuple[str, ...], side: int = 96) -> list[bytes | None]:
    """Small PNGs of stored images, read with one pass over the ZIP (a stored image never changes)."""
    try:
        raw = images.read_zip_entries(common.store().dataset_dir(dataset_id) / "source.zip", list(entries))
    except Exception:  # a thumbnail is decoration: a broken one must not break the page
        return [None] * len(entries)
    out: list[bytes | None] = []
    for data in raw:
        try:
            out.append(images.thumbnail_png(data, side))
        except Exception:
            out.append(None)
    return out


@st.cache_data(max_entries=16, show_spinner=False)
def manifest(dataset_id: str) -> pd.DataFrame:
    return pd.read_parquet(common.store().dataset_dir(dataset_id) / "data.parquet")


def spread(entries: list[str], k: int) -> list[str]:
    """``k`` entries spread evenly over the list (not just the first few files of a folder)."""
    if len(entries) <= k:
        return entries
    step = len(entries) / k
    return [entries[int(i * step)] for i in range(k)]


def gallery(dataset_id: str, entries: list[str], captions: list[str] | None = None, side: int = 96) -> None:
    pairs = list(zip(thumbnails(dataset_id, tuple(entries), side), captions or [""] * len(entries)))
    pairs = [(t, c) for t, c in pairs if t is not None]
    if pairs:
        st.image([t for t, _ in pairs], caption=[c for _, c in pairs] if captions else None, width=side)


def dataset_view(record: DatasetRecord) -> None:
    """The Data page for a ZIP of images: counts, notes, class balance, and pictures per class."""
    report = record.report
    classes: dict[str, int] = report.get("classes", {})
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Images", f"{record.n_rows:,}")
    c2.metric("Classes", len(classes))
    c3.metric("Typical size", f"{report.get('width_median', '?')}×{report.get('height_median', '?')} px",
              help=f"Widths {report.get('width_min')}–{report.get('width_max')} px, heights "
                   f"{report.get('height_min')}–{report.get('height_max')} px. Every image is resized to one size for training.")
    c4.metric("Colour", "grey" if report.get("channels") == 1 else "colour")
    layout = ("one folder per class" if report.get("layout") == "folders"
              else "images with a labels file")
    size = (f"{record.size_bytes / 1024 / 1024:.1f} MB" if record.size_bytes >= 1024 * 1024
            else f"{record.size_bytes / 1024:.0f} KB")
    st.caption(f"Read as {layout}. File size {size} · stored {common.when(record.created_at)} · "
               f"formats: {', '.join(f'{k} ({v:,})' for k, v in report.get('formats', {}).items())}.")
    for note in report.get("notes", []):
        st.info(note, icon=":material/info:")

    frame = manifest(record.id)
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(charts.class_balance_chart(frame["label"], unit="images"), width="stretch")
    with right:
        smallest = min(classes.values()) if classes else 0
        largest = max(classes.values()) if classes else 0
        if smallest and largest > 3 * smallest:
            st.warning(f"The classes are unbalanced: the largest has {largest:,} images, the smallest {smallest:,}. "
                       "The models are judged with balanced scores too, but more pictures of the small classes help most.",
                       icon=":material/warning:")
        else:
            st.success("Every class has a fair share of images.", icon=":material/check_circle:")
        st.caption("The models learn to tell these classes apart from the pictures alone. A model is trained from "
                   "scratch here: no pretrained weights can be downloaded on this server.")
        urls.link("train", "Next: choose a model and train it", dataset=record.id, icon=":material/arrow_forward:")

    st.subheader("A few pictures of each class")
    shown = list(classes)[:MAX_CLASSES]
    picks = {label: spread(frame.loc[frame["label"] == label, "image"].tolist(), PER_CLASS) for label in shown}
    every = tuple(e for label in shown for e in picks[label])
    with st.spinner("Making thumbnails…"):
        thumbs = dict(zip(every, thumbnails(record.id, every, 72)))  # one pass over the ZIP for the page
    for label in shown:
        st.markdown(f"**{text.md(label)}** · {classes[label]:,} images")
        pictures = [thumbs[e] for e in picks[label] if thumbs.get(e)]
        if pictures:
            st.image(pictures, width=72)
    if len(classes) > MAX_CLASSES:
        st.caption(f"The first {MAX_CLASSES} of {len(classes)} classes are shown.")


def mistakes(dataset_id: str, rows: np.ndarray, y_true: np.ndarray, proba: np.ndarray, classes: list[str],
             model: str, limit: int = 24) -> None:
    """The test images ``model`` got wrong, the most confident mistakes first."""
    pred = proba.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    st.markdown(f"**Test images the {model} got wrong** ({len(wrong):,} of {len(y_true):,}), the most confident "
                "mistakes first. Look for a pattern: blurry pictures, two classes that look alike, or labels that are wrong.")
    if not len(wrong):
        st.success("No mistakes on the test images.", icon=":material/check_circle:")
        return
    order = wrong[np.argsort(-proba[wrong, pred[wrong]], kind="stable")][:limit]
    entries = manifest(dataset_id)["image"].to_numpy()
    captions = [f"is {classes[y_true[i]]} · said {classes[pred[i]]} ({proba[i, pred[i]]:.0%})" for i in order]
    gallery(dataset_id, [str(entries[rows[i]]) for i in order], captions, side=96)
    if len(wrong) > limit:
        st.caption(f"The {limit} most confident of {len(wrong):,} mistakes.")


IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "zip"]


def _pack(files: list) -> tuple[bytes, str]:
    """One upload (an image or a ZIP) as it is; several packed into one ZIP for the scorer, the
    pictures of an uploaded ZIP among them taken out of it (a ZIP inside a ZIP is not read)."""
    import io
    import zipfile

    from dlcore.images import images_from_upload, looks_like_zip

    if len(files) == 1:
        return files[0].getvalue(), files[0].name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        seen: set[str] = set()
        for f in files:
            content = f.getvalue()
            items = ([(f"{f.name}/{entry}", data) for entry, data in images_from_upload(content, f.name)]
                     if looks_like_zip(content[:4]) else [(f.name, content)])
            for name, data in items:
                while name in seen:  # two uploads with one name keep both
                    name = "copy of " + name
                seen.add(name)
                archive.writestr(name, data)
    names = ", ".join(f.name for f in files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return buffer.getvalue(), f"{names}.zip"


@st.cache_data(max_entries=8, show_spinner=False)
def _scored_thumbnails(scoring_id: str, limit: int = 200) -> dict[str, bytes]:
    """Thumbnails of the scored images, read back from the stored upload (so a link shows them too)."""
    job = common.store().scoring(scoring_id)
    content = (common.store().scoring_dir(scoring_id) / "input.bin").read_bytes()
    out = {}
    try:
        for name, data in images.images_from_upload(content, job.input_name)[:limit]:
            try:
                out[name] = images.thumbnail_png(data, 64)
            except Exception:
                continue
    except DlcoreError:
        pass
    return out


def _data_url(png: bytes | None) -> str | None:
    import base64

    return "data:image/png;base64," + base64.b64encode(png).decode() if png else None


def predict_view(run: RunRecord, dataset: DatasetRecord, board: dict) -> None:
    """Predict for an image run: one image, several, or a ZIP; a table with thumbnails and a CSV."""
    classes = run.result["classes"]
    st.subheader(f"Sort new images into {len(classes)} classes with a model trained on {text.md(dataset.name)}")
    models = views.recommended_first(board, [r["model"] for r in board["rows"]])
    labels = {r["model"]: f"{evaluate.display_name(r['model'])} ({'deep' if r['family'] == 'deep' else 'baseline'}, "
              f"{board['metric_title']} {views.score_text(r['test_score'])})" for r in board["rows"]}
    model = st.selectbox("Model", models, index=0, key="predict-model",
                         format_func=lambda m, mark=views.model_label(board, models, "on the test images"): labels[m] + mark(m))
    views.opened_on(board, model, "predict-model", where="on the test images")
    files = st.file_uploader("One or more images (PNG, JPEG, BMP, GIF, WEBP), or a ZIP of images", type=IMAGE_TYPES,
                             accept_multiple_files=True, key="score-images",
                             help=f"Any size and colour: each is resized to {run.result['image']['size']} pixels a side, "
                                  "as in training. Folders inside a ZIP are ignored.")
    if files and st.button("Predict", type="primary", icon=":material/bolt:"):
        with common.guard():
            content, name = _pack(files)
            scoring_id = jobs.submit_scoring(common.store(), run.id, model, content, name)
            urls.set_ids(scoring=scoring_id)

    job = scoring.finished_job(run, "prediction")
    if job is None:
        return
    scoring_id = job.id
    summary = job.summary or {}
    st.success(f"Predicted {summary.get('n_rows', 0):,} image(s) from {text.md(job.input_name)} with {evaluate.display_name(job.model)}.")
    for note in summary.get("notes", []):
        st.info(note, icon=":material/info:")
    data = (common.store().scoring_dir(scoring_id) / "scored.csv").read_bytes()
    table = views.scored_preview(data)
    thumbs = _scored_thumbnails(scoring_id)
    table.insert(0, "image", [_data_url(thumbs.get(str(name))) or "" for name in table["file"]])
    st.dataframe(table, hide_index=True, width="stretch", row_height=64, column_config={
        "image": st.column_config.ImageColumn("Image", width="small"),
        "confidence": st.column_config.ProgressColumn("Confidence", format="percent", min_value=0.0, max_value=1.0),
        **{c: st.column_config.NumberColumn(c, format="%.3f") for c in table.columns if c.startswith("probability ")},
    })
    if summary.get("n_rows", 0) > len(table):
        st.caption(f"The first {len(table)} images; the download has them all.")
    st.download_button("Download the predictions (CSV)",
                       common.deferred(lambda s: (s.scoring_dir(s.scoring(scoring_id).id) / "scored.csv").read_bytes()),
                       file_name=f"predictions-{job.input_name.rsplit('.', 1)[0]}.csv",
                       mime="text/csv", icon=":material/download:", type="primary")


def explain_view(run_id: str, result: dict[str, Any]) -> None:
    """Grad-CAM overlays: where the deep model looked for the class it predicted."""
    items = result.get("items", [])
    if not items:
        st.info("There were no test images to explain.")
        return
    folder = common.store().run_dir(run_id) / "explain"
    st.markdown(f"**Where the model looked** ({result.get('method', 'Grad-CAM')}): warm colours mark the parts of each "
                "picture that pushed the model towards the class it said. Mistakes first, then confident right answers.")
    cols = st.columns(4)
    for i, item in enumerate(items):
        path = folder / item["png"]
        with cols[i % 4]:
            if path.exists():
                st.image(path.read_bytes(), width="stretch")
            mark = "✓" if item["correct"] else "✗"
            st.caption(f"{mark} is {item['true']} · said {item['predicted']} ({item['confidence']:.0%})")
