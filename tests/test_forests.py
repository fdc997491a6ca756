"""Tests of autograder/forests.py: the checks discriminate.

* the solution notebook and correct alternatives (brute force, scikit-learn stumps, torch, sparse matrices, float32)
  keep full marks;
* plausible wrong implementations lose points;
* the instructor references agree with independent computations (brute force in float64, forest.apply,
  forest.predict), on Hypothesis-generated inputs where natural; the visible literals are recomputed;
* stubs, garbage and objects that lie score 0; the student side carries no reference.
"""
from __future__ import annotations

import functools
import inspect
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from autograder import forests
from autograder.core import instructor_module
from tests.grading import AlwaysEqual, Grader, noisy, stub
from tests.notebooks import solution_namespace

SOLUTION = solution_namespace("forests")
GRADING = instructor_module("forests")
GRADER = Grader(forests)
grade, assert_full, assert_loses = GRADER.grade, GRADER.assert_full, GRADER.assert_loses


# ==============================================================================================================
# best_split
# ==============================================================================================================
def split_variant(x, y, *, mistake=None, dtype=None):
    """Sorted cumulative sums (another code than the solution's), with one optional, named mistake."""
    if mistake == "sorts x in place" and isinstance(x, np.ndarray):
        x.sort()
    integer_input = np.asarray(x).dtype.kind in "iu"
    if dtype is None:   # the precision of the inputs: float32 stays float32, anything else float64
        dtype = np.float32 if np.asarray(x).dtype == np.float32 and np.asarray(y).dtype == np.float32 else np.float64
    x = np.asarray(x).astype(dtype)
    y = np.asarray(y).astype(dtype)
    order = np.argsort(x, kind="stable")
    xs = x[order]
    ys = y if mistake == "sorts x but not y" else y[order]
    n = len(xs)
    cands = []
    for k in range(1, n):
        if xs[k] == xs[k - 1] and mistake != "splits between equal values":
            continue
        left, right = ys[:k], ys[k:]
        if mistake == "sum of absolute deviations":
            loss = np.abs(left - np.median(left)).sum() + np.abs(right - np.median(right)).sum()
        elif mistake == "variances (SSE / size) instead of SSE":
            loss = left.var() + right.var()
        elif mistake == "mean squared error (SSE / n)":
            loss = (((left - left.mean()) ** 2).sum() + ((right - right.mean()) ** 2).sum()) / n
        else:
            loss = ((left - left.mean()) ** 2).sum() + ((right - right.mean()) ** 2).sum()
        if mistake == "threshold = the left value":
            t = xs[k - 1]
        elif mistake == "integer midpoint (a + b) // 2" and integer_input:
            t = float((int(xs[k - 1]) + int(xs[k])) // 2)
        else:
            t = (xs[k - 1] + xs[k]) / 2
        cands.append((float(t), float(loss)))
    if not cands:
        if mistake == "one distinct value: returns x[0]":
            return float(x[0]), float(((y - y.mean()) ** 2).sum())
        return math.nan, float(((y - y.mean()) ** 2).sum())
    best = min(loss for _, loss in cands)
    ties = [t for t, loss in cands if loss <= best + 1e-12 * abs(best)]
    t = max(ties) if mistake == "largest t on ties" else min(ties)
    if mistake == "returns (loss, threshold)":
        return best, t
    if mistake == "returns the decrease SSE(all) - loss":
        return t, float(((y - y.mean()) ** 2).sum()) - best
    return t, best


SPLIT_MISTAKES = ["variances (SSE / size) instead of SSE", "mean squared error (SSE / n)", "threshold = the left value",
                  "splits between equal values", "largest t on ties", "integer midpoint (a + b) // 2",
                  "returns (loss, threshold)", "sorts x but not y", "one distinct value: returns x[0]",
                  "sum of absolute deviations", "returns the decrease SSE(all) - loss", "sorts x in place"]


def split_brute_force_python(x, y):
    """Correct, O(n^2) in plain Python floats (math.fsum): every distinct-value midpoint, first minimum kept."""
    pairs = sorted(zip(np.asarray(x).tolist(), np.asarray(y, dtype=float).tolist()))
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]

    def sse(v):
        if not v:
            return 0.0
        m = math.fsum(v) / len(v)
        return math.fsum((a - m) ** 2 for a in v)

    best = None
    for k in range(1, len(xs)):
        if xs[k] == xs[k - 1]:
            continue
        loss = sse(ys[:k]) + sse(ys[k:])
        if best is None or loss < best[1] * (1 - 1e-12) - 1e-300:
            best = ((xs[k - 1] + xs[k]) / 2, loss)
    return best if best is not None else (float("nan"), sse(ys))


def split_sklearn_stump(x, y):
    """Correct: a depth-1 scikit-learn regression tree (it also puts thresholds halfway, and keeps the first best
    split on ties); its impurities give the loss. A constant y is special-cased (scikit-learn leaves it unsplit)."""
    from sklearn.tree import DecisionTreeRegressor
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    tree = DecisionTreeRegressor(max_depth=1).fit(x[:, None], y).tree_
    if tree.node_count == 1:
        u = np.unique(x)
        if len(u) > 1:   # scikit-learn does not split a pure node; the convention's answer is then the smallest t
            return float((u[0] + u[1]) / 2), 0.0
        return float("nan"), float(tree.impurity[0] * len(y))
    left, right = tree.children_left[0], tree.children_right[0]
    return float(tree.threshold[0]), float(tree.impurity[left] * tree.n_node_samples[left]
                                           + tree.impurity[right] * tree.n_node_samples[right])


def split_torch(x, y):
    """Correct: torch cumulative sums, computed in the input's precision (float32 stays float32), returning
    0-d tensors."""
    import torch
    xt, yt = torch.as_tensor(np.asarray(x)), torch.as_tensor(np.asarray(y))
    dt = torch.float32 if xt.dtype == torch.float32 else torch.float64
    xt, yt = xt.to(dt), yt.to(dt)
    xs, order = torch.sort(xt, stable=True)
    ys = yt[order]
    n = len(xs)
    if n < 2 or not bool((xs[1:] > xs[:-1]).any()):
        return torch.tensor(float("nan")), ((yt - yt.mean()) ** 2).sum()
    k = torch.arange(1, n, dtype=dt)
    s, s2 = torch.cumsum(ys, 0)[:-1], torch.cumsum(ys ** 2, 0)[:-1]
    loss = (s2 - s ** 2 / k) + ((ys ** 2).sum() - s2 - (ys.sum() - s) ** 2 / (n - k))
    loss = torch.where(xs[1:] > xs[:-1], loss, torch.tensor(float("inf"), dtype=dt))
    best = loss.min()
    rel = 1e-6 if dt == torch.float32 else 1e-12
    i = int(torch.nonzero(loss <= best + rel * best.abs())[0])
    return (xs[i] + xs[i + 1]) / 2, loss[i].clamp(min=0)


@pytest.mark.parametrize("fn", [SOLUTION["best_split"], split_variant, split_brute_force_python, split_sklearn_stump,
                                split_torch, functools.partial(split_variant, dtype=np.float64)],
                         ids=["solution", "sorted, loss per split", "brute force (fsum)", "scikit-learn stump",
                              "torch in the input's precision", "float64 throughout"])
def test_best_split_correct_alternatives_keep_full_marks(fn):
    assert_full("best_split", fn)


@pytest.mark.parametrize("mistake", SPLIT_MISTAKES)
def test_best_split_wrong_implementations_lose_points(mistake):
    assert_loses("best_split", functools.partial(split_variant, mistake=mistake))


@pytest.mark.parametrize("mistake, hint", [("splits between equal values", "equal values"),
                                           ("largest t on ties", "smallest threshold"),
                                           ("integer midpoint (a + b) // 2", "3.5"),
                                           ("threshold = the left value", "halfway")])
def test_best_split_feedback_names_the_mistake(mistake, hint):
    assert hint in assert_loses("best_split", functools.partial(split_variant, mistake=mistake), "visible")


def test_visible_literals_match_the_reference():
    for case in forests.VISIBLE_SPLITS:
        t, loss = GRADING.best_split(case["x"], case["y"])
        assert (math.isnan(t) and math.isnan(case["t"])) or t == case["t"], case["name"]
        assert loss == pytest.approx(case["loss"], rel=1e-15, abs=1e-15), case["name"]
        for hint, (th, lh) in case.get("hints", {}).items():   # a hint's loss is a real candidate's loss
            assert any(abs(float(cl) - lh) < 1e-12 for _, cl in GRADING.split_losses_exact(case["x"], case["y"])), hint
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, 40).round(2)
    y = np.cos(2 * x) + 0.3 * rng.normal(size=40)
    assert GRADING.best_split(x, y) == (1.025, pytest.approx(18.816056708488638, rel=1e-15))


def test_hidden_split_cases_are_unambiguous():
    """No hidden case hinges on rounding: the second-best loss is far above every loss tolerance, and candidate
    thresholds are far apart compared with the threshold tolerance."""
    for case in GRADING.best_split_cases():
        x, y = case["x"], case["y"]
        gap = GRADING.relative_gap(x, y)
        sse = float(GRADING.sse_exact(y))
        assert gap == math.inf or gap * sse > 100 * forests._loss_tol(x, y), case["name"]
        u = np.unique(np.asarray(x, dtype=float))
        if len(u) > 2:
            assert np.diff(u).min() > 100 * forests._threshold_tol(x), case["name"]


def test_loss_tolerance_covers_float32_sums():
    """The float32 loss tolerance (5e-6 sum y^2) against float32 cumulative sums on the graded float32 cases: the
    measured error is at least 10 times smaller."""
    cases = [c for c in GRADING.best_split_cases() + forests.VISIBLE_SPLITS if np.asarray(c["x"]).dtype == np.float32]
    assert cases
    for case in cases:
        for fn in (split_torch, split_variant):
            t, loss = fn(case["x"], case["y"])
            exact = GRADING.best_split(case["x"], case["y"])[1]
            assert abs(float(loss) - exact) * 10 < forests._loss_tol(case["x"], case["y"]), case["name"]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 25), seed=st.integers(0, 10 ** 6), levels=st.integers(1, 8))
def test_reference_best_split_agrees_with_brute_force(n, seed, levels):
    """The exact reference against a brute-force float64 search over every midpoint of distinct values, on small
    integer-valued inputs with many duplicates (ties are exact there, so the smallest t is well defined)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, n)
    y = rng.integers(-5, 6, n).astype(float)
    t, loss = GRADING.best_split(x, y)
    u = np.unique(x)
    if len(u) == 1:
        assert math.isnan(t) and loss == pytest.approx(float(((y - y.mean()) ** 2).sum()), abs=1e-9)
        return
    mids = (u[:-1] + u[1:]) / 2
    losses = [sum(((y[s] - y[s].mean()) ** 2).sum() for s in (x <= m, x > m)) for m in mids]
    best = min(losses)
    assert loss == pytest.approx(best, abs=1e-9)
    assert t == mids[[i for i, v in enumerate(losses) if v <= best + 1e-9][0]]


# ==============================================================================================================
# forest_weights
# ==============================================================================================================
def weights_variant(forest, X_train, X, *, mistake=None):
    """Leaf indices per tree (estimator.apply) and leaf sizes from counts, with one optional, named mistake."""
    trees = forest.estimators_[:1] if mistake == "first tree only" else forest.estimators_
    if mistake == "modifies the forest (n_jobs)":
        forest.n_jobs = 2
    n, m = len(X_train), len(X)
    W = np.zeros((m, n))
    pooled = None
    if mistake == "leaf sizes pooled over all trees":
        all_leaves = np.concatenate([t.apply(np.asarray(X_train, dtype=np.float32)) for t in trees])
        ids, counts = np.unique(all_leaves, return_counts=True)
        pooled = dict(zip(ids.tolist(), counts.tolist()))
    for tree in trees:
        lt = tree.apply(np.asarray(X_train, dtype=np.float32))
        lx = tree.apply(np.asarray(X, dtype=np.float32))
        same = (lx[:, None] == lt[None, :]).astype(float)
        if mistake == "all nodes on the path (decision_path), not the leaf":
            Pt = tree.decision_path(np.asarray(X_train, dtype=np.float32)).toarray()
            Px = tree.decision_path(np.asarray(X, dtype=np.float32)).toarray()
            shared = Px @ Pt.T
            W += shared / shared.sum(axis=1, keepdims=True)
            continue
        if mistake in ("KeRF: counts normalized at the end", "indicator without 1/|leaf|"):
            W += same
            continue
        if mistake == "leaf size counted among the query points X":
            size = (lx[:, None] == lx[None, :]).sum(axis=1)
        elif pooled is not None:
            size = np.array([pooled[v] for v in lx.tolist()])
        else:
            size = same.sum(axis=1)
        W += same / size[:, None]
    if mistake == "KeRF: counts normalized at the end":
        return W / W.sum(axis=1, keepdims=True)
    if mistake == "1/B missing":
        return W
    W = W / len(trees)
    if mistake == "transposed (n, m)":
        return W.T
    return W


def weights_nearest_neighbour(forest, X_train, X):
    """Wrong: 1-NN weights (right at the training points, not a forest)."""
    d = ((np.asarray(X)[:, None, :] - np.asarray(X_train)[None, :, :]) ** 2).sum(-1)
    W = np.zeros(d.shape)
    W[np.arange(len(X)), d.argmin(axis=1)] = 1.0
    return W


WEIGHT_MISTAKES = ["KeRF: counts normalized at the end", "1/B missing", "transposed (n, m)",
                   "leaf size counted among the query points X", "leaf sizes pooled over all trees", "first tree only",
                   "all nodes on the path (decision_path), not the leaf", "indicator without 1/|leaf|",
                   "modifies the forest (n_jobs)"]


def weights_node_samples(forest, X_train, X):
    """Correct: forest.apply for X only; leaf sizes read from each tree's n_node_samples (exact without
    bootstrap); a sparse-free gather."""
    lx = forest.apply(X)
    W = np.zeros((len(X), len(X_train)))
    lt = forest.apply(X_train)
    for b, tree in enumerate(forest.estimators_):
        size = tree.tree_.n_node_samples[lx[:, b]]
        W += (lx[:, b][:, None] == lt[:, b][None, :]) / size[:, None]
    return W / len(forest.estimators_)


def weights_sparse(forest, X_train, X):
    """Correct: one-hot leaf matrices per tree as scipy.sparse, returns a sparse matrix."""
    import scipy.sparse as sp
    lt, lx = forest.apply(X_train), forest.apply(X)
    n, B = lt.shape
    total = None
    for b in range(B):
        k = int(max(lt[:, b].max(), lx[:, b].max())) + 1
        At = sp.csr_matrix((np.ones(n), (np.arange(n), lt[:, b])), shape=(n, k))
        Ax = sp.csr_matrix((np.ones(len(lx)), (np.arange(len(lx)), lx[:, b])), shape=(len(lx), k))
        size = np.asarray(At.sum(axis=0)).ravel()
        size[size == 0] = 1
        term = Ax @ sp.diags(1.0 / size) @ At.T
        total = term if total is None else total + term
    return total / B


def weights_torch(forest, X_train, X):
    """Correct: torch one-hot encodings and matrix products, a float64 tensor."""
    import torch
    lt, lx = torch.as_tensor(forest.apply(X_train)), torch.as_tensor(forest.apply(X))
    B = lt.shape[1]
    W = torch.zeros(len(lx), len(lt), dtype=torch.float64)
    for b in range(B):
        k = int(max(lt[:, b].max(), lx[:, b].max())) + 1
        Ot = torch.nn.functional.one_hot(lt[:, b], k).to(torch.float64)
        Ox = torch.nn.functional.one_hot(lx[:, b], k).to(torch.float64)
        W += Ox @ (Ot / Ot.sum(0).clamp(min=1)).T
    return W / B


def weights_torch_default_float32(forest, X_train, X):
    """Correct: torch with its default dtype (float32) whatever the inputs' precision."""
    import torch
    lt, lx = torch.as_tensor(forest.apply(X_train)), torch.as_tensor(forest.apply(X))
    W = torch.zeros(len(lx), len(lt))
    for b in range(lt.shape[1]):
        same = (lx[:, b][:, None] == lt[:, b][None, :]).float()
        W += same / same.sum(dim=1, keepdim=True)
    return W / lt.shape[1]


def weights_input_precision(forest, X_train, X):
    """Correct: accumulates in the precision of the inputs (float32 in, float32 out)."""
    dtype = np.float32 if np.asarray(X).dtype == np.float32 else np.float64
    lt, lx = forest.apply(X_train), forest.apply(X)
    W = np.zeros((len(lx), len(lt)), dtype=dtype)
    for b in range(lt.shape[1]):
        same = (lx[:, b][:, None] == lt[:, b][None, :]).astype(dtype)
        W += same / same.sum(axis=1, keepdims=True)
    return W / dtype(lt.shape[1])


@pytest.mark.parametrize("fn", [SOLUTION["forest_weights"], weights_variant, weights_node_samples, weights_sparse,
                                weights_torch, weights_torch_default_float32, weights_input_precision,
                                GRADING.forest_weights],
                         ids=["solution", "per-tree apply", "n_node_samples", "scipy.sparse result", "torch",
                              "torch float32",
                              "input precision (float32 stays float32)", "reference (walks the trees by hand)"])
def test_forest_weights_correct_alternatives_keep_full_marks(fn):
    assert_full("forest_weights", fn)


@pytest.mark.parametrize("mistake", WEIGHT_MISTAKES)
def test_forest_weights_wrong_implementations_lose_points(mistake):
    assert_loses("forest_weights", functools.partial(weights_variant, mistake=mistake))


def test_nearest_neighbour_weights_lose_points():
    assert_loses("forest_weights", weights_nearest_neighbour)


@pytest.mark.parametrize("mistake, hint", [("KeRF: counts normalized at the end", "KeRF"),
                                           ("1/B missing", "1/B"),
                                           ("modifies the forest (n_jobs)", "modified in place")])
def test_forest_weights_feedback_names_the_mistake(mistake, hint):
    assert hint in assert_loses("forest_weights", functools.partial(weights_variant, mistake=mistake), "visible")


def test_toy_weights_literal_matches_the_reference():
    forest, X, y, Xq = forests._toy_forest()
    np.testing.assert_allclose(GRADING.forest_weights(forest, X, Xq) * 36, forests.TOY_WEIGHTS_36, atol=1e-12)
    np.testing.assert_allclose(forests.TOY_WEIGHTS_36 / 36 @ y, forest.predict(Xq), atol=1e-12)


@pytest.mark.parametrize("case", GRADING.forest_cases(), ids=lambda c: c["name"][:40])
def test_reference_weights_agree_with_forest_apply(case):
    """The hand-walked reference against weights built from forest.apply and n_node_samples: rows sum to 1."""
    forest, Xtr, X = case["forest"], case["X_train"], case["X"]
    W = GRADING.forest_weights(forest, Xtr, X)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(W, weights_node_samples(forest, Xtr, X), atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10 ** 6), depth=st.sampled_from([None, 1, 2, 4]), mf=st.sampled_from([1, 2, 0.5, 1.0]),
       leaf=st.integers(1, 4))
def test_reference_weights_times_y_is_predict(seed, depth, mf, leaf):
    from sklearn.ensemble import RandomForestRegressor
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 5, (30, 3)).astype(float) if seed % 2 else rng.normal(size=(30, 3))
    y = rng.normal(size=30)
    forest = RandomForestRegressor(n_estimators=7, max_depth=depth, max_features=mf, min_samples_leaf=leaf,
                                   bootstrap=False, random_state=seed % 1000).fit(X, y)
    Xq = rng.normal(size=(11, 3))
    W = GRADING.forest_weights(forest, X, Xq)
    np.testing.assert_allclose(W @ y, forest.predict(Xq), atol=1e-10)
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)


# ==============================================================================================================
# smoothing_experiment
# ==============================================================================================================
def experiment_variant(max_features, seed, *, mistake=None, weights=None):
    from sklearn.datasets import make_friedman1
    from sklearn.ensemble import RandomForestRegressor
    weights = weights or SOLUTION["forest_weights"]
    X, y = make_friedman1(600, n_features=5, noise=1.0, random_state=seed)
    Xtr, ytr, Xte = X[:200], y[:200], X[200:]
    params = dict(n_estimators=50, max_features=max_features, bootstrap=mistake == "bootstrap=True (the default)",
                  random_state=seed)
    if mistake == "one tree":
        params["n_estimators"] = 1
    forest = RandomForestRegressor(**params).fit(Xtr, ytr)
    Wtr, Wte = weights(forest, Xtr, Xtr), weights(forest, Xtr, Xte)
    if mistake == "p_test at the training points":
        Wte = Wtr
    power = 1 if mistake == "|w| instead of |w|^2" else 2
    p_train = float(np.sum(np.abs(Wtr) ** power))
    factor = 1.0 if mistake == "n / m factor missing" else len(Xtr) / len(Xte)
    p_test = float(factor * np.sum(np.abs(Wte) ** power))
    if mistake == "mean effective neighbours 1/|w|^2 instead":
        p_test = float(np.mean(1 / np.sum(Wte ** 2, axis=1)))
    if mistake == "returns (p_test, p_train)":
        return p_test, p_train
    return p_train, p_test


def experiment_own_data(max_features, seed):
    """Correct in spirit: Friedman #1 drawn with numpy (another draw of the same distribution), forest seed + 1000,
    the reference weights: graded by ranges, so it keeps full marks."""
    rng = np.random.default_rng(seed + 1000)
    X = rng.uniform(0, 1, (600, 5))
    y = (10 * np.sin(np.pi * X[:, 0] * X[:, 1]) + 20 * (X[:, 2] - 0.5) ** 2 + 10 * X[:, 3] + 5 * X[:, 4]
         + rng.normal(size=600))
    from sklearn.ensemble import RandomForestRegressor
    forest = RandomForestRegressor(n_estimators=50, max_features=max_features, bootstrap=False,
                                   random_state=seed + 1000).fit(X[:200], y[:200])
    W = weights_node_samples(forest, X[:200], X[200:])
    return 200.0, 0.5 * float(np.sum(W ** 2))


EXPERIMENT_MISTAKES = ["bootstrap=True (the default)", "n / m factor missing", "|w| instead of |w|^2", "one tree",
                       "p_test at the training points", "returns (p_test, p_train)",
                       "mean effective neighbours 1/|w|^2 instead"]


@pytest.mark.parametrize("fn", [SOLUTION["smoothing_experiment"], experiment_variant, experiment_own_data],
                         ids=["solution", "variant with the solution's weights",
                              "own numpy draw, n_node_samples weights"])
def test_experiment_correct_alternatives_keep_full_marks(fn):
    assert_full("smoothing_experiment", fn)


@pytest.mark.parametrize("mistake", EXPERIMENT_MISTAKES)
def test_experiment_wrong_implementations_lose_points(mistake):
    assert_loses("smoothing_experiment", functools.partial(experiment_variant, mistake=mistake), "visible")


def test_experiment_with_wrong_weights_loses_points():
    wrong = functools.partial(weights_variant, mistake="1/B missing")
    assert_loses("smoothing_experiment", functools.partial(experiment_variant, weights=wrong), "visible")


def test_experiment_ranges_hold_over_seeds():
    """Ten of the forty seeds behind P_TEST_RANGES, recomputed with the reference: inside the observed range."""
    observed = {0.2: (0.0928, 0.1062), 1.0: (0.5244, 0.6049)}
    for seed in (0, 11, 12, 39):
        for mf, (lo, hi) in observed.items():
            p_train, p_test = GRADING.smoothing_experiment(mf, seed)
            assert p_train == 200.0
            assert lo - 1e-4 <= p_test / 200 <= hi + 1e-4, (mf, seed, p_test)


# ==============================================================================================================
# Every part: stubs, garbage, liars; the student side carries no reference
# ==============================================================================================================
PARTS = ["best_split", "forest_weights", "smoothing_experiment"]


@pytest.mark.parametrize("part", PARTS)
def test_untouched_stub_scores_zero_with_a_clear_message(part):
    for tests in ("visible", "all"):
        points, text = grade(part, stub, tests)
        assert points == 0
        assert "not implemented yet" in text


@pytest.mark.parametrize("part", PARTS)
def test_none_and_garbage_score_zero(part):
    assert grade(part, lambda *a, **k: None, "visible")[0] == 0
    assert grade(part, lambda *a, **k: "0.5", "visible")[0] == 0


def test_objects_that_lie_score_zero():
    liar = np.zeros((3, 7)).view(AlwaysEqual)
    assert grade("forest_weights", lambda f, a, b: liar, "visible")[0] == 0


def test_prints_and_warnings_inside_a_correct_function_cost_nothing(capsys):
    assert_full("best_split", noisy(SOLUTION["best_split"]))
    assert capsys.readouterr().err == ""


def test_topic_points():
    assert forests.TOPIC.points == {"check_best_split": 3.0, "check_forest_weights": 4.0,
                                    "check_smoothing_experiment": 2.0, "written_interpolation": 2.0}


def test_student_side_module_has_no_reference_implementation():
    """autograder/forests.py neither searches splits nor computes forest weights: no apply, no cumulative sums, no
    Fraction, and it cannot score a stub through its own names."""
    source = inspect.getsource(forests)
    for forbidden in ("Fraction", ".apply(", "cumsum", "def best_split", "def forest_weights",
                      "def smoothing_experiment", "add.at"):
        assert forbidden not in source, forbidden
    for name in dir(forests):
        obj = getattr(forests, name)
        if callable(obj) and not name.startswith("check_") and getattr(obj, "__module__", "") == forests.__name__:
            for part in PARTS:
                try:
                    assert grade(part, obj, "visible")[0] < GRADER.points(part), (name, part)
                except TypeError:
                    pass


# ==============================================================================================================
# The full pipeline: a small class through the isolated engine and through real nbgrader (slow)
# ==============================================================================================================
def _cell_errors(course, student) -> list[str]:
    """The errors and stderr outputs of a student's autograded notebook (for the failure message)."""
    import nbformat
    out = []
    for path in course.rglob(f"autograded/{student}/forests/forests.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
                if o.output_type == "error" or o.get("name") == "stderr":
                    out.append(f"{cell.metadata.get('nbgrader', {}).get('grade_id')}: {o.get('ename')} "
                               f"{o.get('evalue')} {o.get('text', '')[:300]}")
    return out


@pytest.mark.slow
def test_forests_class_through_both_engines(tmp_path):
    import nbformat

    from autograder import nbgrading
    from autograder.release import verify_release
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path / "release", ["forests"])
    nbgrading.release(course, "forests")
    assert verify_release(course, "forests") == []
    release = nbformat.read(course / "exercises" / "forests" / "forests.ipynb", as_version=4)
    text = nbformat.writes(release)
    for leak in ("BEGIN SOLUTION", "HIDDEN TESTS", "grading.py", "np.cumsum(", "forest.apply(X_train)"):
        assert leak not in text, leak
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("forests").cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    wrong_weights = solution["forest_weights"].replace("return W / B", "return W")  # the 1/B of the average missing
    assert wrong_weights != solution["forest_weights"]
    class_ = {"full": dict(solution), "untouched": {},
              "partial": {"best_split": solution["best_split"], "forest_weights": wrong_weights}}
    expected_partial = grade("forest_weights", functools.partial(weights_variant, mistake="1/B missing"))[0]
    assert 0 <= expected_partial < 4
    full = {"check_best_split": 3.0, "check_forest_weights": 4.0, "check_smoothing_experiment": 2.0}
    for engine in ("nbgrader", "isolated"):      # one fresh course (and gradebook) per engine
        course = make_course(tmp_path / engine, ["forests"])
        nbgrading.release(course, "forests")
        submissions = tmp_path / f"submissions_{engine}"
        for student, answers in class_.items():
            add_submission(submissions, student, "forests", fill(release, dict(answers)))  # fill empties it
        if engine == "isolated":
            results, warnings = nbgrading.grade_isolated(course, "forests", submissions, cell_timeout=120, workers=1)
        else:   # plain nbgrader: a cell that times out zeroes the whole notebook, so leave room for a loaded machine
            results, warnings = nbgrading.grade(course, "forests", submissions, cell_timeout=120)
        got = {r.student: r for r in results}
        scores = {k: v for k, v in got["full"].scores.items() if k.startswith("check_")}
        assert scores == full, (engine, got["full"].notes, warnings, _cell_errors(course, "full"))
        assert got["untouched"].graded and got["untouched"].total == 0, engine
        partial = got["partial"].scores
        assert partial["check_best_split"] == 3 and partial["check_forest_weights"] == expected_partial, (engine,
                                                                                                          partial)
        assert partial["check_smoothing_experiment"] == 0, (engine, partial)
