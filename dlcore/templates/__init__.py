"""Deep model templates, registered by name and kind of data.

A template is one short module with ``build(settings, inputs, task, n_outputs) -> keras.Model``.
The registry holds only names and plain-language descriptions, so the UI can list templates
without importing TensorFlow; Keras is imported inside ``build``, in a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dlcore.errors import SpecError

__all__ = ["Template", "InputInfo", "register", "get", "for_kind", "REGISTRY", "model_inputs", "output_layer"]


@dataclass(frozen=True)
class InputInfo:
    """The shape of what a template receives, from the fitted preprocessing."""

    n_dense: int = 0  # numbers plus one-hot categories: the "dense" input
    n_numeric: int = 0  # standardised numbers (and missing flags): part of the "split" input
    cardinalities: tuple[int, ...] = ()  # codes per categorical column: the rest of the "split" input
    image_shape: tuple[int, int, int] | None = None  # images: (height, width, channels), pixels 0..255
    window_shape: tuple[int, int] | None = None  # series: (look-back steps, columns), scaled values


@dataclass(frozen=True)
class Template:
    name: str
    kind: str
    title: str
    description: str
    input_format: str  # "dense": one float matrix; "split": numbers plus one code input per category;
    # "image": pixels; "window": a look-back window of a series
    build: Callable[..., Any]


REGISTRY: dict[str, Template] = {}


def register(name: str, *, kind: str, title: str, description: str, input_format: str = "dense") -> Callable:
    """Decorator that registers a ``build`` function as a template."""

    def wrap(build: Callable[..., Any]) -> Callable[..., Any]:
        REGISTRY[name] = Template(name, kind, title, description, input_format, build)
        return build

    return wrap


def get(name: str) -> Template:
    try:
        return REGISTRY[name]
    except KeyError:
        raise SpecError(f"Unknown template {name!r}; available: {', '.join(sorted(REGISTRY))}.") from None


def for_kind(kind: str) -> list[Template]:
    return [t for t in REGISTRY.values() if t.kind == kind]


def model_inputs(template: Template, inputs: InputInfo, dense: Callable[[], Any], numeric: Any, codes: Any) -> Any:
    """What to feed a template's model: the dense matrix, or a dict of named split inputs."""
    if template.input_format in ("dense", "image", "window"):
        return dense()
    feed: dict[str, Any] = {}
    if inputs.n_numeric:
        feed["numeric"] = numeric
    for j in range(len(inputs.cardinalities)):
        feed[f"cat_{j}"] = codes[:, j : j + 1]
    return feed


def output_layer(task: str, n_outputs: int, name: str = "output") -> Any:
    """The final layer every tabular template ends with: sigmoid, softmax or linear."""
    from keras import layers

    if task == "binary":
        return layers.Dense(1, activation="sigmoid", name=name)
    if task == "multiclass":
        return layers.Dense(n_outputs, activation="softmax", name=name)
    return layers.Dense(1, name=name)


def filters(size: str) -> list[int]:
    """Convolution filters per block for the plain-language size setting."""
    return {"small": [16, 32, 64], "medium": [32, 64, 128], "large": [48, 96, 192]}[size]


def widths(size: str) -> list[int]:
    """Hidden layer widths for the plain-language size setting."""
    return {"small": [32, 16], "medium": [128, 64], "large": [256, 128, 64]}[size]


# Register the built-in templates (their modules import Keras only inside build()).
from dlcore.templates import cnn, mlp, sequence, wide_deep  # noqa: E402,F401
