"""Convolutional networks for images: the seed's small CNN, and a deeper one that augments.

Both take pixels as they are stored (0..255, height x width x channels) and scale them inside
the model, so a saved ``.keras`` file scores raw pixels with nothing else to remember. The
augmentation layers are part of the deeper model and act only while it trains.

No pretrained weights: this server has no network to download them from. A transfer-learning
template (a pretrained backbone with a new head) fits this same registry when weights can be
shipped inside a package.
"""

from __future__ import annotations

from typing import Any

from dlcore.base import InputInfo, output_layer, template

__all__ = ["TEMPLATES", "cnn_small", "cnn_deep", "augmentation", "filters"]


def filters(size: str) -> list[int]:
    """Convolution filters per block for the plain-language size setting."""
    return {"small": [16, 32, 64], "medium": [32, 64, 128], "large": [48, 96, 192]}[size]


def _image_input(inputs: InputInfo) -> Any:
    import keras

    if inputs.image_shape is None:
        raise ValueError("an image template needs InputInfo.image_shape")
    return keras.Input(shape=inputs.image_shape, name="pixels")


@template(
    "cnn_small",
    kind="image",
    title="Small CNN",
    description="Two layers of filters that find edges and shapes, then a small classifier: the classic first "
    "model for pictures. Quick to train; good on small, clean images such as scanned digits.",
    input_format="image",
)
def cnn_small(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    import keras
    from keras import layers, regularizers

    first, second, _ = filters(settings.size)
    x_in = _image_input(inputs)
    x = layers.Rescaling(1.0 / 255)(x_in)
    for n in (first, second):
        x = layers.Conv2D(n, 3, padding="same", activation="relu", kernel_regularizer=regularizers.l2(settings.l2))(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(max(settings.dropout, 0.25))(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=regularizers.l2(settings.l2))(x)
    return keras.Model(x_in, output_layer(task, n_outputs)(x), name="cnn_small")


def augmentation(settings: Any, seed: int) -> list[Any]:
    """The changes made to each training image, each epoch afresh (none when scoring)."""
    from keras import layers

    # The search scales how far each change goes (1: as below; 0: no changes at all).
    k = float(getattr(settings, "augment_strength", 1.0))
    if not settings.augment or k <= 0:
        return []
    out = [layers.RandomFlip("horizontal", seed=seed)] if settings.flip else []
    return out + [
        layers.RandomRotation(0.05 * k, fill_mode="nearest", seed=seed + 1),  # up to about 18 degrees either way
        layers.RandomZoom(0.1 * k, fill_mode="nearest", seed=seed + 2),
        layers.RandomTranslation(0.08 * k, 0.08 * k, fill_mode="nearest", seed=seed + 3),
        layers.RandomContrast(min(0.2 * k, 0.9), seed=seed + 4),
    ]


@template(
    "cnn_deep",
    kind="image",
    title="Deeper CNN with augmentation",
    description="Three blocks of filters with batch normalisation and dropout, then global average pooling. "
    "While it trains, each picture is shown slightly turned, zoomed, shifted and with other contrast (and mirrored "
    "if you allow it), so the model learns what matters rather than memorising the exact pictures.",
    input_format="image",
)
def cnn_deep(settings: Any, inputs: InputInfo, task: str, n_outputs: int) -> Any:
    import keras
    from keras import layers, regularizers

    x_in = _image_input(inputs)
    x = x_in
    for layer in augmentation(settings, settings.seed):
        x = layer(x)
    x = layers.Rescaling(1.0 / 255)(x)
    reg = regularizers.l2(settings.l2)
    for i, n in enumerate(filters(settings.size)):
        for _ in range(2):
            x = layers.Conv2D(n, 3, padding="same", use_bias=False, kernel_regularizer=reg)(x)
            # Momentum 0.9, not Keras' 0.99: the statistics used when scoring must settle within the few
            # hundred steps a small image set gives, or the model scores at chance while it trains well.
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.Activation("relu")(x)
        # Small pictures (8 to 16 pixels) cannot halve three times; stop pooling at 4 pixels.
        if min(x.shape[1], x.shape[2]) >= 8:
            x = layers.MaxPooling2D()(x)
        x = layers.Dropout(min(0.1 * (i + 1), 0.5))(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(max(settings.dropout, 0.2))(x)
    x = layers.Dense(128, activation="relu", kernel_regularizer=reg)(x)
    return keras.Model(x_in, output_layer(task, n_outputs)(x), name="cnn_deep")


TEMPLATES = (cnn_small, cnn_deep)
