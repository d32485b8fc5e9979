"""Every use the project makes of scikit-learn's internals, behind one guarded door.

The worst and best cases of a histogram gradient boosting model over unknown traits
(mushroom.model.tree_bounds) need its trees: each node's feature, threshold, children and
value, and the score every tree adds to. scikit-learn 1.9.1 keeps them in private
attributes (``_predictors``, ``_baseline_prediction``); a random forest's trees are public
(``estimators_[i].tree_``). No supported route gives them: ``predict`` and
``staged_predict`` score rows, not the value ranges a trait's unknown values can reach.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from mushroom.core.versions import require as guard

WRITTEN_FOR = {"scikit-learn": "1.9.1"}
"""The distribution whose private attributes are read here, at the version read from."""


def boosted_trees(model: HistGradientBoostingClassifier) -> tuple[list, float]:
    """Each tree's node array (fields ``feature_idx``, ``num_threshold``, ``left``,
    ``right``, ``value``, ``count``, ``is_leaf``) and the baseline log-odds they add to."""
    guard("boosted_trees", __name__, WRITTEN_FOR)
    nodes = [predictor.nodes for (predictor,) in model._predictors]
    return nodes, float(np.ravel(model._baseline_prediction)[0])
