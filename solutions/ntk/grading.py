"""Instructor-only half of the `ntk` checks: reference implementations and the hidden cases.

This file is never released (nbgrader_config.py lists it in ``CourseDirectory.ignore``) and the student side of
the course (``exercises/`` and the ``autograder`` package) carries no reference implementation.  The references
here are written independently of the solution notebook, by other algorithms where one exists:

* ``empirical_ntk``: one reverse-mode gradient per input, summed tensor by tensor in float64 (the notebook
  uses ``torch.func.jacrev``);
* ``relu_ntk``: the recursion of book/conventions.md, written with explicit correlations (the notebook works with
  covariances);
* ``ntk_predict``: plain simulation of gradient descent on the linearized model, step by step (the notebook uses
  the closed form through an eigendecomposition); ``steps=None`` by a linear solve.

``tests/test_ntk.py`` checks each of them against the neural-tangents values of book/conventions.md or against the
solution notebook.
"""
from __future__ import annotations

import numpy as np
import torch


# --------------------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------------------
def empirical_ntk(model: torch.nn.Module, X1, X2) -> np.ndarray:
    """Θ(x, x') = Σ_p ∂f(x)/∂θ_p ∂f(x')/∂θ_p over every parameter, by one backward pass per input.

    The sum runs parameter tensor by parameter tensor (the gradients are never concatenated into one long
    vector) and is accumulated in float64.  The products of a float32 model's gradients are float32 matrix
    products over chunks of ``BLOCK`` entries, each chunk's sum added in float64: a relative error ~1e-6
    (tests/test_ntk.py), at a third of the time of converting the gradients of the width-2048 layers of the hidden
    NTKMLP cases to float64."""
    params = [p for p in model.parameters()]
    dtype = params[0].dtype if params else torch.float64

    def grads(X):
        X = torch.as_tensor(X, dtype=dtype)
        rows = [[] for _ in params]
        for i in range(X.shape[0]):
            out = model(X[i:i + 1]).reshape(-1)
            if out.numel() != 1:
                raise ValueError(f"the model must have a scalar output, got {out.numel()} values for one input")
            g = torch.autograd.grad(out[0], params, allow_unused=True)
            for row, gi, p in zip(rows, g, params):
                row.append((gi if gi is not None else torch.zeros_like(p)).reshape(-1))
        return [torch.stack(row) for row in rows]

    G1 = grads(X1)
    G2 = G1 if X2 is X1 else grads(X2)
    K = torch.zeros(len(X1), len(X2), dtype=torch.float64)
    for a, b in zip(G1, G2):
        if a.dtype != torch.float32:
            K += a.double() @ b.double().T
            continue
        for c in range(0, a.shape[1], BLOCK):
            K += (a[:, c:c + BLOCK] @ b[:, c:c + BLOCK].T).double()
    return K.numpy()


BLOCK = 2 ** 16


def relu_ntk(X1, X2, depth: int, W_std: float = np.sqrt(2), b_std: float = 0.0):
    """(NNGP, NTK) of a depth-``depth`` ReLU MLP in the NTK parametrization (Jacot et al. 2018; Lee et al. 2019;
    arc-cosine expectations of Cho & Saul 2009), float64."""
    X1 = np.asarray(X1, dtype=np.float64)
    X2 = np.asarray(X2, dtype=np.float64)
    d = X1.shape[1]
    w2, b2 = float(W_std) ** 2, float(b_std) ** 2
    cross = w2 * X1 @ X2.T / d + b2
    diag1 = w2 * np.sum(X1 * X1, axis=1) / d + b2
    diag2 = w2 * np.sum(X2 * X2, axis=1) / d + b2
    theta = cross.copy()
    for _ in range(depth):
        norms = np.sqrt(np.outer(diag1, diag2))
        rho = np.clip(cross / norms, -1.0, 1.0)
        angle = np.arccos(rho)
        # E[relu(u) relu(v)] = sqrt(q q') (sin t + (pi - t) cos t) / (2 pi);  E[step(u) step(v)] = (pi - t) / (2 pi)
        cross_next = w2 * norms * (np.sqrt(1.0 - rho ** 2) + (np.pi - angle) * rho) / (2 * np.pi) + b2
        dot = w2 * (np.pi - angle) / (2 * np.pi)
        theta = cross_next + dot * theta
        cross = cross_next
        diag1 = w2 * diag1 / 2 + b2
        diag2 = w2 * diag2 / 2 + b2
    return cross, theta


def ntk_predict(K_train, K_test_train, y_train, lr, steps=None, f0_train=None, f0_test=None) -> np.ndarray:
    """Test predictions of the linearized model after ``steps`` GD steps on L = 1/2 Σ (f(x_i) - y_i)^2,
    by running gradient descent in function space step by step (``steps=None``: the limit, by a linear solve)."""
    K = np.asarray(K_train, dtype=np.float64)
    Kx = np.asarray(K_test_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64).reshape(-1)
    f_train = np.zeros_like(y) if f0_train is None else np.asarray(f0_train, dtype=np.float64).reshape(-1).copy()
    f_test = (np.zeros(Kx.shape[0]) if f0_test is None
              else np.asarray(f0_test, dtype=np.float64).reshape(-1).copy())
    if steps is None:
        return f_test + Kx @ np.linalg.solve(K, y - f_train)
    for _ in range(int(steps)):
        residual = f_train - y
        f_train = f_train - lr * K @ residual
        f_test = f_test - lr * Kx @ residual
    return f_test


# --------------------------------------------------------------------------------------------------------------
# Models the hidden cases evaluate a student's `empirical_ntk` on
# --------------------------------------------------------------------------------------------------------------
class _ScaledMLP(torch.nn.Module):
    """An MLP in the NTK parametrization with its own parameter layout (weights stored input-major)."""

    def __init__(self, d_in, width, depth, W_std, b_std, dtype, seed):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        sizes = [d_in] + [width] * depth + [1]
        self.W = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(a, b, generator=g, dtype=dtype)) for a, b in zip(sizes, sizes[1:])])
        self.b = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(b, generator=g, dtype=dtype)) for b in sizes[1:]])
        self.W_std, self.b_std = W_std, b_std

    def forward(self, x):
        h = x
        for i, (W, b) in enumerate(zip(self.W, self.b)):
            if i:
                h = torch.relu(h)
            h = self.W_std / W.shape[0] ** 0.5 * h @ W + self.b_std * b
        return h


def _sequential(dtype, seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 1)).to(dtype)


def _points(seed, n, d, norms=None, dtype=np.float64):
    X = np.random.default_rng(seed).normal(size=(n, d))
    if norms is not None:
        X = X / np.linalg.norm(X, axis=1, keepdims=True) * np.asarray(norms)[:, None]
    return X.astype(dtype)


# --------------------------------------------------------------------------------------------------------------
# Hidden cases (plain data; models are built by a function so each check gets a fresh one)
# --------------------------------------------------------------------------------------------------------------
def empirical_ntk_cases():
    return [
        dict(name="NTK-parametrized MLP of another layout, depth 2, W_std=1.3, b_std=0.5, X1 5x4 and X2 3x4",
             model=lambda: _ScaledMLP(4, 32, 2, 1.3, 0.5, torch.float64, seed=1),
             X1=_points(11, 5, 4, norms=[0.5, 1, 2, 3, 1.5]), X2=_points(12, 3, 4), rtol=1e-4),
        dict(name="float32 nn.Sequential with tanh and ReLU, X1 6x4 and X2 2x4",
             model=lambda: _sequential(torch.float32, seed=2),
             X1=_points(13, 6, 4, dtype=np.float32), X2=_points(14, 2, 4, dtype=np.float32), rtol=1e-4),
        dict(name="wide float64 MLP (width 512, depth 1, b_std=0.2), a single input against 4",
             model=lambda: _ScaledMLP(3, 512, 1, 1.0, 0.2, torch.float64, seed=3),
             X1=_points(15, 1, 3), X2=_points(16, 4, 3), rtol=1e-4),
    ]


def relu_ntk_cases():
    return [
        dict(name="depth 1, defaults, X1 6x4 with norms 0.5..3, X2 3x4",
             X1=_points(21, 6, 4, norms=[0.5, 1, 1.5, 2, 2.5, 3]), X2=_points(22, 3, 4), depth=1,
             W_std=np.sqrt(2), b_std=0.0),
        dict(name="depth 3, W_std=1.3, b_std=0.5, X1 5x4 and X2 3x4 of different norms",
             X1=_points(23, 5, 4, norms=[0.3, 1, 2, 4, 1]), X2=_points(24, 3, 4, norms=[2, 0.7, 1.2]), depth=3,
             W_std=1.3, b_std=0.5),
        dict(name="depth 2, W_std=1.0, b_std=0.1, d=7, X1 = X2 with a repeated row (correlation exactly 1)",
             X1=np.vstack([_points(25, 4, 7), _points(25, 1, 7)]), X2=None, depth=2, W_std=1.0, b_std=0.1),
        dict(name="depth 0 (a linear model), W_std=0.7, b_std=0.5, X1 4x5 and X2 2x5",
             X1=_points(26, 4, 5), X2=_points(27, 2, 5), depth=0, W_std=0.7, b_std=0.5),
        dict(name="depth 5, W_std=1.5, b_std=0.2, float32 inputs, X1 3x6 and X2 4x6",
             X1=_points(28, 3, 6, dtype=np.float32), X2=_points(29, 4, 6, dtype=np.float32), depth=5,
             W_std=1.5, b_std=0.2),
    ]


# The per-student hidden case of ``relu_ntk``: each student's own W_std, b_std, depth and data seed, drawn from
# the options of its ``Part(variant=...)`` in autograder/ntk.py. No option makes a known mistake coincide with the
# recursion (W_std != 1 and != sqrt(2), b_std > 0, depth >= 2: the diagonal update matters, d >= 3);
# tests/test_ntk.py checks every combination.


def relu_ntk_variant_cases(W_std, b_std, depth, seed):
    """One hidden case at the student's own values: X1 5xd (norms 0.4 to 2.5) and X2 4xd, d = 3..7 from the
    seed. (No shared point: a correlation of exactly 1, where float32 arccos loses ~1e-4 through deep layers, is
    the fixed hidden case's; here it cost correct float32 answers the case at 16 of 256 combinations.) Without
    it, float32 answers err by at most 7e-4 of the tolerance over every combination."""
    rng = np.random.default_rng(1000 + int(seed))
    d = int(rng.integers(3, 8))
    X1 = rng.normal(size=(5, d))
    X1 = X1 / np.linalg.norm(X1, axis=1, keepdims=True) * rng.uniform(0.4, 2.5, size=(5, 1))
    X2 = rng.normal(size=(4, d))
    return [dict(name=f"depth {depth}, W_std = {W_std}, b_std = {b_std}, data seed {seed}: X1 5x{d} (norms 0.4 "
                      f"to 2.5) and X2 4x{d}",
                 X1=X1, X2=X2, depth=int(depth), W_std=float(W_std), b_std=float(b_std))]


def ntk_mlp_cases():
    """Each case compares the empirical NTK at initialization, averaged over ``networks`` independent networks,
    with the analytic kernel; ``max_error`` is the relative Frobenius error allowed.  Depth 0 is exact at any
    width.  Measured by ``bench/ntk_thresholds.py --seeds 10`` (20 correct draws, 10 per wrong parametrization):
    correct networks reach at most 0.040 / 0.047 / 0.060 at depth 1 / 2 / 3 (2.5x to 3.8x below 0.15); the
    wrong parametrizations that these cases catch stay at 0.175 or more (biases kept as buffers, depth 3), most
    above 0.28.  The few they do not catch (no biases at b_std = 0, where it is harmless; uniform entries of
    variance 1; depth off by one at depth 3) lose their points in the parameter and variance checks."""
    return [
        dict(name="depth 0 (exact at any width), W_std=1.3, b_std=0.5, d=3", d_in=3, width=8, depth=0,
             W_std=1.3, b_std=0.5, seed=0, networks=1, X1=_points(31, 4, 3), X2=_points(32, 3, 3), max_error=1e-4),
        dict(name="depth 1, width 2048, defaults, d=3, kernel averaged over 4 networks", d_in=3, width=2048,
             depth=1, W_std=np.sqrt(2), b_std=0.0, seed=10, networks=4,
             X1=_points(33, 4, 3, norms=[0.5, 1, 2, 1.5]), X2=_points(34, 3, 3), max_error=0.15),
        dict(name="depth 2, width 2048, W_std=1.3, b_std=0.5, d=5, kernel averaged over 4 networks", d_in=5,
             width=2048, depth=2, W_std=1.3, b_std=0.5, seed=20, networks=4, X1=_points(35, 4, 5),
             X2=_points(36, 3, 5, norms=[1, 2, 3]), max_error=0.15),
        dict(name="depth 3, width 2048, W_std=1.1, b_std=0.3, d=2, kernel averaged over 4 networks", d_in=2,
             width=2048, depth=3, W_std=1.1, b_std=0.3, seed=30, networks=4, X1=_points(37, 3, 2),
             X2=_points(38, 3, 2), max_error=0.15),
    ]


def _spd(seed, n, rank=None, scale=1.0):
    A = np.random.default_rng(seed).normal(size=(n, rank or n))
    return scale * A @ A.T / (rank or n)


def ntk_predict_cases():
    rng = np.random.default_rng(41)
    K = _spd(42, 6)
    lam = np.linalg.eigvalsh(K).max()
    Ks = _spd(43, 6, rank=3)
    return [
        dict(name="t = 7, lr = 0.5 / lambda_max, f0 given, 6 training and 4 test points",
             K_train=K, K_test_train=rng.normal(size=(4, 6)), y_train=rng.normal(size=6), lr=0.5 / lam, steps=7,
             f0_train=rng.normal(size=6), f0_test=rng.normal(size=4)),
        dict(name="singular K_train (rank 3 of 6), t = 50, f0 = None",
             K_train=Ks, K_test_train=rng.normal(size=(3, 6)), y_train=rng.normal(size=6),
             lr=1.0 / np.linalg.eigvalsh(Ks).max(), steps=50, f0_train=None, f0_test=None),
        dict(name="t = None (the limit), f0 given, 6 training and 5 test points",
             K_train=K, K_test_train=rng.normal(size=(5, 6)), y_train=rng.normal(size=6), lr=0.1, steps=None,
             f0_train=rng.normal(size=6), f0_test=rng.normal(size=5)),
        dict(name="t = 300 with lr = 1.8 / lambda_max (I - lr K has negative eigenvalues)",
             K_train=K, K_test_train=rng.normal(size=(2, 6)), y_train=rng.normal(size=6), lr=1.8 / lam, steps=300,
             f0_train=rng.normal(size=6), f0_test=rng.normal(size=2)),
        dict(name="t = 1, float32 inputs, f0_train given but f0_test = None",
             K_train=K.astype(np.float32), K_test_train=rng.normal(size=(3, 6)).astype(np.float32),
             y_train=rng.normal(size=6).astype(np.float32), lr=0.2, steps=1,
             f0_train=rng.normal(size=6).astype(np.float32), f0_test=None),
    ]


# ---- Used by the chapter book/ntk.md (instructor-only: answers graded parts) ----
# The chapter imports these at build time (``instructor_module("ntk")``) for its figures; they stay here because
# they answer graded parts: ``MLP`` is an ``NTKMLP`` (with its own seeded generator) and ``layerwise_ntk`` is the
# empirical NTK of such a network.  The chapter uses ``relu_ntk``, ``empirical_ntk`` and ``ntk_predict`` above.
class MLP(torch.nn.Module):
    """ReLU MLP in the NTK parametrization: all entries N(0,1), scale W_std/sqrt(fan_in), b_std (seeded)."""

    def __init__(self, d_in, width, depth, W_std=np.sqrt(2), b_std=0.0, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        dims = [d_in] + [width] * depth + [1]
        self.W_std, self.b_std = float(W_std), float(b_std)
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(dims[i + 1], dims[i], generator=gen)) for i in range(depth + 1)])
        self.biases = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(dims[i + 1], generator=gen)) for i in range(depth + 1)])

    def forward(self, x):
        h = x
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            if i > 0:
                h = torch.relu(h)
            h = self.W_std / np.sqrt(W.shape[1]) * h @ W.T + self.b_std * b
        return h[:, 0]


@torch.no_grad()
def _activations_and_deltas(m, X):
    acts, pre, h = [X], [], X
    for i, (W, b) in enumerate(zip(m.weights, m.biases)):
        if i > 0:
            acts.append(torch.relu(h))
        h = m.W_std / np.sqrt(W.shape[1]) * acts[-1] @ W.T + m.b_std * b
        pre.append(h)
    L = len(m.weights)
    deltas = [None] * L                      # deltas[i] = d f / d (pre-activation of layer i)
    delta = torch.ones(X.shape[0], 1, dtype=X.dtype)
    deltas[L - 1] = delta
    for i in range(L - 1, 0, -1):
        W = m.weights[i]
        delta = (delta @ W) * (m.W_std / np.sqrt(W.shape[1])) * (pre[i - 1] > 0)
        deltas[i - 1] = delta
    return acts, deltas


@torch.no_grad()
def layerwise_ntk(m, X1, X2):
    """Exact empirical NTK of an ``MLP`` (all weights and biases) from the layer-wise factorisation
    Theta = sum_l (W_std^2/fan_in <a_{l-1}, a'_{l-1}> + b_std^2) <delta_l, delta'_l>."""
    A1, D1 = _activations_and_deltas(m, X1)
    A2, D2 = _activations_and_deltas(m, X2)
    K = 0.0
    for i, W in enumerate(m.weights):
        K = K + (m.W_std**2 / W.shape[1] * A1[i] @ A2[i].T + m.b_std**2) * (D1[i] @ D2[i].T)
    return K


# ----------------------------------------------------------------------------------------------------------------
# Derivation part ``ntk_theta`` (autograder.derivation): Theta(x, x') of one hidden ReLU layer in closed form, in
# r1 = |x|, r2 = |x'|, theta = the angle between x and x', the input dimension d, sigma_w = W_std, sigma_b = b_std
# (book/conventions.md; checked against ``relu_ntk(..., depth=1)`` above in tests/test_ntk.py).
# ----------------------------------------------------------------------------------------------------------------
def _ntk_layer1(r1, r2, theta, d, sigma_w, sigma_b):
    import sympy as sp
    q1 = sigma_w**2 * r1**2 / d + sigma_b**2
    q2 = sigma_w**2 * r2**2 / d + sigma_b**2
    c = sigma_w**2 * r1 * r2 * sp.cos(theta) / d + sigma_b**2
    return q1, q2, c, sp.acos(c / sp.sqrt(q1 * q2))


def ntk_theta(r1, r2, theta, d, sigma_w, sigma_b):
    """Theta^2 = Sigma^2 + Sigmadot^2 Theta^1 with Theta^1 = Sigma^1 = c:
    sigma_w^2 / (2 pi) (sqrt(q1 q2 - c^2) + 2 (pi - phi) c) + sigma_b^2, phi the angle of the first layer's
    covariance (not the angle of the inputs once sigma_b != 0)."""
    import sympy as sp
    q1, q2, c, phi = _ntk_layer1(r1, r2, theta, d, sigma_w, sigma_b)
    return sigma_w**2 / (2 * sp.pi) * (sp.sqrt(q1 * q2 - c**2) + 2 * (sp.pi - phi) * c) + sigma_b**2


def ntk_theta_slips(r1, r2, theta, d, sigma_w, sigma_b):
    """{hint: the answer that mistake gives}: the mistakes the feedback names."""
    import sympy as sp
    q1, q2, c, phi = _ntk_layer1(r1, r2, theta, d, sigma_w, sigma_b)
    root = sp.sqrt(q1 * q2 - c**2)
    psi = sp.acos(sp.cos(theta))  # the angle of the inputs
    return {
        "this is the NNGP Sigma^2, not the NTK: the term Sigmadot^2 * Theta^1 (Theta^1 = Sigma^1) is missing":
            sigma_w**2 / (2 * sp.pi) * (root + (sp.pi - phi) * c) + sigma_b**2,
        "the arc-cosine formulas take the angle of the first layer's covariance, arccos(c / sqrt(q q')) with "
        "c = sigma_w^2 <x, x'> / d + sigma_b^2, not the angle theta of the inputs (they differ once sigma_b != 0)":
            sigma_w**2 / (2 * sp.pi) * (root + 2 * (sp.pi - psi) * c) + sigma_b**2,
        "the last layer's bias sigma_b^2 is missing": sigma_w**2 / (2 * sp.pi) * (root + 2 * (sp.pi - phi) * c),
    }
