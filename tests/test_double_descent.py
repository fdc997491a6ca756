"""Tests of the `double_descent` checks: wrong implementations lose points, correct alternatives keep full marks,
the references agree with independent computations, the visible literals are what the reference computes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_limits

from autograder import double_descent as dd
from autograder.core import instructor_module
from tests.grading import AlwaysEqual, Grader, noisy, stub
from tests.notebooks import solution_namespace

G = Grader(dd)
grading = instructor_module("double_descent")
SOLUTION = solution_namespace("double_descent")
PARTS = ["min_norm_least_squares", "isotropic_ridgeless_risk", "random_features", "effective_ranks",
         "rf_double_descent"]


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    # Small matrices on a shared machine: several BLAS threads only slow these tests down.
    with threadpool_limits(limits=1):
        yield


def _np(a):
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


# ==============================================================================================================
# min_norm_least_squares
# ==============================================================================================================
def mn_pinv(X, y):
    return np.linalg.pinv(_np(X)) @ _np(y)


def mn_torch(X, y):
    Xt = torch.as_tensor(_np(X))
    yt = torch.as_tensor(_np(y))
    return torch.linalg.pinv(Xt) @ yt


def mn_scipy(X, y):
    return scipy.linalg.lstsq(_np(X), _np(y))[0]


def mn_branches(X, y):
    """X^T (X X^T)^-1 y for full row rank, (X^T X)^-1 X^T y for full column rank, else an SVD."""
    X, y = _np(X), _np(y)
    n, p = X.shape
    r = np.linalg.matrix_rank(X)
    if r == n and n > 0:
        return X.T @ np.linalg.solve(X @ X.T, y)
    if r == p:
        return np.linalg.solve(X.T @ X, X.T @ y)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    keep = s > 1e-10 * s[0] if s.size and s[0] > 0 else np.zeros(s.shape, bool)
    return Vt[keep].T @ (U[:, keep].T @ y / s[keep])


def mn_qr_rows(X, y):
    """QR of X^T when X has full row rank, else pinv."""
    X, y = _np(X), _np(y)
    if np.linalg.matrix_rank(X) == X.shape[0] and X.shape[0] <= X.shape[1]:
        Q, R = np.linalg.qr(X.T)
        return Q @ scipy.linalg.solve_triangular(R.T, y, lower=True)
    return np.linalg.pinv(X) @ y


MN_WRONG = {
    "always X^T (X X^T)^-1 y": lambda X, y: _np(X).T @ np.linalg.solve(_np(X) @ _np(X).T, _np(y)),
    "always (X^T X)^-1 X^T y": lambda X, y: np.linalg.solve(_np(X).T @ _np(X), _np(X).T @ _np(y)),
    "ridge 1e-3": lambda X, y: np.linalg.solve(_np(X).T @ _np(X) + 1e-3 * np.eye(_np(X).shape[1]), _np(X).T @ _np(y)),
    "plus a null-space component": lambda X, y: mn_pinv(X, y) + (np.eye(_np(X).shape[1]) - np.linalg.pinv(_np(X))
                                                                 @ _np(X)) @ np.ones(_np(X).shape[1]),
    "rank cutoff 1e-3": lambda X, y: np.linalg.pinv(_np(X), rcond=1e-3) @ _np(y),
    "X^T y / n": lambda X, y: _np(X).T @ _np(y) / _np(X).shape[0],
    "intercept: centred y": lambda X, y: mn_pinv(X, _np(y) - _np(y).mean()),
    "computed in float32": lambda X, y: np.linalg.pinv(_np(X).astype(np.float32)) @ _np(y).astype(np.float32),
    "200 GD steps from 0": None,
    "centres y in place": None,
}


def _gd(X, y, steps=200):
    X, y = _np(X).astype(float), _np(y).astype(float)
    L = max(np.linalg.norm(X, 2) ** 2, 1e-12)
    w = np.zeros(X.shape[1])
    for _ in range(steps):
        w -= X.T @ (X @ w - y) / L
    return w


def _centre_in_place(X, y):
    y -= y.mean()
    return mn_pinv(X, y)


MN_WRONG["200 GD steps from 0"] = _gd
MN_WRONG["centres y in place"] = _centre_in_place


@pytest.mark.parametrize("name", list(MN_WRONG))
def test_min_norm_wrong_implementations_lose_points(name):
    G.assert_loses("min_norm_least_squares", MN_WRONG[name])


@pytest.mark.parametrize("fn", [mn_pinv, mn_torch, mn_scipy, mn_branches, mn_qr_rows,
                                lambda X, y: np.linalg.lstsq(_np(X), _np(y), rcond=None)[0], noisy(mn_pinv)])
def test_min_norm_correct_alternatives_keep_full_marks(fn):
    G.assert_full("min_norm_least_squares", fn)


def test_min_norm_hints_name_the_mistake():
    text = G.assert_loses("min_norm_least_squares", MN_WRONG["plus a null-space component"])
    assert "null space" in text
    text = G.assert_loses("min_norm_least_squares", MN_WRONG["ridge 1e-3"])
    assert "ridge" in text or "shorter" in text


def _min_l1_interpolant(X, y):
    """argmin |w|_1 subject to X w = y (a linear program on w = p - q, p, q >= 0): it interpolates whenever X has
    full row rank, and is not the minimum-l2-norm solution."""
    from scipy.optimize import linprog
    X, y = _np(X).astype(float), _np(y).astype(float)
    d = X.shape[1]
    res = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=[(0, None)] * (2 * d), method="highs")
    return res.x[:d] - res.x[d:]


@pytest.mark.parametrize("name, fn", [
    ("an interpolant that is not of minimum l2 norm", _min_l1_interpolant),
    ("the zero vector (in the row space of every X)", lambda X, y: np.zeros(_np(X).shape[1])),
])
def test_min_norm_a_property_alone_earns_nothing(name, fn):
    """Interpolation and membership of the row space each hold for answers that are not the minimum-norm
    solution: gated, they earn nothing until a value check passes (and they do pass here)."""
    for tests in ("visible", "all"):
        points, text = G.grade("min_norm_least_squares", fn, tests)
        assert points == 0, text
    assert "not credited yet" in text


def test_min_norm_gated_properties_count_once_a_value_is_right():
    """Gating withdraws credit only from answers that get no value right: a function right on one value case
    (the 2 x 4 one) and a minimum-l1 interpolant elsewhere earns the interpolation check too."""
    def right_on_the_first_case(X, y):
        X = _np(X)
        return grading.min_norm_least_squares(X, y) if X.shape == (2, 4) else _min_l1_interpolant(X, y)
    points, text = G.grade("min_norm_least_squares", right_on_the_first_case, "visible")
    assert 0 < points < G.points("min_norm_least_squares"), text
    assert "not credited yet" not in text


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), p=st.integers(1, 12), r=st.integers(0, 12), seed=st.integers(0, 10 ** 6))
def test_min_norm_reference_is_characterized_by_normal_equations_and_row_space(n, p, r, seed):
    rng = np.random.default_rng(seed)
    r = min(r, n, p)
    X = rng.normal(size=(n, r)) @ rng.normal(size=(r, p)) if r else np.zeros((n, p))
    y = rng.normal(size=n)
    w = grading.min_norm_least_squares(X, y)
    scale = 1 + np.abs(X).max() ** 2 * (1 + np.abs(w).max())
    assert np.abs(X.T @ (X @ w - y)).max() < 1e-8 * scale
    if r:
        c = np.linalg.lstsq(X.T, w, rcond=None)[0]
        assert np.abs(X.T @ c - w).max() < 1e-8 * (1 + np.abs(w).max())
    else:
        assert np.all(w == 0)
    np.testing.assert_allclose(w, np.linalg.pinv(X, rcond=1e-10) @ y, atol=1e-8 * (1 + np.abs(w).max()))


# ==============================================================================================================
# isotropic_ridgeless_risk
# ==============================================================================================================
def risk_numpy(gamma, r2, sigma2):
    g = np.float64(gamma)
    with np.errstate(divide="ignore"):
        return np.where(g < 1, sigma2 * g / (1 - g), r2 * (1 - 1 / g) + sigma2 / (g - 1)) if g != 1 else np.inf


def risk_torch(gamma, r2, sigma2):
    g = torch.tensor(float(gamma), dtype=torch.float64)
    if g == 1:
        return torch.tensor(math.inf)
    return sigma2 * g / (1 - g) if g < 1 else r2 * (g - 1) / g + sigma2 / (g - 1)


def risk_numpy_division(gamma, r2, sigma2):
    """else-branch at gamma = 1: numpy divides by zero and returns inf (with a warning, captured)."""
    g = np.float64(gamma)
    if g < 1:
        return sigma2 * g / (1 - g)
    return r2 * (1 - 1 / g) + sigma2 / (g - np.float64(1))


RISK_WRONG = {
    "regimes swapped": lambda g, r2, s2: math.inf if g == 1 else (s2 * g / (1 - g) if g > 1 else
                                                                   r2 * (1 - 1 / g) + s2 / (g - 1)),
    "factor gamma missing": lambda g, r2, s2: math.inf if g == 1 else (s2 / (1 - g) if g < 1 else
                                                                        r2 * (1 - 1 / g) + s2 / (g - 1)),
    "bias missing": lambda g, r2, s2: math.inf if g == 1 else (s2 * g / (1 - g) if g < 1 else s2 / (g - 1)),
    "variance missing above": lambda g, r2, s2: math.inf if g == 1 else (s2 * g / (1 - g) if g < 1 else
                                                                          r2 * (1 - 1 / g)),
    "bias r2 / gamma": lambda g, r2, s2: math.inf if g == 1 else (s2 * g / (1 - g) if g < 1 else
                                                                   r2 / g + s2 / (g - 1)),
    "raises at gamma = 1": lambda g, r2, s2: s2 * g / (1 - g) if g < 1 else r2 * (1 - 1 / g) + s2 / (g - 1),
    "nan at gamma = 1": lambda g, r2, s2: math.nan if g == 1 else grading.isotropic_ridgeless_risk(g, r2, s2),
    "a large finite number at gamma = 1": lambda g, r2, s2: 1e300 if g == 1 else
    grading.isotropic_ridgeless_risk(g, r2, s2),
    "test error (adds sigma2)": lambda g, r2, s2: math.inf if g == 1 else
    grading.isotropic_ridgeless_risk(g, r2, s2) + s2,
    "bias added below the threshold too": lambda g, r2, s2: math.inf if g == 1 else (
        s2 * g / (1 - g) + r2 * abs(1 - 1 / g) if g < 1 else r2 * (1 - 1 / g) + s2 / (g - 1)),
    "returns a string": lambda g, r2, s2: str(grading.isotropic_ridgeless_risk(g, r2, s2)),
}


@pytest.mark.parametrize("name", list(RISK_WRONG))
def test_risk_wrong_implementations_lose_points(name):
    G.assert_loses("isotropic_ridgeless_risk", RISK_WRONG[name])


@pytest.mark.parametrize("fn", [lambda g, r2, s2: 1.0, lambda g, r2, s2: 2.0, lambda g, r2, s2: 0.0,
                                lambda g, r2, s2: math.inf, lambda g, r2, s2: r2, lambda g, r2, s2: s2,
                                lambda g, r2, s2: max(abs(g), abs(r2), abs(s2))],
                         ids=["constant 1", "constant 2", "constant 0", "constant inf", "returns r2", "returns sigma2",
                              "largest |argument|"])
def test_risk_trivial_answers_earn_nothing(fn):
    """No value check has 0, 1, 2 or an argument for answer; the checks a constant or an argument passes (math.inf
    at gamma = 1, the limit r2 as gamma -> infinity) are gated: they count once a value is right."""
    for tests in ("visible", "all"):
        points, text = G.grade("isotropic_ridgeless_risk", fn, tests)
        assert points == 0, text


@pytest.mark.parametrize("fn", [risk_numpy, risk_torch, risk_numpy_division,
                                lambda g, r2, s2: np.float64(grading.isotropic_ridgeless_risk(g, r2, s2))])
def test_risk_correct_alternatives_keep_full_marks(fn):
    G.assert_full("isotropic_ridgeless_risk", fn)


def test_risk_reference_is_the_limit_of_the_exact_gaussian_finite_sample_risk():
    """For Gaussian X the finite-n risk is exact: sigma2 p / (n - p - 1) below (inverse Wishart mean), and
    r2 (1 - n/p) + sigma2 n / (p - n - 1) above (projection onto a uniformly random n-dimensional subspace)."""
    n = 10 ** 7
    for gamma, r2, s2 in [(0.3, 2.0, 1.0), (0.8, 1.0, 0.5), (1.5, 2.0, 1.0), (5.0, 1.0, 3.0)]:
        p = int(gamma * n)
        exact = s2 * p / (n - p - 1) if p < n else r2 * (1 - n / p) + s2 * n / (p - n - 1)
        assert abs(grading.isotropic_ridgeless_risk(gamma, r2, s2) - exact) < 1e-5 * exact


def test_risk_reference_agrees_with_a_simulation():
    rng = np.random.default_rng(3)
    n = 200
    for gamma in (0.5, 2.0):
        p = int(gamma * n)
        risks = []
        for _ in range(30):
            beta = rng.normal(size=p)
            beta /= np.linalg.norm(beta)
            X = rng.normal(size=(n, p))
            w = np.linalg.pinv(X) @ (X @ beta + rng.normal(size=n))
            risks.append(np.sum((w - beta) ** 2))
        assert abs(np.mean(risks) / grading.isotropic_ridgeless_risk(gamma, 1.0, 1.0) - 1) < 0.15


# ==============================================================================================================
# random_features
# ==============================================================================================================
def rf_torch(X, W):
    X, W = torch.as_tensor(X), torch.as_tensor(W)
    return torch.relu(X @ W.T / math.sqrt(X.shape[1])) / math.sqrt(W.shape[0])


def rf_einsum(X, W):
    X, W = _np(X), _np(W)
    return np.clip(np.einsum("nd,kd->nk", X, W), 0, None) * (1 / math.sqrt(X.shape[1] * W.shape[0]))


def rf_plain(X, W):
    X, W = _np(X), _np(W)
    return np.maximum(X @ W.T / np.sqrt(X.shape[1]), 0) / np.sqrt(W.shape[0])


def _rf(fn):
    def wrapper(X, W):
        X, W = _np(X), _np(W)
        return fn(X, W, X.shape[1], W.shape[0], X.shape[0])
    return wrapper


def _in_place(X, W):
    X /= np.sqrt(X.shape[1])
    return np.maximum(X @ W.T, 0) / np.sqrt(W.shape[0])


RF_WRONG = {
    "no 1/sqrt(N)": _rf(lambda X, W, d, N, n: np.maximum(X @ W.T / np.sqrt(d), 0)),
    "no 1/sqrt(d)": _rf(lambda X, W, d, N, n: np.maximum(X @ W.T, 0) / np.sqrt(N)),
    "1/(d N)": _rf(lambda X, W, d, N, n: np.maximum(X @ W.T, 0) / (d * N)),
    "no relu": _rf(lambda X, W, d, N, n: X @ W.T / np.sqrt(d * N)),
    "abs": _rf(lambda X, W, d, N, n: np.abs(X @ W.T) / np.sqrt(d * N)),
    "tanh": _rf(lambda X, W, d, N, n: np.tanh(X @ W.T / np.sqrt(d)) / np.sqrt(N)),
    "leaky relu": _rf(lambda X, W, d, N, n: np.maximum(X @ W.T, 0.01 * X @ W.T) / np.sqrt(d * N)),
    "X W (square W)": _rf(lambda X, W, d, N, n: np.maximum(X @ (W if W.shape[0] == W.shape[1] else W.T), 0)
                          / np.sqrt(d * N)),
    "sqrt(n) for sqrt(N)": _rf(lambda X, W, d, N, n: np.maximum(X @ W.T / np.sqrt(d), 0) / np.sqrt(n)),
    "transposed (N, n)": _rf(lambda X, W, d, N, n: (np.maximum(X @ W.T / np.sqrt(d), 0) / np.sqrt(N)).T),
    "scales X in place": lambda X, W: _in_place(X, W) if isinstance(X, np.ndarray) else rf_plain(X, W),
}


@pytest.mark.parametrize("name", list(RF_WRONG))
def test_random_features_wrong_implementations_lose_points(name):
    G.assert_loses("random_features", RF_WRONG[name])


@pytest.mark.parametrize("fn", [rf_torch, rf_einsum, rf_plain, noisy(rf_plain), lambda X, W: torch.as_tensor(
    rf_plain(X, W))])
def test_random_features_correct_alternatives_keep_full_marks(fn):
    G.assert_full("random_features", fn)


def test_random_features_float32_answers_keep_full_marks():
    """float32 inputs answered in float32 (and float64 inputs in float64)."""
    def fn(X, W):
        X, W = _np(X), _np(W)
        out = np.maximum(X @ W.T / np.sqrt(X.shape[1]).astype(X.dtype), 0) / np.sqrt(W.shape[0]).astype(X.dtype)
        return out.astype(X.dtype)
    G.assert_full("random_features", fn)


def test_random_features_reference_agrees_with_torch():
    rng = np.random.default_rng(5)
    X, W = rng.normal(size=(9, 4)), rng.normal(size=(13, 4))
    np.testing.assert_allclose(grading.random_features(X, W), rf_torch(X, W).numpy(), rtol=1e-12, atol=1e-14)


# ==============================================================================================================
# effective_ranks
# ==============================================================================================================
def er_torch(lam, k):
    lam = torch.as_tensor(lam, dtype=torch.float64).flatten()
    s = torch.sort(lam, descending=True).values[k:]
    return float(s.sum() / s[0]), float(s.sum() ** 2 / (s ** 2).sum())


def er_cumsum(lam, k):
    s = -np.sort(-_np(lam).astype(np.float64))
    tail = np.cumsum(s[::-1])[::-1]
    tail2 = np.cumsum(s[::-1] ** 2)[::-1]
    return tail[k] / s[k], tail[k] ** 2 / tail2[k]


def er_python(lam, k):
    v = sorted(_np(lam).astype(float).tolist(), reverse=True)[k:]
    return sum(v) / v[0], sum(v) ** 2 / sum(x * x for x in v)


def er_array(lam, k):
    return np.array(er_python(lam, k))


def _er(fn):
    def wrapper(lam, k):
        lam = _np(lam).astype(np.float64)
        return fn(np.sort(lam)[::-1], lam, k)
    return wrapper


def _sort_in_place(lam, k):
    if isinstance(lam, np.ndarray):
        lam.sort()
        s = lam[::-1]
    else:
        s = np.sort(_np(lam))[::-1]
    t = s[k:]
    return t.sum() / t[0], t.sum() ** 2 / (t ** 2).sum()


ER_WRONG = {
    "no sort": _er(lambda s, lam, k: (lam[k:].sum() / lam[k], lam[k:].sum() ** 2 / (lam[k:] ** 2).sum())),
    "ascending": _er(lambda s, lam, k: (s[::-1][k:].sum() / s[::-1][k], s[::-1][k:].sum() ** 2
                                        / (s[::-1][k:] ** 2).sum())),
    "tail from k + 1": _er(lambda s, lam, k: (s[k + 1:].sum() / s[k + 1], s[k + 1:].sum() ** 2
                                              / (s[k + 1:] ** 2).sum())),
    "divides by lambda_k": _er(lambda s, lam, k: (s[k:].sum() / s[max(k - 1, 0)], s[k:].sum() ** 2
                                                  / (s[k:] ** 2).sum())),
    "swapped": _er(lambda s, lam, k: (s[k:].sum() ** 2 / (s[k:] ** 2).sum(), s[k:].sum() / s[k])),
    "R inverted": _er(lambda s, lam, k: (s[k:].sum() / s[k], (s[k:] ** 2).sum() / s[k:].sum() ** 2)),
    "divides by lambda_1": _er(lambda s, lam, k: (s[k:].sum() / s[0], s[k:].sum() ** 2 / (s[k:] ** 2).sum())),
    "sum of squares of the whole spectrum": _er(lambda s, lam, k: (s[k:].sum() / s[k], s[k:].sum() ** 2
                                                                   / (s ** 2).sum())),
    "sorts in place": _sort_in_place,
    "float32 arithmetic": lambda lam, k: _er32(lam, k),
    "returns one number": lambda lam, k: er_python(lam, k)[0],
}


def _er32(lam, k):
    s = np.sort(_np(lam).astype(np.float32))[::-1][k:]
    return float(s.sum(dtype=np.float32) / s[0]), float(s.sum(dtype=np.float32) ** 2 / (s ** 2).sum(dtype=np.float32))


@pytest.mark.parametrize("name", list(ER_WRONG))
def test_effective_ranks_wrong_implementations_lose_points(name):
    G.assert_loses("effective_ranks", ER_WRONG[name])


@pytest.mark.parametrize("fn", [er_torch, er_cumsum, er_python, er_array, noisy(er_python)])
def test_effective_ranks_correct_alternatives_keep_full_marks(fn):
    G.assert_full("effective_ranks", fn)


@settings(max_examples=50, deadline=None)
@given(lam=st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=40), data=st.data())
def test_effective_ranks_reference_properties(lam, data):
    lam = np.array(lam)
    k = data.draw(st.integers(0, len(lam) - 1))
    r, R = grading.effective_ranks(lam, k)
    assert 1 - 1e-12 <= r <= R * (1 + 1e-12) and R <= r * r * (1 + 1e-12) and R <= len(lam) - k + 1e-9
    r2, R2 = grading.effective_ranks(np.random.default_rng(0).permutation(lam), k)
    assert math.isclose(r, r2, rel_tol=1e-12) and math.isclose(R, R2, rel_tol=1e-12)
    np.testing.assert_allclose((r, R), er_cumsum(lam, k), rtol=1e-10)


# ==============================================================================================================
# rf_double_descent
# ==============================================================================================================
def _curve(solver, features=grading.random_features, rows=lambda W, N: W[:N], error=lambda p, y: np.mean((p - y) ** 2),
           train=False):
    def fn(X, y, Xt, yt, W, Ns):
        out = []
        for N in Ns:
            Wn = rows(W, N)
            a = solver(features(X, Wn), y)
            if train:
                out.append(error(features(X, Wn) @ a, y))
            else:
                out.append(error(features(Xt, Wn) @ a, yt))
        return np.array(out)
    return fn


def _normal(P, y):
    return P.T @ np.linalg.solve(P @ P.T, y) if P.shape[1] >= P.shape[0] else np.linalg.solve(P.T @ P, P.T @ y)


CURVE_WRONG = {
    "ridge 1e-3": _curve(lambda P, y: np.linalg.solve(P.T @ P + 1e-3 * np.eye(P.shape[1]), P.T @ y)),
    "rank cutoff 1e-2": _curve(lambda P, y: np.linalg.pinv(P, rcond=1e-2) @ y),
    "training error": _curve(mn_pinv, train=True),
    "root mean squared error": _curve(mn_pinv, error=lambda p, y: np.sqrt(np.mean((p - y) ** 2))),
    "sum of squared errors": _curve(mn_pinv, error=lambda p, y: np.sum((p - y) ** 2)),
    "the last N rows of W": _curve(mn_pinv, rows=lambda W, N: W[-N:]),
    "N + 1 rows": _curve(mn_pinv, rows=lambda W, N: W[:N + 1]),
    "no relu in the features": _curve(mn_pinv, features=lambda X, W: X @ W.T / np.sqrt(X.shape[1] * W.shape[0])),
    "mean absolute error": _curve(mn_pinv, error=lambda p, y: np.mean(np.abs(p - y))),
    "fresh random weights for every N": lambda X, y, Xt, yt, W, Ns: _curve(mn_pinv, rows=lambda W_, N: np.random
                                                                           .default_rng(N).normal(size=(N, W.shape[1]))
                                                                           )(X, y, Xt, yt, W, Ns),
}


@pytest.mark.parametrize("name", list(CURVE_WRONG))
def test_rf_double_descent_wrong_implementations_lose_points(name):
    G.assert_loses("rf_double_descent", CURVE_WRONG[name])


def test_ridge_and_a_large_cutoff_lose_on_the_peak_itself():
    for name in ("ridge 1e-3", "rank cutoff 1e-2"):
        _, text = G.grade("rf_double_descent", CURVE_WRONG[name])
        assert "[FAIL] the peak at N = n over 5 seeds" in text, text


@pytest.mark.parametrize("fn", [
    _curve(mn_pinv),
    _curve(_normal),
    _curve(lambda P, y: np.linalg.lstsq(P, y, rcond=None)[0]),
    # Scaling the features by a constant changes a, not the predictions: 1/sqrt(N) may be left out here.
    _curve(mn_pinv, features=lambda X, W: np.maximum(X @ W.T, 0)),
    _curve(lambda P, y: mn_torch(P, y).numpy()),
])
def test_rf_double_descent_correct_alternatives_keep_full_marks(fn):
    G.assert_full("rf_double_descent", fn)


def test_rf_reference_agrees_with_an_independent_computation():
    data = dd.teacher_data(3)
    Ns = [15, 120]
    np.testing.assert_allclose(grading.rf_double_descent(*data, Ns), _curve(_normal, features=rf_plain)(*data, Ns),
                               rtol=1e-9)


def test_peak_thresholds_as_measured():
    """The margins stated in autograder/double_descent.py: correct ratios far above, wrong ones below."""
    n, Ns = 60, [int(round(r * 60)) for r in dd._DD_HIDDEN_RATIOS]
    curves = [grading.rf_double_descent(*dd.teacher_data(s), Ns) for s in grading.rf_experiment_seeds()]
    assert dd._peak_verdict(curves, Ns, n, 100 * dd.PEAK_RATIO)[0]
    ridge = [CURVE_WRONG["ridge 1e-3"](*dd.teacher_data(s), Ns) for s in grading.rf_experiment_seeds()]
    assert not dd._peak_verdict(ridge, Ns, n, dd.PEAK_RATIO / 3)[0]
    v = grading.rf_double_descent(*dd.teacher_data(**dd._DD_VISIBLE), dd._DD_VISIBLE_NS)
    assert dd._peak_verdict([v], dd._DD_VISIBLE_NS, 40, 3 * dd.PEAK_RATIO_VISIBLE)[0]


# ==============================================================================================================
# The visible literals, the solution notebook, stubs, hostile values, the student side
# ==============================================================================================================
def test_visible_literals_are_what_the_reference_computes():
    for _, X, y, w in dd._MN_CASES:
        np.testing.assert_allclose(grading.min_norm_least_squares(X, y), w, rtol=1e-13, atol=1e-14)
    for gamma, r2, s2, expected, _, variants in dd._RISK_CASES:
        assert math.isclose(grading.isotropic_ridgeless_risk(gamma, r2, s2), expected, rel_tol=1e-13)
        computed = grading.risk_variants(gamma, r2, s2)
        for hint, value in variants.items():
            assert any(math.isclose(value, v, rel_tol=1e-12) for v in computed.values()), hint
    np.testing.assert_allclose(grading.random_features(dd._RF_X, dd._RF_W), dd._RF_PHI, rtol=1e-14)
    for lam, k, expected, _, variants in dd._ER_CASES:
        np.testing.assert_allclose(grading.effective_ranks(lam, k), expected, rtol=1e-13)
        computed = grading.effective_ranks_variants(lam, k)
        for hint, value in variants.items():
            assert any(np.allclose(value, v, rtol=1e-12) for v in computed.values()), hint
    v = grading.rf_double_descent(*dd.teacher_data(**dd._DD_VISIBLE), list(dd._DD_VISIBLE_ERRORS))
    np.testing.assert_allclose(v, list(dd._DD_VISIBLE_ERRORS.values()), rtol=1e-9)


@pytest.mark.parametrize("part", PARTS)
def test_solution_notebook_keeps_full_marks(part):
    G.assert_full(part, SOLUTION[part])


@pytest.mark.parametrize("part", PARTS)
def test_untouched_stub_scores_zero_with_a_clear_message(part):
    for tests in ("visible", "all"):
        points, text = G.grade(part, stub, tests)
        assert points == 0 and "not implemented yet" in text


@pytest.mark.parametrize("part", PARTS)
def test_none_garbage_and_liars_score_zero(part):
    assert G.grade(part, lambda *a, **k: None)[0] == 0
    assert G.grade(part, lambda *a, **k: "8")[0] == 0
    assert G.grade(part, lambda *a, **k: np.zeros(3).view(AlwaysEqual))[0] == 0


def test_topic_declares_the_points_of_every_grade_cell():
    assert dd.TOPIC.points == {"check_min_norm_least_squares": 3.0, "check_isotropic_ridgeless_risk": 2.0,
                               "check_random_features": 2.0, "check_effective_ranks": 3.0,
                               "check_rf_double_descent": 3.0, "written_variance_derivation": 2.0,
                               "written_benign": 2.0}
    from tests.notebooks import source_notebook
    cells = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"] for c in source_notebook("double_descent").cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert {k: float(v["points"]) for k, v in cells.items()} == dd.TOPIC.points


def test_student_side_module_has_no_reference_implementation():
    """autograder/double_descent.py computes none of the graded answers: no pseudo-inverse, SVD or min-norm solve, no
    ReLU features of X and W, no sorted tail sums, no risk formula it could return; every callable it exports
    fails the hidden checks of every part."""
    import inspect
    source = inspect.getsource(dd)
    for forbidden in ("linalg.pinv(", "linalg.svd(", "np.sort(", "sorted(", "def min_norm_least_squares",
                      "def random_features", "def effective_ranks", "def isotropic_ridgeless_risk", "np.maximum(",
                      "torch.relu(", "math.fsum(", ".clip("):
        assert forbidden not in source, forbidden
    callables = [getattr(dd, name) for name in dir(dd) if callable(getattr(dd, name)) and not name.startswith("__")
                 and getattr(getattr(dd, name), "__module__", "") == dd.__name__]
    for part in PARTS:
        for fn in callables:
            if fn.__name__.startswith("check_") or isinstance(fn, type):
                continue
            assert G.grade(part, fn)[0] < G.points(part), (part, fn.__name__)


# ==============================================================================================================
# The full pipeline (slow): a small class through the isolated engine and through real nbgrader
# ==============================================================================================================
@pytest.mark.slow
def test_double_descent_class_through_both_engines(tmp_path):
    import nbformat

    from autograder import nbgrading
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["double_descent"])
    nbgrading.release(course, "double_descent")
    release = nbformat.read(course / "exercises" / "double_descent" / "double_descent.ipynb", as_version=4)
    text = nbformat.writes(release)
    for leak in ("BEGIN SOLUTION", "HIDDEN TESTS", "lstsq(X_np", "rcond=cutoff"):
        assert leak not in text, leak
    solution = {}
    for c in source_notebook("double_descent").cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution") and c.cell_type == "code":
            solution[meta["grade_id"]] = "\n".join(line for line in c.source.splitlines() if "### " not in line)
    wrong_ranks = ("def effective_ranks(eigenvalues, k):\n    import numpy as np\n"
                   "    s = np.asarray(eigenvalues, dtype=float)[k:]\n"
                   "    return float(s.sum() / s[0]), float(s.sum() ** 2 / (s ** 2).sum())")
    class_ = {"full": dict(solution), "untouched": {},
              "partial": {"random_features": solution["random_features"], "effective_ranks": wrong_ranks}}
    wrong_points = G.grade("effective_ranks", lambda lam, k: (
        (lambda s: (float(s.sum() / s[0]), float(s.sum() ** 2 / (s ** 2).sum())))(
            np.asarray(_np(lam), dtype=float)[k:])))[0]
    assert 0 < wrong_points < 3
    full = {k: v for k, v in dd.TOPIC.points.items() if k.startswith("check_")}
    partial = dict({k: 0.0 for k in full}, check_random_features=2.0, check_effective_ranks=wrong_points)
    for engine in ("isolated", "nbgrader"):
        folder = tmp_path / f"submissions_{engine}"
        for student, answers in class_.items():
            add_submission(folder, f"{student}_{engine}", "double_descent", fill(release, dict(answers)))
        if engine == "isolated":
            results, warnings = nbgrading.grade_isolated(course, "double_descent", folder, cell_timeout=120,
                                                         workers=1)
        else:
            results, warnings = nbgrading.grade(course, "double_descent", folder, cell_timeout=120)
        got = {r.student: {k: float(v) for k, v in (r.scores if hasattr(r, "scores") else r.parts).items()
                           if k.startswith("check_")} for r in results}
        assert got[f"full_{engine}"] == full, (engine, got)
        assert got[f"untouched_{engine}"] == {g: 0.0 for g in full}, (engine, got)
        assert got[f"partial_{engine}"] == partial, (engine, got)
        assert not warnings, (engine, warnings)
