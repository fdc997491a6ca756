"""Checks of the assignment ``double_descent``: min-norm least squares, the isotropic ridgeless risk, random
features, effective ranks and the random-features double-descent curve.

Conventions (book/conventions.md, section "Assignment `double_descent`"):

* ``min_norm_least_squares(X, y) -> w``: the minimum-l2-norm minimizer of |X w - y|^2 for any shape and rank of X
  (rank decided with a relative cutoff of about 1e-10 in float64, 1e-5 in float32; rank-deficient X are graded
  in float64 only). It is characterized by two properties, which the visible checks use: the normal equations
  X^T (X w - y) = 0 and w in the row space of X.
* ``isotropic_ridgeless_risk(gamma, r2, sigma2) -> float``: sigma2 gamma / (1 - gamma) for gamma < 1,
  r2 (1 - 1/gamma) + sigma2 / (gamma - 1) for gamma > 1, ``math.inf`` at gamma = 1 (Hastie, Montanari, Rosset &
  Tibshirani 2022).
* ``random_features(X, W) -> Phi (n, N)``: relu(X W^T / sqrt(d)) / sqrt(N).
* ``effective_ranks(eigenvalues, k) -> (r_k, R_k)`` (Bartlett, Long, Lugosi & Tsigler 2020), with the sorted
  values lambda_1 >= lambda_2 >= ... (1-based): r_k = sum_{i>k} lambda_i / lambda_{k+1},
  R_k = (sum_{i>k} lambda_i)^2 / sum_{i>k} lambda_i^2; the input is not reordered in place.
* ``rf_double_descent(X_train, y_train, X_test, y_test, W, Ns) -> errors``: for each N in Ns, the test mean squared
  error of min-norm least squares on the random features of the first N rows of W. Graded at ratios N/n away
  from the interpolation threshold (never at N = n: book/conventions.md rule 6) and by a property of the curve (the peak
  at N = n), with thresholds measured on several seeds (see ``PEAK_RATIO``).

Each graded part has one entry point ``check_<name>(student_fn, tests="visible")``, the last line of its grade
cell (the points are declared once, in ``TOPIC``). Visible checks use properties and small values computed by
hand (written out beside them); ``tests="all"`` adds the hidden cases, whose references live on the instructor's
side in ``solutions/double_descent/grading.py``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import numpy as np

from .core import Part, Report, Topic, Written, as_array, close, compare, fmt, rtol_for

__all__ = ["TOPIC", "check_min_norm_least_squares", "check_isotropic_ridgeless_risk", "check_random_features",
           "check_effective_ranks", "check_rf_double_descent", "teacher_data", "PEAK_RATIO",
           "PEAK_RATIO_VISIBLE"]

# Tolerances (relative to max |expected|, plus an absolute floor scaled to the quantity).
# min-norm: measured worst errors on the hidden cases of 10 correct algorithms (np/scipy pinv and lstsq, torch
# pinv and lstsq, X^T (X X^T)^-1 y, (X^T X)^-1 X^T y, QR of X and of X^T): float64 4.6e-10 (X^T (X X^T)^-1 y on
# the badly scaled case, cond 8.6e3), float32 9.3e-7: thresholds 1e-8 (margin 20) and 1e-4 (margin 100).
MIN_NORM_RTOL = {"float64": 1e-8, "float32": 1e-4}
# random features: one product and a relu; float32 rounding measured 2e-7 relative: 1e-5 (margin 50).
FEATURES_RTOL = {"float64": 1e-10, "float32": 1e-5}
# effective ranks: sums of at most 1000 terms; float32 (sorting and summing in float32) measured 6e-7: 1e-4.
RANKS_RTOL = {"float64": 1e-9, "float32": 1e-4}
RISK_RTOL = 1e-9
# test errors of the experiment away from the threshold: float64 algorithms differ by < 1e-9 there: 1e-6.
CURVE_RTOL = 1e-6
# Property of the curve: the peak at N = n, ratio = error(N = n) / max(error(N = n/2), error(N = 2n)). All correct
# implementations (pinv, lstsq, normal equations) give the same ratios on these fixed seeds; measured (PEAK_* below):
# * visible (one seed, 7; n = 40, d = 10): correct 18.7; wrong: ridge lam = 1e-3 1.56, ridge 1e-2 0.64, a relative
#   cutoff 1e-2 in the pseudo-inverse 1.92, training errors 0. Threshold 5 (margin 3.7 above, 2.6 below).
# * hidden (median over the 5 seeds 101..105; n = 60, d = 15): correct 1036 (per seed 4.6 .. 7e4 over seeds 101..108,
#   hence the median); wrong: ridge 1e-3 2.2 (per seed at most 2.5), cutoff 1e-2 3.0 (per seed at most 3.1), ridge 1e-2
#   0.9. Threshold 10 (margin 3.3 above the worst wrong median, 100 below the correct one).
PEAK_RATIO_VISIBLE = 5.0
PEAK_RATIO = 10.0


def _kind(*arrays) -> str:
    return "float32" if rtol_for(*arrays, float64=0.0, float32=1.0) == 1.0 else "float64"


def _np(a) -> np.ndarray:
    return as_array(a, "an input")


def _as_shape(shape: tuple):
    def convert(value: Any, what: str) -> np.ndarray:
        arr = as_array(value, what)
        if arr.shape != tuple(shape):
            extra = ""
            if arr.size == int(np.prod(shape)) and len(shape) == 1:
                extra = " (flatten it: .reshape(-1))"
            elif arr.ndim == 2 and arr.shape == tuple(shape)[::-1]:
                extra = " (transposed?)"
            raise ValueError(f"{what} has shape {arr.shape}; expected {tuple(shape)}{extra}")
        return arr
    return convert


def _as_float(value: Any, what: str) -> float:
    """A Python/numpy float, a 0-d (or one-element) array or tensor -> float; inf allowed."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise TypeError(f"{what} has type {type(value).__name__}; expected a float")
    if isinstance(value, numbers.Real):
        return float(value)
    arr = as_array(value, what)
    if arr.size != 1:
        raise ValueError(f"{what} has shape {arr.shape}; expected one number (a float)")
    return float(arr.reshape(-1)[0])


def _as_pair(value: Any, what: str) -> np.ndarray:
    """(r_k, R_k): a tuple or list of two numbers (an array or tensor of shape (2,) is read the same way)."""
    if not isinstance(value, (tuple, list)):
        arr = as_array(value, what)
        if arr.shape == (2,):
            return arr
        raise TypeError(f"{what} has shape {arr.shape}; expected a tuple (r_k, R_k) of two floats")
    if len(value) != 2:
        raise TypeError(f"{what} is a {type(value).__name__}"
                        + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else "")
                        + "; expected a tuple (r_k, R_k) of two floats")
    return np.array([_as_float(v, what + " (an entry)") for v in value])


# ==============================================================================================================
# Part 1: min_norm_least_squares(X, y)
# ==============================================================================================================
def _min_norm_hint(w: np.ndarray, X: np.ndarray, y: np.ndarray, expected: np.ndarray) -> str:
    """A hint from the two defining properties: which of them the returned w violates."""
    if w.shape != expected.shape:
        return ""
    scale = np.abs(X).max() * (np.abs(X).max() * np.abs(expected).max() * X.shape[1] + np.abs(y).max()) + 1e-300
    grad = X.T @ (X @ w - y)
    if np.abs(grad).max() <= 1e-6 * scale:
        return ("hint: your w minimizes |X w - y|^2 but is not the one of least norm: it has a component in the "
                "null space of X (the minimum-norm solution lies in the row space of X, w = X^T c)")
    if np.linalg.norm(w) < np.linalg.norm(expected) * (1 - 1e-6):
        return ("hint: your w is shorter than the minimum-norm least-squares solution, so it does not minimize "
                "|X w - y|^2: a regularization (ridge) or too large a rank cutoff?")
    return "hint: your w does not satisfy the normal equations X^T (X w - y) = 0"


# Hand-computed cases. (a) X = [[1, 0, 1, 0], [0, 1, 0, 1]] has X X^T = 2 I, so w = X^T y / 2; y = [2, 4] gives
# w = [1, 2, 1, 2]. (b) X = [[1, 0], [0, 1], [1, 1], [1, -1]] has X^T X = 3 I, so w = X^T y / 3 = [8, 1] / 3 for
# y = [1, 2, 3, 4]. (c) X = [[1, 1], [1, 1], [2, 2]] has rank 1, row space spanned by (1, 1): w = c (1, 1) with
# X w = 2 c a, a = (1, 1, 2), so c = <a, y> / (2 |a|^2) = 9 / 12 for y = [1, 2, 3]: w = [0.75, 0.75].
_MN_CASES = [
    ("2 x 4 underdetermined, X X^T = 2 I: w = X^T y / 2 = [1, 2, 1, 2]",
     np.array([[1.0, 0, 1, 0], [0, 1, 0, 1]]), np.array([2.0, 4.0]), np.array([1.0, 2.0, 1.0, 2.0])),
    ("4 x 2 overdetermined, X^T X = 3 I: w = X^T y / 3 = [8/3, 1/3]",
     np.array([[1.0, 0], [0, 1], [1, 1], [1, -1]]), np.array([1.0, 2.0, 3.0, 4.0]), np.array([8.0, 1.0]) / 3),
    ("3 x 2 of rank 1 (X^T X and X X^T both singular): w = [0.75, 0.75]",
     np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]), np.array([1.0, 2.0, 3.0]), np.array([0.75, 0.75])),
]


def _in_row_space(w: np.ndarray, X: np.ndarray) -> tuple[bool, str]:
    """Verdict: w = X^T c for some c (the residual of the least-squares fit of w by the rows of X is ~0)."""
    c = np.linalg.lstsq(X.T, w, rcond=None)[0]
    off = np.abs(X.T @ c - w).max()
    tol = 1e-8 * max(np.abs(w).max(), 1e-12)
    if off <= tol:
        return True, ""
    return False, (f"w is not in the row space of X: its component orthogonal to the rows has size {off:.3g} "
                   f"(allowed {tol:.3g})\nhint: a component in the null space of X does not change X w but adds to "
                   "|w|; the minimum-norm solution has none")


def _visible_min_norm(report: Report, fn: Callable) -> None:
    for name, X, y, w in _MN_CASES:
        out = report.call(fn, X.copy(), y.copy(), what=f"min_norm_least_squares(X {X.shape[0]}x{X.shape[1]}, y)",
                          convert=_as_shape(w.shape))
        report.judge(name, out, lambda v, X=X, y=y, w=w: compare(
            v, w, what="w", rtol=1e-10, atol=1e-12, fallback=lambda g, e, _: _min_norm_hint(g, X, y, e)))
    rng = np.random.default_rng(14)
    X, y = rng.normal(size=(6, 10)), rng.normal(size=6)
    out = report.call(fn, X.copy(), y.copy(), what="min_norm_least_squares(X 6x10 random, y)", convert=_as_shape((10,)))
    # Together the two properties characterize the answer, but each alone is met by something else: any interpolant
    # (a minimum-l1 one, say) satisfies the first, w = 0 the second. Gated: they count once a value above is right.
    report.judge("6 x 10 random X: an interpolant, X w = y", out,
                 lambda v: compare(X @ v, y, what="X w", rtol=1e-8, atol=1e-10), gated=True)
    report.judge("6 x 10 random X: w lies in the row space of X (no null-space component)", out, _in_row_space, X,
                 gated=True)
    Xf, yf = X.T[:, :4].astype(np.float32).copy(), rng.normal(size=10).astype(np.float32)
    out = report.call(fn, Xf.copy(), yf.copy(), what="min_norm_least_squares(X 10x4 float32, y float32)",
                      convert=_as_shape((4,)))
    report.judge("10 x 4 float32 X: the normal equations X^T (X w - y) = 0 hold to float32 accuracy", out,
                 lambda v: compare(Xf.T.astype(float) @ (Xf.astype(float) @ v - yf), np.zeros(4),
                                   what="X^T (X w - y)", rtol=0.0, atol=1e-4 * float(np.abs(Xf).max() ** 2 * 10)))


def _hidden_min_norm(report: Report, fn: Callable, grading) -> None:
    for case in grading.min_norm_cases():
        X, y = case["X"], case["y"]
        expected = grading.min_norm_least_squares(X, y)
        rtol = MIN_NORM_RTOL[_kind(X, y)]
        out = report.call(fn, X.copy(), y.copy(), what=f"min_norm_least_squares(X {X.shape[0]}x{X.shape[1]}, y)",
                          convert=_as_shape(expected.shape))
        Xd, yd = _np(X), _np(y)
        report.judge(case["name"], out, lambda v, e=expected, r=rtol, Xd=Xd, yd=yd: compare(
            v, e, what="w", rtol=r, atol=r * 1e-2 * max(np.abs(e).max(), np.abs(yd).max() / max(np.abs(Xd).max(),
                                                                                                  1e-300)),
            fallback=lambda g, ex, _: _min_norm_hint(g, Xd, yd, ex)), gated=case.get("gated", False))


# ==============================================================================================================
# Part 2: isotropic_ridgeless_risk(gamma, r2, sigma2)
# ==============================================================================================================
# Hand-computed (no answer is 0, 1 or 2, or equal to an argument, so that no unrelated function matches one by
# accident): gamma = 1/4, sigma2 = 5/2: (5/2)(1/4)/(3/4) = 5/6. gamma = 3/4, sigma2 = 2: 2 (3/4)/(1/4) = 6.
# gamma = 2, r2 = 1, sigma2 = 1: 1 * (1 - 1/2) + 1 / 1 = 1.5. gamma = 4, r2 = 2, sigma2 = 0.5: 2 * 3/4 + 0.5/3 = 5/3.
_RISK_CASES = [(0.25, 1.0, 2.5, 5.0 / 6.0, "underparametrized, variance only",
                {"the variance is sigma2 gamma / (1 - gamma): the factor gamma is missing": 10.0 / 3.0}),
               (0.75, 7.0, 2.0, 6.0, "underparametrized: r2 plays no role",
                {"this is r2 (1 - 1/gamma) + sigma2 / (gamma - 1), the formula above the threshold": -31.0 / 3.0,
                 "the variance is sigma2 gamma / (1 - gamma): the factor gamma is missing": 8.0}),
               (2.0, 1.0, 1.0, 1.5, "overparametrized: bias r2 (1 - 1/gamma) plus variance sigma2 / (gamma - 1)",
                {"this is sigma2 gamma / (1 - gamma), the formula below the threshold": -2.0,
                 "the bias term r2 (1 - 1/gamma) is missing": 1.0,
                 "the variance term sigma2 / (gamma - 1) is missing": 0.5}),
               (4.0, 2.0, 0.5, 5.0 / 3.0, "overparametrized",
                {"this is sigma2 gamma / (1 - gamma), the formula below the threshold": -2.0 / 3.0,
                 "the bias term r2 (1 - 1/gamma) is missing": 1.0 / 6.0,
                 "the variance term sigma2 / (gamma - 1) is missing": 1.5,
                 "the bias is r2 (1 - 1/gamma), not r2 / gamma": 2.0 / 3.0})]
# (the values of the known mistakes above are computed by hand from the same numbers)


def _risk_hint(got: float, variants: dict) -> str:
    """The known mistake (hint -> the value it gives) that ``got`` matches, if any."""
    for hint, value in (variants or {}).items():
        if math.isfinite(value) and abs(got - value) <= 1e-6 * max(abs(value), 1e-12):
            return "hint: " + hint
    return ""


def _judge_risk(got: float, gamma: float, r2: float, sigma2: float, expected: float,
                variants: dict | None = None) -> tuple[bool, str]:
    if math.isinf(expected):
        if got == math.inf:
            return True, ""
        return False, (f"at gamma = 1 the limiting risk is infinite: return math.inf (got {got!r})\nhint: the "
                       "variance sigma2 gamma / (1 - gamma) (and sigma2 / (gamma - 1) from above) diverges at gamma = 1")
    ok, message = close(np.array(got), np.array(expected), rtol=RISK_RTOL, atol=1e-12 * max(r2, sigma2, 1.0))
    if ok:
        return True, ""
    hint = _risk_hint(got, variants) if math.isfinite(got) else ""
    return False, f"risk at gamma = {gamma:g}: {message}" + ("\n" + hint if hint else "")


def _visible_risk(report: Report, fn: Callable) -> None:
    for gamma, r2, sigma2, expected, what, variants in _RISK_CASES:
        out = report.call(fn, gamma, r2, sigma2, what=f"isotropic_ridgeless_risk({gamma}, {r2}, {sigma2})",
                          convert=_as_float)
        report.judge(f"gamma = {gamma:g}, r2 = {r2:g}, sigma2 = {sigma2:g} ({what}): {fmt(expected, 8)}", out,
                     _judge_risk, gamma, r2, sigma2, expected, variants)
    # The threshold and the limit are gated (they count once a value above is right): a constant math.inf passes
    # the first, a function returning its argument r2 the second.
    out = report.call(fn, 1.0, 1.0, 1.0, what="isotropic_ridgeless_risk(1.0, 1.0, 1.0)", convert=_as_float)
    report.judge("gamma = 1 (the interpolation threshold): math.inf", out, _judge_risk, 1.0, 1.0, 1.0, math.inf,
                 gated=True)
    out = report.call(fn, 1e6, 2.5, 1.0, what="isotropic_ridgeless_risk(1e6, 2.5, 1.0)", convert=_as_float)
    report.judge("gamma -> infinity: the risk tends to r2 = 2.5 (the null predictor's risk)", out,
                 lambda v: close(np.array(v), np.array(2.5), rtol=1e-5, atol=0.0), gated=True)


def _hidden_risk(report: Report, fn: Callable, grading) -> None:
    for case in grading.risk_cases():
        g, r2, s2 = case["gamma"], case["r2"], case["sigma2"]
        out = report.call(fn, g, r2, s2, what=f"isotropic_ridgeless_risk({g}, {r2}, {s2})", convert=_as_float)
        report.judge(case["name"], out, _judge_risk, g, r2, s2, grading.isotropic_ridgeless_risk(g, r2, s2),
                     grading.risk_variants(g, r2, s2))
    out = report.call(fn, np.float64(1.0), 2.0, 0.5, what="isotropic_ridgeless_risk(np.float64(1.0), 2.0, 0.5)",
                      convert=_as_float)
    report.judge("gamma = 1 given as a numpy float: math.inf", out, _judge_risk, 1.0, 2.0, 0.5, math.inf, gated=True)
    out = report.call(fn, 3, 2, 1, what="isotropic_ridgeless_risk(3, 2, 1) (integers)", convert=_as_float)
    report.judge("integer arguments gamma = 3, r2 = 2, sigma2 = 1: 2 * 2/3 + 1/2", out, _judge_risk, 3.0, 2.0, 1.0,
                 grading.isotropic_ridgeless_risk(3, 2, 1))


# ==============================================================================================================
# Part 3: random_features(X, W)
# ==============================================================================================================
# Hand-computed: X (3, 2), W (4, 2): X W^T = [[1, 2, -1, 0], [-1, 0.5, -1.5, 2.5], [0, -3, 3, -3]]; relu keeps the
# positive entries; divide by sqrt(d) sqrt(N) = sqrt(2) * 2.
_RF_X = np.array([[1.0, 2.0], [-1.0, 0.5], [0.0, -3.0]])
_RF_W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [-2.0, 1.0]])
_RF_PHI = np.array([[1.0, 2.0, 0.0, 0.0], [0.0, 0.5, 0.0, 2.5], [0.0, 0.0, 3.0, 0.0]]) / (2.0 * np.sqrt(2.0))


def _judge_features(v: np.ndarray, expected: np.ndarray, rtol: float, variants: dict | None = None,
                    N: int | None = None, d: int | None = None) -> tuple[bool, str]:
    ok, message = compare(v, expected, what="Phi", rtol=rtol, atol=rtol * 1e-2 * max(np.abs(expected).max(), 1e-3),
                          variants=variants)
    if ok:
        return True, ""
    if v.shape == expected.shape and np.any(v < 0):
        message += "\nhint: Phi has negative entries: apply relu(t) = max(t, 0) to X W^T / sqrt(d)"
    elif v.shape == expected.shape and N is not None and d is not None and "hint" not in message:
        message += (f"\nhint: the convention is relu(X W^T / sqrt(d)) / sqrt(N) with d = {d} (columns of X) and "
                    f"N = {N} (rows of W)")
    return False, message


def _visible_random_features(report: Report, fn: Callable) -> None:
    out = report.call(fn, _RF_X.copy(), _RF_W.copy(), what="random_features(X 3x2, W 4x2)", convert=_as_shape((3, 4)))
    report.judge("X (3, 2), W (4, 2): relu(X W^T / sqrt(2)) / sqrt(4), computed by hand", out,
                 _judge_features, _RF_PHI, 1e-10, None, 4, 2)
    rng = np.random.default_rng(7)
    X, W = rng.normal(size=(5, 3)), rng.normal(size=(8, 3))
    out1 = report.call(fn, X.copy(), W.copy(), what="random_features(X 5x3, W 8x3)", convert=_as_shape((5, 8)))
    out2 = report.call(fn, 2.0 * X, W.copy(), what="random_features(2 X, W)", convert=_as_shape((5, 8)))
    report.judge("X (5, 3), W (8, 3): shape (n, N) = (5, 8), entries >= 0", out1, lambda v: (
        bool(np.all(v >= 0)), "negative entries: relu(t) = max(t, 0) is never negative"))
    report.judge("positive homogeneity: random_features(2 X, W) = 2 random_features(X, W)", out2,
                 lambda v: compare(v, 2 * out1["value"], what="Phi(2X)", rtol=1e-10, atol=1e-12)
                 if "value" in out1 else (False, "not checked: random_features(X, W) failed"))
    WW = np.concatenate([W, W])
    out3 = report.call(fn, X.copy(), WW, what="random_features(X, [W; W])", convert=_as_shape((5, 16)))
    report.judge("W stacked twice (N = 16): each half is random_features(X, W) / sqrt(2) (the 1/sqrt(N))", out3,
                 lambda v: compare(v, np.concatenate([out1["value"]] * 2, axis=1) / np.sqrt(2), what="Phi",
                                   rtol=1e-10, atol=1e-12) if "value" in out1 else
                 (False, "not checked: random_features(X, W) failed"))


def _hidden_random_features(report: Report, fn: Callable, grading) -> None:
    for case in grading.random_features_cases():
        X, W = case["X"], case["W"]
        expected = grading.random_features(X, W)
        rtol = FEATURES_RTOL[_kind(X, W)]
        out = report.call(fn, X.copy(), W.copy(), what=f"random_features(X {X.shape}, W {W.shape})",
                          convert=_as_shape(expected.shape))
        report.judge(case["name"], out, _judge_features, expected, rtol, grading.random_features_variants(X, W),
                     W.shape[0], X.shape[1])
    import torch
    case = grading.random_features_cases()[0]
    Xt, Wt = torch.from_numpy(case["X"]), torch.from_numpy(case["W"])
    expected = grading.random_features(case["X"], case["W"])
    out = report.call(fn, Xt, Wt, what="random_features(torch X, torch W)", convert=_as_shape(expected.shape))
    report.judge("torch float64 inputs: the same features (a tensor or an array)", out, _judge_features, expected,
                 FEATURES_RTOL["float64"])


# ==============================================================================================================
# Part 4: effective_ranks(eigenvalues, k)
# ==============================================================================================================
# Hand-computed: eigenvalues [1, 4, 2, 0, 3] sort to 4 >= 3 >= 2 >= 1 >= 0. k = 0: r_0 = 10/4, R_0 = 10^2 / 30.
# k = 1: the tail 3, 2, 1, 0: r_1 = 6/3 = 2, R_1 = 36/14. k = 3: the tail 1, 0: r_3 = R_3 = 1.
# Isotropic (ten eigenvalues 0.7), k = 4: r_4 = R_4 = 6 (the number of remaining directions).
_ER_LAMBDA = np.array([1.0, 4.0, 2.0, 0.0, 3.0])
_ER_CASES = [(_ER_LAMBDA, 0, (2.5, 10.0 / 3.0), "k = 0: r_0 = trace / lambda_1 = 10/4, R_0 = trace^2 / |lambda|^2 = 100/30",
              {"sort the eigenvalues in decreasing order first (a copy)": (10.0, 10.0 / 3.0)}),
             (_ER_LAMBDA, 1, (2.0, 36.0 / 14.0), "k = 1: the tail 3, 2, 1, 0: r_1 = 6/3, R_1 = 36/14",
              {"the tail sum_{i>k} starts at lambda_{k+1} (1-based): yours starts one later": (1.5, 9.0 / 5.0),
               "r_k divides by lambda_{k+1}, the first eigenvalue of the tail, not by lambda_k": (1.5, 36.0 / 14.0),
               "R_k is (sum lambda_i)^2 / sum lambda_i^2, not its inverse": (2.0, 14.0 / 36.0)}),
             (_ER_LAMBDA, 3, (1.0, 1.0), "k = 3: the tail 1, 0: r_3 = R_3 = 1", {}),
             (np.full(10, 0.7), 4, (6.0, 6.0), "isotropic, p = 10, k = 4: r_4 = R_4 = p - k = 6",
              {"the tail sum_{i>k} starts at lambda_{k+1} (1-based): yours starts one later": (5.0, 5.0)})]
# (the values of the known mistakes are computed by hand: ascending order at k = 0 divides by 1 -> 10; the tail
# 2, 1, 0 at k = 1 gives 3/2 and 9/5; dividing 6 by lambda_1 = 4 gives 1.5.)


def _judge_ranks(v: np.ndarray, expected, rtol: float, variants: dict | None = None) -> tuple[bool, str]:
    expected = np.asarray(expected, dtype=float)
    variants = dict(variants or {})
    variants.setdefault("the order is (r_k, R_k): you returned (R_k, r_k)", expected[::-1])
    return compare(v, expected, what="(r_k, R_k)", rtol=rtol, atol=rtol * 1e-3, variants=variants)


def _visible_effective_ranks(report: Report, fn: Callable) -> None:
    for lam, k, expected, name, variants in _ER_CASES:
        out = report.call(fn, lam.copy(), k, what=f"effective_ranks({fmt(lam)}, k={k})", convert=_as_pair)
        report.judge(name, out, _judge_ranks, expected, 1e-10, {h: np.array(v) for h, v in variants.items()})


def _hidden_effective_ranks(report: Report, fn: Callable, grading) -> None:
    import torch
    for case in grading.effective_ranks_cases():
        lam, k = case["eigenvalues"], case["k"]
        expected = grading.effective_ranks(lam, k)
        rtol = RANKS_RTOL[_kind(lam)]
        arg = torch.from_numpy(lam.copy()) if case.get("torch") else lam.copy()
        out = report.call(fn, arg, k, what=f"effective_ranks(p = {len(lam)}, k = {k})", convert=_as_pair)
        report.judge(case["name"], out, _judge_ranks, expected, rtol, grading.effective_ranks_variants(lam, k))


# ==============================================================================================================
# Part 5: rf_double_descent(X_train, y_train, X_test, y_test, W, Ns): the experiment
# ==============================================================================================================
def teacher_data(seed: int, n: int = 60, d: int = 15, n_test: int = 400, noise: float = 0.5, n_max: int = 240):
    """The data of the experiment (a statement, not a graded function): a single-index teacher
    f(x) = <x, b> + tanh(<x, b>) / 2 with |b| = 1, Gaussian inputs x ~ N(0, I_d), training labels f(x) + noise
    (standard deviation ``noise``), noiseless test labels, and N(0, 1) weights W (n_max, d) whose first N rows are
    the N random features. Returns (X_train, y_train, X_test, y_test, W), all float64, from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    b = rng.normal(size=d)
    b /= np.linalg.norm(b)
    X, X_test = rng.normal(size=(n, d)), rng.normal(size=(n_test, d))

    def f(Z):
        return Z @ b + 0.5 * np.tanh(Z @ b)

    y = f(X) + noise * rng.normal(size=n)
    W = rng.normal(size=(n_max, d))
    return X, y, X_test, f(X_test), W


# Visible: seed 7, n = 40, d = 10, n_test = 300, W (320, 10); the test errors at N = 10, 20, 80, 160 (ratios 1/4,
# 1/2, 2, 4), computed with solutions/double_descent/grading.py (explicit SVD) and recomputed by
# tests/test_double_descent.py::test_visible_literals.
_DD_VISIBLE = dict(seed=7, n=40, d=10, n_test=300, n_max=320)
_DD_VISIBLE_NS = [10, 20, 40, 80, 160]
_DD_VISIBLE_ERRORS = {10: 1.3158967630, 20: 1.4666585799, 80: 1.4216876788, 160: 0.8051432579}
_DD_HIDDEN_RATIOS = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0]


def _peak_ratio(errors: np.ndarray, Ns, n: int) -> tuple[float, str]:
    e = dict(zip([int(N) for N in Ns], errors))
    below, at, above = e[n // 2], e[n], e[2 * n]
    return at / max(below, above, 1e-300), (f"test error at N = n = {n}: {fmt(at)}; at N = n/2: {fmt(below)}; "
                                            f"at N = 2n: {fmt(above)}")


def _peak_verdict(curves: list, Ns, n: int, threshold: float) -> tuple[bool, str]:
    """Verdict: the median over the seeds of error(N = n) / max(error(n/2), error(2n)) is at least ``threshold``."""
    found = [_peak_ratio(np.asarray(c), Ns, n) for c in curves]
    ratio = float(np.median([r for r, _ in found]))
    if ratio >= threshold:
        return True, ""
    at = min(np.asarray(c)[list(Ns).index(n)] for c in curves)
    lines = [text for _, text in found[:3]]
    lines.append(f"the peak at the threshold is only {ratio:.3g} times its neighbours"
                 + (" (median over the seeds)" if len(curves) > 1 else "")
                 + f"; at least {threshold:g} expected: the min-norm fit through the threshold is ill-conditioned, "
                 "its variance explodes there")
    if at < 1e-8:
        lines.append("hint: these look like training errors: evaluate on X_test, y_test")
    else:
        lines.append("hint: a ridge penalty or a large rank cutoff removes the peak: use the exact min-norm solution")
    return False, "\n".join(lines)


def _curve_call(report: Report, fn, data, Ns, what):
    """One call of the student's curve. BLAS is limited to one thread meanwhile: on matrices this small (60 x 240)
    several threads on a busy machine make an SVD up to 100 times slower, never faster."""
    from threadpoolctl import threadpool_limits
    X, y, Xt, yt, W = data
    with threadpool_limits(limits=1):
        return report.call(fn, X.copy(), y.copy(), Xt.copy(), yt.copy(), W.copy(), list(Ns), what=what,
                           convert=_as_shape((len(Ns),)))


def _judge_values(v: np.ndarray, Ns, expected: dict, rtol: float) -> tuple[bool, str]:
    idx = [list(Ns).index(N) for N in expected]
    got = v[idx]
    want = np.array(list(expected.values()))
    ok, message = close(got, want, rtol=rtol, atol=1e-10, scale="elementwise")
    if ok:
        return True, ""
    hint = ""
    if np.allclose(got, np.sqrt(want), rtol=1e-4):
        hint = "\nhint: these are root mean squared errors: return the mean of the squared errors"
    elif np.all(got < 1e-8):
        hint = "\nhint: these look like training errors (0 when N >= n): evaluate on X_test, y_test"
    return False, f"test errors at N = {', '.join(str(N) for N in expected)}: {message}{hint}"


def _visible_rf_double_descent(report: Report, fn: Callable) -> None:
    data = teacher_data(**_DD_VISIBLE)
    n = _DD_VISIBLE["n"]
    out = _curve_call(report, fn, data, _DD_VISIBLE_NS, f"rf_double_descent(n = {n}, d = 10, Ns = {_DD_VISIBLE_NS})")
    report.judge(f"n = {n}: the test errors at N = 10, 20, 80, 160 (away from the threshold N = n)", out,
                 _judge_values, _DD_VISIBLE_NS, _DD_VISIBLE_ERRORS, CURVE_RTOL)
    report.judge(f"n = {n}: the curve peaks at the interpolation threshold: error(N = n) >= {PEAK_RATIO_VISIBLE:g} x "
                 "max(error(n/2), error(2n))", out, lambda v: _peak_verdict([v], _DD_VISIBLE_NS, n, PEAK_RATIO_VISIBLE))


def _hidden_rf_double_descent(report: Report, fn: Callable, grading) -> None:
    n = 60
    Ns = [int(round(r * n)) for r in _DD_HIDDEN_RATIOS]
    away = [N for N, r in zip(Ns, _DD_HIDDEN_RATIOS) if r <= 0.5 or r >= 2.0]
    outs = []
    for seed in grading.rf_experiment_seeds():
        data = teacher_data(seed)
        out = _curve_call(report, fn, data, Ns, f"rf_double_descent(seed {seed}, n = {n}, Ns = {Ns})")
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1):
            ref = grading.rf_reference(seed, tuple(away))
        report.judge(f"seed {seed}: test errors at N/n = 0.25, 0.5, 2, 4", out, _judge_values, Ns,
                     dict(zip(away, ref)), CURVE_RTOL)
        outs.append(out)
    failed = next((o for o in outs if o.get("error")), None)
    report.judge(f"the peak at N = n over {len(outs)} seeds: median of error(n) / max(error(n/2), error(2n)) >= "
                 f"{PEAK_RATIO:g}", failed or {"value": [o["value"] for o in outs]},
                 lambda curves: _peak_verdict(curves, Ns, n, PEAK_RATIO))


# ==============================================================================================================
# The topic: parts and points, declared once
# ==============================================================================================================
TOPIC = Topic("double_descent", [
    Part("min_norm_least_squares", 3, _visible_min_norm, _hidden_min_norm),
    Part("isotropic_ridgeless_risk", 2, _visible_risk, _hidden_risk),
    Part("random_features", 2, _visible_random_features, _hidden_random_features),
    Part("effective_ranks", 3, _visible_effective_ranks, _hidden_effective_ranks),
    Part("rf_double_descent", 3, _visible_rf_double_descent, _hidden_rf_double_descent),
    Written("written_variance_derivation", 2),
    Written("written_benign", 2),
])

check_min_norm_least_squares = TOPIC.checker("min_norm_least_squares")
check_isotropic_ridgeless_risk = TOPIC.checker("isotropic_ridgeless_risk")
check_random_features = TOPIC.checker("random_features")
check_effective_ranks = TOPIC.checker("effective_ranks")
check_rf_double_descent = TOPIC.checker("rf_double_descent")
