"""Instructor-only half of the `kernels` checks: reference implementations and the hidden cases.

This file is never released (nbgrader_config.py lists ``grading.py`` in ``CourseDirectory.ignore``); the student
side of the course (``exercises/`` and the ``autograder`` package) carries no reference implementation.  The
references are written independently of the solution notebook, by other algorithms:

* ``kernel_ridge``: an eigendecomposition of the symmetric K, alpha = V diag(1 / (w + n lam)) V^T y (the notebook
  solves the linear system (K + n lam I) alpha = y);
* ``rkhs_norm``: the quadratic form through the same eigendecomposition, sqrt(sum_i max(w_i, 0) (V^T alpha)_i^2),
  which is exact (0 up to rounding, never NaN) for PSD singular K (the notebook clips alpha^T K alpha at 0);
* ``random_fourier_features``: cos(a + b) = cos a cos b - sin a sin b, entry by entry with ``einsum`` (the notebook
  writes cos(X omega^T + b) directly);
* ``laplace_kernel``: ``scipy.spatial.distance.cdist`` (Euclidean distances of the differences; the notebook uses
  the expansion |x|^2 + |x'|^2 - 2 <x, x'> clipped at 0);
* ``sample_rff``: a torch generator (the notebook draws with numpy's ``default_rng``);
* ``gaussian_kernel`` and ``rff_second_moment``: what the experiment part compares the student's random features
  with: the Gaussian kernel and the exact E|Z Z^T - K|_F^2 = (1/D) sum_ij (1 - K_ij^2 + K_ij^4 / 2).

``tests/test_kernels.py`` checks each against the solution notebook, against closed forms and Hypothesis inputs.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.distance import cdist


def _np(a) -> np.ndarray:
    try:
        import torch
        if isinstance(a, torch.Tensor):
            return a.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(a, dtype=np.float64)


# --------------------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------------------
def kernel_ridge(K, y, lam) -> np.ndarray:
    """alpha = (K + n lam I)^{-1} y, n = len(y), by an eigendecomposition of the symmetrized K."""
    K, y = _np(K), _np(y).reshape(-1)
    n = len(y)
    w, V = np.linalg.eigh((K + K.T) / 2)
    return V @ ((V.T @ y) / (w + n * float(lam)))


def rkhs_norm(K, alpha) -> float:
    """|f|_H = sqrt(alpha^T K alpha), through the eigendecomposition (negative rounding eigenvalues dropped)."""
    K, alpha = _np(K), _np(alpha).reshape(-1)
    w, V = np.linalg.eigh((K + K.T) / 2)
    c = V.T @ alpha
    return float(np.sqrt(np.sum(np.maximum(w, 0.0) * c * c)))


def random_fourier_features(X, omega, b) -> np.ndarray:
    """sqrt(2/D) cos(X omega^T + b) through cos(u + v) = cos u cos v - sin u sin v."""
    X, omega, b = _np(X), _np(omega), _np(b).reshape(-1)
    D = omega.shape[0]
    u = np.einsum("ik,jk->ij", X, omega)
    return np.sqrt(2.0 / D) * (np.cos(u) * np.cos(b)[None, :] - np.sin(u) * np.sin(b)[None, :])


def laplace_kernel(X1, X2, bandwidth) -> np.ndarray:
    """exp(-|x - x'|_2 / bandwidth) with scipy's cdist (exactly 1 where x = x')."""
    return np.exp(-cdist(_np(X1), _np(X2), metric="euclidean") / float(bandwidth))


def sample_rff(X, bandwidth, D, seed):
    """(Z, omega, b) with omega (D, d) i.i.d. N(0, 1/s^2) and b (D,) i.i.d. U[0, 2 pi] from a torch generator seeded
    with ``seed`` (the notebook uses numpy's default_rng), and Z their features."""
    import torch
    X = _np(X)
    g = torch.Generator().manual_seed(int(seed))
    omega = (torch.randn(D, X.shape[1], generator=g, dtype=torch.float64) / float(bandwidth)).numpy()
    b = (2 * np.pi * torch.rand(D, generator=g, dtype=torch.float64)).numpy()
    return random_fourier_features(X, omega, b), omega, b


def gaussian_kernel(X1, X2, bandwidth) -> np.ndarray:
    """exp(-|x - x'|^2 / (2 s^2)), the kernel that random Fourier features with omega ~ N(0, I/s^2) estimate."""
    return np.exp(-cdist(_np(X1), _np(X2), metric="sqeuclidean") / (2.0 * float(bandwidth) ** 2))


def rff_second_moment(K, D) -> float:
    """E|Z Z^T - K|_F^2 for D i.i.d. features sqrt(2/D) cos(omega.x + b), omega ~ N(0, I/s^2), b ~ U[0, 2 pi]:
    each entry is a mean of D i.i.d. terms 2 cos(omega.x + b) cos(omega.x' + b) = cos(omega.(x - x')) +
    cos(omega.(x + x') + 2b), of mean k(x - x') and variance 1 + k(2(x - x'))/2 - k(x - x')^2, and for the Gaussian
    kernel k(2 delta) = k(delta)^4."""
    K = _np(K)
    sq = K * K
    return float((K.size - sq.sum() + 0.5 * (sq * sq).sum()) / D)


# --------------------------------------------------------------------------------------------------------------
# Hidden cases
# --------------------------------------------------------------------------------------------------------------
def _gaussian_gram(rng, n, d, s):
    X = rng.normal(size=(n, d))
    return gaussian_kernel(X, X, s)


def kernel_ridge_cases() -> list[dict]:
    rng = np.random.default_rng(1301)
    cases = []
    K = _gaussian_gram(rng, 7, 3, 1.3)
    y = rng.normal(size=7)
    cases.append({"name": "Gaussian Gram matrix, n = 7, lam = 0.3", "K": K, "y": y, "lam": 0.3})
    cases.append({"name": "the same K, small lam = 1e-3", "K": K, "y": y, "lam": 1e-3})
    K6 = laplace_kernel(*(2 * [rng.normal(size=(6, 2))]), 1.0)
    y6 = rng.normal(size=6)
    cases.append({"name": "lam = 0 with an invertible Laplace Gram matrix (n = 6): the interpolant K^-1 y",
                  "K": K6, "y": y6, "lam": 0.0})
    cases.append({"name": "lam = 0 given as the int 0", "K": K6, "y": y6, "lam": 0})
    Phi = rng.normal(size=(8, 3))
    cases.append({"name": "singular PSD K = Phi Phi^T of rank 3 (n = 8), lam = 0.05",
                  "K": Phi @ Phi.T, "y": rng.normal(size=8), "lam": 0.05})
    cases.append({"name": "large lam = 50 (alpha close to y / (n lam))", "K": K, "y": y, "lam": 50.0})
    cases.append({"name": "n = 1", "K": np.array([[2.0]]), "y": np.array([3.0]), "lam": 0.5})
    K32 = _gaussian_gram(rng, 9, 4, 1.5).astype(np.float32)
    cases.append({"name": "float32 K and y (n = 9), lam = 0.1", "K": K32,
                  "y": rng.normal(size=9).astype(np.float32), "lam": 0.1})
    return cases


def _null_space_case(seed: int):
    """A PSD K = Phi Phi^T of rank 3 (n = 9) made indefinite at the level of rounding (-1e-13 relative along a
    null vector v, as the rounding of a kernel Gram matrix can make it) and alpha = v: |f|_H = 0, while the
    rounded alpha^T K alpha is negative (about -1e-12), so that sqrt(alpha^T K alpha) without care is NaN."""
    rng = np.random.default_rng(seed)
    Phi = rng.normal(size=(9, 3))
    q, _ = np.linalg.qr(np.concatenate([Phi, rng.normal(size=(9, 6))], axis=1))
    v = q[:, 5]                                   # orthogonal to the columns of Phi
    K = Phi @ Phi.T
    K = (K + K.T) / 2 - 1e-13 * np.abs(K).max() * np.outer(v, v)
    return K, v


def rkhs_norm_cases() -> list[dict]:
    rng = np.random.default_rng(1302)
    cases = []
    X = rng.normal(size=(8, 3))
    K = gaussian_kernel(X, X, 1.1)
    cases.append({"name": "Gaussian Gram matrix (n = 8), random alpha", "K": K, "alpha": rng.normal(size=8)})
    alpha = 100 * rng.normal(size=8)
    cases.append({"name": "the same K, alpha of size 100", "K": K, "alpha": alpha})
    y = rng.normal(size=8)
    cases.append({"name": "the interpolant alpha = K^-1 y: |f|_H^2 = y^T K^-1 y", "K": K,
                  "alpha": np.linalg.solve(K, y)})
    Kn, v = _null_space_case(13)
    cases.append({"name": "PSD singular K, alpha in its null space: f = 0, |f|_H = 0 (alpha^T K alpha rounds "
                  "to about -1e-12)", "K": Kn, "alpha": v})
    Phi = rng.normal(size=(9, 2))
    g = rng.normal(size=9)
    cases.append({"name": "PSD singular K = Phi Phi^T of rank 2 (n = 9), generic alpha: |f|_H = |Phi^T alpha|",
                  "K": Phi @ Phi.T, "alpha": g})
    cases.append({"name": "alpha = 0", "K": K, "alpha": np.zeros(8)})
    X32 = rng.normal(size=(10, 2)).astype(np.float32)
    K32 = laplace_kernel(X32, X32, 1.0).astype(np.float32)
    cases.append({"name": "float32 Laplace Gram matrix (n = 10) and alpha", "K": K32,
                  "alpha": rng.normal(size=10).astype(np.float32)})
    return cases


def rff_cases() -> list[dict]:
    rng = np.random.default_rng(1303)
    cases = [{"name": "X (7, 4), omega (50, 4), b (50,)", "X": rng.normal(size=(7, 4)),
              "omega": rng.normal(size=(50, 4)), "b": rng.uniform(0, 2 * np.pi, 50)},
             {"name": "D = 1 feature, X (5, 3)", "X": rng.normal(size=(5, 3)), "omega": rng.normal(size=(1, 3)),
              "b": rng.uniform(0, 2 * np.pi, 1)},
             {"name": "one point, d = 1, D = 6", "X": np.array([[0.7]]), "omega": rng.normal(size=(6, 1)),
              "b": rng.uniform(0, 2 * np.pi, 6)},
             {"name": "d = D = 3 (a square omega, so omega^T and omega give the same shape)",
              "X": rng.normal(size=(4, 3)), "omega": rng.normal(size=(3, 3)) * 2.0,
              "b": rng.uniform(0, 2 * np.pi, 3)},
             {"name": "narrow bandwidth: omega of scale 10, X (6, 2), D = 40", "X": rng.normal(size=(6, 2)),
              "omega": 10 * rng.normal(size=(40, 2)), "b": rng.uniform(0, 2 * np.pi, 40)},
             {"name": "float32 X, omega, b: X (8, 5), D = 30",
              "X": rng.normal(size=(8, 5)).astype(np.float32),
              "omega": rng.normal(size=(30, 5)).astype(np.float32),
              "b": rng.uniform(0, 2 * np.pi, 30).astype(np.float32)}]
    return cases


def laplace_cases() -> list[dict]:
    rng = np.random.default_rng(1304)
    X1, X2 = rng.normal(size=(5, 3)), rng.normal(size=(7, 3))
    X2[2] = X1[1]                                 # a shared point: exactly 1 there
    Xl = 3.0 + rng.normal(size=(30, 4))           # points far from the origin: |x|^2 + |x'|^2 - 2<x,x'> cancels
    return [{"name": "rectangular X1 (5, 3), X2 (7, 3) sharing one point, bandwidth 0.7", "X1": X1, "X2": X2,
             "bandwidth": 0.7},
            {"name": "the same, bandwidth 2.5", "X1": X1, "X2": X2, "bandwidth": 2.5},
            {"name": "d = 1 (where the L1 and L2 distances agree), X1 (4, 1), X2 (3, 1)",
             "X1": rng.normal(size=(4, 1)), "X2": rng.normal(size=(3, 1)), "bandwidth": 1.0},
            {"name": "one point against 6, d = 10, bandwidth 3", "X1": rng.normal(size=(1, 10)),
             "X2": rng.normal(size=(6, 10)), "bandwidth": 3.0},
            {"name": "X with itself, 30 points around (3, 3, 3, 3): exactly 1 on the diagonal", "X1": Xl, "X2": Xl,
             "bandwidth": 1.5},
            {"name": "far points (distances up to ~40 bandwidths): tiny values", "X1": 10 * rng.normal(size=(4, 2)),
             "X2": 10 * rng.normal(size=(5, 2)), "bandwidth": 0.5},
            {"name": "float32 X1 (6, 3), X2 (4, 3), bandwidth 1.2", "X1": rng.normal(size=(6, 3)).astype(np.float32),
             "X2": rng.normal(size=(4, 3)).astype(np.float32), "bandwidth": 1.2},
            {"name": "float32 X with itself (12, 3): 1 on the diagonal",
             "X1": (X32 := rng.normal(size=(12, 3)).astype(np.float32)), "X2": X32, "bandwidth": 0.9}]


def rff_experiment_cases() -> list[dict]:
    """Settings of the hidden statistical checks of ``sample_rff`` (the student draws the features)."""
    rng = np.random.default_rng(1305)
    return [{"name": "10 points in d = 3, bandwidth 0.6, D = 300", "X": rng.normal(size=(10, 3)),
             "bandwidth": 0.6, "D": 300},
            {"name": "8 points in d = 5, bandwidth 2.5, D = 200", "X": rng.normal(size=(8, 5)),
             "bandwidth": 2.5, "D": 200}]
