"""Every deep-model template, by name and kind of data.

Each kind of data lists its own templates (``dlcore.tables.templates`` and so on); this is the
catalogue of all of them, for the Train page, the CLI and the table-driven template test. It
holds names and plain-language descriptions only, so listing templates never imports Keras.
"""

from __future__ import annotations

from dlcore.base import InputInfo, Template, model_inputs, output_layer
from dlcore.kinds import TEMPLATES as REGISTRY
from dlcore.kinds import template as get
from dlcore.kinds import templates_for as for_kind

__all__ = ["Template", "InputInfo", "get", "for_kind", "REGISTRY", "model_inputs", "output_layer"]
