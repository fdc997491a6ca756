"""Instructor-only half of the `random_matrices` checks: reference implementations and the hidden cases.

Never released (nbgrader_config.py lists ``grading.py`` in ``CourseDirectory.ignore``); the student side of the
course (``exercises/`` and the ``autograder`` package) carries no reference implementation.  The references are
written independently of the solution notebook, by other algorithms:

* ``mp_density``: the imaginary part of the Stieltjes transform on the real axis, written with the discriminant
  4 gamma sigma2^2 - (x - sigma2 (1 + gamma))^2 (the notebook uses the product (l_+ - x)(x - l_-));
* ``gaussian_moments``: composite Gauss-Legendre quadrature against the Gaussian density on [-14, 14], with the
  panels split at the activation's kinks when the case declares them (``kinks=...``) and otherwise 4000 panels
  of 16 nodes (a kink inside a panel of width 7e-3 costs < 1e-7); the notebook uses ``scipy.integrate.quad``;
* ``gaussian_equivalent_features``: the formula with the reference moments;
* ``spectrum_gap``: the experiment, with the reference equivalent.

``tests/test_random_matrices.py`` checks each against closed forms (ReLU, |z|, z^2, shifted ReLU, tanh by
mpmath), the solution notebook and simulations.
"""
from __future__ import annotations

import math

import numpy as np


# --------------------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------------------
def mp_density(x, gamma, sigma2=1.0):
    """Absolutely continuous part of the Marchenko-Pastur law (ratio gamma = p/n, variance sigma2) at x."""
    x = np.asarray(x, dtype=np.float64)
    gamma, sigma2 = float(gamma), float(sigma2)
    disc = 4.0 * gamma * sigma2 ** 2 - (x - sigma2 * (1.0 + gamma)) ** 2      # > 0 exactly on (l_-, l_+)
    out = np.zeros_like(x)
    inside = (disc > 0) & (x > 0)
    out[inside] = np.sqrt(disc[inside]) / (2.0 * math.pi * gamma * sigma2 * x[inside])
    return out


def mp_edges(gamma, sigma2=1.0):
    return sigma2 * (1 - math.sqrt(gamma)) ** 2, sigma2 * (1 + math.sqrt(gamma)) ** 2


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)


def _gaussian_expectations(activation, kinks=None, lo=-14.0, hi=14.0):
    """(E f, E z f, E f^2) for z ~ N(0, 1), composite 16-point Gauss-Legendre on [lo, hi]."""
    if kinks is None:
        edges = np.linspace(lo, hi, 4001)
    else:
        pieces = np.unique(np.concatenate([[lo, hi], [k for k in kinks if lo < k < hi]]))
        edges = np.unique(np.concatenate([np.linspace(a, b, 201) for a, b in zip(pieces[:-1], pieces[1:])]))
    a, b = edges[:-1, None], edges[1:, None]
    z = ((a + b) / 2 + (b - a) / 2 * _GL_NODES[None, :]).ravel()
    w = ((b - a) / 2 * _GL_WEIGHTS[None, :]).ravel() * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    f = np.asarray(activation(z), dtype=np.float64).reshape(z.shape)
    return float(w @ f), float(w @ (z * f)), float(w @ (f * f))


def gaussian_moments(activation, kinks=None):
    """(mu0, mu1, mu_star) of the activation under N(0, 1)."""
    m0, m1, m2 = _gaussian_expectations(activation, kinks)
    return m0, m1, math.sqrt(max(m2 - m0 ** 2 - m1 ** 2, 0.0))


def gaussian_equivalent_features(X, W, activation, Z, kinks=None):
    X, W, Z = (np.asarray(A, dtype=np.float64) for A in (X, W, Z))
    mu0, mu1, mu_star = gaussian_moments(activation, kinks)
    return mu0 + mu1 * (X @ W.T) / math.sqrt(X.shape[1]) + mu_star * Z


def spectrum_gap(activation, n, d, N, seed, kinks=None, equivalent=None):
    """The experiment: X (n, d), W (N, d), Z (n, N) drawn in this order from default_rng(seed); F = f(X W^T / sqrt d),
    G its Gaussian equivalent; the mean absolute difference of the sorted eigenvalues of F F^T / N and G G^T / N,
    divided by the mean eigenvalue of F F^T / N."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = rng.standard_normal((N, d))
    Z = rng.standard_normal((n, N))
    F = np.asarray(activation(X @ W.T / math.sqrt(d)), dtype=np.float64)
    G = (equivalent or gaussian_equivalent_features)(X, W, activation, Z, kinks)
    lf = np.linalg.eigvalsh(F @ F.T / N)
    lg = np.linalg.eigvalsh(G @ G.T / N)
    return float(np.mean(np.abs(lf - lg)) / np.mean(lf))


# --------------------------------------------------------------------------------------------------------------
# Activations of the hidden cases (continuous, piecewise smooth, vectorized); ``kinks`` for the reference only
# --------------------------------------------------------------------------------------------------------------
# Lambdas, not module functions: cloudpickle sends a lambda to the isolated engine's sandbox by value, while a
# function of this (non-importable) module would be sent by reference and fail to load there.
ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0.0), [0.0]),
    "2 relu(z - 0.7) + 0.3": (lambda z: 2.0 * np.maximum(z - 0.7, 0.0) + 0.3, [0.7]),
    "leaky relu (slope 0.1)": (lambda z: np.where(z > 0, z, 0.1 * z), [0.0]),
    "hard tanh clip(z, -1, 1)": (lambda z: np.clip(z, -1.0, 1.0), [-1.0, 1.0]),
    # z^2 on the right, -z/2 on the left: continuous at 0, not symmetric
    "z^2 for z > 0, -z/2 for z <= 0": (lambda z: np.where(z > 0, z * z, -0.5 * z), [0.0]),
    "|z + 0.4| - 0.25": (lambda z: np.abs(z + 0.4) - 0.25, [-0.4]),
    "sin(2z)": (lambda z: np.sin(2.0 * z), []),
    "softplus log(1 + e^z)": (lambda z: np.logaddexp(0.0, z), []),
    "z^3 - z/2": (lambda z: z ** 3 - 0.5 * z, []),
    "tanh": (np.tanh, []),
}


# --------------------------------------------------------------------------------------------------------------
# Hidden cases
# --------------------------------------------------------------------------------------------------------------
def mp_density_cases() -> list[dict]:
    rng = np.random.default_rng(2024)
    cases = []
    for gamma, sigma2 in [(0.3, 1.0), (0.5, 2.5), (2.0, 1.0), (4.0, 0.7), (0.05, 1.3), (1.0, 1.0), (1.0, 3.0)]:
        lm, lp = mp_edges(gamma, sigma2)
        if gamma == 1.0:
            x = np.concatenate([np.linspace(1e-3, lp * 1.2, 157), [lp, 1e-6, 0.5 * lp]])
        else:
            x = np.concatenate([np.linspace(-0.5, lp * 1.3, 211), [lm, lp, 0.0, -1.0],
                                rng.uniform(lm, lp, 20)])
        cases.append({"name": f"gamma = {gamma}, sigma2 = {sigma2}: {x.size} points including both edges"
                              + (", x > 0 only" if gamma == 1.0 else ", 0 and negative x"),
                      "x": x, "gamma": gamma, "sigma2": sigma2})
    lm, lp = mp_edges(0.6, 1.7)
    x2 = np.linspace(lm - 0.2, lp + 0.2, 48).reshape(6, 8)
    cases.append({"name": "gamma = 0.6, sigma2 = 1.7: x a 6 x 8 array (the result has x's shape)", "x": x2,
                  "gamma": 0.6, "sigma2": 1.7})
    lm, lp = mp_edges(3.0, 1.0)
    x3 = np.linspace(0.01, lp + 0.5, 120).astype(np.float32)
    cases.append({"name": "gamma = 3, sigma2 = 1: float32 x", "x": x3, "gamma": 3.0, "sigma2": 1.0})
    return cases


def moment_cases() -> list[dict]:
    return [{"name": f"activation {name}", "activation": fn, "kinks": kinks}
            for name, (fn, kinks) in ACTIVATIONS.items() if name not in ("relu", "tanh")]


def equivalent_cases() -> list[dict]:
    rng = np.random.default_rng(77)
    cases = []
    for (n, d, N), name, dtype in [((7, 5, 11), "tanh", np.float64),
                                   ((12, 9, 4), "2 relu(z - 0.7) + 0.3", np.float64),
                                   ((6, 30, 8), "z^2 for z > 0, -z/2 for z <= 0", np.float64),
                                   ((9, 4, 9), "hard tanh clip(z, -1, 1)", np.float32),
                                   ((1, 3, 5), "|z + 0.4| - 0.25", np.float64)]:
        fn, kinks = ACTIVATIONS[name]
        X = rng.standard_normal((n, d)).astype(dtype)
        W = rng.standard_normal((N, d)).astype(dtype)
        Z = rng.standard_normal((n, N)).astype(dtype)
        cases.append({"name": f"activation {name}, X ({n}, {d}), W ({N}, {d}), Z ({n}, {N}), "
                              f"{np.dtype(dtype).name}", "X": X, "W": W, "Z": Z, "activation": fn, "kinks": kinks})
    return cases
