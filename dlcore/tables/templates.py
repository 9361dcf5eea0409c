"""Templates for tables: a plain MLP over numbers and one-hot categories, a wide-and-deep
MLP that learns an embedding for each category, and a text model for tables that are mostly
free text. Every one reads the table's text columns through a text branch
(``dlcore.tables.text``): raw strings in, tokenised and embedded inside the model.

Each is ``build(settings, inputs, task, n_outputs) -> keras.Model``, made a ``Template`` by the
``template`` decorator and listed in ``TEMPLATES``; Keras is imported inside ``build`` only.
"""

from __future__ import annotations

from typing import Any

from dlcore.base import InputInfo, output_layer, template

__all__ = ["TEMPLATES", "mlp", "mlp_embed", "text_rnn", "widths", "embedding_dim"]


def widths(size: str) -> list[int]:
    """Hidden layer widths for the plain-language size setting."""
    return {"small": [32, 16], "medium": [128, 64], "large": [256, 128, 64]}[size]


@template(
    "mlp",
    kind="tabular",
    title="MLP (plain)",
    description="A stack of fully connected layers. A solid first choice for most tables; "
    "categories are turned into on/off columns.",
)
def mlp(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    import keras
    from keras import layers, regularizers

    x_in = keras.Input(shape=(inputs.n_dense,), name="features")
    x = x_in
    model_in: Any = x_in
    if inputs.n_text:  # short texts: pooled word embeddings and character n-grams
        model_in, texts = _text_inputs(settings, inputs, recurrent=False)
        x = layers.Concatenate()([x_in, *texts])
        model_in = {"features": x_in, **model_in}
    for units in widths(settings.size):
        x = layers.Dense(units, activation="relu", kernel_regularizer=regularizers.l2(settings.l2))(x)
        x = layers.Dropout(settings.dropout)(x)
    return keras.Model(model_in, output_layer(task, n_outputs)(x), name="mlp")


def _text_inputs(settings: Any, inputs: InputInfo, recurrent: bool) -> tuple[dict[str, Any], list[Any]]:
    """One string input per text column and its branch's output vector."""
    import keras

    from dlcore.tables.text import text_branch

    named, vectors = {}, []
    for j in range(inputs.n_text):
        raw = keras.Input(shape=(1,), dtype="string", name=f"text_{j}")
        named[f"text_{j}"] = raw
        vectors.append(text_branch(raw, inputs.text_vocab[j], settings.l2, settings.dropout, recurrent, f"text_{j}"))
    return named, vectors


def embedding_dim(cardinality: int, scale: float = 1.0) -> int:
    """A common rule of thumb (fast.ai): grows slowly with the number of categories; ``scale``
    (searched within a budget) makes every embedding larger or smaller."""
    return max(2, min(64, round(scale * min(32, 1.6 * cardinality**0.56))))


@template(
    "mlp_embed",
    kind="tabular",
    title="MLP with embeddings (wide & deep)",
    description="Learns a small vector for each category (an embedding), so similar categories "
    "can share what they learn; a linear 'wide' path keeps simple trends easy to fit. Best when "
    "the table has categorical columns with many values.",
    input_format="split",
)
def mlp_embed(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    import keras
    from keras import layers, regularizers

    reg = regularizers.l2(settings.l2)
    model_inputs: dict[str, Any] = {}
    deep_parts = []
    wide_parts = []
    if inputs.n_numeric:
        numeric = keras.Input(shape=(inputs.n_numeric,), name="numeric")
        model_inputs["numeric"] = numeric
        deep_parts.append(numeric)
        wide_parts.append(numeric)
    for j, cardinality in enumerate(inputs.cardinalities):
        code = keras.Input(shape=(1,), dtype="int32", name=f"cat_{j}")
        model_inputs[f"cat_{j}"] = code
        emb = layers.Embedding(cardinality, embedding_dim(cardinality, getattr(settings, "embed_scale", 1.0)),
                               embeddings_regularizer=reg)(code)
        deep_parts.append(layers.Flatten()(emb))
        # The wide path sees each category through a one-dimensional embedding: a learned offset.
        wide_parts.append(layers.Flatten()(layers.Embedding(cardinality, 1)(code)))
    if inputs.n_text:  # the text columns join the deep path (a bidirectional GRU over the words)
        named, texts = _text_inputs(settings, inputs, recurrent=True)
        model_inputs.update(named)
        deep_parts += texts
    deep = deep_parts[0] if len(deep_parts) == 1 else layers.Concatenate()(deep_parts)
    for units in widths(settings.size):
        deep = layers.Dense(units, activation="relu", kernel_regularizer=reg)(deep)
        deep = layers.Dropout(settings.dropout)(deep)
    units_out = n_outputs if task == "multiclass" else 1
    logits = layers.Dense(units_out)(deep)
    if wide_parts:  # a table of text alone has no wide path
        wide = wide_parts[0] if len(wide_parts) == 1 else layers.Concatenate()(wide_parts)
        logits = layers.Add()([logits, layers.Dense(units_out)(wide)])
    activation = {"binary": "sigmoid", "multiclass": "softmax"}.get(task, "linear")
    out = layers.Activation(activation, name="output")(logits)
    return keras.Model(model_inputs, out, name="mlp_embed")


@template(
    "text_rnn",
    kind="tabular",
    title="Text model (recurrent)",
    description="For tables that are mostly free text (descriptions, tickets, reviews): reads the words "
    "in order with a bidirectional recurrent layer (GRU) over learned word embeddings, plus a bag of "
    "character pieces for misspellings and languages without spaces; other columns join before the "
    "last layers. Learned from your rows only: no pretrained language model is downloaded.",
    input_format="text",
)
def text_rnn(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    import keras
    from keras import layers, regularizers

    named, texts = _text_inputs(settings, inputs, recurrent=True)
    model_in: dict[str, Any] = dict(named)
    parts = list(texts)
    if inputs.n_dense:
        features = keras.Input(shape=(inputs.n_dense,), name="features")
        model_in = {"features": features, **model_in}
        parts.append(features)
    x = parts[0] if len(parts) == 1 else layers.Concatenate()(parts)
    x = layers.Dense(64, activation="relu", kernel_regularizer=regularizers.l2(settings.l2))(x)
    x = layers.Dropout(settings.dropout)(x)
    return keras.Model(model_in, output_layer(task, n_outputs)(x), name="text_rnn")


TEMPLATES = (mlp, mlp_embed, text_rnn)
