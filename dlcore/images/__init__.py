"""Images: a ZIP with one folder per class (or images beside a labels file), any formats and sizes.

- ``zipfiles``: open an uploaded ZIP safely, tell formats by content; ``labels``: where each
  image's class comes from; ``archive``: read the whole ZIP into a manifest and a report;
  ``pixels``: decode images to pixels; ``samples``: scikit-learn's digits as a ZIP.
- ``templates``: the small CNN and the deeper CNN with augmentation; ``run``: how a run of
  images is checked and prepared for the generic run (``dlcore.runner``).
- ``scoring``: pictures scored as in training; ``explain``: where the CNN looked (HiResCAM).
"""

from dlcore import baselines
from dlcore.base import Kind
from dlcore.images import explain, run, scoring, search, templates, upload
from dlcore.images.archive import FORMATS, images_from_upload, read_image_zip
from dlcore.images.labels import MIN_IMAGES_PER_CLASS
from dlcore.images.pixels import (
    baseline_features,
    decode_image,
    load_pixels,
    thumbnail_png,
)
from dlcore.images.report import LAYOUTS, SKIP_REASONS, ImageReport
from dlcore.images.samples import IMAGE_SAMPLES, sample_digits_zip
from dlcore.images.zipfiles import (
    image_format,
    looks_like_zip,
    read_zip_entries,
    read_zip_entry,
)

__all__ = [
    "KIND", "FORMATS", "LAYOUTS", "MIN_IMAGES_PER_CLASS", "SKIP_REASONS", "IMAGE_SAMPLES", "ImageReport",
    "baseline_features", "decode_image", "image_format", "images_from_upload", "load_pixels", "looks_like_zip",
    "read_image_zip", "read_zip_entries", "read_zip_entry", "sample_digits_zip", "thumbnail_png",
]


KIND = Kind(
    name="image",
    title="Images",
    unit="images",
    reads="image",
    templates=templates.TEMPLATES,
    claims=upload.claims,
    ingest=upload.ingest,
    baselines=baselines.baselines_for,
    check=run.check,
    prepare=run.prepare_inputs,
    scorer=scoring.ImageScorer,
    score_upload=scoring.score_upload,
    explain=explain.explain_model,
    searches=True,
    search_run=search.run_searched_images,
)
