"""dlcore: the model core. Pure Python over TensorFlow/Keras, scikit-learn, pandas and Plotly.

It never imports Streamlit, and importing it does not import TensorFlow: Keras loads only
where a model is built, trained or scored (workers and the CLI).
"""

__version__ = "0.1.0"

from dlcore.errors import DlcoreError  # noqa: E402
from dlcore.spec import DataSpec, RunSpec, TrainSpec  # noqa: E402

__all__ = ["DlcoreError", "DataSpec", "RunSpec", "TrainSpec", "__version__"]
