"""Checks of the assignment ``kernels``: kernels and reproducing kernel Hilbert spaces seen anew.

Conventions (book/conventions.md, assignment ``kernels``):

* ``kernel_ridge(K, y, lam) -> alpha`` (n,): exactly alpha = (K + n lam I)^{-1} y with n = len(y): the representer
  coefficients of the minimizer of (1/n) sum_i (f(x_i) - y_i)^2 + lam |f|_H^2; lam = 0 with K invertible gives the
  minimum-norm interpolant K^{-1} y;
* ``rkhs_norm(K, alpha) -> float``: |f|_H = sqrt(alpha^T K alpha) for f = sum_j alpha_j k(., x_j) (the norm, not its
  square), exact (0 up to rounding, never NaN) for a PSD but singular K;
* ``random_fourier_features(X, omega, b) -> Z`` (n, D): Z = sqrt(2/D) cos(X omega^T + b) (Rahimi & Recht 2007);
* ``laplace_kernel(X1, X2, bandwidth)`` (n1, n2): exp(-|x - x'|_2 / bandwidth), Euclidean norm, 1 where x = x';
* ``sample_rff(X, bandwidth, D, seed) -> (Z, omega, b)`` (the experiment part): omega (D, d) with i.i.d. N(0, 1/s^2)
  entries and b (D,) i.i.d. U[0, 2 pi], drawn from a generator seeded with ``seed``, and Z their features. Graded
  by the numbers the theory fixes: over S seeds, the mean of Z Z^T tends to the Gaussian kernel K (unbiasedness),
  and the mean of |Z Z^T - K|_F^2 equals (1/D) sum_ij (1 - K_ij^2 + K_ij^4 / 2) (the exact variance).

Each graded function has one entry point ``check_<name>(student_fn, tests="visible")``, the last line of its grade
cell (the points are declared once, in ``TOPIC``).  Visible checks use properties (the linear system the answer
must solve, symmetry, homogeneity, reproducing identities) and small values worked out by hand (written as literals;
``tests/test_kernels.py`` recomputes them with the reference).  This file holds no implementation of any graded
function.  ``tests="all"`` adds the hidden cases, whose inputs and references live on the instructor's side in
``solutions/kernels/grading.py``.

Tolerances.  kernel_ridge: |alpha - alpha_ref| <= 1e3 cond eps |alpha_ref|_max (eps of the input dtype, cond the
condition number of K + n lam I; the measured error of correct float64 and float32 solvers is below 10 cond eps).
rkhs_norm: float64 rtol 1e-8 with an absolute floor sqrt(1e-10 max|K|) |alpha|_1 (the square root of a quadratic
form that rounds to +-1e-16 is 1e-8, not 0); float32 rtol 1e-4, floor sqrt(1e-5 max|K|) |alpha|_1.  Features and
kernels: float64 atol 1e-9 (features; scale sqrt(2/D)) and 1e-6 (kernels: an implementation through |x|^2 + |x'|^2 -
2<x,x'> clipped at 0 is off by sqrt(eps) |x| / bandwidth ~ 1e-7 at near-coincident points); float32 tolerances were
measured on correct float32 implementations (direct differences, the clipped expansion, torch pairwise distances) and are ~3 times
the worst error seen (see ``tests/test_kernels.py::test_float32_tolerances_cover_measured_errors``).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .core import Part, Report, Topic, Written, as_array, close, compare, fmt, rtol_for

__all__ = ["TOPIC", "check_kernel_ridge", "check_rkhs_norm", "check_random_fourier_features", "check_laplace_kernel",
           "check_sample_rff", "rff_variance", "RFF_SEEDS", "RFF_T_RANGE", "RFF_B_MAX"]

EPS = {np.dtype(np.float64): float(np.finfo(np.float64).eps), np.dtype(np.float32): float(np.finfo(np.float32).eps)}

FEATURE_ATOL = {"float64": 1e-9, "float32": 4e-6}    # |Z - Z_ref|; float32 numpy and torch measured 1.4e-7
KERNEL_ATOL = {"float64": 1e-6, "float32": 4e-3}     # |K - K_ref|; float32: 3 x the worst 1.4e-3 measured


def _dtype_of(*arrays) -> str:
    return "float32" if rtol_for(*arrays, float64=0.0, float32=1.0) == 1.0 else "float64"


def _as_vector(n: int):
    def convert(value: Any, what: str) -> np.ndarray:
        arr = as_array(value, what)
        if arr.shape != (n,):
            raise ValueError(f"{what} has shape {arr.shape}; expected ({n},), a 1-D array like y"
                             + (" (flatten it: .reshape(-1))" if arr.size == n else ""))
        return arr
    return convert


def _as_scalar(value: Any, what: str) -> float:
    arr = as_array(value, what)
    if arr.size != 1:
        raise ValueError(f"{what} has shape {arr.shape}; expected one number (a float)")
    return float(arr.reshape(-1)[0])


def _np(a) -> np.ndarray:
    return as_array(a, "an input")


# ==============================================================================================================
# Part 1: kernel_ridge(K, y, lam)
# ==============================================================================================================
def _solves(alpha: np.ndarray, K, y, lam) -> tuple[bool, str]:
    """Verdict from the definition: (K + n lam I) alpha = y, to a backward-stable residual."""
    K, y = _np(K), _np(y)
    n = len(y)
    lhs = K @ alpha + n * lam * alpha
    scale = (np.abs(K).max() + n * lam) * np.abs(alpha).max() + np.abs(y).max()
    eps = EPS[np.dtype(np.float32 if _dtype_of(K, y) == "float32" else np.float64)]
    ok, message = close(lhs, y, rtol=0.0, atol=1e4 * eps * scale)
    if ok:
        return True, ""
    lines = [f"(K + n lam I) alpha with n = {n}, lam = {lam:g} should equal y: {message}"]
    if lam > 0 and np.allclose(K @ alpha + lam * alpha, y, rtol=1e-6, atol=1e-9 * scale):
        lines.append("hint: your alpha solves (K + lam I) alpha = y: the regularization is n lam I, with n = len(y) "
                     "(the loss is the mean (1/n) sum_i (f(x_i) - y_i)^2)")
    elif np.allclose(K @ alpha, y, rtol=1e-6, atol=1e-9 * scale) and lam > 0:
        lines.append("hint: your alpha interpolates (K alpha = y): lam is missing")
    elif lam > 0 and np.allclose(K @ alpha + n * n * lam * alpha, y, rtol=1e-6, atol=1e-9 * scale):
        lines.append("hint: your alpha solves (K + n^2 lam I) alpha = y: n appears once")
    elif np.allclose(alpha, y, rtol=1e-6):
        lines.append("hint: your alpha is y itself")
    return False, "\n".join(lines)


# Hand-computed: K = [[2, 1], [1, 2]], y = [1, 0], lam = 0.5, n = 2: K + n lam I = [[3, 1], [1, 3]], its inverse is
# [[3, -1], [-1, 3]] / 8, so alpha = [3/8, -1/8].
_KR_K = np.array([[2.0, 1.0], [1.0, 2.0]])
_KR_Y = np.array([1.0, 0.0])
_KR_ALPHA = np.array([0.375, -0.125])
# (K + lam I)^-1 y = [[2.5, 1], [1, 2.5]]^-1 [1, 0] = [2.5, -1] / 5.25 (the missing n).
_KR_NO_N = np.array([2.5, -1.0]) / 5.25

# A 4 x 4 positive definite K (the Gram matrix of the vectors below, written out) for the property checks.
_KR_PHI = np.array([[1.0, 0.5, 0.0, 0.2], [0.3, 1.2, -0.4, 0.0], [0.0, -0.6, 0.9, 0.5], [0.7, 0.1, 0.3, 1.1]])
_KR_K4 = _KR_PHI @ _KR_PHI.T
_KR_Y4 = np.array([1.0, -2.0, 0.5, 3.0])


def _visible_kernel_ridge(report: Report, kernel_ridge: Callable) -> None:
    out = report.call(kernel_ridge, _KR_K.copy(), _KR_Y.copy(), 0.5,
                      what="kernel_ridge(K=[[2, 1], [1, 2]], y=[1, 0], lam=0.5)", convert=_as_vector(2))
    report.judge("K = [[2, 1], [1, 2]], y = [1, 0], lam = 0.5 (n = 2): alpha = [3/8, -1/8] by hand", out,
                 lambda a: compare(a, _KR_ALPHA, what="alpha", rtol=1e-10, atol=1e-12, variants={
                     "this is (K + lam I)^-1 y: the regularization is n lam I with n = len(y) = 2": _KR_NO_N}))
    for lam in (0.1, 2.0):
        out = report.call(kernel_ridge, _KR_K4.copy(), _KR_Y4.copy(), lam, what=f"kernel_ridge(K 4x4, y, lam={lam})",
                          convert=_as_vector(4))
        report.judge(f"4 x 4 positive definite K, lam = {lam}: (K + n lam I) alpha = y with n = 4", out,
                     _solves, _KR_K4, _KR_Y4, lam)
    out = report.call(kernel_ridge, _KR_K4.copy(), _KR_Y4.copy(), 0.0, what="kernel_ridge(K 4x4, y, lam=0.0)",
                      convert=_as_vector(4))
    report.judge("lam = 0 with K invertible: the interpolant, K alpha = y", out, _solves, _KR_K4, _KR_Y4, 0.0)


def _kr_rtol(K, y, lam) -> float:
    Kd, yd = _np(K), _np(y)
    cond = np.linalg.cond(Kd + len(yd) * lam * np.eye(len(yd)))
    eps = EPS[np.dtype(np.float32 if _dtype_of(K, y) == "float32" else np.float64)]
    return 1e3 * cond * eps


def _hidden_kernel_ridge(report: Report, kernel_ridge: Callable, grading) -> None:
    for case in grading.kernel_ridge_cases():
        K, y, lam = case["K"], case["y"], case["lam"]
        n = len(y)
        out = report.call(kernel_ridge, K, y, lam, what=f"kernel_ridge (case: {case['name']})",
                          convert=_as_vector(n))
        expected = grading.kernel_ridge(K, y, lam)
        variants = {}
        if lam:
            variants["this is (K + lam I)^-1 y: the regularization is n lam I with n = len(y)"] = \
                grading.kernel_ridge(K, y, lam / n)
        rtol = _kr_rtol(K, y, lam)
        report.judge(case["name"], out, lambda a, e=expected, r=rtol, v=variants: compare(
            a, e, what="alpha", rtol=r, atol=1e-12 * np.abs(e).max(), variants=v))


# ==============================================================================================================
# Part 2: rkhs_norm(K, alpha)
# ==============================================================================================================
def _norm_tol(K, alpha) -> tuple[float, float]:
    """(rtol, atol) of a norm: atol is the square root of the rounding of the quadratic form."""
    Kd, ad = _np(K), _np(alpha)
    q_scale = np.abs(Kd).max() * np.sum(np.abs(ad)) ** 2
    if _dtype_of(K, alpha) == "float32":
        return 1e-4, float(np.sqrt(1e-5 * q_scale))
    return 1e-8, float(np.sqrt(1e-10 * q_scale))


def _norm_verdict(got: float, expected: float, K, alpha, square_of: float | None = None) -> tuple[bool, str]:
    rtol, atol = _norm_tol(K, alpha)
    if np.isfinite(got) and abs(got - expected) <= atol + rtol * abs(expected):
        return True, ""
    lines = [f"expected |f|_H = {fmt(expected, 10)}, got {fmt(got, 10)} "
             f"(off by {abs(got - expected):.3g}, allowed {atol + rtol * abs(expected):.3g})"]
    if not np.isfinite(got):
        lines.append("hint: NaN from the square root of a quadratic form that rounded to a tiny negative number: "
                     "for a PSD K, alpha^T K alpha >= 0 in exact arithmetic, so clip it at 0 before the sqrt")
    elif expected > 0 and abs(got - expected ** 2) <= 1e-6 * expected ** 2 + atol and abs(expected - 1) > 1e-3:
        lines.append("hint: you returned |f|_H^2 = alpha^T K alpha; the norm is its square root")
    elif square_of is not None and abs(got - square_of) <= 1e-6 * abs(square_of) + atol:
        lines.append("hint: this is |alpha| (the Euclidean norm of the coefficients); the RKHS norm weighs them "
                     "with K: sqrt(alpha^T K alpha)")
    return False, "\n".join(lines)


# Hand-computed: K = [[2, 1], [1, 2]], alpha = [1, 1]: alpha^T K alpha = 2 + 1 + 1 + 2 = 6; alpha = [1, -1]: 2.
_RN_CASES = [([1.0, 1.0], np.sqrt(6.0)), ([1.0, -1.0], np.sqrt(2.0)), ([0.0, 3.0], 3 * np.sqrt(2.0))]


def _visible_rkhs_norm(report: Report, rkhs_norm: Callable) -> None:
    for alpha, expected in _RN_CASES:
        a = np.array(alpha)
        out = report.call(rkhs_norm, _KR_K.copy(), a.copy(), what=f"rkhs_norm(K=[[2, 1], [1, 2]], alpha={alpha})",
                          convert=_as_scalar)
        report.judge(f"K = [[2, 1], [1, 2]], alpha = {alpha}: sqrt(alpha^T K alpha) = {expected:.6g} by hand", out,
                     _norm_verdict, expected, _KR_K, a, float(np.linalg.norm(a)))
    # f = k(., x_1): |f|_H^2 = <k(., x_1), k(., x_1)> = k(x_1, x_1) (the reproducing property).
    e = np.zeros(4)
    e[2] = 1.0
    out = report.call(rkhs_norm, _KR_K4.copy(), e.copy(), what="rkhs_norm(K 4x4, alpha=e_3)", convert=_as_scalar)
    report.judge("f = k(., x_3): |f|_H = sqrt(k(x_3, x_3)) (reproducing property)", out,
                 _norm_verdict, float(np.sqrt(_KR_K4[2, 2])), _KR_K4, e, 1.0)
    # A singular PSD K: two equal points x_1 = x_2 (rank 1, K all ones); alpha = [1, -1] gives f = 0.
    ones = np.ones((2, 2))
    out = report.call(rkhs_norm, ones.copy(), np.array([1.0, -1.0]), what="rkhs_norm(K=[[1, 1], [1, 1]], "
                      "alpha=[1, -1])", convert=_as_scalar)
    report.judge("singular K = [[1, 1], [1, 1]] (x_1 = x_2), alpha = [1, -1]: f = 0, |f|_H = 0", out,
                 _norm_verdict, 0.0, ones, np.array([1.0, -1.0]), float(np.sqrt(2.0)), gated=True)  # 0 passes
    # Homogeneity |c f| = |c| |f|, with c negative.
    a = np.array([0.5, -1.0, 2.0, 0.25])
    out1 = report.call(rkhs_norm, _KR_K4.copy(), a.copy(), what="rkhs_norm(K 4x4, alpha)", convert=_as_scalar)
    out2 = report.call(rkhs_norm, _KR_K4.copy(), -3 * a, what="rkhs_norm(K 4x4, -3 alpha)", convert=_as_scalar)
    if out1.get("error"):
        report.judge("|(-3) f|_H = 3 |f|_H", out1, lambda v: (False, ""))
    else:
        report.judge("|(-3) f|_H = 3 |f|_H (the norm is homogeneous of degree 1, not 2)", out2,
                     lambda v: (abs(v - 3 * out1["value"]) <= 1e-9 * abs(v) + 1e-12,
                                f"|f|_H = {fmt(out1['value'], 10)} but |-3 f|_H = {fmt(v, 10)} (expected "
                                f"{fmt(3 * out1['value'], 10)})"
                                + ("\nhint: 9 times, not 3 times: did you return the squared norm?"
                                   if abs(v - 9 * out1["value"]) <= 1e-9 * abs(v) else "")),
                     gated=True)  # 0 = 3 * 0: a constant 0 passes it


def _hidden_rkhs_norm(report: Report, rkhs_norm: Callable, grading) -> None:
    for case in grading.rkhs_norm_cases():
        K, alpha = case["K"], case["alpha"]
        out = report.call(rkhs_norm, K, alpha, what=f"rkhs_norm (case: {case['name']})", convert=_as_scalar)
        expected = grading.rkhs_norm(K, alpha)
        report.judge(case["name"], out, _norm_verdict, expected, K, alpha, float(np.linalg.norm(_np(alpha))),
                     gated=expected <= 1e-6 * (float(np.sqrt(np.max(np.abs(_np(K))))) * float(np.linalg.norm(
                         _np(alpha))) + 1e-12))  # f = 0 (up to rounding): a constant 0 passes it


# ==============================================================================================================
# Part 3: random_fourier_features(X, omega, b)
# ==============================================================================================================
def _as_matrix(shape: tuple[int, int], what_shape: str):
    def convert(value: Any, what: str) -> np.ndarray:
        arr = as_array(value, what)
        if arr.shape != shape:
            hint = " (transposed?)" if arr.shape == shape[::-1] else ""
            raise ValueError(f"{what} has shape {arr.shape}; expected {shape} = {what_shape}{hint}")
        return arr
    return convert


# Hand-computed: X = [[0, 0], [1, 2]], omega = [[pi, 0], [0, pi/4], [1, -1/2]], b = [0, pi/2, pi/3]:
# X omega^T + b = [[0, pi/2, pi/3], [pi, pi, pi/3]], cos = [[1, 0, 1/2], [-1, -1, 1/2]], times sqrt(2/3).
_RFF_X = np.array([[0.0, 0.0], [1.0, 2.0]])
_RFF_OMEGA = np.array([[np.pi, 0.0], [0.0, np.pi / 4], [1.0, -0.5]])
_RFF_B = np.array([0.0, np.pi / 2, np.pi / 3])
_RFF_Z = np.sqrt(2 / 3) * np.array([[1.0, 0.0, 0.5], [-1.0, -1.0, 0.5]])
# The answers of three known mistakes on the same input, by hand: X omega^T - b = [[0, -pi/2, -pi/3], [pi, 0, -pi/3]];
# sin(X omega^T + b) = [[0, 1, sqrt(3)/2], [0, 0, sqrt(3)/2]]; cos(X omega^T) = [[1, 1, 1], [-1, 0, 1]].
_RFF_MINUS_B = np.sqrt(2 / 3) * np.array([[1.0, 0.0, 0.5], [-1.0, 1.0, 0.5]])
_RFF_SIN = np.sqrt(2 / 3) * np.array([[0.0, 1.0, np.sqrt(3) / 2], [0.0, 0.0, np.sqrt(3) / 2]])
_RFF_NO_B = np.sqrt(2 / 3) * np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 1.0]])


def _visible_rff(report: Report, random_fourier_features: Callable) -> None:
    out = report.call(random_fourier_features, _RFF_X.copy(), _RFF_OMEGA.copy(), _RFF_B.copy(),
                      what="random_fourier_features(X (2, 2), omega (3, 2), b (3,))", convert=_as_matrix((2, 3), "(n, D)"))
    report.judge("X = [[0, 0], [1, 2]], omega = [[pi, 0], [0, pi/4], [1, -1/2]], b = [0, pi/2, pi/3]: "
                 "sqrt(2/3) [[1, 0, 1/2], [-1, -1, 1/2]] by hand", out,
                 lambda z: compare(z, _RFF_Z, what="Z", rtol=1e-9, atol=1e-12, variants={
                     "the scale is sqrt(2/D), not sqrt(1/D)": _RFF_Z / np.sqrt(2),
                     "the scale is sqrt(2/D) (D = 3 features), not 1": _RFF_Z / np.sqrt(2 / 3),
                     "cos(X omega^T + b), not cos(X omega^T - b)": _RFF_MINUS_B,
                     "cos(X omega^T + b), not sin": _RFF_SIN,
                     "the phase b is missing": _RFF_NO_B}))
    # omega = 0, b = 0: every feature is the constant sqrt(2/D); n = 4, d = 3, D = 5 (all three sizes differ).
    X = np.arange(12.0).reshape(4, 3) / 7
    out = report.call(random_fourier_features, X.copy(), np.zeros((5, 3)), np.zeros(5),
                      what="random_fourier_features(X (4, 3), omega = 0 (5, 3), b = 0 (5,))",
                      convert=_as_matrix((4, 5), "(n, D)"))
    report.judge("omega = 0, b = 0, n = 4, d = 3, D = 5: shape (n, D), every entry sqrt(2/5)", out,
                 lambda z: compare(z, np.full((4, 5), np.sqrt(2 / 5)), what="Z", rtol=0.0, atol=1e-12))
    # b = pi/2 - X omega^T row 0 ... a phase shift: with b -> b + pi the features change sign.
    rng = np.random.default_rng(3)
    X, om, b = rng.normal(size=(6, 3)), rng.normal(size=(8, 3)), rng.uniform(0, 2 * np.pi, 8)
    out1 = report.call(random_fourier_features, X.copy(), om.copy(), b.copy(),
                       what="random_fourier_features(X (6, 3), omega (8, 3), b)", convert=_as_matrix((6, 8), "(n, D)"))
    out2 = report.call(random_fourier_features, X.copy(), om.copy(), b + np.pi,
                       what="random_fourier_features(X, omega, b + pi)", convert=_as_matrix((6, 8), "(n, D)"))
    if out1.get("error"):
        report.judge("b -> b + pi changes the sign of every feature", out1, lambda z: (False, ""))
    else:
        report.judge("b -> b + pi changes the sign of every feature (cos(t + pi) = -cos t)", out2,
                     lambda z: compare(z, -out1["value"], what="Z(b + pi)", rtol=0.0, atol=1e-12))
    # |Z|^2 row sums: sum_j Z_ij^2 = (2/D) sum_j cos^2 <= 2, and the scale: max |Z| <= sqrt(2/D).
    if not out1.get("error"):
        report.judge("entries bounded by sqrt(2/D) = sqrt(2/8) = 0.5", out1,
                     lambda z: (bool(np.all(np.abs(z) <= 0.5 + 1e-12)),
                                f"max |Z| = {fmt(np.abs(z).max(), 8)} > 0.5: the scale is sqrt(2/D) with D = 8"))


def _hidden_rff(report: Report, random_fourier_features: Callable, grading) -> None:
    for case in grading.rff_cases():
        X, om, b = case["X"], case["omega"], case["b"]
        n, D = X.shape[0], om.shape[0]
        out = report.call(random_fourier_features, X, om, b, what=f"random_fourier_features (case: {case['name']})",
                          convert=_as_matrix((n, D), "(n, D)"))
        expected = grading.random_fourier_features(X, om, b)
        atol = FEATURE_ATOL[_dtype_of(X, om, b)]
        if _dtype_of(X, om, b) == "float32":
            # float32 phase rounding: |X omega^T + b| eps32 (the argument of cos is rounded); measured and x4.
            atol = max(atol, 4 * EPS[np.dtype(np.float32)] * float(np.abs(_np(X) @ _np(om).T).max() + 2 * np.pi))
        variants = {"the scale is sqrt(2/D), not sqrt(1/D)": expected / np.sqrt(2)}
        report.judge(case["name"], out, lambda z, e=expected, a=atol, v=variants: compare(
            z, e, what="Z", rtol=1e-6, atol=a, variants=v))


# ==============================================================================================================
# Part 4: laplace_kernel(X1, X2, bandwidth)
# ==============================================================================================================
# Hand-computed: X1 = [[0, 0], [3, 4]], X2 = [[0, 0], [0, 1], [3, 0]]: Euclidean distances [[0, 1, 3],
# [5, sqrt(18), 4]] (L1: [[0, 1, 3], [7, 6, 4]]); bandwidth 2.
_LAP_X1 = np.array([[0.0, 0.0], [3.0, 4.0]])
_LAP_X2 = np.array([[0.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
_LAP_DIST = np.array([[0.0, 1.0, 3.0], [5.0, np.sqrt(18.0), 4.0]])
_LAP_L1 = np.array([[0.0, 1.0, 3.0], [7.0, 6.0, 4.0]])
_LAP_SQ = _LAP_DIST ** 2


def _lap_variants(dist: np.ndarray, l1: np.ndarray | None, bw: float) -> dict:
    out = {"this uses the L1 distance (scikit-learn's laplacian_kernel); the Laplace kernel here uses the "
           "Euclidean norm |x - x'|_2": None if l1 is None else np.exp(-l1 / bw),
           "this is exp(-|x - x'|^2 / bandwidth): the distance is not squared": np.exp(-dist ** 2 / bw),
           "this is the Gaussian kernel exp(-|x - x'|^2 / (2 bandwidth^2)); the Laplace kernel is "
           "exp(-|x - x'| / bandwidth)": np.exp(-dist ** 2 / (2 * bw ** 2)),
           "divide the distance by the bandwidth (not multiply)": np.exp(-dist * bw),
           "divide by the bandwidth, not by its square": np.exp(-dist / bw ** 2),
           "divide by the bandwidth, not by twice it": np.exp(-dist / (2 * bw))}
    return {k: v for k, v in out.items() if v is not None}


def _lap_verdict(K: np.ndarray, expected: np.ndarray, atol: float, variants: dict) -> tuple[bool, str]:
    ok, message = compare(K, expected, what="K", rtol=1e-6, atol=atol, variants=variants)
    if not ok and not np.all(np.isfinite(K)):
        message += ("\nhint: NaN: the squared distance |x|^2 + |x'|^2 - 2<x, x'> rounds to a tiny negative number "
                    "when x = x'; clip it at 0 before the square root (or compute the differences x - x')")
    return ok, message


def _visible_laplace(report: Report, laplace_kernel: Callable) -> None:
    out = report.call(laplace_kernel, _LAP_X1.copy(), _LAP_X2.copy(), 2.0,
                      what="laplace_kernel(X1 (2, 2), X2 (3, 2), bandwidth=2.0)", convert=_as_matrix((2, 3), "(n1, n2)"))
    report.judge("X1 = [[0, 0], [3, 4]], X2 = [[0, 0], [0, 1], [3, 0]], bandwidth 2: exp(-[[0, 1, 3], "
                 "[5, sqrt 18, 4]] / 2) by hand", out,
                 _lap_verdict, np.exp(-_LAP_DIST / 2), 1e-9, _lap_variants(_LAP_DIST, _LAP_L1, 2.0))
    rng = np.random.default_rng(5)
    X = 2.0 + rng.normal(size=(25, 3))
    out = report.call(laplace_kernel, X.copy(), X.copy(), 0.8, what="laplace_kernel(X (25, 3), X, bandwidth=0.8)",
                      convert=_as_matrix((25, 25), "(n1, n2)"))
    report.judge("X with itself (25 points around (2, 2, 2)): 1 on the diagonal (to 1e-6)", out,
                 lambda K: _lap_verdict(np.diag(K).copy(), np.ones(25), KERNEL_ATOL["float64"], {}))
    report.judge("X with itself: symmetric, entries in (0, 1]", out,
                 lambda K: (bool(np.all(np.isfinite(K)) and np.allclose(K, K.T, atol=1e-9) and np.all(K > 0)
                                 and np.all(K <= 1 + 1e-12)),
                            f"symmetric: {np.allclose(K, K.T, atol=1e-9)}, min {fmt(np.nanmin(K))}, "
                            f"max {fmt(np.nanmax(K))}"))
    # Translation invariance and scaling: k(x + c, x' + c) = k(x, x'); scaling X and bandwidth by 3 changes nothing.
    Y = rng.normal(size=(4, 3))
    out1 = report.call(laplace_kernel, X[:5].copy(), Y.copy(), 0.8, what="laplace_kernel(X1 (5, 3), X2 (4, 3), 0.8)",
                       convert=_as_matrix((5, 4), "(n1, n2)"))
    out2 = report.call(laplace_kernel, 3 * X[:5] + 1.0, 3 * Y + 1.0, 2.4,
                       what="laplace_kernel(3 X1 + 1, 3 X2 + 1, 2.4)", convert=_as_matrix((5, 4), "(n1, n2)"))
    if out1.get("error"):
        report.judge("invariant under x -> 3x + 1 with the bandwidth times 3", out1, lambda K: (False, ""))
    else:
        report.judge("rectangular (5, 4) and invariant under x -> 3x + 1 with the bandwidth times 3", out2,
                     lambda K: compare(K, out1["value"], what="K(3 X1 + 1, 3 X2 + 1; 2.4)", rtol=0.0, atol=1e-9))


def _hidden_laplace(report: Report, laplace_kernel: Callable, grading) -> None:
    for case in grading.laplace_cases():
        X1, X2, bw = case["X1"], case["X2"], case["bandwidth"]
        out = report.call(laplace_kernel, X1, X2, bw, what=f"laplace_kernel (case: {case['name']})",
                          convert=_as_matrix((len(X1), len(X2)), "(n1, n2)"))
        expected = grading.laplace_kernel(X1, X2, bw)
        dist = -bw * np.log(np.maximum(expected, 1e-300))
        l1 = np.abs(_np(X1)[:, None, :] - _np(X2)[None, :, :]).sum(-1)
        atol = KERNEL_ATOL[_dtype_of(X1, X2)]
        report.judge(case["name"], out, _lap_verdict, expected, atol, _lap_variants(dist, l1, bw))


# ==============================================================================================================
# Part 5 (experiment): sample_rff(X, bandwidth, D, seed) -> (Z, omega, b)
# ==============================================================================================================
RFF_SEEDS = list(range(40))   # the seeds every check passes to sample_rff (S = 40 draws)
# Thresholds of the two statistics over S = 40 seeds, measured on 200 independent runs of 40 seeds in each of the
# three settings (the visible one and the two hidden ones) with a correct numpy implementation, and on 20 runs of
# wrong ones (tests/test_kernels.py::test_rff_thresholds_separate re-measures a smaller sample).
# T = mean_s |Z_s Z_s^T - K|_F^2 / E|Z Z^T - K|_F^2: correct 0.74-1.29; accepted 0.6-1.5 (margin 0.14 below, 0.21
# above).  Wrong: b ~ U[0, 1] 2.2-21, uniform omega of the right variance 1.0-2.7, omega of scale 1.1/s 1.12-2.5.
# B = S |mean_s Z_s Z_s^T - K|_F^2 / E|Z Z^T - K|_F^2 (mean 1 when unbiased): correct at most 5.45 (the visible
# setting with 6 points has the heaviest tail); accepted <= 10.  Wrong: omega of scale 1.1/s >= 7.6, uniform omega
# >= 4.4, b ~ U[0, 1] >= 46; the mild ones are caught by the checks of the law of omega as well.
RFF_T_RANGE = (0.6, 1.5)
RFF_B_MAX = 10.0


def rff_variance(K: np.ndarray, D: int) -> float:
    """The theory's number: E|Z Z^T - K|_F^2 = (1/D) sum_ij (1 - K_ij^2 + K_ij^4 / 2) for D i.i.d. features
    sqrt(2/D) cos(omega.x + b), omega ~ N(0, I/s^2), b ~ U[0, 2 pi], and K the Gaussian kernel of bandwidth s
    (derived in the chapter; written question of the assignment)."""
    K = np.asarray(K, dtype=np.float64)
    return float(np.sum(1.0 - K ** 2 + K ** 4 / 2.0) / D)


def _as_triple(n: int, d: int, D: int):
    def convert(value: Any, what: str):
        if not isinstance(value, (tuple, list)) or len(value) != 3:
            raise TypeError(f"{what} should be a tuple (Z, omega, b), got {type(value).__name__}"
                            + (f" of length {len(value)}" if isinstance(value, (tuple, list)) else ""))
        Z = _as_matrix((n, D), "(n, D)")(value[0], what + "[0] (Z)")
        omega = _as_matrix((D, d), "(D, d)")(value[1], what + "[1] (omega)")
        b = as_array(value[2], what + "[2] (b)")
        if b.shape != (D,):
            raise ValueError(f"{what}[2] (b) has shape {b.shape}; expected ({D},)")
        return {"Z": Z, "omega": omega, "b": b}
    return convert


def _draws(report: Report, sample_rff: Callable, X, bw, D, label: str) -> list[dict]:
    n, d = X.shape
    return [report.call(sample_rff, X.copy(), bw, D, seed, what=f"sample_rff({label}, seed={seed})",
                        convert=_as_triple(n, d, D)) for seed in RFF_SEEDS]


def _first_error(outs: list[dict]) -> dict | None:
    return next((o for o in outs if o.get("error")), None)


def _rff_statistics(report: Report, outs: list[dict], X, bw, D, K: np.ndarray, label: str,
                    again: dict | None = None) -> None:
    """The checks on S draws: reproducible seeds, the law of omega and b, and the two statistics of Z Z^T."""
    bad = _first_error(outs)
    combined = bad or {"value": [o["value"] for o in outs]}
    if again is not None:
        report.judge(f"{label}: the same seed gives the same draw, different seeds different ones",
                     again if again.get("error") else combined, lambda vs: _reproducible(vs, again["value"]))
    report.judge(f"{label}: omega has i.i.d. N(0, 1/s^2) entries (s = {bw}): mean 0, variance 1/s^2 = "
                 f"{1 / bw ** 2:.4g}, Gaussian kurtosis 3 (pooled over {len(outs)} seeds)", combined,
                 lambda vs: _omega_law(np.concatenate([v["omega"].ravel() for v in vs]), bw))
    report.judge(f"{label}: b uniform on [0, 2 pi] (range and mean pi)", combined,
                 lambda vs: _b_law(np.concatenate([v["b"] for v in vs])))
    V = rff_variance(K, D)
    report.judge(f"{label}: the mean of Z Z^T over {len(outs)} seeds tends to the Gaussian kernel "
                 f"(S |mean - K|_F^2 / E|Z Z^T - K|_F^2 <= {RFF_B_MAX:g}; about 1 when unbiased)", combined,
                 lambda vs: _bias(np.array([v["Z"] @ v["Z"].T for v in vs]), K, V))
    report.judge(f"{label}: mean squared error |Z Z^T - K|_F^2 over {len(outs)} seeds equals the theory's "
                 f"(1/D) sum_ij (1 - K_ij^2 + K_ij^4 / 2) = {V:.4g} (ratio within {RFF_T_RANGE})", combined,
                 lambda vs: _variance(np.array([v["Z"] @ v["Z"].T for v in vs]), K, V))


def _reproducible(values: list[dict], again: dict) -> tuple[bool, str]:
    first = values[0]
    same = all(np.array_equal(first[k], again[k]) for k in ("Z", "omega", "b"))
    if not same:
        return False, ("two calls with seed 0 returned different draws: create a generator from the seed "
                       "(np.random.default_rng(seed)) and draw omega and b from it, not from the global state")
    distinct = len({v["omega"].tobytes() for v in values})
    if distinct < len(values):
        return False, (f"only {distinct} different omega over {len(values)} different seeds: use the seed argument")
    return True, ""


def _omega_law(w: np.ndarray, bw: float) -> tuple[bool, str]:
    m, v = float(w.mean()), float(w.var())
    kurt = float(np.mean((w - m) ** 4) / v ** 2) if v > 0 else 0.0
    target = 1 / bw ** 2
    lines = []
    # Pooled over S D d >= 24000 entries: sd(mean) <= 0.0065/s, sd(var)/var <= 0.0092, sd(kurtosis) <= 0.032.
    if abs(m) * bw > 0.05:
        lines.append(f"mean of the entries {m:.4g}, expected 0")
    if abs(v / target - 1) > 0.06:
        hint = ""
        if abs(v / bw ** 2 - 1) < 0.06:
            hint = " (this is s^2: the frequencies of the Gaussian kernel of bandwidth s have variance 1/s^2)"
        elif abs(v / (1 / bw) - 1) < 0.06:
            hint = " (this is 1/s: divide the standard normal draws by s, not by sqrt(s))"
        lines.append(f"variance of the entries {v:.4g}, expected 1/s^2 = {target:.4g}{hint}")
    if abs(kurt - 3) > 0.3:
        lines.append(f"kurtosis E[(w - m)^4] / var^2 = {kurt:.3g}, a normal law has 3 (uniform 1.8)")
    return (not lines), "\n".join(lines)


def _b_law(b: np.ndarray) -> tuple[bool, str]:
    lines = []
    if b.min() < -1e-6 or b.max() > 2 * np.pi + 1e-6:
        lines.append(f"b ranges over [{b.min():.4g}, {b.max():.4g}], outside [0, 2 pi]")
    # S D >= 8000 values: sd(mean) <= 0.02, sd(fraction above 3 pi / 2) <= 0.005.
    if abs(b.mean() - np.pi) > 0.15:
        lines.append(f"mean of b {b.mean():.4g}, expected pi for U[0, 2 pi]")
    if abs(np.mean(b > 1.5 * np.pi) - 0.25) > 0.05:
        lines.append(f"{np.mean(b > 1.5 * np.pi):.3f} of the b lie above 3 pi / 2, expected 1/4 for U[0, 2 pi]")
    return (not lines), "\n".join(lines)


def _bias(G: np.ndarray, K: np.ndarray, V: float) -> tuple[bool, str]:
    B = len(G) * float(np.sum((G.mean(0) - K) ** 2)) / V
    if B <= RFF_B_MAX:
        return True, ""
    worst = np.unravel_index(np.argmax(np.abs(G.mean(0) - K)), K.shape)
    return False, (f"S |mean Z Z^T - K|_F^2 / E|Z Z^T - K|_F^2 = {B:.4g} > {RFF_B_MAX:g}: your features are a "
                   f"biased estimate of the Gaussian kernel; worst entry {tuple(int(i) for i in worst)}: mean of "
                   f"(Z Z^T) = {fmt(G.mean(0)[worst], 6)}, K = {fmt(K[worst], 6)}")


def _variance(G: np.ndarray, K: np.ndarray, V: float) -> tuple[bool, str]:
    T = float(np.mean([np.sum((g - K) ** 2) for g in G])) / V
    lo, hi = RFF_T_RANGE
    if lo <= T <= hi:
        return True, ""
    return False, (f"mean |Z Z^T - K|_F^2 = {T * V:.4g}, the theory's {V:.4g} (ratio {T:.3g}, accepted "
                   f"{lo}-{hi})" + ("\nhint: far too large: check the scale sqrt(2/D) and the law of omega and b"
                                    if T > 3 else ""))


# The visible setting: 6 points of the integer grid in d = 2, bandwidth 1, D = 100. Their squared distances, written
# out (tests/test_kernels.py recomputes them), give the Gaussian kernel exp(-sq / 2).
_VIS_X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [0.0, 2.0]])
_VIS_SQ = np.array([[0, 1, 1, 2, 5, 4], [1, 0, 2, 1, 2, 5], [1, 2, 0, 1, 4, 1],
                    [2, 1, 1, 0, 1, 2], [5, 2, 4, 1, 0, 5], [4, 5, 1, 2, 5, 0]], dtype=float)


def _visible_sample_rff(report: Report, sample_rff: Callable) -> None:
    bw, D = 1.0, 100
    label = "6 grid points in d = 2, bandwidth 1, D = 100"
    outs = _draws(report, sample_rff, _VIS_X, bw, D, label)
    again = report.call(sample_rff, _VIS_X.copy(), bw, D, RFF_SEEDS[0], what=f"sample_rff({label}, seed=0) again",
                        convert=_as_triple(6, 2, D))
    _rff_statistics(report, outs, _VIS_X, bw, D, np.exp(-_VIS_SQ / (2 * bw ** 2)), label, again)


def _hidden_sample_rff(report: Report, sample_rff: Callable, grading) -> None:
    for case in grading.rff_experiment_cases():
        X, bw, D = case["X"], case["bandwidth"], case["D"]
        outs = _draws(report, sample_rff, X, bw, D, case["name"])
        _rff_statistics(report, outs, X, bw, D, grading.gaussian_kernel(X, X, bw), case["name"])
        bad = _first_error(outs)

        def features_match(vs, X=X):
            for seed, v in zip(RFF_SEEDS, vs):
                ok, message = close(v["Z"], grading.random_fourier_features(X, v["omega"], v["b"]), rtol=0.0,
                                    atol=FEATURE_ATOL["float32"])
                if not ok:
                    return False, f"seed {seed}: Z is not sqrt(2/D) cos(X omega^T + b) of the omega and b returned: " \
                                  + message
            return True, ""
        report.judge(f"{case['name']}: Z = sqrt(2/D) cos(X omega^T + b) of the returned omega and b", bad or
                     {"value": [o["value"] for o in outs]}, features_match)


# ==============================================================================================================
# The topic: parts and points, declared once
# ==============================================================================================================
TOPIC = Topic("kernels", [
    Part("kernel_ridge", 3, _visible_kernel_ridge, _hidden_kernel_ridge),
    Part("rkhs_norm", 2, _visible_rkhs_norm, _hidden_rkhs_norm),
    Part("random_fourier_features", 2, _visible_rff, _hidden_rff),
    Part("laplace_kernel", 3, _visible_laplace, _hidden_laplace),
    Part("sample_rff", 3, _visible_sample_rff, _hidden_sample_rff),
    Written("written_rff_variance", 2),
    Written("written_interpolation", 2),
])

check_kernel_ridge = TOPIC.checker("kernel_ridge")
check_rkhs_norm = TOPIC.checker("rkhs_norm")
check_random_fourier_features = TOPIC.checker("random_fourier_features")
check_laplace_kernel = TOPIC.checker("laplace_kernel")
check_sample_rff = TOPIC.checker("sample_rff")
