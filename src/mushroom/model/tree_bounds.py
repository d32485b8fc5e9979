"""Tree ensembles (random forest, histogram gradient boosting) as leaves with the trait
values that reach them: sound worst cases over unknown traits, and per-trait attributions.

Every encoder we use turns each trait into columns of its own, so a split on a column
splits one trait's values. Walking each tree once, a leaf keeps, for every categorical
trait, the set of its values that can reach it, and for every measurement, the interval.
A leaf is reachable by a description when each known trait's value is in its set or
interval and each unknown trait's set is not empty (measurements: meets their domain).
The highest reachable leaf of every tree bounds the ensemble from above; per tree the
bound is exact, across trees it may be loose, never low. Attributions follow the path
of each leaf (Saabas): a split moves the expected output from a node to its child, and
that move is credited to the split's trait.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from mushroom.model.sklearn_compat import boosted_trees


def _sklearn_trees(model) -> tuple[list[dict], float, bool]:
    """Nodes of each tree (column, threshold, children, leaf output, sample weight), the
    ensemble's constant, and whether it averages probabilities (else sums log-odds)."""
    trees = []
    if isinstance(model, RandomForestClassifier):
        for estimator in model.estimators_:
            tree = estimator.tree_
            counts = tree.value[:, 0, :]
            trees.append(
                {
                    "feature": tree.feature.astype(np.intp),
                    "threshold": tree.threshold,
                    "left": tree.children_left.astype(np.intp),
                    "right": tree.children_right.astype(np.intp),
                    "value": counts[:, 1] / counts.sum(axis=1),
                    "weight": tree.weighted_n_node_samples,
                }
            )
        return trees, 0.0, True
    if isinstance(model, HistGradientBoostingClassifier):
        boosted, baseline = boosted_trees(model)
        for nodes in boosted:
            leaf = nodes["is_leaf"].astype(bool)
            trees.append(
                {
                    "feature": np.where(leaf, -1, nodes["feature_idx"]).astype(np.intp),
                    "threshold": nodes["num_threshold"],
                    "left": nodes["left"].astype(np.intp),
                    "right": nodes["right"].astype(np.intp),
                    "value": nodes["value"].astype(float),
                    "weight": nodes["count"].astype(float),
                }
            )
        return trees, baseline, False
    raise TypeError(f"not a supported tree ensemble: {type(model).__name__}")


class TreeBound:
    """``scaled_values[t]``: the scaled encoded row of each value of categorical trait t
    (values × columns); ``base_scaled``: the scaled row every value starts from;
    ``owner[c]``: the trait of column c (categorical traits first, then measurements; -1:
    a constant column); ``numeric_domain``: (low, high) of each measurement, scaled."""

    def __init__(self, model, scaled_values, base_scaled, owner, numeric_domain):
        trees, self.constant, self.averaged = _sklearn_trees(model)
        # sklearn's forests compare float32 inputs; gradient boosting compares float64.
        self.dtype = np.float32 if self.averaged else np.float64
        self.n_trees = len(trees)
        sizes = [len(v) for v in scaled_values]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        n_categorical, n_numeric = len(sizes), len(numeric_domain)
        # column c's scaled value for every categorical value, in one row per column
        by_value = np.vstack([np.asarray(v, dtype=self.dtype) for v in scaled_values]).T
        base = np.asarray(base_scaled, dtype=self.dtype)
        masks, lows, highs, outputs, paths, starts = [], [], [], [], [], []
        self.bias = 0.0
        self.leaf_of_node = []  # per tree: node id -> position among all leaves
        for tree in trees:
            starts.append(len(outputs))
            leaf_of_node = np.full(len(tree["feature"]), -1)
            self.leaf_of_node.append(leaf_of_node)
            expected = _expected_outputs(tree)
            self.bias += expected[0]
            stack = [
                (
                    0,
                    np.ones(offsets[-1], bool),
                    np.full(n_numeric, -np.inf),
                    np.full(n_numeric, np.inf),
                    np.zeros(n_categorical + n_numeric),
                )
            ]
            while stack:
                node, mask, low, high, path = stack.pop()
                column = tree["feature"][node]
                if column < 0:
                    leaf_of_node[node] = len(outputs)
                    masks.append(mask)
                    lows.append(low)
                    highs.append(high)
                    outputs.append(tree["value"][node])
                    paths.append(path)
                    continue
                threshold, trait = tree["threshold"][node], owner[column]
                for child, goes_left in ((tree["left"][node], True), (tree["right"][node], False)):
                    step = path.copy()
                    if trait < 0:  # a constant column: every row takes the same side
                        if (base[column] <= threshold) == goes_left:
                            stack.append((child, mask, low, high, step))
                        continue
                    step[trait] += expected[child] - expected[node]
                    if trait < n_categorical:
                        span = slice(offsets[trait], offsets[trait + 1])
                        left = by_value[column, span] <= threshold
                        keep = mask[span] & (left if goes_left else ~left)
                        if keep.any():
                            split = mask.copy()
                            split[span] = keep
                            stack.append((child, split, low, high, step))
                        continue
                    k = trait - n_categorical
                    new_low, new_high = low.copy(), high.copy()
                    if goes_left:
                        new_high[k] = min(high[k], threshold)
                    else:
                        new_low[k] = max(low[k], threshold)
                    if new_low[k] < new_high[k]:
                        stack.append((child, mask, new_low, new_high, step))
        self.outputs = np.array(outputs)
        self.starts = np.array(starts)
        self.contributions = np.array(paths)  # leaves × traits
        if self.averaged:
            self.contributions /= self.n_trees
            self.bias /= self.n_trees
        # sklearn's forests find each row's leaf in C (``apply``); node ids map to leaves
        self.apply = getattr(model, "apply", None) if self.averaged else None
        self.leaf_of_node = [np.where(m < 0, len(outputs), m) for m in self.leaf_of_node]
        self.contributions = np.vstack(
            [self.contributions, np.zeros(len(paths[0]) if paths else 0)]
        )
        self.low = np.array(lows).reshape(len(outputs), n_numeric)  # leaf interval: (low, high]
        self.high = np.array(highs).reshape(len(outputs), n_numeric)
        masks = np.array(masks)  # leaves × all categorical values
        # per categorical trait: which leaves each value (last row: unknown, any) reaches
        self.reach = []
        for t in range(n_categorical):
            table = masks[:, offsets[t] : offsets[t + 1]].T
            self.reach.append(np.packbits(np.vstack([table, table.any(axis=0)]), axis=1))
        domain = np.asarray(numeric_domain, dtype=self.dtype).reshape(n_numeric, 2)
        self.unknown_measure_ok = (domain[:, 0] <= self.high) & (domain[:, 1] > self.low)

    def _combine(self, per_tree: np.ndarray) -> np.ndarray:
        """Log-odds from each tree's output (rows × trees)."""
        if self.averaged:
            p = np.clip(per_tree.mean(axis=1), 1e-12, 1 - 1e-12)
            return np.log(p) - np.log1p(-p)
        return self.constant + per_tree.sum(axis=1)

    def reachable(self, value_index: np.ndarray, scaled_numbers: np.ndarray) -> np.ndarray:
        """Rows × leaves: may the row end in the leaf? Value index ``len(values)`` and a
        NaN measurement are unknown: any value (measurements: within their domain)."""
        n, n_leaves = len(value_index), len(self.outputs)
        bits = np.full((n, (n_leaves + 7) // 8), 0xFF, np.uint8)
        for t, table in enumerate(self.reach):
            bits &= table[value_index[:, t]]
        reach = np.unpackbits(bits, axis=1, count=n_leaves).astype(bool)
        if self.low.shape[1]:
            x = scaled_numbers.astype(self.dtype)
            for k in range(x.shape[1]):
                known = (self.low[:, k] < x[:, k, None]) & (x[:, k, None] <= self.high[:, k])
                reach &= np.where(np.isnan(x[:, k, None]), self.unknown_measure_ok[:, k], known)
        return reach

    def _in_chunks(self, compute, value_index, scaled_numbers) -> np.ndarray:
        """``compute`` over slices of rows: a row's leaf mask is one byte per leaf, ~90,000
        for a secondary forest."""
        step = max(1, 2**25 // max(len(self.outputs), 1))
        parts = [
            compute(value_index[i : i + step], scaled_numbers[i : i + step])
            for i in range(0, len(value_index), step)
        ]
        return np.concatenate(parts) if parts else np.zeros(0)

    def worst_logit(self, value_index: np.ndarray, scaled_numbers: np.ndarray) -> np.ndarray:
        """Upper bound of the log-odds over every value the unknown traits may take."""

        def worst(index, numbers):
            reach = self.reachable(index, numbers)
            outputs = np.where(reach, self.outputs, -np.inf)
            return self._combine(np.maximum.reduceat(outputs, self.starts, axis=1))

        return self._in_chunks(worst, value_index, scaled_numbers)

    def lowest_logit(self, mask: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Lower bound of the log-odds over the values ``mask`` allows each categorical trait
        (rows × every trait's values end to end) and each measurement's scaled interval
        ``low``..``high``: the lowest leaf each tree can reach."""
        n_leaves = len(self.outputs)
        offsets = np.cumsum([0] + [len(table) - 1 for table in self.reach])
        step = max(1, 2**25 // max(n_leaves, 1))
        parts = []
        for start in range(0, len(mask), step):
            rows = slice(start, start + step)
            allowed = mask[rows]
            bits = np.full(
                (len(allowed), self.reach[0].shape[1] if self.reach else 0), 0xFF, np.uint8
            )
            for t, table in enumerate(self.reach):
                either = np.zeros_like(bits)
                for v in range(len(table) - 1):
                    chosen = allowed[:, offsets[t] + v]
                    either[chosen] |= table[v]
                bits &= either
            reach = np.unpackbits(bits, axis=1, count=n_leaves).astype(bool)
            if not self.reach:
                reach = np.ones((len(allowed), n_leaves), bool)
            for k in range(self.low.shape[1]):
                lo, hi = (
                    low[rows, k, None].astype(self.dtype),
                    high[rows, k, None].astype(self.dtype),
                )
                reach &= (hi > self.low[:, k]) & (lo <= self.high[:, k])
            outputs = np.where(reach, self.outputs, np.inf)
            parts.append(self._combine(np.minimum.reduceat(outputs, self.starts, axis=1)))
        return np.concatenate(parts) if parts else np.zeros(0)

    def attributions(self, value_index, scaled_numbers, scaled_rows=None) -> np.ndarray:
        """Per-trait push of each fully known row (rows × traits), relative to ``bias``:
        the moves along its path to its leaf in every tree, summed. ``scaled_rows``: the
        rows as the model sees them, for ensembles that find leaves themselves."""
        if scaled_rows is not None:
            nodes = self.apply(scaled_rows)
            leaves = np.column_stack([m[nodes[:, k]] for k, m in enumerate(self.leaf_of_node)])
            return self.contributions[leaves].sum(axis=1)
        return self._in_chunks(
            lambda index, numbers: self.reachable(index, numbers) @ self.contributions[:-1],
            value_index,
            scaled_numbers,
        ).reshape(len(value_index), -1)


def _expected_outputs(tree: dict) -> np.ndarray:
    """Each node's training-weighted mean output of the leaves below it."""
    expected = tree["value"].astype(float).copy()
    weight = tree["weight"]
    order = np.argsort(-_depths(tree))  # children before parents
    for node in order:
        left, right = tree["left"][node], tree["right"][node]
        if tree["feature"][node] >= 0:
            total = weight[left] + weight[right]
            expected[node] = (
                weight[left] * expected[left] + weight[right] * expected[right]
            ) / total
    return expected


def _depths(tree: dict) -> np.ndarray:
    depth = np.zeros(len(tree["feature"]), int)
    for node in range(len(depth)):
        if tree["feature"][node] >= 0:
            depth[tree["left"][node]] = depth[tree["right"][node]] = depth[node] + 1
    return depth
