"""Score pictures with a finished image run's model: one, several, or a ZIP of them, decoded at
the training size exactly as in training; a file that is not a readable image keeps its row,
with the reason and no prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dlcore import base, baselines
from dlcore.base import Scored, ScoreSummary
from dlcore.errors import DataError, SchemaError
from dlcore.images.archive import images_from_upload
from dlcore.images.pixels import baseline_features, decode_image
from dlcore.store import RunRecord, Store

__all__ = ["ImageScorer", "score_upload"]


class ImageScorer(base.Scorer):
    """One model of one image run, ready to score decoded or raw images."""

    upload_hint = "images (one, several, or a ZIP)."

    def setup(self, meta: dict[str, Any]) -> None:
        self.image: dict[str, int] = meta.get("image", {})

    def image_output(self, pixels: np.ndarray) -> np.ndarray:
        """Class probabilities (n, k) for decoded pixels (n, size, size, channels), as in training."""
        if self.family == "baseline":
            return baselines.predict_output(self.task, self.pipeline, baseline_features(pixels), self.n_outputs)
        return self.target.from_model(self.keras_model.predict(pixels, verbose=0, batch_size=256))

    def score_images(self, items: list[tuple[str, bytes]]) -> tuple[pd.DataFrame, ScoreSummary]:
        """One row per image: its name, the predicted class and each class's probability.

        An image that cannot be read keeps its row, with no prediction and the reason why."""
        if not items:
            raise SchemaError("There are no images to score. Upload one or more images, or a ZIP of them.")
        size, channels = self.image["size"], self.image["channels"]
        decoded, problems = [], {}
        for name, data in items:
            try:
                decoded.append(decode_image(data, size, channels, name=name))
            except DataError as exc:
                problems[name] = str(exc)
        readable = [name for name, _ in items if name not in problems]
        out = self.image_output(np.stack(decoded)) if decoded else np.zeros((0, len(self.classes)))
        rows = {name: i for i, name in enumerate(readable)}
        table = pd.DataFrame({"file": [name for name, _ in items]})
        pick = [rows.get(name) for name, _ in items]
        labels = np.asarray(self.classes, dtype=object)
        table["prediction"] = [labels[out[i].argmax()] if i is not None else None for i in pick]
        table["confidence"] = [float(out[i].max()) if i is not None else None for i in pick]
        for k, label in enumerate(self.classes):
            table[f"probability {label}"] = [float(out[i, k]) if i is not None else None for i in pick]
        if problems:
            table["problem"] = [problems.get(name) for name, _ in items]
        return table, ScoreSummary(len(items), self.model_name, unreadable=problems)


def score_upload(store: Store, run: RunRecord, model: str | None, content: bytes, name: str) -> Scored:
    """Pictures uploaded for scoring: one image, or a ZIP of them."""
    scorer = ImageScorer.for_run(store, run.id, model)
    table, summary = scorer.score_images(images_from_upload(content, name))
    return Scored(table, summary)
