"""Instructor-only half of the `implicit_bias` checks: reference implementations and the hidden cases.

This file is never released (nbgrader_config.py lists ``grading.py`` in ``CourseDirectory.ignore``) and the student
side of the course (``exercises/`` and the ``autograder`` package) carries no reference implementation.  The
references are written independently of the solution notebook, by other algorithms where one exists:

* ``gd_least_squares``: the closed form of the iterate through an eigendecomposition of X^T X / n,
  w_t = w0 - V diag((1 - (1 - lr λ)^t) / λ) V^T (H w0 - b)  (the notebook loops over the steps);
* ``logistic_gd``: a plain float64 loop with ``scipy.special.expit`` (the notebook uses ``np.logaddexp``);
* ``max_margin_direction``: the dual, the point of the convex hull of the y_i x_i closest to the origin, by
  non-negative least squares, polished by an active-set solve of the KKT system (the notebook solves the primal
  with SLSQP);
* ``gd_matrix_factorization`` and ``diag_net_gd``: torch autograd in float64 (the notebook writes the gradients
  by hand in numpy).

``tests/test_implicit_bias.py`` checks each of them against the solution notebook and against closed forms.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import nnls
from scipy.special import expit


# --------------------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------------------
def gd_least_squares(X, y, lr, steps, w0=None) -> np.ndarray:
    """Iterate after ``steps`` GD steps on (1/2n)|Xw - y|² from ``w0`` (zeros), in closed form."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n, d = X.shape
    w0 = np.zeros(d) if w0 is None else np.asarray(w0, dtype=np.float64).reshape(-1)
    H = X.T @ X / n
    b = X.T @ y / n
    lam, V = np.linalg.eigh(H)
    c = V.T @ (H @ w0 - b)
    t = int(steps)
    factor = np.empty_like(lam)
    for k, l in enumerate(lam):
        base = 1.0 - lr * l
        if abs(l) <= 1e-13 * max(lam.max(), 1e-300):
            factor[k] = lr * t
        elif base > 0:
            factor[k] = -np.expm1(t * np.log1p(-lr * l)) / l
        else:
            factor[k] = (1.0 - base ** t) / l
    return w0 - V @ (factor * c)


def logistic_gd(X, y, lr, checkpoints) -> dict:
    """{t: w_t} for GD from 0 on (1/n) Σ log(1 + exp(-y_i <w, x_i>)), one run, float64."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = len(y)
    w = np.zeros(X.shape[1])
    wanted = set(int(t) for t in checkpoints)
    out = {0: w.copy()} if 0 in wanted else {}
    for t in range(1, max(wanted, default=0) + 1):
        p = expit(-y * (X @ w))             # = -dℓ/dm at each margin
        w = w + (lr / n) * (X.T @ (y * p))
        if t in wanted:
            out[t] = w.copy()
    return out


def max_margin_direction(X, y) -> np.ndarray:
    """Unit vector of the hard-margin SVM without intercept, through the dual: the direction is that of the point
    of the convex hull of the z_i = y_i x_i closest to the origin.  That point is found by non-negative least
    squares (min |Z^T l|² + ρ² (Σ l - 1)², l ≥ 0, ρ large), then polished by an active-set solve of the KKT
    system (support vectors: <w, z_i> = 1, multipliers ≥ 0, every other margin > 1)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    Z = y[:, None] * X
    n, d = Z.shape
    rho = 1e3 * max(np.abs(Z).max(), 1.0)
    lam, _ = nnls(np.vstack([Z.T, rho * np.ones((1, n))]), np.concatenate([np.zeros(d), [rho]]), maxiter=50 * n)
    w = Z.T @ lam
    w = w / np.min(Z @ w)                     # margin exactly 1
    support = list(np.flatnonzero(Z @ w <= 1 + 1e-6))
    G = Z @ Z.T
    for _ in range(10 * n):
        coef = np.linalg.lstsq(G[np.ix_(support, support)], np.ones(len(support)), rcond=None)[0]
        if coef.min() < -1e-12:               # a multiplier < 0: that point leaves the support
            support.pop(int(np.argmin(coef)))
            continue
        w_try = Z[support].T @ coef
        margins = Z @ w_try
        if margins.min() < 1 - 1e-10:         # a margin < 1: that point joins the support
            support.append(int(np.argmin(margins)))
            continue
        w = w_try
        break
    return w / np.linalg.norm(w)


def gd_matrix_factorization(mask, target, depth, init_scale, lr, steps) -> np.ndarray:
    """End-to-end product W_N ... W_1 after ``steps`` GD steps on ½ Σ_observed (W_ij - target_ij)², every
    W_k(0) = init_scale I, by torch autograd in float64."""
    M = torch.as_tensor(np.asarray(mask, dtype=np.float64))
    T = torch.as_tensor(np.asarray(target, dtype=np.float64)) * M
    d = M.shape[0]
    factors = [(init_scale * torch.eye(d, dtype=torch.float64)).requires_grad_(True) for _ in range(depth)]

    def product():
        P = torch.eye(d, dtype=torch.float64)
        for W in factors:
            P = W @ P
        return P

    for _ in range(int(steps)):
        loss = 0.5 * ((M * (product() - T)) ** 2).sum()
        grads = torch.autograd.grad(loss, factors)
        with torch.no_grad():
            for W, g in zip(factors, grads):
                W -= lr * g
    with torch.no_grad():
        return product().numpy().copy()


def diag_net_gd(X, y, alpha, lr, steps) -> np.ndarray:
    """β = u⊙u - v⊙v after ``steps`` simultaneous GD steps in (u, v) on (1/2n)|Xβ - y|², u(0) = v(0) = α,
    by torch autograd in float64."""
    X = torch.as_tensor(np.asarray(X, dtype=np.float64))
    y = torch.as_tensor(np.asarray(y, dtype=np.float64).reshape(-1))
    n, d = X.shape
    u = torch.full((d,), float(alpha), dtype=torch.float64, requires_grad=True)
    v = torch.full((d,), float(alpha), dtype=torch.float64, requires_grad=True)
    for _ in range(int(steps)):
        loss = ((X @ (u * u - v * v) - y) ** 2).sum() / (2 * n)
        gu, gv = torch.autograd.grad(loss, (u, v))
        with torch.no_grad():
            u -= lr * gu
            v -= lr * gv
    with torch.no_grad():
        return (u * u - v * v).numpy().copy()


# --------------------------------------------------------------------------------------------------------------
# Hidden cases (plain data)
# --------------------------------------------------------------------------------------------------------------
def _rng(seed):
    return np.random.default_rng(seed)


def _lam_max(X):
    return float(np.linalg.eigvalsh(X.T @ X / len(X)).max())


def gd_least_squares_cases():
    rng = _rng(101)
    X1, y1, w1 = rng.normal(size=(8, 3)), rng.normal(size=8), rng.normal(size=3)
    X2, y2, w2 = rng.normal(size=(4, 9)), rng.normal(size=4), rng.normal(size=9)
    X3, y3 = rng.normal(size=(6, 6)), rng.normal(size=6)
    X4, y4, w4 = rng.normal(size=(1, 5)), rng.normal(size=1), rng.normal(size=5)
    X5, y5 = rng.normal(size=(7, 4)) * np.array([3.0, 1.0, 0.5, 0.1]), rng.normal(size=7)
    return [
        dict(name="t = 1 from w0 != 0, overdetermined X 8x3, lr = 0.3", X=X1, y=y1, lr=0.3, steps=1, w0=w1),
        dict(name="t = 7 from w0 != 0, underdetermined X 4x9, lr = 1.5 / lambda_max (oscillating modes)",
             X=X2, y=y2, lr=1.5 / _lam_max(X2), steps=7, w0=w2),
        dict(name="t = 25, float32 inputs, X 6x6, w0 = None", X=X3.astype(np.float32), y=y3.astype(np.float32),
             lr=0.2, steps=25, w0=None),
        dict(name="t = 200, a single equation (X 1x5), w0 != 0", X=X4, y=y4, lr=0.5 / _lam_max(X4), steps=200,
             w0=w4),
        dict(name="t = 40, badly scaled columns (X 7x4), w0 = None", X=X5, y=y5, lr=1.0 / _lam_max(X5), steps=40,
             w0=None),
    ]


def _separable(seed, n, d, margin=0.3):
    rng = _rng(seed)
    X = rng.normal(size=(n, d))
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    y = np.where(X @ u >= 0, 1.0, -1.0)
    X = X + margin * y[:, None] * u
    return X, y


def logistic_gd_cases():
    X1, y1 = _separable(201, 7, 3)
    X2, y2 = _separable(202, 4, 6)
    rng = _rng(203)
    X3 = rng.normal(size=(12, 2))
    y3 = np.where(rng.random(12) < 0.5, 1.0, -1.0)  # random labels: not separable, a finite minimizer
    X4, y4 = _separable(204, 10, 2, margin=0.5)
    return [
        dict(name="separable 7x3, lr = 0.7, checkpoints [2, 3, 17, 400] in one call", X=X1, y=y1, lr=0.7,
             checkpoints=[2, 3, 17, 400], rtol=1e-5),
        dict(name="more dimensions than points (4x6), lr = 2.0, checkpoints [1, 2, 50, 1000]", X=X2, y=y2, lr=2.0,
             checkpoints=[1, 2, 50, 1000], rtol=1e-5),
        dict(name="not separable (random labels, 12x2), lr = 1.5, checkpoints [5, 60, 3000]", X=X3, y=y3, lr=1.5,
             checkpoints=[5, 60, 3000], rtol=1e-5),
        dict(name="float32 inputs 10x2, lr = 1.0, checkpoints [0, 4, 20000] (20000 compared at rtol 1e-4)",
             X=X4.astype(np.float32), y=y4.astype(np.float32), lr=1.0, checkpoints=[0, 4, 20000],
             rtol={0: 1e-5, 4: 1e-5, 20000: 1e-4}),
    ]


def max_margin_cases():
    X1, y1 = _separable(301, 30, 5)
    X2, y2 = _separable(302, 4, 10)
    X3, y3 = _separable(303, 12, 3, margin=0.1)
    X3 = np.vstack([X3, X3[:3]])               # duplicated points
    y3 = np.concatenate([y3, y3[:3]])
    rng = _rng(304)
    # many positives far away on one side, a few negatives near the boundary: the centroid direction is far off
    pos = rng.normal(size=(15, 2)) * 0.3 + np.array([4.0, 4.0])
    neg = np.array([[0.2, -1.0], [-0.6, -0.3], [-1.0, 0.1]])
    X4 = np.vstack([pos, neg])
    y4 = np.concatenate([np.ones(15), -np.ones(3)])
    X5, y5 = _separable(305, 20, 4)
    return [
        dict(name="30 points in R^5", X=X1, y=y1),
        dict(name="more dimensions than points (4 points in R^10)", X=X2, y=y2),
        dict(name="small margin, 3 duplicated points, R^3", X=X3, y=y3),
        dict(name="unbalanced classes in R^2 (the mean of y_i x_i points elsewhere)", X=X4, y=y4),
        dict(name="float32 inputs, 20 points in R^4", X=X5.astype(np.float32), y=y5.astype(np.float32)),
    ]


def _completion_problem(seed, d, rank, p):
    rng = _rng(seed)
    A, B = rng.normal(size=(d, rank)), rng.normal(size=(d, rank))
    target = A @ B.T / np.sqrt(rank)
    mask = (rng.random((d, d)) < p).astype(np.float64)
    return mask, target


def matrix_factorization_cases():
    m1, t1 = _completion_problem(401, 4, 1, 0.6)
    m2, t2 = _completion_problem(402, 5, 2, 0.7)
    m3, t3 = _completion_problem(403, 3, 1, 0.8)
    m4, t4 = _completion_problem(404, 5, 1, 0.5)
    m5, t5 = _completion_problem(405, 4, 2, 0.6)
    t2_noisy = t2 + 100.0 * (1 - m2)          # unobserved entries of the target must not matter
    return [
        dict(name="depth 2, init_scale 0.3, lr 0.1, t = 5, d = 4", mask=m1, target=t1, depth=2, init_scale=0.3,
             lr=0.1, steps=5, rtol=1e-5),
        dict(name="depth 3, init_scale 0.5, lr 0.05, t = 20, d = 5, garbage in the unobserved target entries",
             mask=m2, target=t2_noisy, depth=3, init_scale=0.5, lr=0.05, steps=20, rtol=1e-5),
        dict(name="depth 4, init_scale 1.1, lr 0.01, t = 3, d = 3", mask=m3, target=t3, depth=4, init_scale=1.1,
             lr=0.01, steps=3, rtol=1e-5),
        dict(name="depth 1, init_scale 0.2, lr 0.4, t = 50, d = 5", mask=m4, target=t4, depth=1, init_scale=0.2,
             lr=0.4, steps=50, rtol=1e-5),
        dict(name="depth 2, small init 0.01, lr 0.1, t = 400 (past the saddle), float32 target, d = 4", mask=m5,
             target=t5.astype(np.float32), depth=2, init_scale=0.01, lr=0.1, steps=400, rtol=1e-4),
    ]


def diag_net_cases():
    rng = _rng(501)
    X1, y1 = rng.normal(size=(4, 6)), rng.normal(size=4)
    X2 = rng.normal(size=(6, 10))
    beta2 = np.zeros(10)
    beta2[[1, 7]] = [1.5, -2.0]
    y2 = X2 @ beta2
    X3, y3 = rng.normal(size=(5, 3)), rng.normal(size=5)
    X4, y4 = rng.normal(size=(3, 8)), rng.normal(size=3)
    X5, y5 = rng.normal(size=(1, 4)), rng.normal(size=1)
    return [
        dict(name="alpha 0.3, lr 0.1, t = 2, X 4x6", X=X1, y=y1, alpha=0.3, lr=0.1, steps=2, rtol=1e-5),
        dict(name="alpha 0.05, lr 0.05, t = 40, sparse target, X 6x10", X=X2, y=y2, alpha=0.05, lr=0.05, steps=40,
             rtol=1e-5),
        dict(name="alpha 2.0, lr 0.01, t = 9, overdetermined X 5x3", X=X3, y=y3, alpha=2.0, lr=0.01, steps=9,
             rtol=1e-5),
        dict(name="alpha 0.5, lr 0.05, t = 100, float32 inputs, X 3x8", X=X4.astype(np.float32),
             y=y4.astype(np.float32), alpha=0.5, lr=0.05, steps=100, rtol=1e-4),
        dict(name="alpha 1.0, lr 0.1, t = 1, a single equation (X 1x4)", X=X5, y=y5, alpha=1.0, lr=0.1, steps=1,
             rtol=1e-5),
    ]


def diag_net_variant_cases(alpha, lr, seed):
    """The per-student hidden case of ``diag_net_gd`` (``Part(variant=...)`` in autograder/implicit_bias.py): the
    student's own initialization scale, step size and data seed; 30 steps on X n x d (n = 3..5 < d = 5..8, from
    the seed). tests/test_implicit_bias.py checks every combination of options: the reference stays bounded, the
    float32 error of correct implementations is far below the tolerance and every known mistake is caught."""
    rng = _rng(5000 + int(seed))
    n, d = int(rng.integers(3, 6)), int(rng.integers(5, 9))
    X, y = rng.normal(size=(n, d)), rng.normal(size=n)
    return [dict(name=f"alpha {alpha}, lr {lr}, data seed {seed}: t = 30, X {n}x{d}", X=X, y=y,
                 alpha=float(alpha), lr=float(lr), steps=30, rtol=1e-5)]


# ---- Used by the chapter book/implicit_bias.md (instructor-only: answers graded parts) ----
# The chapter imports these at build time (``instructor_module("implicit_bias")``) for its figures; they stay here
# because they answer graded parts.  The chapter also uses ``logistic_gd`` and ``max_margin_direction`` above.
# ``gd_ls_path`` and ``mf_run`` return whole trajectories (the figures need every iterate); ``diag_gd`` is the numpy
# loop of ``diag_net_gd`` (the figures run it for 10^5 steps and more, too slow with autograd).
def gd_ls_path(X, y, lr, steps, w0=None):
    """Iterates w_1..w_steps (an array (steps, d)) of GD on (1/2n)|Xw - y|^2 from w0 (zeros)."""
    n, d = X.shape
    w = np.zeros(d) if w0 is None else np.array(w0, dtype=float)
    path = []
    for _ in range(steps):
        w = w - lr * X.T @ (X @ w - y) / n
        path.append(w.copy())
    return np.array(path)


def mf_run(mask, target, depth, init_scale, lr, steps, record=()):
    """GD on W = W_N ... W_1, W_k(0) = init_scale I, loss 1/2 sum_observed (W - target)^2.
    Returns the final product and {t: singular values of W_t} for t in record."""
    d = mask.shape[0]
    Ws = [init_scale * np.eye(d) for _ in range(depth)]
    record, svals = set(record), {}
    for t in range(steps + 1):
        prefix = [np.eye(d)]
        for W in Ws:
            prefix.append(W @ prefix[-1])
        P = prefix[-1]
        if t in record:
            svals[t] = np.linalg.svd(P, compute_uv=False)
        if t == steps:
            return P, svals
        G = mask * (P - target)
        suffix, grads = np.eye(d), [None] * depth
        for k in range(depth - 1, -1, -1):       # suffix = W_N ... W_{k+2} when grads[k] is formed
            grads[k] = suffix.T @ G @ prefix[k].T
            suffix = suffix @ Ws[k]
        Ws = [W - lr * g for W, g in zip(Ws, grads)]


def diag_gd(X, y, alpha, lr, steps):
    """beta = u*u - v*v after GD in (u, v) from u = v = alpha on (1/2n)|X beta - y|^2 (numpy loop)."""
    u = np.full(X.shape[1], float(alpha))
    v = u.copy()
    for _ in range(steps):
        g = X.T @ (X @ (u * u - v * v) - y) / len(y)
        u, v = u - 2 * lr * u * g, v + 2 * lr * v * g
    return u * u - v * v


# ----------------------------------------------------------------------------------------------------------------
# Derivation part ``diag_limit`` (autograder.derivation): the first coordinate of the limit of the diagonal network
# as alpha -> 0 (Woodworth et al. 2020: the minimum-l1 interpolant), for one example x = (x1, x2), target y.
# Checked against scipy's linear program for min |beta|_1 subject to <x, beta> = y in tests/test_implicit_bias.py.
# ----------------------------------------------------------------------------------------------------------------
def diag_limit(x1, x2, y):
    """All the weight on the coordinate of the larger |x_i| (the min-l1 interpolant of one equation)."""
    import sympy as sp
    return sp.Piecewise((y / x1, sp.Abs(x1) > sp.Abs(x2)), (0, True))


def diag_limit_slips(x1, x2, y):
    import sympy as sp
    return {
        "this is the kernel regime's limit (alpha -> infinity, the minimum-l2 interpolant), not the rich one":
            y * x1 / (x1**2 + x2**2),
        "the coordinates are compared without absolute values: the min-l1 interpolant puts the weight where |x_i| "
        "is largest": sp.Piecewise((y / x1, x1 > x2), (0, True)),
    }
