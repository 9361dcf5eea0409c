"""Free-text columns inside tables: profiled as text, learned by the deep templates and the TF-IDF
baselines, scored from raw strings, explained by their words."""

import json

import numpy as np
import pandas as pd
import pytest

from dlcore import baselines, datasets, runner
from dlcore.outputs import load_test_outputs
from dlcore.scoring import load_scorer
from dlcore.spec import DataSpec, RunSpec, TrainSpec
from dlcore.tables import text
from dlcore.tables.preprocess import TabularPreprocessor
from tests.conftest import run_here

# Classes that differ by a few words among many shared ones.
EN_FILLER = ("the a this our new great very really quite we you they it is was with and for from on "
             "in today order customer item price box week").split()
EN_KEYS = {"games": ["strategy", "multiplayer", "console", "level"],
           "cooking": ["recipe", "oven", "flavour", "kitchen"],
           "travel": ["flight", "hotel", "beach", "passport"],
           "finance": ["invoice", "loan", "interest", "account"]}
ZH_FILLER = list("我们你他这个那是的了在有和很也都就要会说好")
ZH_KEYS = {"游戏": ["游戏", "玩家", "关卡"], "烹饪": ["菜谱", "烤箱", "厨房"], "旅行": ["航班", "酒店", "海滩"]}


def texts_frame(keys, filler, n=360, seed=0, joiner=" "):
    """A table of short texts whose label shows only in one or two of its words, plus a number
    column of noise."""
    rng = np.random.default_rng(seed)
    labels = list(keys)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        words = list(rng.choice(filler, size=int(rng.integers(8, 14))))
        for _ in range(int(rng.integers(1, 3))):
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(keys[label])))
        rows.append({"description": joiner.join(words), "amount": float(rng.normal()), "label": label})
    return pd.DataFrame(rows)


def _run(store, frame, target="label", **train):
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "texts.csv")
    spec = RunSpec(data=DataSpec(record.id, target), template=train.pop("template", "mlp"),
                   train=TrainSpec(**{"epochs": 15, "batch_size": 32, "patience": 15, **train}))
    return run_here(store, spec)


def _accuracy(store, run, model):
    y_true, outputs, _ = load_test_outputs(store, run.id)
    return float((outputs[model].argmax(axis=1) == y_true).mean())


def test_a_text_column_is_profiled_as_text_and_used_by_default(store):
    from dlcore.tables import profile_of, usable_features

    for frame in (texts_frame(EN_KEYS, EN_FILLER, 60), texts_frame(ZH_KEYS, ZH_FILLER, 60, joiner="")):
        record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "t.csv")
        profile = profile_of(record)
        assert {c.name: c.kind for c in profile.columns}["description"] == "text"
        assert usable_features(profile, "label") == ["description", "amount"]


def test_the_word_vocabulary_comes_from_the_training_rows_only():
    train = np.array([["strategy game tonight"], ["oven recipe"]], dtype=object)
    (words, chars), = text.vocabularies(train)
    assert "strategy" in words and "oven" in words
    assert "passport" not in words  # a word only in other rows is unknown to the model
    assert "r e" in chars  # character pairs, for misspellings and unspaced scripts


def test_cells_are_cleaned_and_counted():
    cells, empty, long = text.clean(pd.Series(["  café ", None, "x" * (text.MAX_CHARS + 10), 12.5, "😀 مرحبا"]))
    assert list(cells[[0, 1, 3, 4]]) == ["café", "", "12.5", "😀 مرحبا"]
    assert len(cells[2]) == text.MAX_CHARS and (empty, long) == (1, 1)


def test_text_preprocessor_state_is_json_and_a_table_without_text_saves_as_before():
    frame = texts_frame(EN_KEYS, EN_FILLER, 20)
    pre = TabularPreprocessor(["amount"], [], text=["description"]).fit(frame)
    again = TabularPreprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    assert again.text == ["description"] and again.columns == ["amount", "description"]
    feats = again.transform(frame)
    assert feats.text.shape == (20, 1) and feats.text[0, 0] == frame["description"][0]
    plain = TabularPreprocessor(["amount"], []).fit(frame).to_dict()
    assert "text" not in plain and plain["numeric"] == ["amount"]


@pytest.mark.slow
@pytest.mark.parametrize("template", ["mlp", "mlp_embed", "text_rnn"])
def test_deep_text_models_and_tfidf_baseline_learn_english_words(store, template):
    run = _run(store, texts_frame(EN_KEYS, EN_FILLER), template=template)
    accuracy = {m: _accuracy(store, run, m) for m in (template, "logistic_regression", "random_forest", "dummy")}
    print(template, accuracy, run.result["deep"])
    assert accuracy[template] >= 0.9
    assert accuracy["logistic_regression"] >= 0.9
    assert accuracy["dummy"] < 0.4
    assert run.result["features"]["text"] == ["description"]
    # The saved .keras file takes raw strings: scoring the file again gives the saved outputs,
    # and a word the training rows never had is counted, not an error.
    frame = datasets.load_frame(store, run.dataset_id)
    _, outputs, rows = load_test_outputs(store, run.id)
    for model in (template, "logistic_regression", "gradient_boosting"):
        out, _ = load_scorer(store, run.id, model).output(frame.iloc[rows])
        assert np.allclose(out, outputs[model], atol=1e-5)
    new = pd.DataFrame({"description": ["zzzunseen strategy multiplayer", ""], "amount": [0.0, 1.0]})
    out, summary = load_scorer(store, run.id, template).output(new)
    assert run.result["classes"][int(out[0].argmax())] == "games"
    assert summary.unknown_words == {"description": 1} and summary.empty_text == {"description": 1}


@pytest.mark.slow
def test_chinese_texts_are_learned_from_characters(store):
    run = _run(store, texts_frame(ZH_KEYS, ZH_FILLER, joiner=""), template="text_rnn")
    accuracy = {m: _accuracy(store, run, m) for m in ("text_rnn", "logistic_regression")}
    print(accuracy, run.result["deep"])
    assert accuracy["text_rnn"] >= 0.9 and accuracy["logistic_regression"] >= 0.9


def test_text_baselines_save_with_only_sklearn_types(tmp_path):
    frame = texts_frame(EN_KEYS, EN_FILLER, 80)
    x = text.baseline_frame(np.zeros((80, 1), dtype=np.float32), frame[["description"]].to_numpy(dtype=object))
    y = frame["label"].astype("category").cat.codes.to_numpy()
    for name, pipe in text.baselines_for(1, 1)("multiclass", 0, 80).items():
        with baselines.small_table_threads(len(y)):  # as a run fits them (idle OpenMP threads spin when busy)
            pipe.fit(x, y)
        baselines.save(pipe, tmp_path / f"{name}.skops")
        again = baselines.load(tmp_path / f"{name}.skops")
        assert np.allclose(again.predict_proba(x), pipe.predict_proba(x))


def test_word_effects_name_the_deciding_words():
    def predict(texts):  # a model that knows two words
        return np.array([0.1 + 0.6 * ("strategy" in t) + 0.2 * ("multiplayer" in t) - 0.05 * ("slow" in t)
                         for t in texts])

    effects = text.word_effects(predict, "A strategy game, multiplayer and slow")
    assert [e["word"] for e in effects[:3]] == ["strategy", "multiplayer", "slow"]
    assert effects[0]["effect"] == pytest.approx(0.6) and effects[0]["spans"] == [(2, 10)]
    assert effects[2]["effect"] < 0
    said = text.sentence(effects, "72% likely to be 'games'")
    assert said == "72% likely to be 'games', mostly because of 'strategy' and 'multiplayer'; 'slow' pulled the other way."
    chinese = text.word_effects(lambda ts: np.array([float("戏" in t) for t in ts]), "我喜欢这个游戏")
    assert chinese[0]["word"] == "戏" and chinese[0]["spans"] == [(6, 7)]


@pytest.mark.slow
def test_a_rows_explanation_names_its_deciding_words_and_the_model_its_words_per_class(store):
    import time

    from dlcore.tables.explain import explain_model, explain_row_of_run

    run = _run(store, texts_frame(EN_KEYS, EN_FILLER), template="mlp", epochs=12)
    started = time.perf_counter()
    row = explain_row_of_run(store, run.id, "mlp", test_row=0)
    row_seconds = time.perf_counter() - started
    effects = row["words"]["description"]["effects"]
    keys = EN_KEYS[row["class"]]
    assert effects[0]["word"] in keys and effects[0]["effect"] > 0
    text_cell = row["words"]["description"]["text"]
    start, end = effects[0]["spans"][0]
    assert text_cell[start:end] == effects[0]["word"]
    assert row["words_sentence"].startswith(f"{row['prediction']:.0%} likely to be '{row['class']}', mostly because of '")
    assert effects[0]["word"] in row["words_sentence"]
    started = time.perf_counter()
    model = explain_model(store, run, "logistic_regression")
    print("explain row", row_seconds, "model", time.perf_counter() - started, row["words_sentence"])
    assert {d["feature"]: d["kind"] for d in model["importance"]}["description"] == "text"
    assert model["importance"][0]["feature"] == "description"
    for label, keys in EN_KEYS.items():
        top = [d["word"] for d in model["words"][label][:4]]
        assert set(top) & set(keys), (label, top)
        assert all(d["std"] >= 0 and d["rows"] >= 1 for d in model["words"][label])


def test_the_data_pages_text_profile_finds_scripts_words_and_a_leak():
    frame = texts_frame(EN_KEYS, EN_FILLER, 120)
    frame.loc[0, "description"] = None
    frame.loc[1, "description"] = "12345"
    found = text.column_profile(frame["description"], frame["label"], "multiclass")
    assert found["scripts"] == {"Latin": 1.0} and found["leaked"] == []
    for label, keys in EN_KEYS.items():
        assert set(w["word"] for w in found["words"][label][:4]) <= set(keys)
    assert any("no text" in n for n in found["notes"]) and any("only a number" in n for n in found["notes"])
    leaky = frame.assign(description=frame["label"] + " " + frame["description"].fillna(""))
    assert sorted(text.column_profile(leaky["description"], leaky["label"], "multiclass")["leaked"]) == sorted(EN_KEYS)
    mixed = pd.Series(["我喜欢这个游戏", "مرحبا بالعالم", "Привет мир", "hello 😀"])
    assert [text.script_of(c) for c in mixed] == ["Chinese/Japanese", "Arabic", "Cyrillic", "Latin"]


def test_the_text_template_on_a_table_without_text_is_refused_at_submit(store):
    from dlcore.errors import DataError
    from tests.conftest import churn_frame

    record, _ = datasets.register_bytes(store, churn_frame(120).to_csv(index=False).encode(), "churn.csv")
    with pytest.raises(DataError, match="The text model reads free-text columns.*choose an MLP template"):
        runner.submit(store, RunSpec(data=DataSpec(record.id, "churn"), template="text_rnn"))
    frame = texts_frame(EN_KEYS, EN_FILLER, 60)
    record, _ = datasets.register_bytes(store, frame.to_csv(index=False).encode(), "t.csv")
    with pytest.raises(DataError, match="inputs have none"):  # the analyst left the text column out
        runner.submit(store, RunSpec(data=DataSpec(record.id, "label", features=("amount",)), template="text_rnn"))


@pytest.mark.slow
def test_hostile_text_cells_train_and_score_with_notes(store):
    """A 5 MB cell, numbers in some rows, emoji, right-to-left scripts, a column of URLs and an
    empty text column: the run finishes, the URLs stay an identifier, scoring counts what it cut."""
    frame = texts_frame(EN_KEYS, EN_FILLER, 120)
    frame.loc[3, "description"] = "strategy " * 600_000  # about 5 MB
    frame.loc[4, "description"] = "42"
    frame.loc[5, "description"] = "😀 strategy مرحبا بالعالم שלום עולם"
    frame["link"] = [f"https://example.com/item/{i}" for i in range(len(frame))]
    frame["notes"] = ""
    run = _run(store, frame, template="mlp", epochs=2)
    kinds = {c["name"]: c["kind"] for c in store.dataset(run.dataset_id).profile["columns"]}
    assert kinds["description"] == "text" and kinds["link"] == "identifier"
    assert run.result["features"]["text"] == ["description"]
    _, summary = load_scorer(store, run.id, "mlp").output(frame.iloc[:6])
    assert summary.long_text == {"description": 1}
    assert any("longer than the model reads" in n for n in summary.notes())
