"""Free-text columns inside tables: cleaning cells, the vocabulary fitted on the training rows,
the Keras text branch, the TF-IDF baselines, and the words that explain one prediction.

Text reaches the deep model as raw strings: tokenisation and vocabulary are Keras
``TextVectorization`` layers inside the model (words, and character 2-3-grams so that Chinese,
Japanese and misspellings work), so a saved ``.keras`` file scores raw text and a bundle needs
nothing else. The vocabulary is learned from the training rows only (``vocabularies``); a word
seen only in new rows maps to the unknown token. The baselines see the same cells through
scikit-learn's ``TfidfVectorizer`` (words and ``char_wb`` n-grams), and the tree models through
a TF-IDF reduced by truncated SVD. No pretrained weights are downloaded: every embedding is
learned from the run's own rows.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import numpy as np
import pandas as pd

__all__ = ["MAX_CHARS", "clean", "vocabularies", "text_branch", "baselines_for", "tokens",
           "word_effects", "sentence"]

MAX_CHARS = 2000  # a cell is cut to this many characters (a 5 MB cell would otherwise own the memory)
MAX_WORDS = 20_000  # word vocabulary per column, most frequent first
MAX_CHARGRAMS = 20_000  # character 2-3-gram vocabulary per column
WORDS_PER_TEXT = 64  # words the recurrent layer reads per cell
_WORD = dict(standardize="lower_and_strip_punctuation", split="whitespace")
_CHAR = dict(standardize="lower", split="character", ngrams=(2, 3))


def clean(series: pd.Series) -> tuple[np.ndarray, int, int]:
    """Cells as Python strings: missing -> "", numbers -> their text, cut at ``MAX_CHARS``.
    Returns the strings and how many were empty and how many were cut."""
    text = series.astype("string").fillna("").str.strip()
    long = text.str.len() > MAX_CHARS
    text = text.where(~long, text.str.slice(0, MAX_CHARS))
    out = text.to_numpy(dtype=object)
    return out, int((text == "").sum()), int(long.sum())


def vocabularies(texts: np.ndarray) -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """Per text column (``texts``: strings, shape (n, k)), the word and character-n-gram
    vocabularies that Keras' own tokenisation finds in these rows, most frequent first."""
    from keras import layers

    out = []
    for j in range(texts.shape[1]):
        column = texts[:, j].astype(str)
        words = layers.TextVectorization(max_tokens=MAX_WORDS, output_mode="int", **_WORD)
        words.adapt(column)
        chars = layers.TextVectorization(max_tokens=MAX_CHARGRAMS, output_mode="multi_hot", **_CHAR)
        chars.adapt(column)
        # Drop the reserved entries ('' padding and '[UNK]'): the layers add them back.
        out.append((tuple(str(w) for w in words.get_vocabulary()[2:]),
                    tuple(str(c) for c in chars.get_vocabulary()[1:])))
    return tuple(out)


def text_branch(inputs: Any, vocab: tuple[tuple[str, ...], tuple[str, ...]], l2: float, dropout: float,
                recurrent: bool, name: str) -> Any:
    """One text input (shape (1,), strings) -> a vector: a learned embedding of the words read by a
    bidirectional GRU (``recurrent``) or averaged, plus a bag of character n-grams (a pooled
    embedding that also reads languages without spaces)."""
    from keras import layers, regularizers

    words, chars = vocab
    reg = regularizers.l2(l2)
    parts = []
    if words:
        ids = layers.TextVectorization(output_mode="int", output_sequence_length=WORDS_PER_TEXT,
                                       vocabulary=list(words), name=f"{name}_words", **_WORD)(inputs)
        # Masking lets the GRU skip padding; an average over an empty text would divide by zero,
        # so the pooled path averages the padding's own learned vector in instead.
        emb = layers.Embedding(len(words) + 2, 32, mask_zero=recurrent, embeddings_regularizer=reg,
                               name=f"{name}_embedding")(ids)
        if recurrent:
            parts.append(layers.Bidirectional(layers.GRU(32), name=f"{name}_gru")(emb))
        else:
            parts.append(layers.GlobalAveragePooling1D(name=f"{name}_mean")(emb))
    if chars:
        bag = layers.TextVectorization(output_mode="multi_hot", vocabulary=list(chars), name=f"{name}_chars",
                                       **_CHAR)(inputs)
        dense = layers.Dense(64, activation="relu", kernel_regularizer=reg, name=f"{name}_ngrams")(bag)
        parts.append(layers.Flatten()(dense))
    x = parts[0] if len(parts) == 1 else layers.Concatenate()(parts)
    return layers.Dropout(dropout)(x)


# ---- baselines ---------------------------------------------------------------------------
def baselines_for(n_dense: int, n_text: int) -> Callable[..., dict[str, Any]]:
    """The baseline offer for a table with text: every model reads a DataFrame of the dense
    columns (``x0``…) and the text columns (``text_0``…); the linear model sees TF-IDF of words
    and character n-grams, the trees a TF-IDF reduced to 64 dimensions by truncated SVD."""
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion, Pipeline

    from dlcore import baselines

    dense_cols = [f"x{i}" for i in range(n_dense)]

    def tfidf() -> FeatureUnion:
        return FeatureUnion([
            ("words", TfidfVectorizer(ngram_range=(1, 2), max_features=50_000, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), max_features=50_000, sublinear_tf=True)),
        ])

    def columns(reduce: bool, seed: int) -> ColumnTransformer:
        parts: list[tuple[str, Any, Any]] = [("dense", "passthrough", dense_cols)] if dense_cols else []
        for j in range(n_text):
            step: Any = tfidf()
            if reduce:
                step = Pipeline([("tfidf", step), ("svd", TruncatedSVD(n_components=64, random_state=seed))])
            parts.append((f"text_{j}", step, f"text_{j}"))
        return ColumnTransformer(parts, sparse_threshold=0.0 if reduce else 1.0)

    def offer(task: str, seed: int, n_rows: int) -> dict[str, Any]:
        plain = baselines.baselines_for(task, seed, n_rows)
        out: dict[str, Any] = {}
        for name, pipe in plain.items():
            if name == "dummy":
                out[name] = pipe
            else:
                out[name] = Pipeline([("columns", columns(name in ("random_forest", "gradient_boosting"), seed)),
                                      *pipe.steps])
        return out

    return offer


def baseline_frame(dense: np.ndarray, texts: np.ndarray) -> pd.DataFrame:
    """What the text baselines read: the dense matrix and the cleaned text columns."""
    frame = pd.DataFrame(dense, columns=[f"x{i}" for i in range(dense.shape[1])])
    for j in range(texts.shape[1]):
        frame[f"text_{j}"] = texts[:, j].astype(str)
    return frame


# ---- explanations ------------------------------------------------------------------------
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|(?:(?![{_CJK}])\w)+")


def tokens(text: str) -> list[tuple[str, int, int]]:
    """The words of a text with their positions: words of spaced scripts, and one token per
    Chinese, Japanese or Korean character (those scripts write words without spaces)."""
    return [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def word_effects(predict: Callable[[list[str]], np.ndarray], text: str, max_words: int = 200) -> list[dict[str, Any]]:
    """How much each distinct word of ``text`` moves the output: ``predict`` maps texts to one
    number each (the probability of the predicted class, or the predicted value); a word's effect
    is the output with the text as it is minus the output with every occurrence of that word
    removed (occlusion). Positive: the word pushed the prediction up."""
    found = tokens(text)
    distinct: list[str] = []
    for word, _, _ in found:
        if word.lower() not in (d.lower() for d in distinct):
            distinct.append(word)
    distinct = distinct[:max_words]
    if not distinct:
        return []
    variants = [text]
    for word in distinct:
        cjk = bool(re.match(rf"[{_CJK}]", word))
        pattern = re.compile(re.escape(word) if cjk else rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE)
        variants.append(pattern.sub(" ", text))
    values = np.asarray(predict(variants), dtype=float)
    base = values[0]
    effects = []
    for word, value in zip(distinct, values[1:]):
        spans = [(s, e) for w, s, e in found if w.lower() == word.lower()]
        effects.append({"word": word, "effect": float(base - value), "spans": spans})
    return sorted(effects, key=lambda e: -abs(e["effect"]))


def sentence(effects: list[dict[str, Any]], outcome: str, n: int = 2) -> str:
    """The row's explanation in words: "72% likely to be 'games', mostly because of 'strategy'
    and 'multiplayer'." (``outcome``: the first half, already written)."""
    up = [e["word"] for e in effects if e["effect"] > 0][:n]
    down = [e["word"] for e in effects if e["effect"] < 0][:1]
    text = outcome
    if up:
        text += ", mostly because of " + " and ".join(f"'{w}'" for w in up)
    if down:
        text += f"; '{down[0]}' pulled the other way"
    return text + "."


# ---- unseen words ------------------------------------------------------------------------
_PUNCT = re.compile(r"""[!"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~']""")


def words(cell: str) -> list[str]:
    """The words of a cell as the word vocabulary counts them: lower case, ASCII punctuation
    removed, split at spaces (as Keras' ``lower_and_strip_punctuation`` and ``whitespace``)."""
    return _PUNCT.sub("", str(cell).lower()).split()


def known_words(scorer: Any) -> list[set[str]] | None:
    """Per text column, the words a loaded model knows from its training rows: the deep model's
    word vocabulary, or a baseline's TF-IDF words; None for a model that reads no words (the floor)."""
    n_text = len(scorer.pre.text)
    if scorer.family == "deep":
        out = []
        for j in range(n_text):
            try:
                out.append(set(scorer.keras_model.get_layer(f"text_{j}_words").get_vocabulary()))
            except ValueError:  # a template without a word layer for this column
                out.append(set())
        return out
    steps = dict(scorer.pipeline.steps)
    columns = steps.get("columns")
    if columns is None:
        return None
    out = []
    for j in range(n_text):
        part = columns.named_transformers_[f"text_{j}"]
        union = part.named_steps["tfidf"] if hasattr(part, "named_steps") else part
        vocab = dict(union.transformer_list)["words"].vocabulary_
        out.append({w for w in vocab if " " not in w})
    return out


def highlight_html(cell: str, effects: list[dict[str, Any]], top: int = 12) -> str:
    """The text with its most telling words marked: red for a push up, green for a push down,
    stronger colour for a stronger push, the push in each mark's tooltip. Everything else is
    escaped, so a cell holding HTML shows as text."""
    from html import escape

    strongest = [e for e in effects if abs(e["effect"]) > 1e-6][:top]
    scale = max((abs(e["effect"]) for e in strongest), default=1.0) or 1.0
    marks = sorted(((s, t, e) for e in strongest for s, t in e["spans"]), key=lambda m: m[0])
    out, at = [], 0
    for start, end, e in marks:
        if start < at:
            continue
        alpha = 0.15 + 0.6 * abs(e["effect"]) / scale
        # The colours of the row's waterfall chart on the same page: red pushes up, green down.
        colour = f"rgba(220,40,40,{alpha:.2f})" if e["effect"] > 0 else f"rgba(0,150,80,{alpha:.2f})"
        out.append(escape(cell[at:start]))
        out.append(f'<mark style="background:{colour};border-radius:3px;padding:0 2px" '
                   f'title="{e["effect"]:+.2f}">{escape(cell[start:end])}</mark>')
        at = end
    out.append(escape(cell[at:]))
    return '<div dir="auto" style="line-height:1.8">' + "".join(out) + "</div>"


# ---- the Data page -----------------------------------------------------------------------
_SCRIPTS = (("Chinese/Japanese", "CJK", "HIRAGANA", "KATAKANA"), ("Korean", "HANGUL"), ("Arabic", "ARABIC"),
            ("Hebrew", "HEBREW"), ("Cyrillic", "CYRILLIC"), ("Greek", "GREEK"), ("Devanagari", "DEVANAGARI"),
            ("Thai", "THAI"), ("Latin", "LATIN"))
PROFILE_ROWS = 5000  # rows a text column's profile reads (a seeded sample beyond)


def script_of(cell: str) -> str | None:
    """The writing system most of a text's letters belong to (None: no letters)."""
    import unicodedata

    counts: dict[str, int] = {}
    for ch in cell[:500]:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "")
        script = next((s[0] for s in _SCRIPTS if any(name.startswith(p) for p in s[1:])), "other")
        counts[script] = counts.get(script, 0) + 1
    return max(counts, key=counts.get) if counts else None


def column_profile(values: pd.Series, target: pd.Series, task: str, top: int = 8, seed: int = 0) -> dict[str, Any]:
    """What the Data page says about one text column: lengths in words, scripts, the most telling
    words per class (or per quarter of the target's range), and notes: empty cells, cells cut
    for the model, cells that are only a number, and a leak when texts hold their own label."""
    keep = values.index
    if len(values) > PROFILE_ROWS:
        keep = values.sample(PROFILE_ROWS, random_state=seed).index
    cells, n_empty, n_long = clean(values.loc[keep])
    target = target.loc[keep]
    lengths = np.array([len(tokens(c)) for c in cells])
    scripts = pd.Series([script_of(c) for c in cells]).dropna().value_counts(normalize=True)
    numbers = pd.to_numeric(pd.Series(cells), errors="coerce").notna() & (pd.Series(cells) != "")
    notes = []
    if n_empty:
        notes.append(f"{n_empty} of {len(cells)} rows have no text here; the models read their other columns.")
    if n_long:
        notes.append(f"{n_long} text(s) are longer than {MAX_CHARS:,} characters; the models read the first {MAX_CHARS:,}.")
    if numbers.any():
        notes.append(f"{int(numbers.sum())} row(s) hold only a number here; it is read as a word.")
    if task == "regression":
        y = pd.to_numeric(target, errors="coerce")
        groups = pd.qcut(y.rank(method="first"), 4, labels=["lowest quarter", "second quarter", "third quarter",
                                                             "highest quarter"]) if y.notna().sum() >= 8 else None
    else:
        groups = target.astype("string").str.strip()
    by_group: dict[str, list[dict[str, Any]]] = {}
    leaked: list[str] = []
    if groups is not None:
        group_values = np.asarray(groups, dtype=object)
        all_counts: dict[str, int] = {}
        per: dict[str, dict[str, int]] = {}
        for cell, g in zip(cells, group_values):
            if g is None or (not isinstance(g, str) and pd.isna(g)):
                continue
            for w in {t[0].lower() for t in tokens(cell)}:
                all_counts[w] = all_counts.get(w, 0) + 1
                per.setdefault(str(g), {}).setdefault(w, 0)
                per[str(g)][w] += 1
        n_rows = max(1, int(pd.Series(group_values).notna().sum()))
        for g, counts in per.items():
            size = int((pd.Series(group_values) == g).sum()) or 1
            # Telling words: common in this group and rarer elsewhere (a smoothed lift).
            scored = [(w, c / size, (c / size) / ((all_counts[w] + 1) / (n_rows + 1))) for w, c in counts.items()]
            scored.sort(key=lambda t: -(t[1] * np.log(t[2])))
            by_group[g] = [{"word": w, "share": float(s), "lift": float(lift)} for w, s, lift in scored[:top]]
            if task != "regression":
                label = g.lower()
                has = sum(1 for cell, gg in zip(cells, group_values) if gg == g and label in cell.lower())
                if size >= 5 and has / size >= 0.5 and len(label) >= 2:
                    leaked.append(g)
    if leaked:
        shown = ", ".join(f"'{g}'" for g in leaked[:5])
        notes.append(f"The text often holds the target's own label ({shown} in most of its rows): it may give the "
                     "answer away. If that text is written after the outcome is known, leave this column out.")
    return {"rows": len(cells), "lengths": lengths.tolist(), "median_words": float(np.median(lengths)) if len(lengths) else 0.0,
            "scripts": {k: float(v) for k, v in scripts.items()}, "words": by_group, "leaked": leaked, "notes": notes}
