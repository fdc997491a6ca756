"""Tests of autograder/random_matrices.py: the checks discriminate.

* the solution notebook and correct alternatives (other quadratures, torch, float32, other draw orders) keep full
  marks;
* plausible wrong implementations lose points;
* the instructor references agree with closed forms, mpmath, the solution notebook and simulations; the visible
  literals and the bands of the experiment are recomputed;
* stubs and objects that lie score 0; the whole pipeline runs through real nbgrader and the isolated engine (slow).
Wrong and alternative implementations are graded in-process through the same entry points the notebook uses.
"""
from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest
import scipy.integrate
import torch
from hypothesis import given, settings, strategies as st

from autograder import random_matrices as rm
from autograder.core import instructor_module
from tests.grading import AlwaysEqual, Grader, noisy, stub
from tests.notebooks import solution_namespace

SOLUTION = solution_namespace("random_matrices")
GRADING = instructor_module("random_matrices")
GRADER = Grader(rm)
grade, assert_full, assert_loses = GRADER.grade, GRADER.assert_full, GRADER.assert_loses


# ==============================================================================================================
# mp_density
# ==============================================================================================================
def mp_variant(x, gamma, sigma2=1.0, *, mistake=None, dtype=np.float64):
    x = np.asarray(x, dtype=dtype)
    g, s2 = gamma, sigma2
    if mistake == "gamma inverted":
        g = 1.0 / gamma
    if mistake == "sigma2 ignored":
        s2 = 1.0
    scale = math.sqrt(s2) if mistake == "edges with sigma instead of sigma2" else s2
    lm, lp = scale * (1 - math.sqrt(g)) ** 2, scale * (1 + math.sqrt(g)) ** 2
    denominator = {"sigma2 missing from the denominator": 2 * np.pi * g,
                   "no 2 in the denominator": np.pi * s2 * g,
                   "no x in the denominator": 2 * np.pi * s2 * g}.get(mistake, 2 * np.pi * s2 * g)
    with np.errstate(all="ignore"):
        prod = (lp - x) * (x - lm)
        if mistake == "nan outside (no guard)":
            return np.sqrt(prod) / (denominator * (1.0 if mistake == "no x in the denominator" else x))
        root = np.sqrt(np.maximum(prod, 0.0))
        rho = root / (denominator * (1.0 if mistake == "no x in the denominator" else np.where(x > 0, x, 1.0)))
    rho = np.where((x > lm) & (x < lp), rho, 0.0).astype(dtype)
    if mistake == "normalized to mass 1":
        rho = rho * max(1.0, g)
    if mistake == "density of X X^T / n (the n x n side)":
        rho = rho * g
    if mistake == "flattened":
        rho = rho.reshape(-1)
    if mistake == "nan at the edges":
        rho = np.where((x == lm) | (x == lp), np.nan, rho)
    return rho


MP_MISTAKES = ["gamma inverted", "sigma2 ignored", "edges with sigma instead of sigma2",
               "sigma2 missing from the denominator", "no 2 in the denominator", "no x in the denominator",
               "nan outside (no guard)", "normalized to mass 1", "density of X X^T / n (the n x n side)",
               "flattened", "nan at the edges"]


def mp_torch(x, gamma, sigma2=1.0):
    t = torch.as_tensor(np.asarray(x, dtype=np.float64))
    lm, lp = sigma2 * (1 - gamma ** 0.5) ** 2, sigma2 * (1 + gamma ** 0.5) ** 2
    inside = (t > lm) & (t < lp)
    safe = torch.where(inside, t, torch.ones_like(t))
    return torch.where(inside, torch.sqrt((lp - safe) * (safe - lm)) / (2 * math.pi * sigma2 * gamma * safe), 0.0)


def mp_stieltjes(x, gamma, sigma2=1.0):
    """Im m(x + i 0) / pi with m the Stieltjes transform: root of gamma sigma2 z m^2 + (z - sigma2 (1 - gamma)) m + 1."""
    x = np.asarray(x, dtype=np.float64)
    z = x.astype(complex) + 1e-300j
    a, b = gamma * sigma2 * z, z - sigma2 * (1 - gamma)
    disc = np.sqrt(b * b - 4 * a + 0j)
    roots = np.stack([(-b + disc) / (2 * a), (-b - disc) / (2 * a)])
    m = np.max(np.where(np.abs(z) > 0, roots.imag, 0.0), axis=0)
    return np.where(x > 0, np.maximum(m, 0.0) / np.pi, 0.0)


def mp_float32(x, gamma, sigma2=1.0):
    x32 = np.asarray(x).astype(np.float32)
    lm, lp = np.float32(sigma2 * (1 - math.sqrt(gamma)) ** 2), np.float32(sigma2 * (1 + math.sqrt(gamma)) ** 2)
    inside = (x32 > lm) & (x32 < lp)
    safe = np.where(inside, x32, np.float32(1))
    return np.where(inside, np.sqrt((lp - safe) * (safe - lm)) / np.float32(2 * np.pi * sigma2 * gamma) / safe,
                    np.float32(0))


@pytest.mark.parametrize("fn", [SOLUTION["mp_density"], mp_torch, mp_stieltjes, mp_float32, mp_variant,
                                functools.partial(mp_variant, dtype=np.float32)],
                         ids=["solution", "torch", "stieltjes", "float32 arithmetic", "variant", "variant f32"])
def test_mp_density_correct_alternatives_keep_full_marks(fn):
    assert_full("mp_density", fn)


@pytest.mark.parametrize("mistake", MP_MISTAKES)
def test_mp_density_wrong_implementations_lose_points(mistake):
    assert_loses("mp_density", functools.partial(mp_variant, mistake=mistake))


@pytest.mark.parametrize("fn", [lambda x, gamma, sigma2=1.0: np.zeros_like(np.asarray(x, dtype=float)),
                                lambda x, gamma, sigma2=1.0: np.where(np.asarray(x, dtype=float) > 0, 0.0, np.nan)],
                         ids=["zeros", "zeros for x > 0"])
def test_mp_density_zero_outside_the_support_alone_earns_nothing(fn):
    """The density vanishes outside (l_-, l_+), which the zero function satisfies too: that check is gated (it
    counts once a value check passes)."""
    for tests in ("visible", "all"):
        points, text = grade("mp_density", fn, tests)
        assert points == 0, text


def test_mp_density_hint_names_the_atom():
    text = assert_loses("mp_density", functools.partial(mp_variant, mistake="normalized to mass 1"))
    assert "1/gamma" in text


@settings(max_examples=40, deadline=None)
@given(gamma=st.floats(0.02, 8.0), sigma2=st.floats(0.1, 5.0), seed=st.integers(0, 10 ** 6))
def test_mp_reference_equals_product_form_and_stieltjes(gamma, sigma2, seed):
    lm, lp = GRADING.mp_edges(gamma, sigma2)
    x = np.random.default_rng(seed).uniform(-0.1, 1.2 * lp, 50)
    ref = GRADING.mp_density(x, gamma, sigma2)
    assert np.allclose(ref, SOLUTION["mp_density"](x, gamma, sigma2), rtol=1e-10, atol=1e-12)
    assert np.allclose(ref, mp_stieltjes(x, gamma, sigma2), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("gamma,sigma2", [(0.3, 1.0), (1.0, 2.0), (2.5, 0.8)])
def test_mp_reference_mass_and_moments(gamma, sigma2):
    lm, lp = GRADING.mp_edges(gamma, sigma2)
    opts = dict(limit=200, epsabs=1e-12)
    mass = scipy.integrate.quad(lambda x: GRADING.mp_density(x, gamma, sigma2), lm, lp, **opts)[0]
    mean = scipy.integrate.quad(lambda x: x * GRADING.mp_density(x, gamma, sigma2), lm, lp, **opts)[0]
    second = scipy.integrate.quad(lambda x: x * x * GRADING.mp_density(x, gamma, sigma2), lm, lp, **opts)[0]
    assert mass == pytest.approx(min(1, 1 / gamma), abs=1e-7)
    assert mean == pytest.approx(sigma2, abs=1e-7)
    assert second == pytest.approx(sigma2 ** 2 * (1 + gamma), abs=1e-7)


@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_mp_reference_matches_simulated_spectrum(gamma):
    n = 600
    p = int(gamma * n)
    sigma2 = 1.7
    X = np.random.default_rng(0).normal(scale=math.sqrt(sigma2), size=(n, p))
    eig = np.linalg.eigvalsh(X.T @ X / n)
    lm, lp = GRADING.mp_edges(gamma, sigma2)
    grid = np.linspace(lm, lp, 9)[1:-1]
    cdf = [scipy.integrate.quad(lambda x: GRADING.mp_density(x, gamma, sigma2), lm, t)[0] for t in grid]
    atom = max(0.0, 1 - 1 / gamma)
    empirical = [np.mean(eig <= t) for t in grid]
    assert np.max(np.abs(np.array(empirical) - atom - np.array(cdf))) < 0.015
    assert abs(eig.max() - lp) < 0.05 * lp


def test_visible_mp_literals_are_the_reference():
    for gamma, sigma2, xs, want in rm.MP_VALUES:
        assert np.allclose(GRADING.mp_density(np.array(xs), gamma, sigma2), want, rtol=1e-14)
        assert np.allclose(mp_stieltjes(np.array(xs), gamma, sigma2), want, rtol=1e-7)


# ==============================================================================================================
# gaussian_moments
# ==============================================================================================================
def moments_from(expect):
    """(mu0, mu1, mu_star) from a function expect(g) = E g(z)."""
    def gaussian_moments(activation):
        m0 = expect(lambda z: activation(z))
        m1 = expect(lambda z: z * activation(z))
        m2 = expect(lambda z: activation(z) ** 2)
        return m0, m1, math.sqrt(max(m2 - m0 ** 2 - m1 ** 2, 0.0))
    return gaussian_moments


def _composite_legendre(g, panels=24000, nodes=8, lo=-12.0, hi=12.0):
    t, w = np.polynomial.legendre.leggauss(nodes)
    edges = np.linspace(lo, hi, panels + 1)
    a, b = edges[:-1, None], edges[1:, None]
    z = ((a + b) / 2 + (b - a) / 2 * t).ravel()
    ww = ((b - a) / 2 * w).ravel() * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    return float(ww @ g(z))




def _quad_split(g):
    pts = np.linspace(-10, 10, 81)
    return sum(scipy.integrate.quad(g_phi, a, b, limit=200, epsabs=1e-14)[0]
               for a, b in zip(pts[:-1], pts[1:]) for g_phi in [lambda z: g(z) * math.exp(-z * z / 2) /
                                                                math.sqrt(2 * math.pi)])


def moments_torch(activation):
    t, w = np.polynomial.legendre.leggauss(8)
    edges = torch.linspace(-12, 12, 24001, dtype=torch.float64)
    a, b = edges[:-1, None], edges[1:, None]
    z = ((a + b) / 2 + (b - a) / 2 * torch.from_numpy(t)).reshape(-1)
    ww = ((b - a) / 2 * torch.from_numpy(w)).reshape(-1) * torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    f = torch.as_tensor(activation(z.numpy()), dtype=torch.float64)
    m0, m1, m2 = ww @ f, ww @ (z * f), ww @ (f * f)
    return torch.stack([m0, m1, torch.sqrt(torch.clamp(m2 - m0 ** 2 - m1 ** 2, min=0))])


CORRECT_MOMENTS = {
    "solution": SOLUTION["gaussian_moments"],
    "composite Gauss-Legendre": moments_from(_composite_legendre),
    "quad on 80 subintervals": moments_from(_quad_split),
    "torch, returns a tensor": moments_torch,
}


@pytest.mark.parametrize("name", list(CORRECT_MOMENTS))
def test_gaussian_moments_correct_alternatives_keep_full_marks(name):
    assert_full("gaussian_moments", CORRECT_MOMENTS[name])


def _monte_carlo(g, n=500_000):
    return float(np.mean(g(np.random.default_rng(0).standard_normal(n))))


def _hermite_few(g, n=200):
    z, w = np.polynomial.hermite_e.hermegauss(n)
    return float(w @ g(z) / math.sqrt(2 * math.pi))


def _hermite_physicists_unscaled(g, n=150):
    x, w = np.polynomial.hermite.hermgauss(n)
    return float(w @ g(x) / math.sqrt(math.pi))


def _trapezoid(g):
    z = np.linspace(-5, 5, 1001)
    return float(np.trapezoid(g(z) * np.exp(-z * z / 2) / math.sqrt(2 * math.pi), z))


def moments_wrong(activation, mistake):
    m0 = _composite_legendre(activation)
    m1 = _composite_legendre(lambda z: z * activation(z))
    m2 = _composite_legendre(lambda z: activation(z) ** 2)
    return {"returns mu_star^2": (m0, m1, m2 - m0 ** 2 - m1 ** 2),
            "forgets mu1^2": (m0, m1, math.sqrt(max(m2 - m0 ** 2, 0))),
            "returns E f^2 as third": (m0, m1, m2),
            "mu0 = f(0)": (float(activation(np.array(0.0))), m1, math.sqrt(max(m2 - m0 ** 2 - m1 ** 2, 0))),
            "mu1 = E f'(z) by finite differences of step 0.1":
                (m0, _composite_legendre(lambda z: (activation(z + 0.1) - activation(z - 0.1)) / 0.2),
                 math.sqrt(max(m2 - m0 ** 2 - m1 ** 2, 0))),
            }[mistake]


WRONG_MOMENTS = {
    "Monte Carlo, 5e5 samples": moments_from(_monte_carlo),
    "Gauss-Hermite, 200 nodes": moments_from(_hermite_few),
    "physicists' Hermite nodes without the sqrt(2)": moments_from(_hermite_physicists_unscaled),
    "trapezoid on [-5, 5]": moments_from(_trapezoid),
    **{m: functools.partial(moments_wrong, mistake=m) for m in
       ["returns mu_star^2", "forgets mu1^2", "returns E f^2 as third", "mu0 = f(0)",
        "mu1 = E f'(z) by finite differences of step 0.1"]},
}


@pytest.mark.parametrize("name", list(WRONG_MOMENTS))
def test_gaussian_moments_wrong_implementations_lose_points(name):
    assert_loses("gaussian_moments", WRONG_MOMENTS[name])


def test_gaussian_moments_hints():
    assert "mu_star^2" in assert_loses("gaussian_moments", WRONG_MOMENTS["returns mu_star^2"], tests="visible")
    assert "sqrt(2) x" in assert_loses("gaussian_moments",
                                       WRONG_MOMENTS["physicists' Hermite nodes without the sqrt(2)"],
                                       tests="visible")
    assert "Monte Carlo" in assert_loses("gaussian_moments", WRONG_MOMENTS["Monte Carlo, 5e5 samples"],
                                         tests="visible")


def _mp_moments(f, points):
    mpmath.mp.dps = 30
    phi = lambda z: mpmath.exp(-z * z / 2) / mpmath.sqrt(2 * mpmath.pi)
    pts = [-mpmath.inf] + points + [mpmath.inf]
    m0 = mpmath.quad(lambda z: f(z) * phi(z), pts)
    m1 = mpmath.quad(lambda z: z * f(z) * phi(z), pts)
    m2 = mpmath.quad(lambda z: f(z) ** 2 * phi(z), pts)
    return float(m0), float(m1), float(m2 - m0 ** 2 - m1 ** 2)


def test_visible_moment_literals_by_mpmath():
    assert np.allclose(rm.TANH, _mp_moments(mpmath.tanh, [0]), atol=1e-15)
    assert np.allclose(rm.SHIFTED_RELU, _mp_moments(lambda z: max(z - 0.5, 0), [0.5]), atol=1e-15)
    assert np.allclose(rm.RELU, _mp_moments(lambda z: max(z, 0), [0]), atol=1e-15)
    assert np.allclose(rm.ABS, _mp_moments(abs, [0]), atol=1e-15)
    assert np.allclose(rm.SQUARE, _mp_moments(lambda z: z * z, [0]), atol=1e-14)


def test_reference_moments_agree_with_mpmath_and_the_solution():
    mp_forms = {"2 relu(z - 0.7) + 0.3": (lambda z: 2 * max(z - 0.7, 0) + 0.3, [0.7]),
                "hard tanh clip(z, -1, 1)": (lambda z: min(max(z, -1), 1), [-1, 1]),
                "z^2 for z > 0, -z/2 for z <= 0": (lambda z: z * z if z > 0 else -z / 2, [0]),
                "sin(2z)": (lambda z: mpmath.sin(2 * z), [0])}
    for name, (f, points) in mp_forms.items():
        m0, m1, ms = GRADING.gaussian_moments(*GRADING.ACTIVATIONS[name])
        assert np.allclose((m0, m1, ms ** 2), _mp_moments(f, points), atol=1e-12), name
    for name, (fn, kinks) in GRADING.ACTIVATIONS.items():
        ref = GRADING.gaussian_moments(fn, kinks)
        assert np.allclose(ref, GRADING.gaussian_moments(fn), atol=1e-8), name      # without the kinks declared
        assert np.allclose(ref, SOLUTION["gaussian_moments"](fn), atol=1e-9), name


# ==============================================================================================================
# gaussian_equivalent_features
# ==============================================================================================================
def equivalent_variant(X, W, activation, Z, *, mistake=None, moments=None):
    m0, m1, ms = (moments or GRADING.gaussian_moments)(activation)
    X, W, Z = (np.asarray(A, dtype=np.float64) for A in (X, W, Z))
    d, N = X.shape[1], W.shape[0]
    lin = X @ W.T
    if mistake == "W X^T (transposed)":
        return m0 + m1 * (W @ X.T) / math.sqrt(d) + ms * Z.T
    if mistake == "fresh noise instead of Z":
        Z = np.random.default_rng(1).standard_normal(Z.shape)
    scale = {"1/d": d, "no scaling": 1.0, "1/sqrt(N)": math.sqrt(N)}.get(mistake, math.sqrt(d))
    coef = {"mu_star^2": ms ** 2, "no noise": 0.0}.get(mistake, ms)
    mu0 = 0.0 if mistake == "no mu0" else m0
    return mu0 + m1 * lin / scale + coef * Z


def equivalent_in_place(X, W, activation, Z):
    m0, m1, ms = GRADING.gaussian_moments(activation)
    Z *= ms
    return m0 + m1 * X @ W.T / math.sqrt(X.shape[1]) + Z


def equivalent_torch(X, W, activation, Z):
    m0, m1, ms = (float(v) for v in moments_torch(activation))
    Xt, Wt, Zt = (torch.as_tensor(A) for A in (X, W, Z))
    return m0 + m1 * Xt @ Wt.T / Xt.shape[1] ** 0.5 + ms * Zt


def equivalent_einsum_float32(X, W, activation, Z):
    m0, m1, ms = CORRECT_MOMENTS["composite Gauss-Legendre"](activation)
    X, W, Z = (np.asarray(A, dtype=np.float32) for A in (X, W, Z))
    return np.float32(m0) + np.float32(m1 / math.sqrt(X.shape[1])) * np.einsum("id,jd->ij", X, W) + \
        np.float32(ms) * Z


@pytest.mark.parametrize("fn", [SOLUTION["gaussian_equivalent_features"], equivalent_torch,
                                equivalent_einsum_float32, equivalent_variant],
                         ids=["solution", "torch", "einsum float32", "variant"])
def test_equivalent_correct_alternatives_keep_full_marks(fn):
    assert_full("gaussian_equivalent_features", fn)


@pytest.mark.parametrize("mistake", ["W X^T (transposed)", "fresh noise instead of Z", "1/d", "no scaling",
                                     "1/sqrt(N)", "mu_star^2", "no noise", "no mu0", "Monte Carlo moments",
                                     "in place"])
def test_equivalent_wrong_implementations_lose_points(mistake):
    if mistake == "Monte Carlo moments":
        fn = functools.partial(equivalent_variant, moments=WRONG_MOMENTS["Monte Carlo, 5e5 samples"])
    elif mistake == "in place":
        fn = equivalent_in_place
    else:
        fn = functools.partial(equivalent_variant, mistake=mistake)
    assert_loses("gaussian_equivalent_features", fn)


def test_equivalent_hints():
    assert "1/sqrt(d)" in assert_loses("gaussian_equivalent_features",
                                       functools.partial(equivalent_variant, mistake="1/d"))
    assert "mu_star, not mu_star^2" in assert_loses("gaussian_equivalent_features",
                                                    functools.partial(equivalent_variant, mistake="mu_star^2"))


def test_reference_equivalent_matches_the_nonlinear_kernel():
    """Averaged over many features, the kernel of F and of G agree on the diagonal exactly and off it up to
    O(rho^2) (the heuristic of the written question)."""
    rng = np.random.default_rng(5)
    d, N = 400, 20000
    X = rng.standard_normal((6, d))
    X *= math.sqrt(d) / np.linalg.norm(X, axis=1, keepdims=True)
    W = rng.standard_normal((N, d))
    relu = GRADING.ACTIVATIONS["relu"][0]
    F = relu(X @ W.T / math.sqrt(d))
    G = GRADING.gaussian_equivalent_features(X, W, relu, rng.standard_normal((6, N)))
    assert np.allclose(F @ F.T / N, G @ G.T / N, atol=0.02)


# ==============================================================================================================
# spectrum_gap (the experiment)
# ==============================================================================================================
def gap_variant(activation, n, d, N, seed, *, mistake=None):
    rng = np.random.default_rng(seed)
    if mistake == "Z drawn first (correct)":
        Z = rng.standard_normal((n, N))
        X, W = rng.standard_normal((n, d)), rng.standard_normal((N, d))
    else:
        X, W, Z = rng.standard_normal((n, d)), rng.standard_normal((N, d)), rng.standard_normal((n, N))
    F = activation(X @ W.T / (1.0 if mistake == "no 1/sqrt(d) in F" else math.sqrt(d)))
    equivalent_mistake = {"no noise": "no noise", "mu_star^2": "mu_star^2", "no mu0": "no mu0"}.get(mistake)
    G = equivalent_variant(X, W, activation, Z, mistake=equivalent_mistake)
    if mistake == "N x N Gram (correct)":
        lf, lg = np.linalg.eigvalsh(F.T @ F / n), np.linalg.eigvalsh(G.T @ G / n)
    elif mistake == "squared singular values (correct)":
        lf = np.sort(np.linalg.svd(F, compute_uv=False) ** 2 / N)
        lg = np.sort(np.linalg.svd(G, compute_uv=False) ** 2 / N)
    else:
        lf, lg = np.linalg.eigvalsh(F @ F.T / N), np.linalg.eigvalsh(G @ G.T / N)
    if mistake == "unsorted":
        lg = rng.permutation(lg)
    if mistake == "singular values":
        lf, lg = np.sqrt(np.abs(lf)), np.sqrt(np.abs(lg))
    diff = np.abs(lf - lg)
    if mistake == "sup instead of mean":
        return float(diff.max() / lf.mean())
    if mistake == "not divided by the mean eigenvalue":
        return float(diff.mean())
    if mistake == "top eigenvalue only":
        return float(diff[-1] / lf.mean())
    return float(diff.mean() / lf.mean())


def gap_torch(activation, n, d, N, seed):
    g = torch.Generator().manual_seed(seed)
    X, W, Z = (torch.randn(*s, generator=g, dtype=torch.float64) for s in [(n, d), (N, d), (n, N)])
    F = torch.as_tensor(activation((X @ W.T / d ** 0.5).numpy()))
    G = torch.as_tensor(GRADING.gaussian_equivalent_features(X.numpy(), W.numpy(), activation, Z.numpy()))
    lf, lg = torch.linalg.eigvalsh(F @ F.T / N), torch.linalg.eigvalsh(G @ G.T / N)
    return (lf - lg).abs().mean() / lf.mean()


@pytest.mark.parametrize("fn", [SOLUTION["spectrum_gap"], gap_torch,
                                functools.partial(gap_variant, mistake="Z drawn first (correct)"),
                                functools.partial(gap_variant, mistake="squared singular values (correct)")],
                         ids=["solution", "torch generator", "other draw order", "svd"])
def test_spectrum_gap_correct_alternatives_keep_full_marks_on_the_visible_checks(fn):
    assert_full("spectrum_gap", fn, tests="visible")


@pytest.mark.slow
@pytest.mark.parametrize("fn", [SOLUTION["spectrum_gap"], gap_torch,
                                functools.partial(gap_variant, mistake="Z drawn first (correct)"),
                                functools.partial(gap_variant, mistake="squared singular values (correct)")],
                         ids=["solution", "torch generator", "other draw order", "svd"])
def test_spectrum_gap_correct_alternatives_keep_full_marks(fn):
    """All checks (hidden ones at n = 600): about 5 s each on an idle core."""
    assert_full("spectrum_gap", fn)


@pytest.mark.parametrize("mistake", ["no noise", "mu_star^2", "no mu0", "no 1/sqrt(d) in F", "unsorted",
                                     "singular values", "sup instead of mean", "not divided by the mean eigenvalue",
                                     "top eigenvalue only", "a constant 0.01", "a constant 0.3"])
def test_spectrum_gap_wrong_implementations_lose_points(mistake):
    if mistake.startswith("a constant"):
        value = float(mistake.split()[-1])
        fn = lambda *args: value  # noqa: E731
    else:
        fn = functools.partial(gap_variant, mistake=mistake)
    assert_loses("spectrum_gap", fn, tests="visible")   # the visible checks alone already catch these


@pytest.mark.parametrize("fn", [lambda activation, n, d, N, seed: float(seed),
                                lambda activation, n, d, N, seed: 0.0,
                                lambda activation, n, d, N, seed: 1.0 / n],
                         ids=["the seed", "a constant 0", "1 / n"])
def test_spectrum_gap_comparisons_and_bounds_alone_earn_nothing(fn):
    """The upper bounds (0 passes them) and the comparison of two sizes (anything that grows with the seed, or
    shrinks with n, passes it) are gated: without a gap in the d = 3 band they earn nothing, hidden checks
    included."""
    points, text = grade("spectrum_gap", fn, "all")
    assert points == 0, text


def test_gap_bands_hold_for_fresh_seeds_of_the_reference():
    """Seeds 100-102 (not the 0-59 of the measurement) stay inside the bands; a wrong variant stays outside."""
    relu = GRADING.ACTIVATIONS["relu"][0]
    for seed in (100, 101, 102):
        assert GRADING.spectrum_gap(np.tanh, 300, 300, 450, seed) < rm.GAP_SMALL / 1.5
        lo, hi = rm.GAP_BAND_D3
        assert lo + 0.02 < GRADING.spectrum_gap(relu, 200, 3, 300, seed) < hi - 0.05
        assert gap_variant(np.tanh, 300, 300, 450, seed, mistake="no noise") > 1.5 * rm.GAP_SMALL


# ==============================================================================================================
# Every part: stubs, hostile values, output, determinism, no reference on the student side
# ==============================================================================================================
@pytest.mark.parametrize("part", ["mp_density", "gaussian_moments", "gaussian_equivalent_features", "spectrum_gap"])
def test_untouched_stub_scores_zero_with_a_clear_message(part):
    points, text = grade(part, stub)
    assert points == 0
    assert "not implemented yet" in text


def test_objects_that_lie_score_zero():
    liar = np.zeros(3).view(AlwaysEqual)
    for part in ["mp_density", "gaussian_equivalent_features"]:
        assert grade(part, lambda *a, **k: liar)[0] == 0
    assert grade("gaussian_moments", lambda f: (None, "a", liar))[0] == 0
    assert grade("spectrum_gap", lambda *a: "0.01")[0] == 0


def test_warnings_and_prints_inside_a_correct_function_cost_nothing(capsys):
    assert_full("mp_density", noisy(SOLUTION["mp_density"]))
    assert capsys.readouterr().err == ""


def test_same_submission_same_score():
    wrong = functools.partial(mp_variant, mistake="no 2 in the denominator")
    assert grade("mp_density", wrong) == grade("mp_density", wrong)


def test_student_side_module_has_no_reference_implementation():
    import inspect
    source = inspect.getsource(rm)
    for forbidden in ("def mp_density", "def gaussian_moments", "def gaussian_equivalent_features",
                      "def spectrum_gap", "scipy", "hermgauss(", "hermegauss(", "eigvalsh", "default_rng(seed)"):
        assert forbidden not in source, forbidden
    assert rm.TOPIC.points == {"check_mp_density": 3, "check_gaussian_moments": 3,
                               "check_gaussian_equivalent_features": 2, "check_spectrum_gap": 2,
                               "written_equivalence": 2}


# ==============================================================================================================
# The whole pipeline through real nbgrader and the isolated engine (slow)
# ==============================================================================================================
@pytest.mark.slow
def test_random_matrices_class_through_both_engines(tmp_path):
    """Full solution: full automatic marks; untouched release: 0; a partly correct submission: the in-process
    partial credit, through real nbgrader and through the isolated engine."""
    import os

    import nbformat

    from autograder import nbgrading
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["random_matrices"])
    nbgrading.release(course, "random_matrices")
    release = nbformat.read(course / "exercises" / "random_matrices" / "random_matrices.ipynb", as_version=4)
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("random_matrices").cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    # inline code (the isolated engine's sandbox cannot import tests/): the density normalized to mass 1, right
    # only for gamma <= 1 (for gamma > 1 the right mass is 1/gamma, the atom at 0 carrying the rest)
    wrong_mp = ("import numpy as np\n\ndef mp_density(x, gamma, sigma2=1.0):\n"
                "    x = np.asarray(x, dtype=float)\n"
                "    lm, lp = sigma2 * (1 - np.sqrt(gamma)) ** 2, sigma2 * (1 + np.sqrt(gamma)) ** 2\n"
                "    inside = (x > lm) & (x < lp)\n"
                "    safe = np.where(inside, x, 1.0)\n"
                "    return np.where(inside, np.sqrt((lp - safe) * (safe - lm))"
                " / (2 * np.pi * sigma2 * min(gamma, 1.0) * safe), 0.0)\n")
    wrong_ns: dict = {}
    exec(wrong_mp, wrong_ns)
    partial = {"mp_density": wrong_mp, "gaussian_moments": solution["gaussian_moments"]}
    full_points = {"check_mp_density": 3.0, "check_gaussian_moments": 3.0,
                   "check_gaussian_equivalent_features": 2.0, "check_spectrum_gap": 2.0}
    expected_mp = grade("mp_density", wrong_ns["mp_density"])[0]
    assert 0 < expected_mp < 3
    from autograder.course import default_course
    os.environ.setdefault("PYTHONPATH", str(default_course()))  # lets the 'partial' kernel import tests
    for engine in ("nbgrader", "isolated"):
        folder = tmp_path / f"submissions_{engine}"
        add_submission(folder, "full", "random_matrices", fill(release, dict(solution)))
        add_submission(folder, "untouched", "random_matrices", release)
        add_submission(folder, "partial", "random_matrices", fill(release, dict(partial)))
        if engine == "nbgrader":
            results, warnings = nbgrading.grade(course, "random_matrices", folder, cell_timeout=60)
        else:
            results, warnings = nbgrading.grade_isolated(course, "random_matrices", folder, cell_timeout=60,
                                                         workers=1)
        got = {r.student: r.scores for r in results}
        assert {k: v for k, v in got["full"].items() if k.startswith("check_")} == full_points, (engine, got)
        assert all(v == 0 for v in got["untouched"].values()), (engine, got)
        assert got["partial"] == {"check_mp_density": expected_mp, "check_gaussian_moments": 3.0,
                                  "check_gaussian_equivalent_features": 0.0, "check_spectrum_gap": 0.0,
                                  "written_equivalence": 0.0}, (engine, got)
        assert not warnings, (engine, warnings)
