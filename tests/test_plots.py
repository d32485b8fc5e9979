"""The PNG plots, viewed offline, show every label whole: nothing is cut at the edge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mushroom.model import plots

RNG = np.random.default_rng(0)
Y = RNG.integers(0, 2, 300)
P = np.clip(Y * 0.7 + RNG.random(300) * 0.3, 0, 1)
VERDICT = np.where(P < 0.2, "edible", np.where(P > 0.6, "poisonous", "uncertain"))
TABLE = pd.DataFrame(
    {
        "trait": ["spore_print_color", "odor", "stalk_surface_below_ring"],
        "importance": [0.1, 0.3, 0.02],
        "std": [0.01, 0.02, 0.0],
    }
)
FIGURES = {
    "confusion": lambda: plots.confusion(Y, VERDICT),
    "roc": lambda: plots.roc(Y, P, 0.9),
    "precision_recall": lambda: plots.precision_recall(Y, P, 0.9),
    "calibration": lambda: plots.calibration(Y, P),
    "importance": lambda: plots.importance(TABLE),
}


def overflow(figure) -> list[str]:
    """The edges past which something drawn (a tick label, a title, a count) is cut: the
    figure's tight box, of what is actually drawn, must lie within the figure."""
    figure.canvas.draw()
    drawn = figure.get_tightbbox(figure.canvas.get_renderer())  # inches
    width, height = figure.get_size_inches()
    edges = {
        "left": drawn.x0 < 0,
        "bottom": drawn.y0 < 0,
        "right": drawn.x1 > width,
        "top": drawn.y1 > height,
    }
    return [edge for edge, cut in edges.items() if cut]


@pytest.mark.parametrize("name", FIGURES)
def test_every_label_is_whole(name):
    assert overflow(FIGURES[name]()) == []


def test_the_check_sees_a_cut_label():
    figure = plots.confusion(Y, VERDICT)
    figure.set_layout_engine("none")
    figure.axes[0].set_ylabel("a label pushed out of the figure", labelpad=400)
    assert overflow(figure) == ["left"]
