"""Tests of autograder/landscapes.py: the checks discriminate.

* the solution notebook and correct alternatives (other algorithms: einsum, Kronecker products, torch autograd,
  symmetrization, a non-orthonormal basis of s-perp by Sylvester's law of inertia, a deflated N x N matrix; float32
  arithmetic; torch instead of numpy) keep full marks;
* plausible wrong implementations (the mistakes students make) lose points, with the hint where one is known;
* the instructor references agree with independent computations (finite differences, second derivatives along
  great circles, the p = 2 closed form, the covariance E[H(s) H(s')] = N (s.s'/N)^p), and recompute the visible
  literals;
* stubs, lies and noise score what they should; the student-side module computes no graded part.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from autograder import landscapes as L
from autograder.core import instructor_module
from tests.grading import AlwaysEqual, Grader, noisy, stub
from tests.notebooks import solution_namespace

SOLUTION = solution_namespace("landscapes")
GRADING = instructor_module("landscapes")
GRADER = Grader(L)
grade, assert_full, assert_loses = GRADER.grade, GRADER.assert_full, GRADER.assert_loses
PARTS = ("pspin_energy", "sphere_gradient", "sphere_hessian", "critical_index", "find_local_minimum")


def f64(x):
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).numpy().copy()
    return np.array(x, dtype=np.float64)


def native(x):
    """The input as a numpy array of its own dtype (float32 stays float32)."""
    if isinstance(x, torch.Tensor):
        return x.detach().numpy().copy()
    return np.array(x)


def norm_power(N, p, dtype=np.float64):
    return dtype(N) ** dtype(-(p - 1) / 2)


# ==============================================================================================================
# Building blocks of implementations (right and wrong)
# ==============================================================================================================
def contract_all(J, s):
    T = J
    for _ in range(J.ndim):
        T = T @ s
    return T


def egrad_slots(J, s, slots=None):
    """Sum over the given slots (default: all) of the contraction of the others with s, normalized."""
    N, p = s.shape[0], J.ndim
    out = np.zeros(N, dtype=np.result_type(J, s))
    for a in (range(p) if slots is None else slots):
        T = np.moveaxis(J, a, 0)
        for _ in range(p - 1):
            T = T @ s
        out = out + T
    return out * norm_power(N, p, out.dtype.type)


def ehess_pairs(J, s, pairs=None):
    N, p = s.shape[0], J.ndim
    M = np.zeros((N, N), dtype=np.result_type(J, s))
    for a, b in (itertools.permutations(range(p), 2) if pairs is None else pairs):
        T = np.moveaxis(J, (a, b), (0, 1))
        for _ in range(p - 2):
            T = T @ s
        M = M + T
    return M * norm_power(N, p, M.dtype.type)


def proj(s):
    N = s.shape[0]
    return np.eye(N, dtype=s.dtype) - np.outer(s, s) / N


def energy_from(J, s):
    J, s = f64(J), f64(s)
    return float(contract_all(J, s)) * norm_power(s.shape[0], J.ndim)


def rgrad_from(J, s):
    J, s = f64(J), f64(s)
    return proj(s) @ egrad_slots(J, s)


def rhess_from(J, s, shift=None):
    J, s = f64(J), f64(s)
    N, p = s.shape[0], J.ndim
    P = proj(s)
    c = p * energy_from(J, s) / N if shift is None else shift(J, s)
    return P @ ehess_pairs(J, s) @ P - c * P


def tangent_eigs(J, s, hess=rhess_from):
    s64 = f64(s)
    N = s64.shape[0]
    Q, _ = np.linalg.qr(np.column_stack([s64, np.eye(N)]))
    U = Q[:, 1:N]
    return np.linalg.eigvalsh(U.T @ hess(J, s) @ U)


# ==============================================================================================================
# pspin_energy
# ==============================================================================================================
def energy_einsum(J, s):
    J, s = f64(J), f64(s)
    p, N = J.ndim, s.shape[0]
    letters = "abcdefgh"[:p]
    return float(np.einsum(letters + "," + ",".join(letters), J, *([s] * p))) * N ** (-(p - 1) / 2)


def energy_kronecker(J, s):
    J, s = f64(J), f64(s)
    v = functools.reduce(np.kron, [s] * J.ndim)
    return float(J.ravel() @ v) / s.shape[0] ** ((J.ndim - 1) / 2)


def energy_float32(J, s):
    J, s = native(J), native(s)  # arithmetic in the input dtype (float32 stays float32)
    return float(contract_all(J, s) * norm_power(s.shape[0], J.ndim, J.dtype.type))


def energy_torch(J, s):
    J = torch.as_tensor(J, dtype=torch.float32)
    s = torch.as_tensor(s, dtype=torch.float32)
    T = J
    for _ in range(J.ndim):
        T = torch.tensordot(T, s, dims=([0], [0]))
    return float(T) * s.shape[0] ** (-(J.ndim - 1) / 2)


def energy_variant(J, s, mistake):
    J64, s64 = f64(J), f64(s)
    N, p = s64.shape[0], J64.ndim
    raw = float(contract_all(J64, s64))
    if mistake == "no normalization":
        return raw
    if mistake == "N^(-p/2)":
        return raw * N ** (-p / 2)
    if mistake == "N^(-(p-1))":
        return raw * N ** (-(p - 1))
    if mistake == "integer exponent (p-1)//2":
        return raw * N ** (-((p - 1) // 2))
    if mistake == "unit sphere s/|s|":
        return energy_from(J64, s64 / np.linalg.norm(s64))
    if mistake == "minus sign":
        return -energy_from(J64, s64)
    if mistake == "p read from len(J)":
        q = J64.shape[0]
        return raw * N ** (-(q - 1) / 2)
    if mistake == "diagonal of J only":
        d = np.array([J64[(i,) * p] for i in range(N)])
        return float(d @ s64 ** p) * N ** (-(p - 1) / 2)
    if mistake == "energy per spin H/N":
        return energy_from(J64, s64) / N
    if mistake == "normalizes s in place":
        if isinstance(s, np.ndarray):
            s *= 1.0  # rounding-free, but a write: still the same bits... so change them
            s[:] = s * (1 + 1e-12)
        return energy_from(J64, s64)
    raise ValueError(mistake)


ENERGY_WRONG = ["no normalization", "N^(-p/2)", "N^(-(p-1))", "integer exponent (p-1)//2", "unit sphere s/|s|",
                "minus sign", "p read from len(J)", "diagonal of J only", "energy per spin H/N",
                "normalizes s in place"]


@pytest.mark.parametrize("fn", [SOLUTION["pspin_energy"], energy_einsum, energy_kronecker, energy_float32,
                                energy_torch, GRADING.pspin_energy, noisy(energy_einsum)],
                         ids=["solution", "einsum", "kronecker", "float32", "torch float32", "reference", "noisy"])
def test_energy_correct_alternatives_keep_full_marks(fn):
    assert_full("pspin_energy", fn)


@pytest.mark.parametrize("mistake", ENERGY_WRONG)
def test_energy_wrong_implementations_lose_points(mistake):
    text = assert_loses("pspin_energy", functools.partial(energy_variant, mistake=mistake))
    if mistake == "no normalization":
        assert "normalization" in text


@pytest.mark.parametrize("fn", [lambda J, s: 0.0, lambda J, s: 2.0, lambda J, s: 1.0,
                                lambda J, s: float(max(np.abs(f64(J)).max(), np.abs(f64(s)).max())),
                                lambda J, s: float(f64(J).ravel()[0])],
                         ids=["constant 0", "constant 2", "constant 1", "largest |entry| of the inputs",
                              "first entry of J"])
def test_energy_trivial_answers_earn_nothing(fn):
    """A constant 0 satisfies the symmetry properties H(-s) = -H(s) and the invariance under permuted axes (gated:
    they count once a value is right), and no value check has an answer that a constant or an entry of the
    inputs gives (the normalization case has H = -sqrt(9) / 2)."""
    for tests in ("visible", "all"):
        points, text = grade("pspin_energy", fn, tests)
        assert points == 0, text


# ==============================================================================================================
# sphere_gradient
# ==============================================================================================================
def gradient_torch_autograd(J, s):
    J = torch.as_tensor(f64(J))
    x = torch.tensor(f64(s), requires_grad=True)
    N, p = x.shape[0], J.ndim
    T = J
    for _ in range(p):
        T = torch.tensordot(T, x, dims=([0], [0]))
    (g,) = torch.autograd.grad(T * N ** (-(p - 1) / 2), x)
    x = x.detach()
    return (g - x * (x @ g) / N).numpy()


def gradient_symmetrized(J, s):
    J, s = f64(J), f64(s)
    N, p = s.shape[0], J.ndim
    perms = list(itertools.permutations(range(p)))
    Js = sum(np.transpose(J, q) for q in perms) / len(perms)
    T = Js
    for _ in range(p - 1):
        T = T @ s
    g = p * T * N ** (-(p - 1) / 2)
    return g - s * (s @ g) / N


def gradient_float32(J, s):
    J, s = native(J), native(s)
    g = egrad_slots(J, s)
    return g - s * (s @ g) / s.dtype.type(s.shape[0])


def gradient_torch_tensors(J, s):
    J = torch.as_tensor(J)
    s = torch.as_tensor(s).to(J.dtype)
    N, p = s.shape[0], J.ndim
    g = torch.zeros(N, dtype=J.dtype)
    for a in range(p):
        T = torch.movedim(J, a, 0)
        for _ in range(p - 1):
            T = T @ s
        g = g + T
    g = g * N ** (-(p - 1) / 2)
    return g - s * (s @ g) / N


def gradient_variant(J, s, mistake):
    J64, s64 = f64(J), f64(s)
    N, p = s64.shape[0], J64.ndim
    g = egrad_slots(J64, s64)
    one = p * egrad_slots(J64, s64, slots=[p - 1])
    if mistake == "Euclidean gradient":
        return g
    if mistake == "p times one slot":
        return proj(s64) @ one
    if mistake == "p times one slot, unprojected":
        return one
    if mistake == "projector I - s s^T":
        return g - s64 * (s64 @ g)
    if mistake == "no normalization":
        return proj(s64) @ g * N ** ((p - 1) / 2)
    if mistake == "minus sign":
        return -(proj(s64) @ g)
    if mistake == "gradient of H / N":
        return proj(s64) @ g / N
    if mistake == "(p - 1) slots only":
        return proj(s64) @ egrad_slots(J64, s64, slots=range(p - 1))
    if mistake == "projects twice the radial part":
        return g - 2 * s64 * (s64 @ g) / N
    if mistake == "modifies s in place":
        if isinstance(s, np.ndarray):
            s[:] = s[::-1].copy()
        return proj(s64) @ g
    raise ValueError(mistake)


GRADIENT_WRONG = ["Euclidean gradient", "p times one slot", "p times one slot, unprojected", "projector I - s s^T",
                  "no normalization", "minus sign", "gradient of H / N", "(p - 1) slots only",
                  "projects twice the radial part", "modifies s in place"]


@pytest.mark.parametrize("fn", [SOLUTION["sphere_gradient"], gradient_torch_autograd, gradient_symmetrized,
                                gradient_float32, gradient_torch_tensors, GRADING.sphere_gradient],
                         ids=["solution", "torch autograd", "symmetrized", "float32", "torch tensors", "reference"])
def test_gradient_correct_alternatives_keep_full_marks(fn):
    assert_full("sphere_gradient", fn)


@pytest.mark.parametrize("mistake", GRADIENT_WRONG)
def test_gradient_wrong_implementations_lose_points(mistake):
    text = assert_loses("sphere_gradient", functools.partial(gradient_variant, mistake=mistake))
    if mistake == "p times one slot":
        assert "all p slots" in text


def test_one_slot_gradient_fails_the_visible_checks_too():
    points, text = grade("sphere_gradient", functools.partial(gradient_variant, mistake="p times one slot"),
                         tests="visible")
    assert points < GRADER.points("sphere_gradient") and "all p slots" in text


# ==============================================================================================================
# sphere_hessian
# ==============================================================================================================
def hessian_torch(J, s):
    J = torch.as_tensor(f64(J))
    x = torch.as_tensor(f64(s))
    N, p = x.shape[0], J.ndim

    def H(y):
        T = J
        for _ in range(p):
            T = torch.tensordot(T, y, dims=([0], [0]))
        return T * N ** (-(p - 1) / 2)
    E = torch.autograd.functional.hessian(H, x)
    y = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(H(y), y)
    P = torch.eye(N, dtype=torch.float64) - torch.outer(x, x) / N
    return (P @ E @ P - (x @ g) / N * P).numpy()


def hessian_symmetrized(J, s):
    J, s = f64(J), f64(s)
    N, p = s.shape[0], J.ndim
    perms = list(itertools.permutations(range(p)))
    Js = sum(np.transpose(J, q) for q in perms) / len(perms)
    T = Js
    for _ in range(p - 2):
        T = T @ s
    E = p * (p - 1) * T * N ** (-(p - 1) / 2)
    Hval = float(contract_all(Js, s)) * N ** (-(p - 1) / 2)
    P = proj(s)
    return P @ E @ P - p * Hval / N * P


def hessian_float32(J, s):
    J, s = native(J), native(s)
    N = s.dtype.type(s.shape[0])
    P = proj(s)
    return P @ ehess_pairs(J, s) @ P - (s @ egrad_slots(J, s)) / N * P


def hessian_variant(J, s, mistake):
    J64, s64 = f64(J), f64(s)
    N, p = s64.shape[0], J64.ndim
    P = proj(s64)
    E = ehess_pairs(J64, s64)
    H = energy_from(J64, s64)
    if mistake == "no shift":
        return P @ E @ P
    if mistake == "shift H / N":
        return P @ E @ P - H / N * P
    if mistake == "shift p H":
        return P @ E @ P - p * H * P
    if mistake == "not projected":
        return E - p * H / N * P
    if mistake == "shift times I":
        return P @ E @ P - p * H / N * np.eye(N)
    if mistake == "shift added":
        return P @ E @ P + p * H / N * P
    if mistake == "p (p - 1) times one pair":
        return P @ (p * (p - 1) * ehess_pairs(J64, s64, pairs=[(p - 2, p - 1)])) @ P - p * H / N * P if p >= 2 else E
    if mistake == "unordered pairs only":
        return P @ ehess_pairs(J64, s64, pairs=itertools.combinations(range(p), 2)) @ P - p * H / N * P
    if mistake == "shift from the Riemannian gradient (s . P grad H = 0)":
        return P @ E @ P - float(s64 @ (P @ egrad_slots(J64, s64))) / N * P
    if mistake == "shift only at critical points (uses -p H/N only if grad = 0)":
        g = P @ egrad_slots(J64, s64)
        return P @ E @ P - (p * H / N * P if np.linalg.norm(g) < 1e-6 else 0 * P)
    raise ValueError(mistake)


HESSIAN_WRONG = ["no shift", "shift H / N", "shift p H", "not projected", "shift times I", "shift added",
                 "p (p - 1) times one pair", "unordered pairs only",
                 "shift from the Riemannian gradient (s . P grad H = 0)",
                 "shift only at critical points (uses -p H/N only if grad = 0)"]


@pytest.mark.parametrize("fn", [SOLUTION["sphere_hessian"], hessian_torch, hessian_symmetrized, hessian_float32,
                                GRADING.sphere_hessian],
                         ids=["solution", "torch autograd", "symmetrized", "float32", "reference"])
def test_hessian_correct_alternatives_keep_full_marks(fn):
    assert_full("sphere_hessian", fn)


@pytest.mark.parametrize("mistake", HESSIAN_WRONG)
def test_hessian_wrong_implementations_lose_points(mistake):
    assert_loses("sphere_hessian", functools.partial(hessian_variant, mistake=mistake))


def test_hessian_hints_name_the_shift():
    text = grade("sphere_hessian", functools.partial(hessian_variant, mistake="shift H / N"))[1]
    assert "p H / N" in text
    text = grade("sphere_hessian", functools.partial(hessian_variant, mistake="shift times I"))[1]
    assert "along s" in text


@pytest.mark.parametrize("part, fn", [
    ("sphere_gradient", lambda J, s: np.zeros(f64(s).shape[0])),
    ("sphere_gradient", lambda J, s: f64(s)),
    ("sphere_hessian", lambda J, s: np.zeros((f64(s).shape[0],) * 2)),
    ("sphere_hessian", lambda J, s: np.eye(f64(s).shape[0]) - np.outer(f64(s), f64(s)) / f64(s).shape[0]),
], ids=["gradient 0", "gradient s", "Hessian 0", "Hessian P"])
def test_structural_properties_alone_earn_nothing(part, fn):
    """Tangency, symmetry, M s = 0 and the invariance under permuted axes of J hold for answers that ignore J
    (the zero vector or matrix, s, the projector P): gated, they count once a value check passes."""
    for tests in ("visible", "all"):
        points, text = grade(part, fn, tests)
        assert points == 0, text
    assert "not credited yet" in text


# ==============================================================================================================
# critical_index
# ==============================================================================================================
def index_sylvester(J, s):
    """Any basis of s-perp (here columns of P without the one of the largest |s_i|): the inertia is congruence
    invariant (Sylvester's law), so the count is the same as on an orthonormal basis."""
    s64 = f64(s)
    P = proj(s64)
    U = np.delete(P, int(np.argmax(np.abs(s64))), axis=1)
    return int(np.sum(np.linalg.eigvalsh(U.T @ rhess_from(J, s) @ U) < 0))


def index_deflated(J, s):
    """Count on the N x N matrix after lifting the direction s to a large positive eigenvalue."""
    s64 = f64(s)
    N = s64.shape[0]
    M = rhess_from(J, s) + 1e3 * np.outer(s64, s64) / N
    return int(np.sum(np.linalg.eigvalsh(M) < 0))


def index_torch_svd(J, s):
    s64 = torch.as_tensor(f64(s))
    N = s64.shape[0]
    _, _, Vh = torch.linalg.svd(s64[None, :])
    U = Vh[1:].T
    M = torch.as_tensor(rhess_from(J, s))
    return torch.sum(torch.linalg.eigvalsh(U.T @ M @ U) < 0)  # a 0-d integer tensor


def index_float32(J, s):
    J, s = native(J), native(s)
    N = s.shape[0]
    P = proj(s)
    M = P @ ehess_pairs(J, s) @ P - (s @ egrad_slots(J, s)) / s.dtype.type(N) * P
    Q, _ = np.linalg.qr(np.column_stack([s, np.eye(N, dtype=s.dtype)]))
    U = Q[:, 1:N]
    return np.sum(np.linalg.eigvalsh(U.T @ M @ U) < 0)  # a numpy integer


def index_variant(J, s, mistake):
    s64 = f64(s)
    N, p = s64.shape[0], f64(J).ndim
    if mistake == "N x N matrix, <= 0":
        return int(np.sum(np.linalg.eigvalsh(rhess_from(J, s)) <= 0))
    if mistake == "N x N matrix, < 0 (the zero along s counted when it rounds negative)":
        return int(np.sum(np.linalg.eigvalsh(rhess_from(J, s)) < 0))
    if mistake == "counts positive eigenvalues":
        return int(np.sum(tangent_eigs(J, s) > 0))
    if mistake == "Euclidean Hessian":
        return int(np.sum(np.linalg.eigvalsh(ehess_pairs(f64(J), s64)) < 0))
    if mistake == "no shift":
        return int(np.sum(tangent_eigs(J, s, hess=lambda J, s: rhess_from(J, s, shift=lambda J, s: 0.0)) < 0))
    if mistake == "shift H / N":
        return int(np.sum(tangent_eigs(J, s, hess=lambda J, s: rhess_from(
            J, s, shift=lambda J, s: energy_from(J, s) / N)) < 0))
    if mistake == "index of -H":
        return int(np.sum(tangent_eigs(J, s) > 0))
    if mistake == "fraction of negative eigenvalues":
        return float(np.mean(tangent_eigs(J, s) < 0))
    if mistake == "returns a boolean 'is a minimum'":
        return bool(np.all(tangent_eigs(J, s) > 0))
    if mistake == "one-slot Hessian (symmetric J assumed)":
        def h(J, s):
            J64 = f64(J)
            P = proj(s64)
            E1 = p * (p - 1) * ehess_pairs(J64, s64, pairs=[(p - 2, p - 1)])
            g1 = p * egrad_slots(J64, s64, slots=[p - 1])
            return P @ E1 @ P - (s64 @ g1) / N * P
        return int(np.sum(tangent_eigs(J, s, hess=h) < 0))
    if mistake == "counts eigenvalues below -1 (a tolerance far too coarse)":
        return int(np.sum(tangent_eigs(J, s) < -1.0))
    raise ValueError(mistake)


INDEX_WRONG = ["N x N matrix, <= 0", "N x N matrix, < 0 (the zero along s counted when it rounds negative)", "counts positive eigenvalues", "Euclidean Hessian", "no shift", "shift H / N",
               "index of -H", "fraction of negative eigenvalues", "returns a boolean 'is a minimum'",
               "one-slot Hessian (symmetric J assumed)", "counts eigenvalues below -1 (a tolerance far too coarse)"]


@pytest.mark.parametrize("fn", [SOLUTION["critical_index"], index_sylvester, index_deflated, index_torch_svd,
                                index_float32, GRADING.critical_index],
                         ids=["solution", "sylvester", "deflated", "torch svd", "float32", "reference"])
def test_index_correct_alternatives_keep_full_marks(fn):
    assert_full("critical_index", fn)


@pytest.mark.parametrize("mistake", INDEX_WRONG)
def test_index_wrong_implementations_lose_points(mistake):
    assert_loses("critical_index", functools.partial(index_variant, mistake=mistake))


@pytest.mark.parametrize("value", [0, 1, 2, 3, 4, 5])
def test_a_constant_index_earns_nothing(value):
    """Every index of the checks is what some constant returns: the value checks count only once the N eigenvector
    critical points of a p = 2 landscape get N different indices, which no constant does."""
    for tests in ("visible", "all"):
        points, text = grade("critical_index", lambda J, s: value, tests)
        assert points == 0, text


def test_index_hint_for_the_zero_eigenvalue_along_s():
    assert "s-perp" in grade("critical_index", functools.partial(index_variant, mistake="N x N matrix, <= 0"))[1]


# ==============================================================================================================
# find_local_minimum
# ==============================================================================================================
def retract(s):
    return math.sqrt(s.shape[0]) * s / np.linalg.norm(s)


def newton_polish(J, s, hess=rhess_from, grad=rgrad_from, steps=30):
    N = s.shape[0]
    for _ in range(steps):
        g = grad(J, s)
        if np.linalg.norm(g) / math.sqrt(N) < 1e-13:
            break
        Q, _ = np.linalg.qr(np.column_stack([s, np.eye(N)]))
        U = Q[:, 1:N]
        s = retract(s + U @ np.linalg.solve(U.T @ hess(J, s) @ U, -U.T @ g))
    return s


def minimum_euclidean_descent(J, s0):
    """Descent along the Euclidean gradient, then renormalize: the radial part is removed by the retraction."""
    J, s = f64(J), retract(f64(s0))
    N, p = s.shape[0], J.ndim
    lr = 0.5 / (p * p * np.linalg.norm(J) / math.sqrt(N))
    for _ in range(100000):
        s_new = retract(s - lr * egrad_slots(J, s))
        if np.linalg.norm(s_new - s) / math.sqrt(N) < 1e-11:
            s = s_new
            break
        s = s_new
    return s


def minimum_torch(J, s0):
    """Adam-free plain descent with torch autograd on the Riemannian gradient, then Newton with torch Hessians."""
    Jt = torch.as_tensor(f64(J))
    s = torch.as_tensor(retract(f64(s0)))
    N, p = s.shape[0], Jt.ndim

    def H(y):
        T = Jt
        for _ in range(p):
            T = torch.tensordot(T, y, dims=([0], [0]))
        return T * N ** (-(p - 1) / 2)
    lr = 0.1 / p
    for _ in range(100000):
        y = s.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(H(y), y)
        g = g - s * (s @ g) / N
        if float(torch.linalg.norm(g)) / math.sqrt(N) < 1e-4:
            break
        s = s - lr * g
        s = math.sqrt(N) * s / torch.linalg.norm(s)
    return newton_polish(f64(J), s.numpy())


def minimum_reference(J, s0):
    return GRADING.find_local_minimum(J, s0)


def minimum_variant(J, s0, mistake):
    J64, s = f64(J), retract(f64(s0))
    N, p = s.shape[0], J64.ndim
    lr = 0.5 / (p * p * np.linalg.norm(J64) / math.sqrt(N))
    if mistake == "returns s0":
        return s
    if mistake == "Newton only (converges to a saddle)":
        return newton_polish(J64, s, steps=60)
    if mistake == "gradient ascent":
        for _ in range(3000):
            s = retract(s + lr * rgrad_from(J64, s))
        return newton_polish(J64, s)
    if mistake == "100 steps only":
        for _ in range(100):
            s = retract(s - lr * rgrad_from(J64, s))
        return s
    if mistake == "no retraction (leaves the sphere)":
        for _ in range(5000):
            s = s - lr * rgrad_from(J64, s)
        return s
    if mistake == "unit vector returned":
        return SOLUTION["find_local_minimum"](J, s0) / math.sqrt(N)
    if mistake == "one-slot gradient (symmetric J assumed)":
        for _ in range(5000):
            g = p * egrad_slots(J64, s, slots=[p - 1])
            s = retract(s - lr * (g - s * (s @ g) / N))
        return s
    if mistake == "stops at |grad| < 1e-2":
        for _ in range(100000):
            g = rgrad_from(J64, s)
            if np.linalg.norm(g) < 1e-2:
                break
            s = retract(s - lr * g)
        return s
    if mistake == "modifies s0 in place":
        out = SOLUTION["find_local_minimum"](J, s0)
        if isinstance(s0, np.ndarray):
            s0[:] = out.astype(s0.dtype)
        return out
    if mistake == "a random point of the sphere":
        return retract(np.random.default_rng(0).standard_normal(N))
    raise ValueError(mistake)


MINIMUM_WRONG = ["returns s0", "Newton only (converges to a saddle)", "gradient ascent", "100 steps only",
                 "no retraction (leaves the sphere)", "unit vector returned", "one-slot gradient (symmetric J assumed)",
                 "stops at |grad| < 1e-2", "modifies s0 in place", "a random point of the sphere"]


@pytest.mark.parametrize("fn", [SOLUTION["find_local_minimum"], minimum_euclidean_descent, minimum_torch,
                                minimum_reference],
                         ids=["solution", "euclidean descent + retraction", "torch", "reference (Armijo)"])
def test_minimum_correct_alternatives_keep_full_marks(fn):
    assert_full("find_local_minimum", fn)


@pytest.mark.parametrize("mistake", MINIMUM_WRONG)
def test_minimum_wrong_implementations_lose_points(mistake):
    assert_loses("find_local_minimum", functools.partial(minimum_variant, mistake=mistake))


# ==============================================================================================================
# The references against independent computations; the visible literals
# ==============================================================================================================
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10 ** 6), N=st.integers(2, 6), p=st.integers(1, 4))
def test_references_match_finite_differences_and_the_slot_sums(seed, N, p):
    J, s = GRADING.random_case(seed, N, p)
    eps = 1e-5
    E = np.eye(N)
    fd = np.array([(GRADING.pspin_energy(J, s + eps * e) - GRADING.pspin_energy(J, s - eps * e)) / (2 * eps)
                   for e in E])
    assert np.allclose(fd, GRADING.euclidean_gradient(J, s), atol=1e-6)
    assert math.isclose(GRADING.pspin_energy(J, s), energy_einsum(J, s), rel_tol=1e-10, abs_tol=1e-10)
    assert np.allclose(GRADING.euclidean_gradient(J, s), egrad_slots(J, s), atol=1e-10)
    assert math.isclose(float(s @ GRADING.euclidean_gradient(J, s)), p * GRADING.pspin_energy(J, s),
                        rel_tol=1e-9, abs_tol=1e-9)  # Euler
    if p >= 2:
        assert np.allclose(GRADING.euclidean_hessian(J, s), ehess_pairs(J, s), atol=1e-10)
    # the Riemannian Hessian is the second derivative along unit-speed great circles
    v = GRADING.tangent_basis(s)[:, 0]
    t = 1e-4
    curve = lambda a: math.cos(a / math.sqrt(N)) * s + math.sqrt(N) * math.sin(a / math.sqrt(N)) * v
    d2 = (GRADING.pspin_energy(J, curve(t)) - 2 * GRADING.pspin_energy(J, s) + GRADING.pspin_energy(J, curve(-t))) / t ** 2
    assert math.isclose(d2, float(v @ GRADING.sphere_hessian(J, s) @ v), rel_tol=1e-4, abs_tol=1e-4)


def test_p2_critical_points_are_eigenvectors_with_index_their_rank():
    N = 8
    J = np.random.default_rng(3).standard_normal((N, N))
    lam, V = np.linalg.eigh((J + J.T) / 2)
    for k in range(N):
        s = math.sqrt(N) * V[:, k]
        assert np.linalg.norm(GRADING.sphere_gradient(J, s)) < 1e-12
        assert GRADING.critical_index(J, s) == k
        assert math.isclose(GRADING.pspin_energy(J, s) / N, lam[k] / math.sqrt(N), rel_tol=1e-12)
        want = np.sort(2 * (np.delete(lam, k) - lam[k]) / math.sqrt(N))
        assert np.allclose(GRADING.tangent_spectrum(J, s), want, atol=1e-12)


def test_covariance_of_the_energy():
    """E[H(s) H(s')] = N (s.s'/N)^p, Monte Carlo over J (4000 draws, 5 standard errors)."""
    N, p = 4, 3
    rng = np.random.default_rng(7)
    s = GRADING.on_sphere(rng.standard_normal(N))
    t = GRADING.on_sphere(rng.standard_normal(N))
    prods = []
    for _ in range(4000):
        J = rng.standard_normal((N,) * p)
        prods.append(GRADING.pspin_energy(J, s) * GRADING.pspin_energy(J, t))
    want = N * (s @ t / N) ** p
    assert abs(np.mean(prods) - want) < 5 * np.std(prods) / math.sqrt(len(prods))
    assert abs(np.mean([GRADING.pspin_energy(rng.standard_normal((N,) * p), s) ** 2 for _ in range(4000)]) - N) < 0.3 * N


def test_visible_literals_are_recomputed_by_the_reference():
    for (seed, N, p), want in L.ENERGY_LITERALS.items():
        J, s = L.visible_inputs(seed, N, p)
        assert math.isclose(GRADING.pspin_energy(J, s), want, rel_tol=1e-13, abs_tol=1e-14)
    for key, want in L.GRADIENT_LITERALS.items():
        J, s = L.visible_inputs(*key)
        assert np.allclose(GRADING.sphere_gradient(J, s), want, rtol=0, atol=1e-13)
    for key, want in L.HESSIAN_LITERALS.items():
        J, s = L.visible_inputs(*key)
        assert np.allclose(GRADING.sphere_hessian(J, s), want, rtol=0, atol=1e-11)
    J = L.visible_inputs(14, 6, 3)[0]
    for k, s in L.CRITICAL_POINTS_14:
        s = np.array(s)
        assert np.linalg.norm(GRADING.sphere_gradient(J, s)) / math.sqrt(6) < 1e-9
        assert GRADING.critical_index(J, s) == k
        assert np.min(np.abs(GRADING.tangent_spectrum(J, s))) > 0.3
    J = L.visible_inputs(15, 6, 3)[0]
    minima = np.array(L.MINIMA_15)
    for s in minima:
        assert np.linalg.norm(GRADING.sphere_gradient(J, s)) / math.sqrt(6) < 1e-9
        assert GRADING.critical_index(J, s) == 0
    # the descent from 200 further random starts ends at one of the listed minima
    rng = np.random.default_rng(123)
    for _ in range(200):
        s = GRADING.find_local_minimum(J, rng.standard_normal(6))
        assert np.min(np.linalg.norm(minima - s, axis=1)) / math.sqrt(6) < 1e-6


def test_hidden_cases_are_non_degenerate_critical_points():
    for case in GRADING.index_cases():
        J, s = f64(case["J"]), f64(case["s"])
        tol = 1e-6 if np.asarray(case["s"]).dtype == np.float32 else 1e-8  # float32 rounding of s
        assert np.linalg.norm(GRADING.sphere_gradient(J, s)) / math.sqrt(len(s)) < tol, case["name"]
        assert np.min(np.abs(GRADING.tangent_spectrum(J, s))) >= 0.05, case["name"]
    assert len({GRADING.critical_index(c["J"], c["s"]) for c in GRADING.index_cases()}) >= 5


def test_minimum_ceiling_leaves_a_margin_over_several_seeds():
    """The threshold of MINIMUM_ENERGY_CEILING against 40 fresh seeds of the reference descent per graded size."""
    worst = {}
    for seed, N, p in [(s, 12, 3) for s in range(20)] + [(s, 9, 4) for s in range(20)]:
        J, s0 = GRADING.random_case(90000 + seed, N, p)
        u = GRADING.pspin_energy(J, GRADING.find_local_minimum(J, s0)) / N
        worst[p] = max(worst.get(p, -9), u)
    for p, u in worst.items():
        assert u < L.MINIMUM_ENERGY_CEILING[p] - 0.1, (p, u)


# ==============================================================================================================
# Stubs, lies, noise; the student side
# ==============================================================================================================
@pytest.mark.parametrize("part", PARTS)
def test_untouched_stub_scores_zero_with_a_clear_message(part):
    for tests in ("visible", "all"):
        points, text = grade(part, stub, tests)
        assert points == 0 and "not implemented yet" in text


def _lying(*args, **kwargs):
    return np.zeros(0).view(AlwaysEqual)


@pytest.mark.parametrize("part", PARTS)
def test_objects_that_lie_or_garbage_score_zero(part):
    for fn in (_lying, lambda *a, **k: None, lambda *a, **k: "1.0"):
        assert grade(part, fn)[0] == 0


def test_noisy_correct_functions_keep_full_marks():
    for part in PARTS:
        assert_full(part, noisy(SOLUTION[part]))


def test_same_submission_same_score():
    fn = functools.partial(gradient_variant, mistake="p times one slot")
    assert grade("sphere_gradient", fn) == grade("sphere_gradient", fn)


def test_topic_declares_the_points_once():
    assert L.TOPIC.points == {"check_pspin_energy": 2, "check_sphere_gradient": 3, "check_sphere_hessian": 3,
                              "check_critical_index": 2, "check_find_local_minimum": 3, "written_threshold": 3}
    from tests.notebooks import source_notebook
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in source_notebook("landscapes").cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert {k: c.metadata["nbgrader"]["points"] for k, c in cells.items()} == L.TOPIC.points
    for part in PARTS:
        assert f"check_{part}({part}, tests)" in cells[f"check_{part}"].source


def test_student_side_module_has_no_reference_implementation():
    """No callable of autograder/landscapes.py computes a graded part: each one, called as the student's function,
    scores less than full marks on every part (most raise), and the source has no contraction of J with s."""
    source = inspect.getsource(L)
    for forbidden in ("np.tensordot(", "einsum(", "def pspin_energy", "def sphere_gradient", "def sphere_hessian",
                      "def critical_index", "def find_local_minimum", "permutations"):
        assert forbidden not in source, forbidden
    for name, obj in vars(L).items():
        if callable(obj) and getattr(obj, "__module__", None) == L.__name__ and not name.startswith("check_"):
            for part in PARTS:
                assert grade(part, obj, "all")[0] < GRADER.points(part), (name, part)


# ==============================================================================================================
# The whole class through both engines (slow)
# ==============================================================================================================
WRONG_GRADIENT_CELL = """import numpy as np


def sphere_gradient(J, s):
    # p times the contraction of one slot of (J + J.T) / 2: a symmetrization only for p = 2 (J.T reverses the axes)
    J, s = np.array(J, dtype=float), np.array(s, dtype=float)
    N, p = s.shape[0], J.ndim
    T = (J + J.T) / 2
    for _ in range(p - 1):
        T = np.tensordot(s, T, axes=([0], [0]))
    g = p * T * N ** (-(p - 1) / 2)
    return g - s * (s @ g) / N
"""


@pytest.mark.slow
def test_landscapes_class_through_both_engines(tmp_path):
    """Full solution: full automatic marks; untouched release: 0; a partly correct submission: the same partial
    credit as graded in-process; through the isolated engine and through real nbgrader."""
    import nbformat

    from autograder import nbgrading
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["landscapes"])
    nbgrading.release(course, "landscapes")
    release = nbformat.read(course / "exercises" / "landscapes" / "landscapes.ipynb", as_version=4)
    text = nbformat.writes(release)
    for leak in ("BEGIN SOLUTION", "HIDDEN TESTS", "np.linalg.qr", "euclidean_hessian(J, s64) @ P"):
        assert leak not in text, leak
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("landscapes").cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    namespace: dict = {}
    exec(WRONG_GRADIENT_CELL, namespace)
    expected_partial = grade("sphere_gradient", namespace["sphere_gradient"])[0]
    assert 0 < expected_partial < 3
    class_ = {"full": dict(solution), "untouched": {},
              "partial": {"pspin_energy": solution["pspin_energy"], "sphere_gradient": WRONG_GRADIENT_CELL}}
    full = {k: float(v) for k, v in L.TOPIC.points.items() if k.startswith("check_")}
    partial = dict({k: 0.0 for k in full}, check_pspin_energy=2.0, check_sphere_gradient=expected_partial)
    for engine in ("isolated", "nbgrader"):
        folder = tmp_path / f"submissions_{engine}"
        for student, answers in class_.items():
            add_submission(folder, f"{student}_{engine}", "landscapes", fill(release, dict(answers)))
        if engine == "isolated":
            results, warnings = nbgrading.grade_isolated(course, "landscapes", folder, cell_timeout=120, workers=1)
        else:
            results, warnings = nbgrading.grade(course, "landscapes", folder, cell_timeout=120)
        got = {r.student: {k: float(v) for k, v in (r.scores if hasattr(r, "scores") else r.parts).items()
                           if k.startswith("check_")} for r in results}
        assert got[f"full_{engine}"] == full, (engine, got)
        assert got[f"untouched_{engine}"] == {g: 0.0 for g in full}, (engine, got)
        assert got[f"partial_{engine}"] == partial, (engine, got)
        assert not warnings, (engine, warnings)
