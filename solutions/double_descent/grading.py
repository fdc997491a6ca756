"""Instructor-only half of the `double_descent` checks: reference implementations and the hidden cases.

This file is never released (nbgrader_config.py lists ``grading.py`` in ``CourseDirectory.ignore``); the student
side of the course (``exercises/`` and the ``autograder`` package) carries no reference implementation.  The
references are written independently of the solution notebook, by other algorithms:

* ``min_norm_least_squares``: an explicit thin SVD in float64 with the relative cutoff of book/conventions.md
  (1e-10 of the largest singular value for float64 inputs, 1e-5 for float32 ones); the notebook calls
  ``np.linalg.lstsq``;
* ``isotropic_ridgeless_risk``: the two regimes written as bias + variance, r2 (gamma - 1) / gamma and
  sigma2 / (gamma - 1) (the notebook writes 1 - 1/gamma);
* ``random_features``: an einsum in float64 with one division by sqrt(d N) (the notebook divides twice);
* ``effective_ranks``: Python's ``sorted`` and ``math.fsum`` over the tail (the notebook uses ``np.sort`` and
  reversed cumulative sums);
* ``rf_double_descent``: the three references above, N by N.

``tests/test_double_descent.py`` checks each against the solution notebook and against independent
computations (closed forms, ``np.linalg.pinv``, Hypothesis properties).
"""
from __future__ import annotations

import functools
import math

import numpy as np

from autograder.double_descent import teacher_data  # noqa: F401  (the experiment's data, a statement)

# --------------------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------------------
RANK_CUTOFF = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def _dtype(a) -> np.dtype:
    """float32 for float32 numpy arrays and tensors, else float64."""
    try:
        import torch
        if isinstance(a, torch.Tensor):
            return np.dtype(np.float32) if a.dtype == torch.float32 else np.dtype(np.float64)
    except ImportError:  # pragma: no cover
        pass
    return np.dtype(np.float32) if np.asarray(a).dtype == np.float32 else np.dtype(np.float64)


def _f64(a) -> np.ndarray:
    try:
        import torch
        if isinstance(a, torch.Tensor):
            return a.detach().to("cpu", torch.float64).numpy().copy()
    except ImportError:  # pragma: no cover
        pass
    return np.array(a, dtype=np.float64)


def min_norm_least_squares(X, y) -> np.ndarray:
    """argmin |w| over the minimizers of |X w - y|^2: V_r diag(1/s_r) U_r^T y over the singular values above
    the relative cutoff (computed in float64)."""
    cutoff = RANK_CUTOFF[_dtype(X)]
    X, y = _f64(X), _f64(y)
    if X.size == 0:
        return np.zeros(X.shape[1])
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    keep = s > cutoff * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, dtype=bool)
    return Vt[keep].T @ ((U[:, keep].T @ y) / s[keep])


def isotropic_ridgeless_risk(gamma, r2, sigma2) -> float:
    """Hastie, Montanari, Rosset & Tibshirani (2022): the limit of E[(x^T (w_hat - beta))^2], x ~ N(0, I_p)."""
    gamma, r2, sigma2 = float(gamma), float(r2), float(sigma2)
    if gamma == 1.0:
        return math.inf
    if gamma < 1.0:
        return sigma2 * gamma / (1.0 - gamma)            # variance only: least squares is unbiased
    return r2 * (gamma - 1.0) / gamma + sigma2 / (gamma - 1.0)   # bias + variance


def random_features(X, W) -> np.ndarray:
    """relu(X W^T / sqrt(d)) / sqrt(N), in float64."""
    X, W = _f64(X), _f64(W)
    d, N = X.shape[1], W.shape[0]
    return np.maximum(np.einsum("ik,jk->ij", X, W), 0.0) / math.sqrt(d * N)


def effective_ranks(eigenvalues, k) -> tuple[float, float]:
    """(r_k, R_k) of Bartlett, Long, Lugosi & Tsigler (2020), with exactly rounded tail sums."""
    lam = sorted((float(v) for v in _f64(eigenvalues).reshape(-1)), reverse=True)
    tail = lam[int(k):]
    s1 = math.fsum(tail)
    s2 = math.fsum(v * v for v in tail)
    return s1 / tail[0], s1 * s1 / s2


def rf_double_descent(X_train, y_train, X_test, y_test, W, Ns) -> np.ndarray:
    """Test mean squared error of min-norm least squares on the first N random features, for each N in Ns."""
    out = []
    for N in Ns:
        Wn = _f64(W)[: int(N)]
        a = min_norm_least_squares(random_features(X_train, Wn), _f64(y_train))
        out.append(np.mean((random_features(X_test, Wn) @ a - _f64(y_test)) ** 2))
    return np.array(out)


# --------------------------------------------------------------------------------------------------------------
# Hidden cases (plain data)
# --------------------------------------------------------------------------------------------------------------
def _rank_deficient(rng, n, p, r):
    return rng.normal(size=(n, r)) @ rng.normal(size=(r, p))


def min_norm_cases() -> list[dict]:
    rng = np.random.default_rng(1401)
    cases = []

    def add(name, X, y, float32_ok=True, gated=False):
        # gated: a case whose answer an unrelated method also gives (any interpolant, or w = 0): it counts once a
        # case that is not gated passes
        cases.append({"name": name, "X": X, "y": y, "gated": gated})

    add("underdetermined 30 x 80 (full row rank): the interpolant of least norm",
        rng.normal(size=(30, 80)), rng.normal(size=30))
    add("overdetermined 90 x 25 (full column rank): ordinary least squares",
        rng.normal(size=(90, 25)), rng.normal(size=90))
    add("square 40 x 40, invertible: X^-1 y", rng.normal(size=(40, 40)) + 8 * np.eye(40), rng.normal(size=40),
        gated=True)  # the only interpolant: any interpolating method gives it
    add("wide and rank-deficient 40 x 60 of rank 10 (neither X X^T nor X^T X is invertible)",
        _rank_deficient(rng, 40, 60, 10), rng.normal(size=40))
    add("tall and rank-deficient 70 x 30 of rank 12", _rank_deficient(rng, 70, 30, 12), rng.normal(size=70))
    X = rng.normal(size=(25, 8))
    X[:, 3] = X[:, 1]          # a duplicated column: the two weights must be equal
    X[:, 6] = 0.0              # a zero column: its weight must be 0
    add("25 x 8 with a duplicated column and a zero column", X, rng.normal(size=25))
    add("one row 1 x 12: w = x y / |x|^2", rng.normal(size=(1, 12)), rng.normal(size=1))
    add("one column 20 x 1: w = <x, y> / |x|^2", rng.normal(size=(20, 1)), rng.normal(size=20))
    add("X = 0 (rank 0): w = 0", np.zeros((6, 9)), rng.normal(size=6), gated=True)  # what w = 0 also gives
    add("y in the column space of a rank-deficient X: an exact fit of least norm",
        *(lambda A: (A, A @ rng.normal(size=50)))(_rank_deficient(rng, 30, 50, 7)))
    add("features of very different scales (columns scaled by 1e-3 .. 1e3), 20 x 35",
        rng.normal(size=(20, 35)) * np.logspace(-3, 3, 35), rng.normal(size=20))
    add("float32 input, underdetermined 20 x 50", rng.normal(size=(20, 50)).astype(np.float32),
        rng.normal(size=20).astype(np.float32))
    add("float32 input, overdetermined 60 x 15", rng.normal(size=(60, 15)).astype(np.float32),
        rng.normal(size=60).astype(np.float32))
    return cases


def risk_cases() -> list[dict]:
    # No answer is 0, 1, 2 or one of the arguments (a constant or a function returning its argument earns nothing).
    out = []
    for gamma, r2, sigma2 in [(0.2, 1.0, 1.0), (0.4, 3.0, 0.25), (0.9, 2.0, 1.5), (0.999, 1.0, 1.0),
                              (1.001, 1.0, 1.0), (1.1, 5.0, 0.5), (2.0, 1.0, 1.0), (3.7, 2.5, 0.3),
                              (50.0, 1.0, 2.0), (1e-3, 4.0, 1.0), (4.0, 1.0, 0.0), (0.3, 0.0, 2.0),
                              (2.5, 0.0, 1.0), (1e4, 3.0, 1.0)]:
        out.append({"name": f"gamma = {gamma:g}, r2 = {r2:g}, sigma2 = {sigma2:g}", "gamma": gamma, "r2": r2,
                    "sigma2": sigma2})
    return out


def random_features_cases() -> list[dict]:
    rng = np.random.default_rng(1402)
    out = []
    for n, d, N in [(7, 5, 11), (30, 12, 12), (1, 4, 9), (10, 1, 3), (6, 9, 1), (50, 20, 200)]:
        out.append({"name": f"X ({n}, {d}), W ({N}, {d})", "X": rng.normal(size=(n, d)) * 1.7,
                    "W": rng.normal(size=(N, d))})
    out.append({"name": "X (20, 8), W (30, 8) in float32", "X": rng.normal(size=(20, 8)).astype(np.float32),
                "W": rng.normal(size=(30, 8)).astype(np.float32)})
    out.append({"name": "X (15, 6), W (6, 6): a square, non-symmetric W (W^T and W differ)",
                "X": rng.normal(size=(15, 6)), "W": rng.normal(size=(6, 6)) + 2 * np.triu(np.ones((6, 6)))})
    return out


def effective_ranks_cases() -> list[dict]:
    rng = np.random.default_rng(1403)
    out = []
    power = 1.0 / np.arange(1, 401) ** 1.5
    out.append({"name": "power law i^-1.5, p = 400, given in increasing order, k = 0", "eigenvalues": power[::-1].copy(),
                "k": 0})
    out.append({"name": "power law i^-1.5, p = 400, shuffled, k = 17", "eigenvalues": rng.permutation(power), "k": 17})
    ll = 1.0 / (np.arange(1, 1001) * np.log(np.arange(1, 1001) + 1) ** 2)
    out.append({"name": "lambda_i = 1 / (i log^2(i + 1)), p = 1000 (the benign example), shuffled, k = 40",
                "eigenvalues": rng.permutation(ll), "k": 40})
    spike = np.concatenate([np.full(5, 10.0), np.full(300, 0.01)])
    out.append({"name": "5 spikes of 10 and 300 eigenvalues 0.01, shuffled, k = 5 (the flat tail: r = R = 300)",
                "eigenvalues": rng.permutation(spike), "k": 5})
    out.append({"name": "the same spectrum, k = 3", "eigenvalues": rng.permutation(spike), "k": 3})
    out.append({"name": "isotropic, p = 50, k = 49 (one eigenvalue left: r = R = 1)", "eigenvalues": np.full(50, 2.5),
                "k": 49})
    z = np.concatenate([rng.uniform(0.5, 3, 20), np.zeros(6)])
    out.append({"name": "20 positive eigenvalues and 6 zeros, shuffled, k = 12", "eigenvalues": rng.permutation(z),
                "k": 12})
    out.append({"name": "geometric 0.8^i, p = 60, k = 10", "eigenvalues": 0.8 ** np.arange(60), "k": 10})
    out.append({"name": "float32 spectrum (uniform), p = 300, k = 7",
                "eigenvalues": rng.uniform(0.1, 2.0, 300).astype(np.float32), "k": 7})
    out.append({"name": "a list-like torch tensor spectrum, p = 30, k = 2", "eigenvalues": rng.exponential(size=30),
                "k": 2, "torch": True})
    return out


@functools.lru_cache(maxsize=32)
def rf_reference(seed: int, Ns: tuple) -> np.ndarray:
    """The reference test errors of the experiment on ``teacher_data(seed)`` (cached: the hidden checks of every
    submission use the same seeds)."""
    return rf_double_descent(*teacher_data(seed), Ns)


def rf_experiment_seeds() -> list[int]:
    return [101, 102, 103, 104, 105]


# --------------------------------------------------------------------------------------------------------------
# Known mistakes (hint -> the answer the mistake gives), for the feedback of the hidden checks
# --------------------------------------------------------------------------------------------------------------
def risk_variants(gamma, r2, sigma2) -> dict:
    g, r2, s2 = float(gamma), float(r2), float(sigma2)
    if g == 1.0:
        return {}
    if g < 1.0:
        return {"this is r2 (1 - 1/gamma) + sigma2 / (gamma - 1), the formula above the threshold":
                r2 * (1 - 1 / g) + s2 / (g - 1),
                "the variance is sigma2 gamma / (1 - gamma): the factor gamma is missing": s2 / (1 - g),
                "this is the test error: the risk excludes the noise sigma2": s2 * g / (1 - g) + s2}
    return {"this is sigma2 gamma / (1 - gamma), the formula below the threshold": s2 * g / (1 - g),
            "the bias term r2 (1 - 1/gamma) is missing": s2 / (g - 1),
            "the variance term sigma2 / (gamma - 1) is missing": r2 * (1 - 1 / g),
            "the bias is r2 (1 - 1/gamma), not r2 / gamma": r2 / g + s2 / (g - 1),
            "this is the test error: the risk excludes the noise sigma2": r2 * (1 - 1 / g) + s2 / (g - 1) + s2}


def random_features_variants(X, W) -> dict:
    X, W = _f64(X), _f64(W)
    d, N = X.shape[1], W.shape[0]
    pre = X @ W.T
    out = {"the factor 1/sqrt(N) is missing": np.maximum(pre, 0) / np.sqrt(d),
           "the factor 1/sqrt(d) is missing": np.maximum(pre, 0) / np.sqrt(N),
           "divide by sqrt(N) and sqrt(d), not by N and d": np.maximum(pre, 0) / (d * N),
           "|.| instead of relu": np.abs(pre) / np.sqrt(d * N)}
    if W.shape[0] == W.shape[1]:
        out["you used X W instead of X W^T (W has one row per feature)"] = np.maximum(X @ W, 0) / np.sqrt(d * N)
    return out


def effective_ranks_variants(eigenvalues, k) -> dict:
    lam = _f64(eigenvalues).reshape(-1)
    s = np.sort(lam)[::-1]
    k = int(k)

    def pair(tail, head):
        t1, t2 = tail.sum(), (tail ** 2).sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.array([t1 / head, t1 ** 2 / t2])
    out = {}
    if k + 1 < len(s):
        out["the tail sum_{i>k} starts at lambda_{k+1} (1-based): yours starts one later"] = pair(s[k + 1:], s[k + 1])
    if k >= 1:
        out["r_k divides by lambda_{k+1}, the first eigenvalue of the tail, not by lambda_k"] = pair(s[k:], s[k - 1])
    a = np.sort(lam)
    out["sort in decreasing order: lambda_1 is the largest"] = pair(a[k:], a[k])
    out["the spectrum comes in any order: sort a copy in decreasing order first"] = pair(lam[k:], lam[k])
    t = s[k:]
    out["R_k is (sum lambda_i)^2 / sum lambda_i^2, not its inverse"] = np.array([t.sum() / s[k],
                                                                               (t ** 2).sum() / t.sum() ** 2])
    out["r_k divides by lambda_{k+1}, not by lambda_1"] = np.array([t.sum() / s[0], t.sum() ** 2 / (t ** 2).sum()])
    return out
