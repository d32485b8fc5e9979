"""PNG versions of the evaluation plots, viewable offline (DVC's HTML loads vega from a CDN)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

CLASS_NAMES = ["edible", "poisonous"]
ANSWERS = ["edible", "uncertain", "poisonous"]


def _figure(title: str, size=(5, 4.5)) -> tuple[Figure, plt.Axes]:
    """A figure laid out when drawn, so no tick label or title is cut at its edge."""
    fig, ax = plt.subplots(figsize=size, dpi=100, layout="constrained")
    ax.set_title(title)
    return fig, ax


def confusion(y: np.ndarray, verdict: np.ndarray) -> Figure:
    counts = np.array(
        [[((y == row) & (verdict == answer)).sum() for answer in ANSWERS] for row in (0, 1)]
    )
    fig, ax = _figure("Answers on the test split (uncertain: do not eat)", size=(6, 4.5))
    ax.imshow(counts, cmap="Blues")
    dark = counts > counts.max() / 2
    for (row, col), n in np.ndenumerate(counts):
        note = "\nFALSE EDIBLE" if (row, col) == (1, 0) else ""
        color = "crimson" if note and n else "white" if dark[row, col] else "black"
        ax.text(col, row, f"{n}{note}", ha="center", va="center", color=color)
    ax.set_xticks([0, 1, 2], ANSWERS)
    ax.set_yticks([0, 1], CLASS_NAMES)
    ax.set_xlabel("answer")
    ax.set_ylabel("actual")
    return fig


def roc(y: np.ndarray, p: np.ndarray, auc: float) -> Figure:
    fpr, tpr, _ = roc_curve(y, p)
    fig, ax = _figure(f"ROC (poisonous positive), AUC {auc:.4f}")
    ax.plot(fpr, tpr)
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    return fig


def precision_recall(y: np.ndarray, p: np.ndarray, ap: float) -> Figure:
    precision, recall, _ = precision_recall_curve(y, p)
    fig, ax = _figure(f"Precision-recall (poisonous), AP {ap:.4f}")
    ax.plot(recall, precision)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    return fig


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> Figure:
    prob_true, prob_pred = calibration_curve(y, p, n_bins=bins)
    fig, ax = _figure("Calibration")
    ax.plot(prob_pred, prob_true, marker="o")
    ax.plot([0, 1], [0, 1], ls=":", color="grey")
    ax.set_xlabel("mean predicted P(poisonous)")
    ax.set_ylabel("observed poisonous share")
    return fig


def importance(table: pd.DataFrame) -> Figure:
    ordered = table.sort_values("importance")
    fig, ax = _figure("Permutation importance (Brier increase)", size=(6, 0.3 * len(table) + 1))
    ax.barh(ordered["trait"], ordered["importance"], xerr=ordered["std"])
    ax.set_xlabel("increase in Brier score when the trait is shuffled")
    return fig


def log_evaluation(live, y, p, verdict, table: pd.DataFrame) -> None:
    """Log the evaluation plots to a dvclive ``Live``: vega JSON for DVC, PNG for offline.
    ``p`` is the calibrated P(poisonous), ``verdict`` the answers given."""
    names = np.array(CLASS_NAMES)
    live.log_sklearn_plot("confusion_matrix", names[y], verdict, name="confusion_matrix.json")
    live.log_sklearn_plot("roc", y, p, name="roc.json")
    live.log_sklearn_plot("precision_recall", y, p, name="precision_recall.json")
    live.log_sklearn_plot("calibration", y, p, name="calibration.json")
    live.log_plot(
        "feature_importance",
        table[["trait", "importance"]],
        x="importance",
        y="trait",
        template="bar_horizontal",
        title="Permutation importance",
    )
    auc = roc_auc_score(y, p) if 0 < y.sum() < len(y) else float("nan")
    for name, figure in (
        ("confusion_matrix.png", confusion(y, verdict)),
        ("roc.png", roc(y, p, auc)),
        ("precision_recall.png", precision_recall(y, p, average_precision_score(y, p))),
        ("calibration.png", calibration(y, p)),
        ("feature_importance.png", importance(table)),
    ):
        live.log_image(name, figure)
