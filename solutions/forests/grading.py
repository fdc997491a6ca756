"""Instructor-only half of the `forests` checks: reference implementations and the hidden cases.

Never released (nbgrader's release ignores it); the student side (``exercises/`` and ``autograder/forests.py``)
carries no reference implementation.  The references are written independently of the solution notebook, by
other algorithms:

* ``best_split``: exact rational arithmetic (``fractions.Fraction``; every float32/float64/int input converts
  exactly): for every candidate threshold the exact SSE(left) + SSE(right) from exact running sums
  (SSE = sum y^2 - (sum y)^2 / k), exact ties resolved to the smallest threshold (the notebook sorts and uses
  float64 cumulative sums with a relative tie tolerance);
* ``forest_weights``: each tree's ``tree_`` arrays are walked by hand from the root (no ``forest.apply``), with the
  inputs rounded to float32 exactly as scikit-learn does before comparing them with the float64 thresholds, and
  the weights accumulated with ``np.add.at`` (the notebook uses ``forest.apply`` and leaf counts);
* ``smoothing_experiment``: the statement's experiment, with the weights from the reference above.

``tests/test_forests.py`` checks each against independent computations (brute force, ``forest.predict``).
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


# --------------------------------------------------------------------------------------------------------------
# best_split
# --------------------------------------------------------------------------------------------------------------
def _exact(values) -> list[Fraction]:
    arr = np.asarray(values)
    if arr.dtype.kind in "iub":
        return [Fraction(int(v)) for v in arr.ravel()]
    return [Fraction(float(v)) for v in arr.astype(np.float64).ravel()]


def split_losses_exact(x, y) -> list[tuple[Fraction, Fraction]]:
    """All candidate splits ``(threshold, loss)`` in increasing threshold order, exactly."""
    xs, ys = _exact(x), _exact(y)
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    xs = [xs[i] for i in order]
    ys = [ys[i] for i in order]
    n = len(xs)
    total, total2 = sum(ys, Fraction(0)), sum((v * v for v in ys), Fraction(0))
    out, s, s2 = [], Fraction(0), Fraction(0)
    for k in range(1, n):
        s += ys[k - 1]
        s2 += ys[k - 1] ** 2
        if xs[k] == xs[k - 1]:
            continue  # no split between equal values
        r, r2 = total - s, total2 - s2
        loss = (s2 - s * s / k) + (r2 - r * r / (n - k))
        out.append(((xs[k - 1] + xs[k]) / 2, loss))
    return out


def sse_exact(y) -> Fraction:
    ys = _exact(y)
    if not ys:
        return Fraction(0)
    mean = sum(ys, Fraction(0)) / len(ys)
    return sum(((v - mean) ** 2 for v in ys), Fraction(0))


def best_split(x, y) -> tuple[float, float]:
    """Reference: (threshold, loss) as floats; (nan, SSE(all)) for one distinct value of x."""
    cands = split_losses_exact(x, y)
    if not cands:
        return math.nan, float(sse_exact(y))
    best = min(loss for _, loss in cands)
    t = min(t for t, loss in cands if loss - best <= Fraction(1, 10 ** 12) * best)
    return float(t), float(best)


def relative_gap(x, y) -> float:
    """How far the second-best *different* loss is above the best, relative to SSE(all) (inf if none): the hidden
    cases keep it well above every tolerance, so that the answer never hinges on rounding."""
    losses = sorted({loss for _, loss in split_losses_exact(x, y)})
    if len(losses) < 2:
        return math.inf
    scale = sse_exact(y) or Fraction(1)
    return float((losses[1] - losses[0]) / scale)


def best_split_cases() -> list[dict]:
    rng = np.random.default_rng(1818)
    cases = []
    x = rng.uniform(-3, 3, 200).round(3)
    y = np.where(x > 0.7, 2.0, -1.0) + rng.normal(0, 1.0, 200)
    cases.append(dict(name="n = 200, a step at x = 0.7 plus noise (float64)", x=x, y=y))
    x = rng.normal(0, 1, 150).round(3)
    y = np.sin(3 * x) + 0.3 * rng.normal(size=150)
    cases.append(dict(name="n = 150, y = sin(3x) + noise (float64)", x=x, y=y))
    xi = rng.integers(0, 12, 120)
    yi = (xi >= 7).astype(np.int64) * 5 + rng.integers(-3, 4, 120)
    cases.append(dict(name="n = 120 integer x in 0..11 (many duplicates) and integer y: float threshold",
                      x=xi, y=yi))
    x = np.round(rng.uniform(0, 1, 90), 1)
    y = x ** 2 + rng.normal(0, 0.05, 90)
    cases.append(dict(name="n = 90, x rounded to one decimal (duplicated values, never split between equal x)",
                      x=x, y=y))
    x32 = rng.uniform(0, 10, 100).round(2).astype(np.float32)
    y32 = (np.where(x32 > 6.2, 3.0, 0.0) + rng.normal(0, 1.0, 100)).astype(np.float32)
    cases.append(dict(name="n = 100, float32 x and y", x=x32, y=y32))
    x = (rng.uniform(0, 1, 60) * 1e6).round(-2) + 5e6
    y = 100.0 + (x > 5.4e6) + 0.2 * rng.normal(size=60)
    cases.append(dict(name="n = 60, x around 5e6, y around 100 (scale and offset)", x=x, y=y))
    cases.append(dict(name="n = 8, y = [0, 2, 1, 4, 4, 1, 2, 0] on x = 0..7: an exact tie, smallest t",
                      x=np.arange(8.0), y=np.array([0.0, 2, 1, 4, 4, 1, 2, 0])))
    xs = np.array([5.0, 1.0, 3.0, 3.0, 1.0, 5.0])
    cases.append(dict(name="y constant (= 2): every split has loss 0, the smallest t", x=xs, y=np.full(6, 2.0)))
    cases.append(dict(name="one distinct value of x (n = 5): (nan, SSE(all))", x=np.full(5, 1.5),
                      y=np.array([1.0, 2.0, 4.0, 0.0, -1.0])))
    cases.append(dict(name="n = 1: (nan, 0)", x=np.array([0.3]), y=np.array([7.0])))
    cases.append(dict(name="n = 2: the only split", x=np.array([2.0, -1.0]), y=np.array([1.0, 3.0])))
    x = -np.abs(rng.normal(0, 1, 70)).round(3)
    y = np.where(x < -1.1, -4.0, 1.0) + rng.normal(0, 0.5, 70)
    cases.append(dict(name="n = 70, negative x, unsorted", x=x, y=y))
    return cases


# --------------------------------------------------------------------------------------------------------------
# forest_weights
# --------------------------------------------------------------------------------------------------------------
def _leaves_by_hand(tree, X) -> np.ndarray:
    """The leaf of each row of X in a fitted sklearn tree, by walking its arrays from the root (scikit-learn rounds
    the inputs to float32 and goes left when x[feature] <= threshold)."""
    t = tree.tree_
    X = np.asarray(X).astype(np.float32).astype(np.float64)
    node = np.zeros(len(X), dtype=np.int64)
    while True:
        inner = t.children_left[node] != -1
        if not inner.any():
            return node
        idx = np.flatnonzero(inner)
        nd = node[idx]
        go_left = X[idx, t.feature[nd]] <= t.threshold[nd]
        node[idx] = np.where(go_left, t.children_left[nd], t.children_right[nd])


def forest_weights(forest, X_train, X) -> np.ndarray:
    """Reference: w_i(x) = (1/B) sum_b 1[x_i in leaf_b(x)] / |leaf_b(x)|, shape (len(X), len(X_train))."""
    X_train, X = np.asarray(X_train), np.asarray(X)
    n, m = len(X_train), len(X)
    W = np.zeros((m, n))
    trees = forest.estimators_
    for tree in trees:
        lt, lx = _leaves_by_hand(tree, X_train), _leaves_by_hand(tree, X)
        size = np.zeros(tree.tree_.node_count)
        np.add.at(size, lt, 1.0)
        same = lx[:, None] == lt[None, :]
        W += same / size[lx][:, None]
    return W / len(trees)


def _forest(X, y, **params):
    from sklearn.ensemble import RandomForestRegressor
    params.setdefault("bootstrap", False)
    return RandomForestRegressor(**params).fit(X, y)


def forest_cases() -> list[dict]:
    """Hidden cases: the forest (fitted here), X_train, X."""
    rng = np.random.default_rng(2001)
    cases = []
    X = rng.uniform(0, 1, (120, 5))
    y = 10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 5 * X[:, 2] + rng.normal(size=120)
    Xt = rng.uniform(0, 1, (37, 5))
    cases.append(dict(name="fully grown, 30 trees, max_features = 0.4, n = 120, d = 5, 37 test points",
                      forest=_forest(X, y, n_estimators=30, max_features=0.4, random_state=3), X_train=X, X=Xt))
    cases.append(dict(name="depth-limited (max_depth = 3), 20 trees, max_features = 'sqrt'",
                      forest=_forest(X, y, n_estimators=20, max_depth=3, max_features="sqrt", random_state=4),
                      X_train=X, X=Xt))
    cases.append(dict(name="min_samples_leaf = 7, 15 trees, max_features = 0.6, evaluated at the training points",
                      forest=_forest(X, y, n_estimators=15, min_samples_leaf=7, max_features=0.6, random_state=5),
                      X_train=X, X=X))
    X32, Xt32 = X.astype(np.float32), Xt.astype(np.float32)
    cases.append(dict(name="float32 X_train and X, max_leaf_nodes = 12, 25 trees",
                      forest=_forest(X32, y.astype(np.float32), n_estimators=25, max_leaf_nodes=12, max_features=0.5,
                                     random_state=6), X_train=X32, X=Xt32))
    G = rng.integers(0, 4, (60, 3)).astype(float)      # a 4 x 4 x 4 grid: duplicated rows with different y
    yg = G.sum(axis=1) + rng.normal(0, 1, 60)
    cases.append(dict(name="duplicated training rows (integer grid, n = 60): leaves of fully grown trees hold "
                           "several points", forest=_forest(G, yg, n_estimators=12, max_features=2, random_state=7),
                      X_train=G, X=rng.integers(0, 4, (9, 3)).astype(float)))
    cases.append(dict(name="one tree (n_estimators = 1), max_depth = 4, one test point",
                      forest=_forest(X, y, n_estimators=1, max_depth=4, random_state=8), X_train=X, X=Xt[:1]))
    return cases


# --------------------------------------------------------------------------------------------------------------
# smoothing_experiment
# --------------------------------------------------------------------------------------------------------------
N_TRAIN, N_TEST, N_TREES = 200, 400, 50


def smoothing_experiment(max_features, seed, weights=forest_weights):
    """The statement's experiment: Friedman #1 data (d = 5, noise 1), fully grown forest of 50 trees without
    bootstrap; (p_train, p_test) = (sum_i |w(x_i)|^2, (n / m) sum_j |w(x'_j)|^2)."""
    from sklearn.datasets import make_friedman1
    X, y = make_friedman1(N_TRAIN + N_TEST, n_features=5, noise=1.0, random_state=seed)
    Xtr, ytr, Xte = X[:N_TRAIN], y[:N_TRAIN], X[N_TRAIN:]
    forest = _forest(Xtr, ytr, n_estimators=N_TREES, max_features=max_features, random_state=seed)
    Wtr, Wte = weights(forest, Xtr, Xtr), weights(forest, Xtr, Xte)
    return float(np.sum(Wtr ** 2)), float(N_TRAIN / N_TEST * np.sum(Wte ** 2))
