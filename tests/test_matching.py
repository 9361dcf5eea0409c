"""Scoring a file whose columns have other names: the matching (a pure function, table-tested), the
scorer and the scoring job that apply it, the command line's --map, and the Predict page's step."""

from __future__ import annotations

import contextlib
import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from dlcore.errors import SchemaError
from dlcore.tables import matching
from tests.conftest import PENGUIN_NAMES, penguin_frame

TARGET = "Sexe"
INPUTS = [c for c in penguin_frame(5).columns if c != TARGET]
NUMERIC = ["Longueur du bec (mm)", "Profondeur du bec (mm)", "Nageoire (mm)", "Masse (g)", "Année"]


def expected_for(train: pd.DataFrame) -> list[matching.Expected]:
    """What a run saves of its columns (``result["features"]``, ``result["input_defaults"]``, the profile)."""
    from dlcore.tables.profile import profile_frame

    features = {"numeric": NUMERIC, "datetime": [], "categorical": ["Espèce", "Île"]}
    defaults = {c: {"kind": "numeric", "default": float(train[c].median()), "min": float(train[c].min()),
                    "max": float(train[c].max())} for c in NUMERIC}
    defaults |= {c: {"kind": "categorical", "choices": train[c].value_counts().index.tolist()} for c in ("Espèce", "Île")}
    return matching.expected_columns(features, defaults, profile_frame(train).to_dict())


EXPECTED = expected_for(penguin_frame(300))


def renamed(n: int = 60, seed: int = 5) -> pd.DataFrame:
    return penguin_frame(n, seed).drop(columns=[TARGET]).rename(columns=PENGUIN_NAMES)


def with_culmen(frame: pd.DataFrame) -> pd.DataFrame:
    """An export with a second measure of the bill's length: two columns fit one of the model's."""
    return frame.assign(culmen_length_mm=frame["bill_length_mm"] + 0.2)


BY_VALUES = {c: (PENGUIN_NAMES[c], "values") for c in INPUTS}
# (what happened to the file, the file, model column -> (file column, how)); unlisted columns: by name.
CASES = [
    ("same names", penguin_frame(40, 3), {}),
    ("case, accents, spaces and units set aside",
     penguin_frame(40, 3).rename(columns={"Masse (g)": "MASSE_g", "Espèce": "espece", "Nageoire (mm)": "nageoire [mm]",
                                          "Longueur du bec (mm)": "Longueur du bec"}),
     {"Masse (g)": ("MASSE_g", "similar name"), "Espèce": ("espece", "similar name"),
      "Nageoire (mm)": ("nageoire [mm]", "similar name"), "Longueur du bec (mm)": ("Longueur du bec", "similar name")}),
    ("every column renamed: matched by values", renamed(), BY_VALUES),
    ("two columns fit one: left to the analyst", with_culmen(renamed()),
     BY_VALUES | {"Longueur du bec (mm)": (None, "")}),
    ("categories in another case still match", renamed().assign(species=lambda f: f["species"].str.lower()), BY_VALUES),
    ("a column the file lacks", renamed().drop(columns=["body_mass_g"]), BY_VALUES | {"Masse (g)": (None, "")}),
    ("words never stand for numbers", renamed().assign(body_mass_g=lambda f: np.where(f["body_mass_g"] > 4000, "heavy", "light")),
     BY_VALUES | {"Masse (g)": (None, "")}),
    ("numbers of another unit do not match", renamed().assign(body_mass_g=lambda f: f["body_mass_g"] / 1000),
     BY_VALUES | {"Masse (g)": (None, "")}),
]


@pytest.mark.parametrize("frame, want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_propose_matches_by_names_and_values_only_where_that_is_clear(frame, want):
    proposal = matching.propose(EXPECTED, frame)
    got = {m.column: (m.source, m.how) for m in proposal.matches}
    assert got == {c: want.get(c, (c, "name")) for c in INPUTS}
    assert proposal.identical == (not want)
    assert proposal.settled == all(how in ("name", "similar name") for _, how in want.values())


def test_an_open_column_lists_the_file_columns_that_fit_first_with_their_fit():
    match = matching.propose(EXPECTED, with_culmen(renamed())).match("Longueur du bec (mm)")
    assert set(match.candidates[:2]) == {"bill_length_mm", "culmen_length_mm"}
    assert min(match.fits[c] for c in match.candidates[:2]) > 0.7 and max(match.fits[c] for c in match.candidates[2:]) < 0.1
    reason = matching.propose(EXPECTED, renamed()).match("Masse (g)").reason
    assert reason.startswith("numbers from ") and "where training had 2710 to 6390" in reason


@pytest.mark.parametrize("name, key", [
    ("Masse (g)", "masse"), ("body_mass_g", "bodymass"), ("Bill Length [mm]", "billlength"),
    ("bill_length_mm", "billlength"), ("Île", "ile"), ("  Prix  TTC (€) ", "prixttc"), ("g", "g"), ("(g)", "g"),
    ("year", "year"), ("birth_year", "birthyear"),
])
def test_name_key_sets_aside_case_accents_spaces_and_units(name, key):
    assert matching.name_key(name) == key


def test_a_saved_matching_applies_to_a_file_with_its_names_and_a_chosen_one_overrides_everything():
    frame = with_culmen(renamed())
    layout = {"columns": {c: PENGUIN_NAMES[c] for c in INPUTS} | {"Année": None}, "saved_at": 0}
    proposal = matching.propose(EXPECTED, frame, [layout])
    assert {m.column: m.how for m in proposal.matches} == {c: "saved" for c in INPUTS} | {"Année": "blank"}
    assert proposal.settled and proposal.mapping["Année"] is None and proposal.missing == []
    # A file that lacks one of the saved names is not this layout: matched afresh.
    other = matching.propose(EXPECTED, frame.drop(columns=["island"]), [layout])
    assert "saved" not in {m.how for m in other.matches}
    chosen = matching.propose(EXPECTED, penguin_frame(40), chosen={"Masse (g)": "Nageoire (mm)", "Année": None})
    assert chosen.match("Masse (g)").how == "chosen" and chosen.mapping["Masse (g)"] == "Nageoire (mm)"
    assert chosen.match("Année").how == "blank" and chosen.match("Nageoire (mm)").how == "name"


def test_propose_stays_quick_and_right_on_a_wide_file_with_every_column_renamed():
    rng = np.random.default_rng(0)
    wide = pd.DataFrame({f"num {i}": rng.normal(i * 10, 1 + i % 5, 30_000) for i in range(100)}
                        | {f"cat {i}": rng.choice([f"v{i}_{k}" for k in range(5)], 30_000) for i in range(20)})
    features = {"numeric": [f"num {i}" for i in range(100)], "datetime": [], "categorical": [f"cat {i}" for i in range(20)]}
    defaults = {c: {"kind": "numeric", "default": float(wide[c].median()), "min": float(wide[c].min()),
                    "max": float(wide[c].max())} for c in features["numeric"]}
    defaults |= {c: {"kind": "categorical", "choices": sorted(wide[c].unique())} for c in features["categorical"]}
    names = {c: f"x{i}" for i, c in enumerate(wide.columns)}
    proposal = matching.propose(matching.expected_columns(features, defaults), wide.rename(columns=names).iloc[:, ::-1])
    assert {m.column: m.source for m in proposal.matches} == names


EXPLANATION = {"metric_title": "ROC AUC", "importance": [
    {"feature": "Masse (g)", "mean": 0.21, "std": 0.03}, {"feature": "Profondeur du bec (mm)", "mean": 0.12, "std": 0.02},
    {"feature": "Année", "mean": 0.001, "std": 0.004}]}


@pytest.mark.parametrize("column, explanation, important, words", [
    ("Masse (g)", EXPLANATION, True, "MLP relies on 'Masse (g)': shuffling it costs 0.2100 of ROC AUC (± 0.0300), "
                                     "the most of its 3 columns. Scored blank, its predictions would be worse"),
    ("Profondeur du bec (mm)", EXPLANATION, True, "costs 0.1200 of ROC AUC (± 0.0200), the 2nd most of its 3 columns"),
    ("Année", EXPLANATION, False, "MLP barely relies on 'Année': shuffling it changes ROC AUC by 0.0010 (± 0.0040), so "
                                  "scoring it blank (as missing) changes its predictions little"),
    ("Masse (g)", None, None, "How much MLP relies on 'Masse (g)' is not known yet (the Explain page works it out): "
                              "find the column in the file or add it, rather than score it blank"),
])
def test_reliance_says_how_much_the_model_relies_on_a_column_from_its_explanation(column, explanation, important, words):
    said = matching.reliance(explanation, column, "MLP")
    assert said.important is important and words in said.sentence


def test_the_message_for_an_unmatched_file_proposes_columns_and_never_advises_scoring_blank():
    frame = with_culmen(renamed()).drop(columns=["body_mass_g"])
    proposal = matching.propose(EXPECTED, frame)
    relied = {m.column: matching.reliance(EXPLANATION, m.column, "MLP") for m in proposal.matches if m.source is None}
    message = matching.unmatched_message(proposal, relied)
    assert message.startswith("The file lacks 7 column(s) the model was trained on: 'Longueur du bec (mm)', ")
    assert "'species' for 'Espèce' (the same categories: Adelie, Gentoo, Chinstrap)" in message
    assert "'culmen_length_mm' and 'bill_length_mm' could each be 'Longueur du bec (mm)': choose one." in message
    assert ("--map 'Longueur du bec (mm)=FILE_COLUMN,Profondeur du bec (mm)=bill_depth_mm,Nageoire (mm)=flipper_length_mm,"
            "Masse (g)=FILE_COLUMN,Année=year,Espèce=species,Île=island'") in message
    assert "MLP relies on 'Masse (g)': shuffling it costs 0.2100 of ROC AUC" in message
    assert "empty cells are fine" not in message and "treated as missing" not in message


@pytest.mark.parametrize("text, pairs", [
    ("Espèce=species,Masse (g)=body_mass_g", [("Espèce", "species"), ("Masse (g)", "body_mass_g")]),
    (['"Revenue, net"=revenue', " Île = island "], [("Revenue, net", "revenue"), ("Île", "island")]),
    ("Année=", [("Année", "")]),
])
def test_parse_map_reads_pairs_quotes_and_blanks(text, pairs):
    assert matching.parse_map(text) == pairs


def test_check_map_takes_either_order_and_names_a_wrong_column():
    model, file = INPUTS, list(renamed().columns)
    assert matching.check_map([("Espèce", "species"), ("island", "Île"), ("Année", "")], model, file) == {
        "Espèce": "species", "Île": "island", "Année": None}
    with pytest.raises(SchemaError, match=r"'Espèce' to 'specie', which is not a column of the file \(species, island"):
        matching.check_map([("Espèce", "specie")], model, file)
    with pytest.raises(SchemaError, match="neither is a column the model was trained on"):
        matching.check_map([("Espece", "species")], model, file)
    with pytest.raises(SchemaError, match="has no '='"):
        matching.parse_map("Espèce:species")


# ---- with a finished run: the scorer, the scoring job, the command line -------------------------


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    """A finished run on the penguins (trained once, in this process) and its store."""
    from dlcore import cli
    from dlcore.store import Store

    folder = tmp_path_factory.mktemp("matching")
    home = folder / "home"
    data = folder / "penguins.csv"
    penguin_frame(300).to_csv(data, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DLCORE_HOME", str(home))
        mp.setenv("DLCORE_WORKERS", "0")
        mp.delenv("DLCORE_DATABASE_URL", raising=False)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert cli.main(["fit", str(data), "--target", TARGET, "--epochs", "2"]) == 0
        yield Store.open(home), json.loads(out.getvalue())["run_id"], home


@pytest.fixture
def run(penguins):
    """The run, with no matching saved and no explanation (each test adds what it needs)."""
    from dlcore.outputs import explanation_path

    store, run_id, _ = penguins
    (store.run_dir(run_id) / "columns.json").unlink(missing_ok=True)
    for model in store.run(run_id).result["models"]:
        explanation_path(store, run_id, model).unlink(missing_ok=True)
    return store, store.run(run_id)


MODEL = "logistic_regression"


def score(store, run, frame: pd.DataFrame, **kwargs):
    from dlcore.tables.scoring import score_upload

    return score_upload(store, run, MODEL, frame.to_csv(index=False).encode(), "next-month.csv", **kwargs)


def test_a_renamed_file_scores_as_the_original_once_matched_and_the_next_one_at_once(run):
    store, record = run
    original = penguin_frame(40, 5).drop(columns=[TARGET])
    with pytest.raises(SchemaError, match="The file lacks 7 column"):
        score(store, record, original.rename(columns=PENGUIN_NAMES))
    pairs = [(c, PENGUIN_NAMES[c]) for c in INPUTS]
    matched = score(store, record, original.rename(columns=PENGUIN_NAMES), columns=pairs)
    plain = score(store, record, original)
    predicted = ["prediction", "probability female", "probability male"]
    pd.testing.assert_frame_equal(matched.table[predicted], plain.table[predicted])
    assert list(matched.table.columns[:7]) == [PENGUIN_NAMES[c] for c in original.columns]  # the file's own names
    assert matched.summary.extra_columns == [] and "'species' as 'Espèce'" in matched.summary.notes()[0]
    saved = matching.load_mappings(store, record.id)
    assert [m["columns"] for m in saved] == [dict(pairs)]
    # Next month: the same names, other rows, no --map; and a file with its own names still scores as before.
    later = penguin_frame(30, 9).drop(columns=[TARGET])
    again = score(store, record, later.rename(columns=PENGUIN_NAMES).assign(comment="ok"))
    pd.testing.assert_frame_equal(again.table[predicted], score(store, record, later).table[predicted])
    assert again.summary.extra_columns == ["comment"] and "kept with the run" in again.summary.notes()[0]


def test_the_scoring_job_refuses_an_unmatched_file_and_applies_the_matching_saved_with_the_run(run):
    from dlcore import jobs

    store, record = run
    content = with_culmen(renamed(25, 8)).to_csv(index=False).encode()
    failed = jobs.submit_scoring(store, record.id, MODEL, content, "export.csv")
    jobs.execute_scoring(store, failed)
    job = store.scoring(failed)
    assert job.status == "failed" and "'bill_depth_mm' for 'Profondeur du bec (mm)'" in job.message
    assert "'culmen_length_mm' and 'bill_length_mm' could each be 'Longueur du bec (mm)'" in job.message
    matching.save_mapping(store, record.id, {c: PENGUIN_NAMES[c] for c in INPUTS})
    done = jobs.submit_scoring(store, record.id, MODEL, content, "export.csv")
    jobs.execute_scoring(store, done)
    job = store.scoring(done)
    assert job.status == "done", job.message
    scored = pd.read_csv(store.scoring_dir(done) / "scored.csv", encoding="utf-8-sig")
    assert len(scored) == 25 and scored["prediction"].isin(["male", "female"]).all()
    assert job.summary["extra_columns"] == ["culmen_length_mm"]


def test_a_column_nothing_fits_is_refused_with_how_much_the_model_relies_on_it(run):
    from dlcore.outputs import explanation_path
    from dlcore.store import atomic_write

    store, record = run
    explanation = {"metric_title": "ROC AUC", "importance": [{"feature": "Masse (g)", "mean": 0.184, "std": 0.024},
                                                            {"feature": "Année", "mean": -0.003, "std": 0.007}]}
    with atomic_write(explanation_path(store, record.id, MODEL)) as tmp:
        tmp.write_text(json.dumps(explanation))
    frame = penguin_frame(20, 4).drop(columns=[TARGET, "Masse (g)", "Année"])
    with pytest.raises(SchemaError) as caught:
        score(store, record, frame)
    message = str(caught.value)
    assert message.startswith("The file lacks 2 column(s) the model was trained on: 'Masse (g)', 'Année'. Add them")
    assert "Logistic regression relies on 'Masse (g)': shuffling it costs 0.1840 of ROC AUC (± 0.0240)" in message
    assert "Logistic regression barely relies on 'Année'" in message
    # Chosen blank anyway: scored as missing, and the notes say what that costs.
    scored = score(store, record, frame, columns=[("Masse (g)", ""), ("Année", "")])
    notes = scored.summary.notes()
    assert "'Masse (g)' was scored as missing in every row, as chosen. Logistic regression relies on it" in notes[0]
    assert "less reliable than its test score says" in notes[0] and "barely relies on it" in notes[1]
    assert scored.table["prediction"].notna().all() and len(scored.table) == 20


def test_the_command_line_takes_map_keeps_it_with_the_run_and_names_a_wrong_column(run, penguins, tmp_path, capsys,
                                                                                     monkeypatch):
    from dlcore import cli

    store, record = run
    monkeypatch.setenv("DLCORE_HOME", str(penguins[2]))
    path = tmp_path / "export.csv"
    with_culmen(renamed(30, 2)).to_csv(path, index=False)
    out = tmp_path / "scored.csv"
    assert cli.main(["predict", record.id, str(path), "-o", str(out), "--model", MODEL]) == 1
    assert "--map 'Longueur du bec (mm)=FILE_COLUMN," in capsys.readouterr().err
    line = ",".join(f"{c}={PENGUIN_NAMES[c]}" for c in INPUTS)
    assert cli.main(["predict", record.id, str(path), "-o", str(out), "--model", MODEL, "--map", line]) == 0
    first = out.read_bytes()
    said = capsys.readouterr().err
    assert "were read as the model's: 'bill_length_mm' as 'Longueur du bec (mm)'" in said and "'year' as 'Année'" in said
    assert cli.main(["predict", record.id, str(path), "-o", str(out), "--model", MODEL]) == 0
    assert out.read_bytes() == first and len(pd.read_csv(out)) == 30
    assert cli.main(["predict", record.id, str(path), "-o", str(out), "--map", "Espèce=specie"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: --map matches 'Espèce' to 'specie', which is not a column of the file (species, island, "
                      "bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, year, culmen_length_mm). Check "
                      "the name (spaces and case count)."]


# ---- the Predict page -----------------------------------------------------------------------------


def test_the_predict_page_matches_a_renamed_file_and_scores_the_next_one_in_one_click(run, penguins, monkeypatch):
    from dlcore import jobs
    from tests.conftest import open_page, use_app_router_in_apptest
    from ui import common

    use_app_router_in_apptest()
    store, record = run
    home = penguins[2]

    def score_now() -> None:  # the page's scorer worker, in this process
        while scoring_id := store.claim_next_scoring():
            jobs.execute_scoring(store, scoring_id)

    monkeypatch.setattr(common, "ensure_workers", score_now)
    first = with_culmen(renamed(35, 11))
    at = open_page(home, "predict", run=record.id)
    at.file_uploader[0].upload("export.csv", first.to_csv(index=False).encode(), "text/csv").run()
    assert not at.exception and not at.error
    boxes = {b.label.removeprefix("Column of the file for “").removesuffix("”"): b for b in at.selectbox
             if b.label.startswith("Column of the file")}
    assert {c: b.value for c, b in boxes.items()} == {c: PENGUIN_NAMES[c] for c in INPUTS} | {"Longueur du bec (mm)": None}
    assert boxes["Longueur du bec (mm)"].options[:2] in (["culmen_length_mm", "bill_length_mm"],
                                                         ["bill_length_mm", "culmen_length_mm"])
    assert any("could each be it, by their values" in c.value for c in at.caption)
    # A column still open: the button waits and says for what (it sent the file and got "lacks 5 columns").
    assert next(b for b in at.button if b.label == "Score the file").disabled
    assert any("Choose the file's column for “Longueur du bec (mm)” above" in c.value for c in at.caption)
    boxes["Longueur du bec (mm)"].select("bill_length_mm").run()
    assert not next(b for b in at.button if b.label == "Score the file").disabled
    next(b for b in at.button if b.label == "Score the file").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("Scored 35 rows of export.csv" in s.value for s in at.success)
    assert matching.load_mappings(store, record.id)[0]["columns"]["Longueur du bec (mm)"] == "bill_length_mm"

    at = open_page(home, "predict", run=record.id)
    at.file_uploader[0].upload("export-2.csv", with_culmen(renamed(20, 12)).to_csv(index=False).encode(), "text/csv").run()
    assert any("matched as for the last file with these names" in s.value for s in at.success)
    next(b for b in at.button if b.label == "Score the file").click().run()
    assert any("Scored 20 rows of export-2.csv" in s.value for s in at.success), [e.value for e in at.error]


def test_the_predict_page_warns_before_a_column_the_model_relies_on_is_scored_blank(run, penguins):
    from dlcore.outputs import best_model, explanation_path
    from dlcore.store import atomic_write
    from tests.conftest import open_page, use_app_router_in_apptest

    use_app_router_in_apptest()
    store, record = run
    model = best_model(record.result)  # the model the Predict page opens on
    with atomic_write(explanation_path(store, record.id, model)) as tmp:
        tmp.write_text(json.dumps({"metric_title": "ROC AUC", "importance": [
            {"feature": "Masse (g)", "mean": 0.184, "std": 0.024}, {"feature": "Année", "mean": 0.0, "std": 0.004}]}))
    at = open_page(penguins[2], "predict", run=record.id)
    frame = renamed(30, 13).drop(columns=["body_mass_g", "year"])
    at.file_uploader[0].upload("short.csv", frame.to_csv(index=False).encode(), "text/csv").run()
    boxes = {b.label: b for b in at.selectbox if b.label.startswith("Column of the file")}
    assert boxes["Column of the file for “Masse (g)”"].value is None  # never proposed blank
    boxes["Column of the file for “Masse (g)”"].select(boxes["Column of the file for “Masse (g)”"].options[-1])
    boxes["Column of the file for “Année”"].select(boxes["Column of the file for “Année”"].options[-1]).run()
    # As the page renders them: names are backslash-escaped Markdown (ui.text.md), read as typed.
    warnings = [re.sub(r"\\(.)", r"\1", w.value) for w in at.warning]
    assert len(warnings) == 1 and "relies on 'Masse (g)': shuffling it costs 0.1840 of ROC AUC" in warnings[0]
    assert any("barely relies on 'Année'" in c.value for c in at.caption)
