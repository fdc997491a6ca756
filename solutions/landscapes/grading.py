"""Instructor-only half of the `landscapes` checks: reference implementations and the hidden cases.

This file is never released (nbgrader_config.py lists it in ``CourseDirectory.ignore``); the student side of the
course (``exercises/`` and the ``autograder`` package) carries no reference implementation.  The references are
written independently of the solution notebook, by other algorithms:

* every derivative is taken from the **symmetrized** coupling tensor: Jsym = (1/p!) sum over the p! permutations
  of the axes of J, so that H(s) = N^{-(p-1)/2} Jsym[s, ..., s], grad H = p N^{-(p-1)/2} Jsym[s, ..., s, .] and
  hess H = p (p - 1) N^{-(p-1)/2} Jsym[s, ..., s, ., .] (the notebook sums the contractions slot by slot on the
  unsymmetrized J);
* ``critical_index`` restricts the Riemannian Hessian to s-perp with the Householder reflection that maps s to
  e_1 (the notebook uses a QR factorization);
* ``find_local_minimum``: Riemannian gradient descent with Armijo backtracking, then Newton steps in the tangent
  space (the notebook uses a fixed-step descent and a different polishing step).

Conventions (book/conventions.md, assignment ``landscapes``): s on the sphere |s|^2 = N, J a dense (N, ..., N) array with
p axes, not symmetrized, H(s) = N^{-(p-1)/2} sum J_{i1..ip} s_i1 ... s_ip; Riemannian gradient P grad H,
P = I - s s^T / N; Riemannian Hessian P (hess H) P - (s . grad H / N) P.  ``tests/test_landscapes.py`` checks these
references against finite differences and against the p = 2 closed form (critical points are eigenvectors).
"""
from __future__ import annotations

import itertools
import math

import numpy as np



# --------------------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------------------
def _as64(x) -> np.ndarray:
    try:
        import torch
        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", torch.float64).numpy().copy()
    except ImportError:  # pragma: no cover
        pass
    return np.array(x, dtype=np.float64)


def symmetrize(J) -> np.ndarray:
    """(1/p!) sum over all permutations of the axes of J."""
    J = _as64(J)
    perms = list(itertools.permutations(range(J.ndim)))
    return sum(np.transpose(J, perm) for perm in perms) / len(perms)


def _contract(T: np.ndarray, s: np.ndarray, times: int) -> np.ndarray:
    for _ in range(times):
        T = np.tensordot(T, s, axes=([0], [0]))
    return T


def _energy_sym(Js: np.ndarray, s: np.ndarray) -> float:
    N, p = s.shape[0], Js.ndim
    return float(_contract(Js, s, p) * N ** (-(p - 1) / 2))


def _egrad_sym(Js: np.ndarray, s: np.ndarray) -> np.ndarray:
    N, p = s.shape[0], Js.ndim
    return p * N ** (-(p - 1) / 2) * _contract(Js, s, p - 1)


def _ehess_sym(Js: np.ndarray, s: np.ndarray) -> np.ndarray:
    N, p = s.shape[0], Js.ndim
    if p == 1:
        return np.zeros((N, N))
    return p * (p - 1) * N ** (-(p - 1) / 2) * _contract(Js, s, p - 2)


def pspin_energy(J, s) -> float:
    return _energy_sym(symmetrize(J), _as64(s))


def euclidean_gradient(J, s) -> np.ndarray:
    return _egrad_sym(symmetrize(J), _as64(s))


def euclidean_hessian(J, s) -> np.ndarray:
    return _ehess_sym(symmetrize(J), _as64(s))


def projector(s) -> np.ndarray:
    s = _as64(s)
    N = s.shape[0]
    return np.eye(N) - np.outer(s, s) / N


def _rgrad_sym(Js, s) -> np.ndarray:
    return projector(s) @ _egrad_sym(Js, s)


def _rhess_sym(Js, s) -> np.ndarray:
    P = projector(s)
    radial = float(s @ _egrad_sym(Js, s)) / s.shape[0]
    return P @ _ehess_sym(Js, s) @ P - radial * P


def sphere_gradient(J, s) -> np.ndarray:
    return _rgrad_sym(symmetrize(J), _as64(s))


def sphere_hessian(J, s) -> np.ndarray:
    return _rhess_sym(symmetrize(J), _as64(s))


def tangent_basis(s) -> np.ndarray:
    """(N, N - 1) orthonormal basis of s-perp: columns 2..N of the Householder reflection mapping s/|s| to e_1."""
    s = _as64(s)
    N = s.shape[0]
    u = s / np.linalg.norm(s)
    w = u.copy()
    w[0] -= 1.0
    if np.linalg.norm(w) < 1e-12:  # s already along e_1
        return np.eye(N)[:, 1:]
    Hh = np.eye(N) - 2.0 * np.outer(w, w) / (w @ w)
    return Hh[:, 1:]


def tangent_spectrum(J, s) -> np.ndarray:
    """Eigenvalues (increasing) of the Riemannian Hessian restricted to s-perp: N - 1 of them."""
    U = tangent_basis(s)
    return np.linalg.eigvalsh(U.T @ sphere_hessian(J, s) @ U)


def critical_index(J, s) -> int:
    return int(np.sum(tangent_spectrum(J, s) < 0))


def on_sphere(s) -> np.ndarray:
    s = _as64(s)
    return s * math.sqrt(s.shape[0]) / np.linalg.norm(s)


def newton_critical_point(J, s0, steps: int = 60, tol: float = 1e-10, max_step: float = 0.3):
    """A critical point near s0 by damped Newton in the tangent space (any index), or None if it did not converge.
    The step is capped at max_step sqrt(N)."""
    Js, s = symmetrize(J), on_sphere(s0)
    N = s.shape[0]
    for _ in range(steps):
        g = _rgrad_sym(Js, s)
        if np.linalg.norm(g) / math.sqrt(N) < tol:
            return s
        U = tangent_basis(s)
        Hs = U.T @ _rhess_sym(Js, s) @ U
        try:
            v = U @ np.linalg.solve(Hs, -(U.T @ g))
        except np.linalg.LinAlgError:
            return None
        nv = np.linalg.norm(v)
        if nv > max_step * math.sqrt(N):
            v *= max_step * math.sqrt(N) / nv
        s = on_sphere(s + v)
    g = _rgrad_sym(Js, s)
    return s if np.linalg.norm(g) / math.sqrt(N) < tol else None


def find_local_minimum(J, s0, tol: float = 1e-10, max_iter: int = 20000):
    """Riemannian gradient descent with Armijo backtracking (retraction: renormalize), then Newton polishing."""
    Js, s = symmetrize(J), on_sphere(s0)
    N = s.shape[0]
    lr = 0.1
    E = _energy_sym(Js, s)
    for _ in range(max_iter):
        g = _rgrad_sym(Js, s)
        gn2 = float(g @ g)
        if math.sqrt(gn2 / N) < 1e-5:
            break
        while True:
            cand = on_sphere(s - lr * g)
            Ec = _energy_sym(Js, cand)
            if Ec <= E - 0.3 * lr * gn2 or lr < 1e-12:
                break
            lr *= 0.5
        s, E = cand, Ec
        lr *= 1.5
    for _ in range(20):  # Newton near a non-degenerate minimum converges quadratically
        g = _rgrad_sym(Js, s)
        if np.linalg.norm(g) / math.sqrt(N) < tol:
            break
        U = tangent_basis(s)
        Hs = U.T @ _rhess_sym(Js, s) @ U
        s = on_sphere(s + U @ np.linalg.solve(Hs, -(U.T @ g)))
    return s


# --------------------------------------------------------------------------------------------------------------
# Hidden cases
# --------------------------------------------------------------------------------------------------------------
def random_case(seed: int, N: int, p: int, dtype=np.float64):
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((N,) * p)
    s = on_sphere(rng.standard_normal(N))
    return J.astype(dtype), s.astype(dtype)


def _value_cases(seed0: int) -> list[dict]:
    """Non-symmetric J, s on the sphere, p = 2, 3, 4 at small non-default N; float32 and torch inputs."""
    import torch
    cases = []
    for i, (N, p) in enumerate([(7, 2), (5, 3), (9, 3), (4, 4), (6, 4), (3, 5)]):
        J, s = random_case(seed0 + i, N, p)
        cases.append({"name": f"p = {p}, N = {N}, float64 (seed {seed0 + i})", "J": J, "s": s})
    J, s = random_case(seed0 + 10, 8, 3, np.float32)
    cases.append({"name": "p = 3, N = 8, float32 (seed %d)" % (seed0 + 10), "J": J, "s": s})
    J, s = random_case(seed0 + 11, 5, 4, np.float32)
    cases.append({"name": "p = 4, N = 5, float32 (seed %d)" % (seed0 + 11), "J": J, "s": s})
    J, s = random_case(seed0 + 12, 6, 3)
    cases.append({"name": "p = 3, N = 6, torch float64 tensors (seed %d)" % (seed0 + 12),
                  "J": torch.from_numpy(J), "s": torch.from_numpy(s)})
    # a J with one dominant non-symmetric entry: the slots of the gradient differ strongly
    J = np.zeros((5, 5, 5))
    J[0, 1, 2] = 3.0
    J[4, 4, 1] = -2.0
    s = on_sphere(np.arange(1.0, 6.0))
    cases.append({"name": "p = 3, N = 5, sparse non-symmetric J (J[0,1,2] = 3, J[4,4,1] = -2), s ~ (1,..,5)",
                  "J": J, "s": s})
    return cases


def energy_cases() -> list[dict]:
    return _value_cases(1000)


def gradient_cases() -> list[dict]:
    return _value_cases(2000)


def hessian_cases() -> list[dict]:
    return _value_cases(3000)


def _critical_points(seed: int, N: int, p: int, count: int, min_gap: float = 0.05) -> list[np.ndarray]:
    """Distinct non-degenerate critical points (every tangent Hessian eigenvalue at least min_gap away from 0)."""
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((N,) * p)
    found: list[np.ndarray] = []
    tries = 0
    while len(found) < count and tries < 200:
        tries += 1
        s = newton_critical_point(J, rng.standard_normal(N))
        if s is None or np.min(np.abs(tangent_spectrum(J, s))) < min_gap:
            continue
        if any(np.linalg.norm(s - t) < 1e-6 for t in found):
            continue
        found.append(s)
    return J, found


def index_cases() -> list[dict]:
    """Non-degenerate critical points of p = 2 (eigenvectors), 3 and 4, of various indices; one float32 copy."""
    cases = []
    rng = np.random.default_rng(4000)
    N = 9
    J = rng.standard_normal((N, N))
    w, V = np.linalg.eigh((J + J.T) / 2)
    for k in (0, 3, 8):
        cases.append({"name": f"p = 2, N = {N}: s = sqrt(N) x (eigenvector {k} of (J + J^T)/2)",
                      "J": J, "s": math.sqrt(N) * V[:, k]})
    for seed, N, p, count in [(4001, 10, 3, 4), (4002, 7, 4, 3)]:
        Jp, points = _critical_points(seed, N, p, count)
        for j, s in enumerate(points):
            cases.append({"name": f"p = {p}, N = {N}: critical point {j} (Newton from a seeded start, seed {seed})",
                          "J": Jp, "s": s})
    last = cases[4]
    cases.append({"name": last["name"] + ", float32 inputs", "J": last["J"].astype(np.float32),
                  "s": last["s"].astype(np.float32)})
    return cases


def minimum_cases() -> list[dict]:
    cases = []
    for seed, N, p in [(5001, 16, 3), (5002, 22, 3), (5003, 9, 4)]:
        J, s0 = random_case(seed, N, p)
        cases.append({"name": f"p = {p}, N = {N} (seed {seed})", "J": J, "s0": s0, "p": p})
    J, s0 = random_case(5004, 14, 2)
    cases.append({"name": "p = 2, N = 14 (seed 5004): every local minimum is the ground state", "J": J,
                  "s0": s0, "p": 2})
    J, s0 = random_case(5005, 12, 3, np.float32)
    cases.append({"name": "p = 3, N = 12, float32 inputs (seed 5005)", "J": J, "s0": s0, "p": 3})
    return cases


# --------------------------------------------------------------------------------------------------------------
# The answers of known mistakes (for hints in the hidden checks' feedback)
# --------------------------------------------------------------------------------------------------------------
def _one_slot_gradient(J, s) -> np.ndarray:
    """p times the contraction over the first p - 1 slots: right only for a symmetric J."""
    J, s = _as64(J), _as64(s)
    N, p = s.shape[0], J.ndim
    T = J
    for _ in range(p - 1):
        T = np.tensordot(s, T, axes=([0], [0]))
    return p * N ** (-(p - 1) / 2) * T


def energy_variants(J, s) -> dict:
    N, p = _as64(s).shape[0], _as64(J).ndim
    H = pspin_energy(J, s)
    return {f"your energy is N^{(p - 1) / 2:g} times too large: is the normalization N^(-(p-1)/2) missing?":
            H * N ** ((p - 1) / 2),
            "your energy is divided by N^(p/2) instead of N^((p-1)/2)": H / math.sqrt(N)}


def gradient_variants(J, s) -> dict:
    s64 = _as64(s)
    N = s64.shape[0]
    g = euclidean_gradient(J, s)
    one = _one_slot_gradient(J, s)
    return {
        "this is the Euclidean gradient: project it with P = I - s s^T / N": g,
        "this is p times the contraction of one slot: right only for a symmetric J; J is not symmetrized, sum "
        "the contractions over all p slots": one,
        "this is p times one slot, projected: J is not symmetrized, sum the contractions over all p slots":
            projector(s64) @ one,
        "you projected with I - s s^T: on the sphere |s|^2 = N the projector is I - s s^T / N":
            g - s64 * (s64 @ g),
    }


def hessian_variants(J, s) -> dict:
    s64 = _as64(s)
    N, p = s64.shape[0], _as64(J).ndim
    P = projector(s64)
    Eh = euclidean_hessian(J, s64)
    H = pspin_energy(J, s64)
    return {
        "the shift -(s . grad H / N) P is missing": P @ Eh @ P,
        "the shift is -(H / N) P: s . grad H = p H, so it is -(p H / N) P": P @ Eh @ P - H / N * P,
        "the shift is -(p H) P: it is divided by N (|s|^2 = N)": P @ Eh @ P - p * H * P,
        "the Euclidean Hessian is not projected: it is P (hess H) P - (s . grad H / N) P": Eh - p * H / N * P,
        "the shift is -(p H / N) I: it is -(p H / N) P, which vanishes along s": P @ Eh @ P - p * H / N * np.eye(N),
        "the shift -(p H / N) P is added instead of subtracted": P @ Eh @ P + p * H / N * P,
    }
