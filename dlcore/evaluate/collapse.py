"""Does a classifier ever predict anything but one class? A plain warning when it does not.

With a rare class (15% churners), a model can score the same accuracy as the dummy floor by
saying the common class for every row. Its probabilities may still rank rows usefully, so the
fix is a threshold from money (Decide) or more rows of the rare class, not a verdict on accuracy.
A pure function over the run's saved test outputs; pages only place the message.
"""

from __future__ import annotations

import numpy as np

__all__ = ["one_class_warning"]


def one_class_warning(y_true: np.ndarray, proba: np.ndarray, classes: list[str], model: str,
                      dummy: np.ndarray | None = None, where: str = "on the Decide page") -> str | None:
    """A warning when ``proba`` (rows × classes) picks one class for every test row at the usual
    cut-off (the highest probability; 0.5 for yes/no), or its accuracy equals the dummy floor's;
    ``None`` when the model predicts more than one class and beats the floor's accuracy. ``where``
    says where the threshold from money is chosen ("below" on the Decide page itself).

    >>> one_class_warning(np.array([0, 1, 1, 1]), np.array([[.4, .6]] * 4), ["ja", "nein"], "mlp") is not None
    True
    """
    y = np.asarray(y_true).astype(int).reshape(-1)
    p = np.asarray(proba, dtype=np.float64).reshape(len(y), -1)
    if p.shape[1] < 2 or len(y) == 0:
        return None
    predicted = p.argmax(axis=1)
    accuracy = float((predicted == y).mean())
    said = np.unique(predicted)
    floor = float((np.asarray(dummy).reshape(len(y), -1).argmax(axis=1) == y).mean()) if dummy is not None else None
    counts = np.bincount(y, minlength=len(classes))
    rare = str(classes[int(np.argmin(counts))])
    model = model[:1].upper() + model[1:]
    if len(said) == 1:
        what = (f"{model} predicts “{classes[int(said[0])]}” for every one of the {len(y):,} test rows at the usual "
                f"cut-off (the class with the highest probability; 50% for a yes/no target), so it never names "
                f"“{rare}”. Its accuracy ({accuracy:.4f}) is just the share of rows of that one class.")
    elif floor is not None and abs(accuracy - floor) < 1e-12:
        what = (f"{model}'s accuracy on the test rows ({accuracy:.4f}) is the same as the dummy floor's, which always "
                "says the commonest class: at the usual cut-off it has learned nothing that accuracy can see.")
    else:
        return None
    return (what + f" Its probabilities may still rank the rows: to act on “{rare}”, choose a threshold from money "
            f"{where} (it flags rows by their probability, not by the 50% cut-off), and if you can, bring "
            f"more rows of “{rare}” to learn from.")
