"""Sequence models for forecasting: LSTM, GRU and a 1-D convolutional network.

Each reads a look-back window of scaled values (steps x series columns: the target first, then
any covariates) and predicts the whole horizon at once (one output per future step), so a
forecast never feeds on its own guesses. Scaling is fitted on the training part only, by the
runner; the model sees and returns scaled values.
"""

from __future__ import annotations

from typing import Any

from dlcore.base import InputInfo, template

__all__ = ["TEMPLATES", "lstm", "gru", "cnn1d", "UNITS"]

UNITS = {"small": 32, "medium": 64, "large": 128}


def _window_input(inputs: InputInfo) -> Any:
    import keras

    if inputs.window_shape is None:
        raise ValueError("a sequence template needs InputInfo.window_shape")
    return keras.Input(shape=inputs.window_shape, name="window")


def _head(x: Any, settings: Any, horizon: int) -> Any:
    from keras import layers, regularizers

    x = layers.Dropout(settings.dropout)(x)
    x = layers.Dense(UNITS[settings.size], activation="relu", kernel_regularizer=regularizers.l2(settings.l2))(x)
    return layers.Dense(horizon, name="forecast")(x)


def _recurrent(kind: str, settings: Any, inputs: InputInfo, horizon: int) -> Any:
    import keras
    from keras import layers

    x_in = _window_input(inputs)
    cell = {"lstm": layers.LSTM, "gru": layers.GRU}[kind]
    x = cell(UNITS[settings.size], return_sequences=True)(x_in)
    x = cell(UNITS[settings.size] // 2)(x)
    return keras.Model(x_in, _head(x, settings, horizon), name=kind)


@template(
    "lstm",
    kind="series",
    title="LSTM",
    description="A recurrent network that reads the recent past step by step and keeps a memory of what "
    "mattered (long short-term memory); the classic deep model for forecasting.",
    input_format="window",
)
def lstm(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    return _recurrent("lstm", settings, inputs, n_outputs)


@template(
    "gru",
    kind="series",
    title="GRU",
    description="A lighter recurrent network (gated recurrent unit): close to the LSTM in accuracy, "
    "usually a little faster to train.",
    input_format="window",
)
def gru(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    return _recurrent("gru", settings, inputs, n_outputs)


@template(
    "cnn1d",
    kind="series",
    title="1-D CNN",
    description="Filters that slide along time and pick out short patterns (a weekly rhythm, a sudden "
    "rise); fast to train, often as good as the recurrent networks.",
    input_format="window",
)
def cnn1d(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    import keras
    from keras import layers, regularizers

    x_in = _window_input(inputs)
    x = x_in
    units = UNITS[settings.size]
    for rate in (1, 2, 4):  # dilations widen what each filter sees: 3, then 7, then 15 steps
        x = layers.Conv1D(units, 3, padding="causal", dilation_rate=rate, activation="relu",
                          kernel_regularizer=regularizers.l2(settings.l2))(x)
    steps = inputs.window_shape[0]
    # What the whole window looked like on average, and what the filters see at its very end.
    overall = layers.GlobalAveragePooling1D()(x)
    latest = layers.Flatten()(layers.Cropping1D((steps - 1, 0))(x))
    x = layers.Concatenate()([overall, latest])
    return keras.Model(x_in, _head(x, settings, n_outputs), name="cnn1d")


TEMPLATES = (lstm, gru, cnn1d)
