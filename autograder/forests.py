"""Checks of the assignment ``forests``: decision forests as interpolating, adaptive nearest-neighbour smoothers.

Conventions (book/conventions.md, section "Assignment `forests`"):

* ``best_split(x, y) -> (threshold, loss)``: for one feature x (n,) and targets y (n,), the split x <= t vs x > t
  minimizing loss = SSE(left) + SSE(right) (SSE: sum of squared deviations from the side's mean), t halfway
  between consecutive distinct sorted values of x; on ties (losses equal up to 1e-12 relative) the smallest t;
  (nan, SSE(all)) when x has one distinct value. Integer inputs give float thresholds.
* ``forest_weights(forest, X_train, X) -> (m, n)``: for a fitted scikit-learn ``RandomForestRegressor`` with
  ``bootstrap=False`` and X_train the inputs it was fitted on, w_i(x) = (1/B) sum_b 1[x_i in leaf_b(x)] / |leaf_b(x)|;
  weights @ y_train = forest.predict(X), rows sum to 1. It must not modify the forest.
* ``smoothing_experiment(max_features, seed) -> (p_train, p_test)`` (this assignment's experiment): Friedman #1 data
  (``make_friedman1(600, n_features=5, noise=1.0, random_state=seed)``, the first 200 rows to train, the other
  400 to test), a fully grown ``RandomForestRegressor(n_estimators=50, max_features=max_features,
  bootstrap=False, random_state=seed)``; with W the forest weights, p_train = sum_i |w(x_i)|^2 over the training
  inputs and p_test = (n / m) sum_j |w(x'_j)|^2 over the test inputs: the effective number of parameters the
  forest uses at training and at test inputs.

Visible checks use properties (rows sum to 1, weights @ y_train = predict, interpolation at the training points,
self-consistency of the returned loss) and small values precomputed with exact rational arithmetic (written as
literals; tests/test_forests.py recomputes them). Hidden checks compare with the instructor's references
(solutions/forests/grading.py) on non-default settings. Nothing here computes a graded quantity.
"""
from __future__ import annotations

import math

import numpy as np

from .core import Part, Report, Topic, Written, as_array, compare, fmt, rtol_for

__all__ = ["TOPIC", "check_best_split", "check_forest_weights", "check_smoothing_experiment",
           "forest_fingerprint", "P_TEST_RANGES"]


# ==============================================================================================================
# Part 1: best_split(x, y)
# ==============================================================================================================
def as_split(value, what: str) -> dict:
    """A returned (threshold, loss) pair as two Python floats (numbers, numpy scalars, 0-d arrays, tensors)."""
    if isinstance(value, np.ndarray) and value.shape == (2,):
        value = tuple(value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{what} must be a pair (threshold, loss); it has type {type(value).__name__}"
                        + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
    out = []
    for name, v in zip(("threshold", "loss"), value):
        arr = as_array(v, f"the {name} in {what}")
        if arr.size != 1:
            raise TypeError(f"the {name} in {what} has {arr.size} numbers; expected one")
        out.append(float(arr.reshape(-1)[0]))
    return {"threshold": out[0], "loss": out[1]}


def _threshold_tol(x) -> float:
    # scikit-learn rounds x to float32 before placing its thresholds and a float32 midpoint (a + b) / 2 is rounded
    # to float32: both move t by at most 6e-8 max|x|; 2e-7 max|x| leaves a margin of 3. Every graded case keeps
    # consecutive candidate thresholds more than 1e-4 max|x| apart.
    return 2e-7 * float(np.max(np.abs(np.asarray(x, dtype=np.float64)))) + 1e-12


def _loss_tol(x, y) -> float:
    # Rounding of a correct loss grows with sum y^2 (running sums: sum y^2 - (sum y)^2 / k cancels): measured on
    # float64 and float32 cumulative-sum and brute-force implementations over every graded case (worst 2e-15 and
    # 3e-7 of sum y^2, tests/test_forests.py::test_loss_tolerance_covers_float32_sums), allowed with a margin of
    # more than 10.
    scale = float(np.sum(np.asarray(y, dtype=np.float64) ** 2))
    return rtol_for(x, y, float64=1e-12, float32=5e-6) * scale + 1e-12


def judge_split(got: dict, t_expected: float, loss_expected: float, x, y, hints: dict | None = None):
    """Verdict: the threshold (nan when x has one distinct value) and the loss, with the tolerances above."""
    t, loss = got["threshold"], got["loss"]
    lines = []
    if math.isnan(t_expected):
        if not math.isnan(t):
            lines.append(f"x has one distinct value: no split exists and the threshold must be nan; got {fmt(t, 10)}")
    elif math.isnan(t) or abs(t - t_expected) > _threshold_tol(x):
        lines.append(f"threshold: expected {fmt(t_expected, 10)}, got {fmt(t, 10)} (allowed "
                     f"{_threshold_tol(x):.3g})")
    tol = _loss_tol(x, y)
    if not math.isfinite(loss) or abs(loss - loss_expected) > tol:
        lines.append(f"loss: expected {fmt(loss_expected, 12)}, got {fmt(loss, 12)} (allowed {tol:.3g})")
    if not lines:
        return True, ""
    for hint, (t_h, l_h) in (hints or {}).items():
        if (abs(t - t_h) <= _threshold_tol(x) or (math.isnan(t) and math.isnan(t_h))) and abs(loss - l_h) <= tol:
            lines.append("hint: " + hint)
            break
    else:
        n = len(np.asarray(y))
        if loss_expected > 0 and abs(loss * n - loss_expected) <= tol * n:
            lines.append("hint: your loss is about SSE / n: the loss is a sum of squares, not a mean")
        if not math.isnan(t) and np.any(np.abs(np.asarray(x, dtype=float) - t) <= _threshold_tol(x)):
            lines.append("hint: your threshold is one of the x values; it must lie halfway between two consecutive "
                         "distinct sorted values (a threshold between two equal values is no split: x <= t sends both "
                         "to the left)")
    return False, "\n".join(lines)


def judge_split_is_consistent(got: dict, x, y):
    """Verdict (a property, no reference): the threshold is halfway between two consecutive distinct sorted values of
    x and the returned loss is SSE(left) + SSE(right) of the split it defines."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    t, loss = got["threshold"], got["loss"]
    u = np.unique(x)
    if math.isnan(t):
        return False, "the threshold is nan, but x has several distinct values"
    mids = (u[:-1] + u[1:]) / 2
    if not np.any(np.abs(mids - t) <= _threshold_tol(x)):
        return False, (f"the threshold {fmt(t, 10)} is not halfway between two consecutive distinct sorted values of "
                       "x")
    left = x <= t
    sse = float(np.sum((y[left] - y[left].mean()) ** 2) + np.sum((y[~left] - y[~left].mean()) ** 2))
    if abs(loss - sse) > _loss_tol(x, y):
        return False, (f"you return loss {fmt(loss, 12)}, but the split x <= {fmt(t, 10)} has "
                       f"SSE(left) + SSE(right) = {fmt(sse, 12)}")
    total = float(np.sum((y - y.mean()) ** 2))
    if loss > total + _loss_tol(x, y):
        return False, f"your loss {fmt(loss, 12)} exceeds SSE(all) = {fmt(total, 12)}: no split is worse than none"
    return True, ""


# Literal cases, computed with exact rational arithmetic (every candidate split's exact SSE(left) + SSE(right), in
# solutions/forests/grading.py); tests/test_forests.py::test_visible_literals_match_the_reference recomputes them.
_X1 = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
_Y1 = [2.0, 0.5, 2.5, 1.0, 3.0, 7.0, 0.0, 4.5]
VISIBLE_SPLITS = [
    dict(name="x = [3, 1, 4, 1, 5, 9, 2, 6] (unsorted, x = 1 twice), y = [2, 0.5, 2.5, 1, 3, 7, 0, 4.5]: "
              "t = 5.5, loss = 81/8", x=np.array(_X1), y=np.array(_Y1), t=5.5, loss=81 / 8),
    dict(name="the same in float32", x=np.array(_X1, dtype=np.float32), y=np.array(_Y1, dtype=np.float32), t=5.5,
         loss=81 / 8),
    dict(name="integer x = [1, 2, 3, 4, 5], y = [1, 1, 2, 8, 9]: t = 3.5 (a float), loss = 7/6",
         x=np.array([1, 2, 3, 4, 5]), y=np.array([1, 1, 2, 8, 9]), t=3.5, loss=7 / 6,
         hints={"integer division: the threshold of integer inputs is a float, (3 + 4) / 2 = 3.5": (3.0, 7 / 6)}),
    dict(name="one distinct value x = [2, 2, 2], y = [1, 2, 6]: (nan, SSE(all) = 14)", x=np.array([2.0, 2.0, 2.0]),
         y=np.array([1.0, 2.0, 6.0]), t=math.nan, loss=14.0),
    dict(name="a tie: x = 0..7, y = [0, 2, 1, 4, 4, 1, 2, 0]: t = 0.5 and t = 6.5 both give 14, the smallest t",
         x=np.arange(8.0), y=np.array([0.0, 2, 1, 4, 4, 1, 2, 0]), t=0.5, loss=14.0,
         hints={"on a tie the smallest threshold wins": (6.5, 14.0)}),
]


def _visible_best_split(report: Report, best_split) -> None:
    for case in VISIBLE_SPLITS:
        x, y = case["x"].copy(), case["y"].copy()   # fresh copies: a call that sorts in place changes only its own
        out = report.call(best_split, x, y, what=f"best_split(x, y) with x = {fmt(x)}", convert=as_split)
        report.judge(case["name"], out, lambda v, c=case: judge_split(v, c["t"], c["loss"], c["x"], c["y"],
                                                                       c.get("hints")))
    rng = np.random.default_rng(5)
    x = rng.uniform(-2, 2, 40).round(2)
    y = np.cos(2 * x) + 0.3 * rng.normal(size=40)
    out = report.call(best_split, x, y, what="best_split(x, y), 40 random points", convert=as_split)
    report.judge("40 random points: the threshold is a midpoint of consecutive distinct values and the loss is its "
                 "SSE(left) + SSE(right)", out, lambda v: judge_split_is_consistent(v, x, y))
    report.judge("40 random points: t = 1.025, loss = 18.816056708 (exact arithmetic)", out,
                 lambda v: judge_split(v, 1.025, 18.816056708488638, x, y))


def _hidden_best_split(report: Report, best_split, grading) -> None:
    for case in grading.best_split_cases():
        x, y = case["x"], case["y"]
        t, loss = grading.best_split(x, y)
        out = report.call(best_split, x, y, what=f"best_split: {case['name']}", convert=as_split)
        report.judge(case["name"], out, lambda v, t=t, loss=loss, x=x, y=y: judge_split(v, t, loss, x, y))


# ==============================================================================================================
# Part 2: forest_weights(forest, X_train, X)
# ==============================================================================================================
def forest_fingerprint(forest) -> list:
    """Everything of a fitted forest that forest_weights must leave as it was: the forest's and its trees'
    parameters, the trees' arrays (bit for bit) and their number."""
    prints = [repr(sorted(forest.get_params(deep=False).items())), len(getattr(forest, "estimators_", []))]
    for tree in getattr(forest, "estimators_", []):
        prints.append(repr(sorted(tree.get_params(deep=False).items())))
        t = getattr(tree, "tree_", None)
        if t is None:
            prints.append(None)
            continue
        prints.extend(np.asarray(a).tobytes() for a in (t.children_left, t.children_right, t.feature, t.threshold,
                                                       t.value, t.n_node_samples, t.weighted_n_node_samples))
    return prints


def as_weights(value, what: str) -> np.ndarray:
    """A numpy array, torch tensor, np.matrix or scipy sparse matrix of weights, as a float64 array."""
    try:
        import scipy.sparse
        if scipy.sparse.issparse(value):
            value = value.toarray()
    except ImportError:  # pragma: no cover - scipy is part of the course environment
        pass
    if isinstance(value, np.matrix):
        value = np.asarray(value)
    return as_array(value, what)


def call_weights(report: Report, fn, forest, X_train, X, what: str) -> dict:
    """Harness: call ``fn(forest, X_train, X)``; a call that changes the forest counts as modifying its inputs."""
    before = forest_fingerprint(forest)
    out = report.call(fn, forest, X_train, X, what=what, convert=as_weights)
    if forest_fingerprint(forest) != before:
        out["modified"] = True
    return out


def _weights_hint(W: np.ndarray, yhat: np.ndarray, y_train: np.ndarray, n_trees: int) -> str:
    if W.ndim != 2:
        return ""
    rows = W.sum(axis=1)
    if np.allclose(rows, n_trees) and n_trees > 1:
        return "hint: your rows sum to B (the number of trees): the 1/B of the average is missing"
    if np.allclose(rows, 1, atol=1e-6) and not np.allclose(W @ y_train, yhat, atol=1e-6 * np.abs(yhat).max()):
        return ("hint: your rows sum to 1 but do not reproduce forest.predict: each tree's indicator must be divided "
                "by the size of that tree's leaf before averaging over trees (normalizing the total count of "
                "shared leaves at the end gives Scornet's KeRF, another estimator)")
    return ""


def _weights_tol(X_train, X) -> float:
    # Weights are averages of B terms 1/|leaf| in [0, 1]. Accumulated in float32 (torch's default dtype, even for
    # float64 inputs) they are off by at most about B * 6e-8 = 3e-6 for B <= 50 trees; measured 5e-8 on the two
    # float32 alternatives of tests/test_forests.py over every graded case. 1e-6 (float64 inputs) and 2e-5
    # (float32 inputs) of the scale 1 stay far below the smallest nonzero weight of any graded case (6.25e-4,
    # measured), so every wrong weighting is still caught.
    return rtol_for(X_train, X, float64=1e-6, float32=2e-5)


def judge_weights(W, expected, X_train, X, what="weights", hint=""):
    tol = _weights_tol(X_train, X)
    passed, message = compare(W, expected, what=what, rtol=tol, atol=tol)
    if not passed and hint:
        message += "\n" + hint
    return passed, message


def judge_weight_properties(W, yhat, n_trees, X_train, X, y_train):
    """Verdict (properties): shape (m, n), nonnegative, rows sum to 1, W @ y_train = yhat = forest.predict(X)
    (computed before the student's call)."""
    m, n = len(X), len(X_train)
    if W.shape != (m, n):
        extra = " (transposed?)" if W.shape == (n, m) else ""
        return False, f"shape {W.shape}, expected (len(X), len(X_train)) = {(m, n)}{extra}"
    tol = _weights_tol(X_train, X)
    if W.min() < -tol:
        return False, f"a negative weight {fmt(W.min())}: every w_i(x) is a nonnegative average of 1/|leaf|"
    ok, msg = compare(W.sum(axis=1), np.ones(m), what="row sums", rtol=0.0, atol=tol)
    if ok:
        ok, msg = compare(W @ y_train, yhat, what="weights @ y_train against forest.predict(X)", rtol=tol,
                          atol=tol * float(np.max(np.abs(y_train))))
    if ok:
        return True, ""
    hint = _weights_hint(W, yhat, y_train, n_trees)
    return False, msg + ("\n" + hint if hint else "")


def _toy_forest():
    from sklearn.ensemble import RandomForestRegressor
    X = np.array([[0.1, 0.9], [0.4, 0.2], [0.35, 0.7], [0.8, 0.6], [0.9, 0.1], [0.6, 0.45], [0.2, 0.3]])
    y = np.array([1.0, -0.5, 2.0, 0.5, -1.0, 1.5, 0.0])
    forest = RandomForestRegressor(n_estimators=3, max_depth=2, max_features=1, bootstrap=False,
                                   random_state=0).fit(X, y)
    return forest, X, y, np.array([[0.5, 0.5], [0.15, 0.8], [0.95, 0.05]])


# The toy forest's weights, in units of 1/36 (3 trees of depth 2 on 7 points; computed by walking each tree's
# arrays by hand, solutions/forests/grading.py; tests/test_forests.py recomputes them with scikit-learn 1.9.1).
TOY_WEIGHTS_36 = np.array([[3, 0, 3, 15, 0, 15, 0], [15, 0, 15, 3, 0, 3, 0], [0, 0, 0, 0, 36, 0, 0]], dtype=float)


def _medium(max_depth=None, dtype=np.float64):
    from sklearn.ensemble import RandomForestRegressor
    rng = np.random.default_rng(42)
    X = rng.uniform(0, 1, (80, 3))
    y = np.sin(4 * X[:, 0]) + X[:, 1] ** 2 + 0.3 * rng.normal(size=80)
    Xt = rng.uniform(0, 1, (50, 3))
    forest = RandomForestRegressor(n_estimators=20, max_features=0.5, max_depth=max_depth, bootstrap=False,
                                   random_state=1).fit(X.astype(dtype), y)
    return forest, X.astype(dtype), y, Xt.astype(dtype)


def _visible_forest_weights(report: Report, forest_weights) -> None:
    forest, X, y, Xq = _toy_forest()
    yq = forest.predict(Xq)
    out = call_weights(report, forest_weights, forest, X, Xq, "forest_weights(forest, X_train, X) on the toy forest")
    report.judge("toy forest (3 trees of depth 2, 7 training points, 3 query points): weights in units of 1/36 = "
                 "[[3, 0, 3, 15, 0, 15, 0], [15, 0, 15, 3, 0, 3, 0], [0, 0, 0, 0, 36, 0, 0]]", out,
                 lambda W: judge_weights(W, TOY_WEIGHTS_36 / 36, X, Xq,
                                         hint=_weights_hint(W, yq, y, 3)))
    for max_depth, label in [(None, "fully grown"), (3, "max_depth = 3")]:
        forest, X, y, Xt = _medium(max_depth)
        yhat = forest.predict(Xt)
        out = call_weights(report, forest_weights, forest, X, Xt, f"forest_weights on a {label} forest")
        report.judge(f"{label}, 20 trees, max_features = 0.5, n = 80, 50 test points: shape (50, 80), rows sum to 1, "
                     "weights @ y_train = forest.predict(X)", out,
                     lambda W, yh=yhat, X=X, Xt=Xt, y=y: judge_weight_properties(W, yh, 20, X, Xt, y))
    forest, X, y, _ = _medium(None)
    out = call_weights(report, forest_weights, forest, X, X, "forest_weights(forest, X_train, X_train)")
    report.judge("fully grown forest at its own training points (distinct inputs, continuous y): the identity "
                 "matrix (the forest interpolates)", out,
                 lambda W: compare(W, np.eye(len(X)), what="weights at the training points", rtol=1e-6, atol=1e-6))


def _hidden_forest_weights(report: Report, forest_weights, grading) -> None:
    for case in grading.forest_cases():
        forest, Xtr, X = case["forest"], case["X_train"], case["X"]
        expected = grading.forest_weights(forest, Xtr, X)
        out = call_weights(report, forest_weights, forest, Xtr, X, f"forest_weights: {case['name']}")
        report.judge(case["name"], out, lambda W, e=expected, Xtr=Xtr, X=X: judge_weights(W, e, Xtr, X))


# ==============================================================================================================
# Part 3: smoothing_experiment(max_features, seed) -> (p_train, p_test)
# ==============================================================================================================
N_TRAIN, N_TEST, N_TREES = 200, 400, 50

# p_test / n of a correct implementation (the reference, solutions/forests/grading.py) over seeds 0..39, measured
# with scikit-learn 1.9.1 (tests/test_forests.py::test_experiment_ranges_hold_over_seeds recomputes 10 of them):
# max_features = 0.2 in [0.0928, 0.1062] (mean 0.099, sd 0.003), max_features = 1.0 in [0.5244, 0.6049] (mean 0.566,
# sd 0.02). The allowed ranges put at least 4 sd of margin beyond the observed extremes on each side;
# the nearest wrong implementations stay outside (the n / m factor missing: about twice; |w| instead of |w|^2: 1;
# bootstrap=True fails p_train = n). Theory alone says only 1/B <= p_test / n <= 1.
P_TEST_RANGES = {0.2: (0.08, 0.12), 1.0: (0.44, 0.70)}


def as_pair(value, what: str) -> tuple[float, float]:
    if isinstance(value, np.ndarray) and value.shape == (2,):
        value = tuple(value)
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{what} must be a pair (p_train, p_test); it has type {type(value).__name__}")
    pair = []
    for v in value:
        arr = as_array(v, what)
        if arr.size != 1:
            raise TypeError(f"{what}: each of p_train, p_test is one number")
        pair.append(float(arr.reshape(-1)[0]))
    return pair[0], pair[1]


def judge_p_train(v):
    p_train = v[0]
    if abs(p_train - N_TRAIN) <= 1e-6 * N_TRAIN:
        return True, ""
    hint = ""
    if p_train < N_TRAIN:
        hint = ("\nhint: below n means the forest does not interpolate: is bootstrap=False? (fully grown trees "
                "without bootstrap put every training point alone in its leaf)")
    return False, (f"p_train = {fmt(p_train, 8)}; a fully grown forest without bootstrap interpolates, w(x_i) = e_i, "
                   f"so p_train = n = {N_TRAIN} exactly{hint}")


def judge_p_test_bounds(v):
    p = v[1]
    lo, hi = N_TRAIN / N_TREES, N_TRAIN
    if lo - 1e-9 <= p <= hi + 1e-9:
        return True, ""
    return False, (f"p_test = {fmt(p, 8)} is outside [n / B, n] = [{lo:g}, {hi:g}], where it must lie for fully grown "
                   "trees (|w(x)|^2 is at most max_i w_i(x) <= 1 and at least 1/B, the weight being spread over at "
                   "most B points)")


def judge_p_test_range(v, max_features):
    lo, hi = P_TEST_RANGES[max_features]
    r = v[1] / N_TRAIN
    if lo <= r <= hi:
        return True, ""
    hint = ""
    if lo <= r / 2 <= hi:
        hint = "\nhint: about twice the expected value: is the factor n / m of p_test missing?"
    elif abs(r - 1) < 1e-6:
        hint = "\nhint: exactly n: squared norms |w(x)|^2, not sums of weights (which are 1)"
    return False, (f"p_test / n = {fmt(r, 6)}; correct implementations give {lo:g} to {hi:g} at max_features = "
                   f"{max_features} (range over 40 seeds of a correct implementation, with a margin){hint}")


def _experiment(report: Report, fn, seed: int) -> None:
    outs = {}
    for mf in (0.2, 1.0):
        outs[mf] = report.call(fn, mf, seed, what=f"smoothing_experiment({mf}, seed={seed})", convert=as_pair)
        report.judge(f"seed {seed}, max_features = {mf}: p_train = n = {N_TRAIN} (interpolation, exact)", outs[mf],
                     judge_p_train)
        report.judge(f"seed {seed}, max_features = {mf}: n / B <= p_test <= n (theory)", outs[mf],
                     judge_p_test_bounds)
        report.judge(f"seed {seed}, max_features = {mf}: p_test / n in {P_TEST_RANGES[mf]} (experiment, 40 seeds)",
                     outs[mf], lambda v, mf=mf: judge_p_test_range(v, mf))
    if not outs[0.2].get("error") and not outs[1.0].get("error"):
        a, b = outs[0.2]["value"][1], outs[1.0]["value"][1]
        report.check(f"seed {seed}: more randomization, more smoothing at test inputs: p_test(0.2) < p_test(1.0)",
                     lambda: (a < b, f"p_test(0.2) = {fmt(a)}, p_test(1.0) = {fmt(b)}"))


def _visible_experiment(report: Report, fn) -> None:
    _experiment(report, fn, 0)


def _hidden_experiment(report: Report, fn, grading) -> None:
    for seed in (11, 12):
        _experiment(report, fn, seed)


TOPIC = Topic("forests", [
    Part("best_split", 3, _visible_best_split, _hidden_best_split),
    Part("forest_weights", 4, _visible_forest_weights, _hidden_forest_weights,
         purity="its inputs (X_train, X and the forest: parameters and tree arrays)"),
    Part("smoothing_experiment", 2, _visible_experiment, _hidden_experiment, purity=None),
    Written("written_interpolation", 2),
])
check_best_split = TOPIC.checker("best_split")
check_forest_weights = TOPIC.checker("forest_weights")
check_smoothing_experiment = TOPIC.checker("smoothing_experiment")
