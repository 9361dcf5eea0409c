"""Plain MLP: a stack of dense layers over numbers and one-hot categories."""

from __future__ import annotations

from typing import Any

from dlcore.templates import InputInfo, output_layer, register, widths


@register(
    "mlp",
    kind="tabular",
    title="MLP (plain)",
    description="A stack of fully connected layers. A solid first choice for most tables; "
    "categories are turned into on/off columns.",
)
def build(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    import keras
    from keras import layers, regularizers

    x_in = keras.Input(shape=(inputs.n_dense,), name="features")
    x = x_in
    for units in widths(settings.size):
        x = layers.Dense(units, activation="relu", kernel_regularizer=regularizers.l2(settings.l2))(x)
        x = layers.Dropout(settings.dropout)(x)
    return keras.Model(x_in, output_layer(task, n_outputs)(x), name="mlp")
