"""Train: choose a template and settings, submit, and watch the run live."""

import streamlit as st

import ui
from dlcore import evaluate, runner, templates
from dlcore.budget import DEFAULT_PRESET, PRESETS, describe
from dlcore.spec import (
    IMAGE_SIZES,
    DataSpec,
    RunSpec,
    TrainSpec,
    suggested_batch_size,
    suggested_flip,
    suggested_image_size,
)
from dlcore.tables import guess_target
from ui import common, live, team, text, urls, views
from ui import series as series_views

ui.route_through_app()

BUDGET_CHOICES = [30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0]

st.title("Train")
store = common.store()

run_id = urls.get_id(urls.RUN)
if run_id:
    run = views.or_stop(store.run, run_id)
    dataset = store.dataset(run.dataset_id)
    team.share(run.id, "train")
    st.subheader(f"{evaluate.display_name(run.template)} on {text.md(dataset.name)} → "
                 f"{views.goal(dataset, run.target, run.task)}")
    st.caption(f"Run {run.id} · submitted {common.when(run.created_at)} · share this page's link: it shows the same run "
               "to anyone on this server.")
    live.run_view(run)
    views.first_verdict(run)
    if run.status in ("failed", "interrupted", "stopped", "cancelled") and run.message:
        (st.error if run.status == "failed" else st.warning)(run.message)
    if run.status in ("done", "stopped"):
        views.verdicts(run.result["leaderboard"])
        c1, c2 = st.columns(2)
        with c1:
            urls.link("compare", "See the leaderboard and charts", run=run.id)
        with c2:
            urls.link("predict", "Use the model on new data", run=run.id)
    if run.finished and team.can("train", run.workspace_id):
        if st.button("Rerun with the same settings", icon=":material/replay:"):
            with common.guard():
                urls.open_run(runner.submit(store, RunSpec.from_dict(run.spec)))
    urls.link("train", "Start another run on this data", dataset=run.dataset_id, icon=":material/add:")
    st.stop()

dataset_id = urls.get_id(urls.DATASET)
if not dataset_id:
    views.pick_dataset("train", "Which data should the model learn from?")
dataset = views.or_stop(store.dataset, dataset_id)
if not team.can("train", dataset.workspace_id):
    st.info(f"You are a {team.role(dataset.workspace_id)} of this workspace: training needs the editor role. Ask an owner of the "
            "workspace to change your role.", icon=":material/lock:")
    st.stop()

columns = [c["name"] for c in dataset.profile["columns"]]
st.subheader(f"Data: {text.md(dataset.name)}")

urls.link("data", "Check the data and the target first", dataset=dataset_id, icon=":material/arrow_back:")

is_image = dataset.kind == "image"
goal = "predict"
if not is_image and series_views.time_columns(dataset_id):
    goal = st.radio("What should the model do?", ["predict", "forecast"], horizontal=True,
                    index=1 if dataset.task == "forecast" else 0,
                    format_func={"predict": "Predict a column from the others",
                                 "forecast": "Forecast a series over time"}.get)
if goal == "forecast":
    numeric = [c["name"] for c in dataset.profile["columns"] if c.get("kind") == "numeric"]
    forecast_spec = series_views.forecast_form(dataset, numeric)
    if forecast_spec is not None:
        with common.guard():
            urls.open_run(runner.submit(store, forecast_spec))
    previous = store.list_run_rows(dataset_id=dataset_id, limit=10)
    if previous:
        st.subheader("Runs on this data")
        views.runs_table(previous)
    st.stop()

with st.form("train"):
    if is_image:
        classes = dataset.report.get("classes", {})
        st.markdown(f"**Sorts the images into {len(classes)} classes:** {', '.join(list(classes)[:12])}"
                    + (" …" if len(classes) > 12 else ""))
        target, task = "label", "auto"
    else:
        # Never a column chosen for the analyst (the last one was often a price or a date): asked, with a
        # guess from a column's name and values offered in words, marked as a guess.
        guess = None if dataset.target in columns else guess_target(dataset.profile["columns"])
        target = st.selectbox("Target (what to predict)", columns,
                              index=columns.index(dataset.target) if dataset.target in columns else None,
                              placeholder="Choose the column to predict")
        if target is None:
            st.caption(f":material/lightbulb: A guess, from {guess[1]}: **{guess[0]}**. Choose it above if it is "
                       "what the model should predict." if guess else
                       "Choose the column the model should predict: the Data page shows each column's values.")
        task_options = ["auto", "binary", "multiclass", "regression"]
        task = st.radio("Kind of prediction", task_options, horizontal=True,
                        index=task_options.index(dataset.task) if dataset.target == target and dataset.task in task_options else 0,
                        format_func=lambda t: {"auto": "detect", "binary": "two outcomes", "multiclass": "several categories",
                                               "regression": "a number"}[t])
    kind_templates = templates.for_kind(dataset.kind)
    names = [t.name for t in kind_templates]
    template = st.radio("Model template", names, index=names.index("cnn_deep") if "cnn_deep" in names else 0,
                        format_func=lambda n: templates.get(n).title,
                        captions=[t.description for t in kind_templates])
    text_columns = [] if is_image else [c["name"] for c in dataset.profile["columns"] if c.get("kind") == "text"]
    read_texts = text_columns
    if text_columns:
        read_texts = st.multiselect(
            "Free-text columns the models read (take one out to leave it unused)", text_columns, default=text_columns,
            help="Words are learned from this table's own rows. This server cannot download pretrained language "
                 "models; a template that reads word vectors placed on the server will come when they can ship.")
        st.caption("Every model learns its words from your rows only: no pretrained language model is downloaded.")
    personal = [] if is_image else [c["name"] for c in dataset.profile["columns"] if c.get("personal") and c["name"] != target]
    put_back: list[str] = []
    if personal:
        put_back = st.multiselect(
            "Columns of personal data, left out of the inputs (put one back only if the model needs it and you may use "
            "it for this)", personal, default=[],
            help="Found by their content on the Data page: emails, phones, bank and card numbers, national ids, IP "
                 "addresses or names.")
        st.caption(":material/warning: A column put back is learned from: its name then appears in the report and "
                   "the model card, and the bundle's preprocessing keeps what it learned from its values (its most "
                   "frequent categories, say).")
    if is_image:
        st.caption("Models are trained from scratch: this server cannot download pretrained weights. A transfer-learning "
                   "template will come when weights can ship with the app.")
        suggested = suggested_image_size(dataset.report.get("width_median", 32), dataset.report.get("height_median", 32))
        image_size = st.select_slider(
            "Image size: every picture is resized to this many pixels a side (bigger sees more detail but trains "
            "about four times slower per doubling)", list(IMAGE_SIZES), value=suggested)
        augment = st.toggle("Augmentation (deeper CNN only): show each training picture slightly turned, zoomed, "
                            "shifted and with other contrast, new each epoch; helps most with few pictures", value=True)
        mirror = suggested_flip(classes)
        flip = st.toggle("Mirror pictures left-right as part of augmentation (turn off for text, digits, or anything "
                         "where left and right matter)", value=mirror,
                         help=None if mirror else
                         f"Off to start with: the classes look like characters or digits ({', '.join(list(classes)[:5])}"
                         f"{' …' if len(classes) > 5 else ''}), and a mirrored character is another shape or none. "
                         "Switch it on if the pictures are not characters.")
        if not mirror:
            st.caption("Mirroring starts off here: the classes look like characters or digits, and a mirrored "
                       "character is another shape, or none.")
    defaults = TrainSpec()
    if is_image:
        budget = st.select_slider(
            "Time budget: how long you are willing to wait. Within it, the image size, how strongly the pictures are "
            "changed while training, the learning rate and the network's size are searched on the validation images",
            options=BUDGET_CHOICES, value=PRESETS[DEFAULT_PRESET], format_func=describe)
        st.caption("A longer budget tries more settings of the CNN (the first is the settings below). The baselines "
                   "are fitted once. The run ends within its budget; Stop ends the search early and keeps the best "
                   "model found so far.")
    else:
        budget = st.select_slider(
            "Time budget: how long you are willing to wait. Within it, each model's settings are searched, every "
            "model is cross-validated, and the best are combined into an ensemble",
            options=BUDGET_CHOICES, value=PRESETS[DEFAULT_PRESET], format_func=describe)
        st.caption("A longer budget tries more settings of the deep model and of the baselines. The run ends within "
                   "its budget; Stop ends the search early and keeps the best model found so far.")
    with st.expander("Settings (the defaults suit most data) · advanced: fixed settings instead of a search",
                     expanded=False):
        st.caption("Give a number of epochs to train these settings once, as they are, instead of searching "
                   "within the time budget.")
        c1, c2 = st.columns(2)
        epochs = c1.number_input("Epochs: passes over the training rows (training stops earlier when validation stops improving)",
                                 1, 1000, None, placeholder="searched within the budget")
        size = c2.select_slider("Size: how many units the model has (bigger learns more, but may memorise)",
                                ["small", "medium", "large"], value=defaults.size)
        learning_rate = c1.select_slider("Learning rate: how big each learning step is (lower is slower but steadier)",
                                         [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03], value=defaults.learning_rate)
        batch_size = c2.select_slider("Batch size: rows per learning step (suggested from the table's size)",
                                      [16, 32, 64, 128, 256, 512, 1024],
                                      value=32 if is_image else suggested_batch_size(dataset.n_rows))
    with st.expander("Advanced: against memorising, and repeating a run", expanded=False):
        c1, c2 = st.columns(2)
        dropout = c1.slider("Dropout: share of units switched off at random while training (fights memorising)",
                            0.0, 0.6, defaults.dropout, 0.05)
        patience = c2.number_input("Patience: epochs without improvement before stopping early", 1, 100, defaults.patience)
        seed = c1.number_input("Seed: the same seed gives the same split and the same model", 0, 2**31 - 1, defaults.seed)
        l2 = c2.select_slider("L2 penalty: keeps weights small (fights memorising)", [0.0, 1e-6, 1e-5, 1e-4, 1e-3],
                              value=defaults.l2)
    submitted = st.form_submit_button("Train", type="primary", icon=":material/play_arrow:")



def _inputs_without(left_out: set[str], put_back: list[str] = ()) -> tuple[str, ...] | None:
    """The run's input columns: every usable one (None) unless the analyst left a text column out
    or put a column of personal data back."""
    if not left_out and not put_back:
        return None
    from dlcore.tables import profile_of, usable_features

    usable = usable_features(profile_of(dataset), target)
    return tuple([c for c in usable if c not in left_out] + [c for c in put_back if c not in usable and c != target])


if submitted and target is None:
    st.error("Choose the target first: the column the model should predict (\"Target\" above). Nothing was "
             "trained: no column is picked for you.", icon=":material/block:")
elif submitted:
    with common.guard():
        spec = RunSpec(
            data=DataSpec(dataset_id=dataset_id, target=target, task=task,
                          image_size=int(image_size) if is_image else None,
                          features=_inputs_without(set(text_columns) - set(read_texts), put_back)),
            template=template,
            train=TrainSpec(epochs=int(epochs) if epochs is not None else defaults.epochs,
                            budget=float(budget) if budget is not None and epochs is None else None,
                            batch_size=int(batch_size), learning_rate=float(learning_rate),
                            size=size, dropout=float(dropout), l2=float(l2), patience=int(patience), seed=int(seed),
                            augment=bool(augment) if is_image else True, flip=bool(flip) if is_image else True),
        )
        new_run = runner.submit(store, spec)
        if not is_image and (target, task) != (dataset.target, dataset.task) and task != "auto":
            store.set_dataset_target(dataset_id, target, task)
        urls.open_run(new_run)

previous = store.list_run_rows(dataset_id=dataset_id, limit=10)
if previous:
    st.subheader("Runs on this data")
    views.runs_table(previous)
