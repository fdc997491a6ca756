"""Tests of autograder/kernels.py: the checks discriminate.

* the solution notebook and correct alternatives (other algorithms, library routines, torch, float32) keep full
  marks;
* plausible wrong implementations (the mistakes students make) lose points;
* the instructor references agree with independent computations (Hypothesis) and with the visible literals;
* the thresholds of the statistical part separate correct and wrong implementations on fresh seeds;
* stubs, crashes and objects that lie score 0; the student-side module holds no reference implementation.
Wrong and alternative implementations are graded in-process through the same entry points the notebook uses.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from autograder import kernels
from autograder.core import instructor_module
from tests.grading import AlwaysEqual, Grader, noisy, stub
from tests.notebooks import solution_namespace

SOLUTION = solution_namespace("kernels")
GRADING = instructor_module("kernels")
GRADER = Grader(kernels)
grade, assert_full, assert_loses = GRADER.grade, GRADER.assert_full, GRADER.assert_loses
PARTS = ["kernel_ridge", "rkhs_norm", "random_fourier_features", "laplace_kernel", "sample_rff"]


def _f(a):
    """float64 numpy copy of an input (numpy or torch)."""
    if isinstance(a, torch.Tensor):
        return a.detach().double().numpy()
    return np.array(a, dtype=np.float64)


# ==============================================================================================================
# kernel_ridge
# ==============================================================================================================
def kr_variant(K, y, lam, *, mistake):
    K, y = _f(K), _f(y).reshape(-1)
    n = len(y)
    if mistake == "lam without n: (K + lam I)":
        return np.linalg.solve(K + lam * np.eye(n), y)
    if mistake == "lam ignored: K^-1 y":
        return np.linalg.solve(K, y)
    if mistake == "pinv(K) y":
        return np.linalg.pinv(K) @ y
    if mistake == "n^2 lam":
        return np.linalg.solve(K + n * n * lam * np.eye(n), y)
    if mistake == "lam / n":
        return np.linalg.solve(K + lam / n * np.eye(n), y)
    if mistake == "n lam added to every entry (ones, not I)":
        return np.linalg.solve(K + n * lam * np.ones((n, n)), y)
    if mistake == "primal ridge on K as features: (K^T K + n lam I)^-1 K^T y":
        return np.linalg.solve(K.T @ K + n * lam * np.eye(n), K.T @ y)
    if mistake == "column vector (n, 1)":
        return np.linalg.solve(K + n * lam * np.eye(n), y)[:, None]
    if mistake == "diagonal approximation y / (diag K + n lam)":
        return y / (np.diag(K) + n * lam)
    if mistake == "200 steps of gradient descent on the dual":
        A = K + n * lam * np.eye(n)
        a = np.zeros(n)
        lr = 1 / np.linalg.eigvalsh(A).max()
        for _ in range(200):
            a -= lr * (A @ a - y)
        return a
    if mistake == "lam n with n = K.size (n^2 entries)":
        return np.linalg.solve(K + K.size * lam * np.eye(n), y)
    raise ValueError(mistake)


def kr_in_place(K, y, lam):
    """Right value, but adds n lam to the diagonal of the caller's K."""
    n = len(y)
    K[np.diag_indices(n)] += n * lam
    return np.linalg.solve(K, y)


KR_MISTAKES = ["lam without n: (K + lam I)", "lam ignored: K^-1 y", "pinv(K) y", "n^2 lam", "lam / n",
               "n lam added to every entry (ones, not I)",
               "primal ridge on K as features: (K^T K + n lam I)^-1 K^T y", "column vector (n, 1)",
               "diagonal approximation y / (diag K + n lam)", "200 steps of gradient descent on the dual",
               "lam n with n = K.size (n^2 entries)"]


def kr_eigh(K, y, lam):
    w, V = np.linalg.eigh(_f(K))
    y = _f(y)
    return V @ (V.T @ y / (w + len(y) * lam))


def kr_cholesky_or_lstsq(K, y, lam):
    from scipy.linalg import cho_factor, cho_solve, lstsq
    K, y = _f(K), _f(y)
    A = K + len(y) * lam * np.eye(len(y))
    try:
        return cho_solve(cho_factor(A), y)
    except np.linalg.LinAlgError:
        return lstsq(A, y)[0]


def kr_torch(K, y, lam):
    K, y = torch.as_tensor(K), torch.as_tensor(y)
    n = y.shape[0]
    return torch.linalg.solve(K + n * lam * torch.eye(n, dtype=K.dtype), y)


def kr_sklearn(K, y, lam):
    """scikit-learn's KernelRidge on a precomputed kernel solves (K + a I) c = y: a = n lam (lam = 0 by solve)."""
    from sklearn.kernel_ridge import KernelRidge
    n = len(y)
    if lam == 0:
        return np.linalg.solve(_f(K), _f(y))
    return KernelRidge(alpha=n * lam, kernel="precomputed").fit(_f(K), _f(y)).dual_coef_


def kr_inverse_in_dtype(K, y, lam):
    """Explicit inverse, computed in the inputs' own dtype (float32 stays float32)."""
    K, y = np.asarray(K), np.asarray(y)
    return np.linalg.inv(K + len(y) * lam * np.eye(len(y), dtype=K.dtype)) @ y


@pytest.mark.parametrize("fn", [SOLUTION["kernel_ridge"], GRADING.kernel_ridge, kr_eigh, kr_cholesky_or_lstsq,
                                kr_torch, kr_sklearn, kr_inverse_in_dtype],
                         ids=["solution", "reference", "eigh", "cholesky", "torch", "sklearn KernelRidge",
                              "inverse in the input dtype"])
def test_kernel_ridge_correct_alternatives_keep_full_marks(fn):
    assert_full("kernel_ridge", fn)


@pytest.mark.parametrize("mistake", KR_MISTAKES)
def test_kernel_ridge_wrong_implementations_lose_points(mistake):
    assert_loses("kernel_ridge", functools.partial(kr_variant, mistake=mistake))


def test_kernel_ridge_in_place_loses_and_missing_n_is_named():
    text = assert_loses("kernel_ridge", kr_in_place)
    assert "leaves its inputs unchanged" in text and "[FAIL] leaves" in text
    _, text = grade("kernel_ridge", functools.partial(kr_variant, mistake="lam without n: (K + lam I)"), "visible")
    assert "n lam I" in text and "hint" in text


def test_kernel_ridge_visible_literals():
    assert np.allclose(GRADING.kernel_ridge(kernels._KR_K, kernels._KR_Y, 0.5), kernels._KR_ALPHA, atol=1e-15)
    assert np.allclose(GRADING.kernel_ridge(kernels._KR_K, kernels._KR_Y, 0.25), kernels._KR_NO_N, atol=1e-15)
    assert np.linalg.eigvalsh(kernels._KR_K4).min() > 0.05   # invertible, so lam = 0 is well posed


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2 ** 31), st.floats(1e-3, 10.0))
def test_kernel_ridge_reference_solves_the_system(n, seed, lam):
    rng = np.random.default_rng(seed)
    Phi = rng.normal(size=(n, max(1, n - 2)))
    K = Phi @ Phi.T
    y = rng.normal(size=n)
    alpha = GRADING.kernel_ridge(K, y, lam)
    assert np.allclose(K @ alpha + n * lam * alpha, y, atol=1e-9 * (1 + np.abs(y).max()))
    # The representer theorem: alpha minimizes the regularized empirical risk over f = sum_j a_j k(., x_j).
    risk = lambda a: np.mean((K @ a - y) ** 2) + lam * a @ K @ a  # noqa: E731
    for _ in range(3):
        assert risk(alpha) <= risk(alpha + 1e-3 * rng.normal(size=n)) + 1e-12


def test_kernel_ridge_tolerance_covers_float32_solvers():
    """Measured: float32 solvers on the float32 case are within 10 cond eps32; the check allows 1e3 cond eps32."""
    case = next(c for c in GRADING.kernel_ridge_cases() if c["K"].dtype == np.float32)
    expected = GRADING.kernel_ridge(case["K"], case["y"], case["lam"])
    rtol = kernels._kr_rtol(case["K"], case["y"], case["lam"])
    for fn in (kr_inverse_in_dtype, kr_torch):
        got = _f(fn(case["K"], case["y"], case["lam"]))
        assert np.abs(got - expected).max() <= rtol / 100 * np.abs(expected).max()


# ==============================================================================================================
# rkhs_norm
# ==============================================================================================================
def rn_variant(K, alpha, *, mistake):
    K, a = _f(K), _f(alpha).reshape(-1)
    if mistake == "the square alpha^T K alpha":
        return float(a @ K @ a)
    if mistake == "sqrt without clipping (NaN on a singular K)":
        return float(np.sqrt(a @ K @ a))
    if mistake == "|alpha|_2":
        return float(np.linalg.norm(a))
    if mistake == "sqrt(sum K alpha)":
        return float(np.sqrt(abs(np.sum(K @ a))))
    if mistake == "|K alpha| (the norm of the fitted values)":
        return float(np.linalg.norm(K @ a))
    if mistake == "sqrt(sum alpha_i^2 K_ii) (diagonal only)":
        return float(np.sqrt(np.sum(a * a * np.diag(K))))
    if mistake == "sqrt(|alpha|^T K |alpha|)":
        return float(np.sqrt(np.abs(a) @ K @ np.abs(a)))
    if mistake == "divided by n":
        return float(np.sqrt(max(a @ K @ a, 0) / len(a)))
    if mistake == "sqrt(alpha^T K^-1 alpha) (alpha taken for y)":
        return float(np.sqrt(abs(a @ np.linalg.lstsq(K, a, rcond=None)[0])))
    if mistake == "returns the vector sqrt(alpha * K alpha)":
        return np.sqrt(np.abs(a * (K @ a)))
    if mistake == "float32 arithmetic on float64 inputs":
        K32, a32 = K.astype(np.float32), a.astype(np.float32)
        return float(np.sqrt(max(a32 @ K32 @ a32, 0)))
    raise ValueError(mistake)


RN_MISTAKES = ["the square alpha^T K alpha", "sqrt without clipping (NaN on a singular K)", "|alpha|_2",
               "sqrt(sum K alpha)", "|K alpha| (the norm of the fitted values)",
               "sqrt(sum alpha_i^2 K_ii) (diagonal only)", "sqrt(|alpha|^T K |alpha|)", "divided by n",
               "sqrt(alpha^T K^-1 alpha) (alpha taken for y)", "returns the vector sqrt(alpha * K alpha)"]


def rn_abs(K, alpha):
    return float(np.sqrt(abs(np.einsum("i,ij,j->", _f(alpha), _f(K), _f(alpha)))))


def rn_torch(K, alpha):
    K, a = torch.as_tensor(K), torch.as_tensor(alpha)
    return (a @ (K @ a)).clamp_min(0).sqrt().item()


def rn_eigh(K, alpha):
    w, V = np.linalg.eigh(_f(K))
    c = V.T @ _f(alpha)
    return float(np.sqrt(max(np.sum(w * c * c), 0.0)))


def rn_in_dtype(K, alpha):
    """In the inputs' own dtype (float32 stays float32), clipped."""
    K, a = np.asarray(K), np.asarray(alpha)
    return float(np.sqrt(np.clip(a @ K @ a, 0, None)))


@pytest.mark.parametrize("fn", [SOLUTION["rkhs_norm"], GRADING.rkhs_norm, rn_abs, rn_torch, rn_eigh, rn_in_dtype],
                         ids=["solution", "reference", "sqrt of |q| (einsum)", "torch", "eigh", "input dtype"])
def test_rkhs_norm_correct_alternatives_keep_full_marks(fn):
    assert_full("rkhs_norm", fn)


@pytest.mark.parametrize("mistake", RN_MISTAKES)
def test_rkhs_norm_wrong_implementations_lose_points(mistake):
    assert_loses("rkhs_norm", functools.partial(rn_variant, mistake=mistake))


def test_rkhs_norm_hints():
    _, text = grade("rkhs_norm", functools.partial(rn_variant, mistake="the square alpha^T K alpha"), "visible")
    assert "square root" in text
    _, text = grade("rkhs_norm", functools.partial(rn_variant, mistake="sqrt without clipping (NaN on a singular K)"))
    assert "clip it at 0" in text


def test_null_space_case_defeats_the_naive_square_root_whatever_the_summation_order():
    case = next(c for c in GRADING.rkhs_norm_cases() if "null space" in c["name"])
    K, a = case["K"], case["alpha"]
    for q in (a @ K @ a, a @ (K @ a), (a @ K) @ a, np.einsum("i,ij,j->", a, K, a), float(torch.as_tensor(a) @
                                                                                       torch.as_tensor(K) @
                                                                                       torch.as_tensor(a))):
        assert q < 0
    assert GRADING.rkhs_norm(K, a) < 1e-6


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 7), st.integers(1, 7), st.integers(0, 2 ** 31))
def test_rkhs_norm_reference_is_the_norm_of_the_feature_vector(n, r, seed):
    rng = np.random.default_rng(seed)
    Phi = rng.normal(size=(n, r))
    alpha = rng.normal(size=n)
    # K = Phi Phi^T is the Gram matrix of the features; f = sum_j alpha_j <phi(x_j), .> has |f| = |Phi^T alpha|.
    assert np.isclose(GRADING.rkhs_norm(Phi @ Phi.T, alpha), np.linalg.norm(Phi.T @ alpha), rtol=1e-7,
                      atol=1e-7 * np.abs(Phi).max() * np.abs(alpha).sum())


def test_rkhs_norm_visible_literals():
    for alpha, expected in kernels._RN_CASES:
        assert np.isclose(GRADING.rkhs_norm(kernels._KR_K, alpha), expected, rtol=1e-14)


# ==============================================================================================================
# random_fourier_features
# ==============================================================================================================
def rff_variant(X, omega, b, *, mistake):
    X, omega, b = _f(X), _f(omega), _f(b)
    D = omega.shape[0]
    u = X @ omega.T
    if mistake == "sqrt(1/D)":
        return np.sqrt(1 / D) * np.cos(u + b)
    if mistake == "no scale":
        return np.cos(u + b)
    if mistake == "sin":
        return np.sqrt(2 / D) * np.sin(u + b)
    if mistake == "phase b missing":
        return np.sqrt(2 / D) * np.cos(u)
    if mistake == "minus b":
        return np.sqrt(2 / D) * np.cos(u - b)
    if mistake == "sqrt(2/d)":
        return np.sqrt(2 / X.shape[1]) * np.cos(u + b)
    if mistake == "transposed (D, n)":
        return (np.sqrt(2 / D) * np.cos(u + b)).T
    if mistake == "X omega instead of X omega^T":
        return np.sqrt(2 / D) * np.cos(X @ omega + b)
    if mistake == "sqrt(2/n)":
        return np.sqrt(2 / X.shape[0]) * np.cos(u + b)
    if mistake == "cos and sin concatenated":
        return np.sqrt(1 / D) * np.concatenate([np.cos(u + b), np.sin(u + b)], axis=1)
    if mistake == "b added outside the cosine":
        return np.sqrt(2 / D) * np.cos(u) + b
    if mistake == "2/D instead of sqrt(2/D)":
        return 2 / D * np.cos(u + b)
    raise ValueError(mistake)


RFF_MISTAKES = ["sqrt(1/D)", "no scale", "sin", "phase b missing", "minus b", "sqrt(2/d)", "transposed (D, n)",
                "X omega instead of X omega^T", "sqrt(2/n)", "cos and sin concatenated", "b added outside the cosine",
                "2/D instead of sqrt(2/D)"]


def rff_torch(X, omega, b):
    X, omega, b = (torch.as_tensor(a) for a in (X, omega, b))
    return (2.0 / omega.shape[0]) ** 0.5 * torch.cos(X @ omega.T + b)


def rff_loops(X, omega, b):
    n, D = len(X), len(omega)
    Z = np.empty((n, D))
    for i in range(n):
        for j in range(D):
            Z[i, j] = np.sqrt(2 / D) * np.cos(np.dot(X[i], omega[j]) + b[j])
    return Z


def rff_in_dtype(X, omega, b):
    """np.cos in the inputs' own dtype (float32 stays float32)."""
    X, omega, b = np.asarray(X), np.asarray(omega), np.asarray(b)
    return np.sqrt(np.asarray(2 / omega.shape[0], dtype=X.dtype)) * np.cos(np.einsum("nd,Dd->nD", X, omega) + b)


@pytest.mark.parametrize("fn", [SOLUTION["random_fourier_features"], GRADING.random_fourier_features, rff_torch,
                                rff_loops, rff_in_dtype],
                         ids=["solution", "reference (cos-sin expansion)", "torch", "loops", "input dtype"])
def test_rff_correct_alternatives_keep_full_marks(fn):
    assert_full("random_fourier_features", fn)


@pytest.mark.parametrize("mistake", RFF_MISTAKES)
def test_rff_wrong_implementations_lose_points(mistake):
    assert_loses("random_fourier_features", functools.partial(rff_variant, mistake=mistake))


def test_rff_visible_literals_and_hints():
    args = (kernels._RFF_X, kernels._RFF_OMEGA, kernels._RFF_B)
    assert np.allclose(GRADING.random_fourier_features(*args), kernels._RFF_Z, atol=1e-15)
    assert np.allclose(rff_variant(*args, mistake="minus b"), kernels._RFF_MINUS_B, atol=1e-15)
    assert np.allclose(rff_variant(*args, mistake="sin"), kernels._RFF_SIN, atol=1e-15)
    assert np.allclose(rff_variant(*args, mistake="phase b missing"), kernels._RFF_NO_B, atol=1e-15)
    _, text = grade("random_fourier_features", functools.partial(rff_variant, mistake="sqrt(1/D)"), "visible")
    assert "sqrt(2/D), not sqrt(1/D)" in text


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (3, 2), elements=st.floats(-5, 5)), arrays(np.float64, (4, 2), elements=st.floats(-5, 5)),
       arrays(np.float64, (4,), elements=st.floats(0, 6.3)))
def test_rff_reference_equals_the_direct_formula(X, omega, b):
    assert np.allclose(GRADING.random_fourier_features(X, omega, b), np.sqrt(2 / 4) * np.cos(X @ omega.T + b),
                       atol=1e-12)


# ==============================================================================================================
# laplace_kernel
# ==============================================================================================================
def lap_variant(X1, X2, bw, *, mistake):
    X1, X2 = _f(X1), _f(X2)
    diff = X1[:, None, :] - X2[None, :, :]
    d = np.sqrt((diff ** 2).sum(-1))
    if mistake == "L1 distance (scikit-learn laplacian_kernel)":
        from sklearn.metrics.pairwise import laplacian_kernel
        return laplacian_kernel(X1, X2, gamma=1 / bw)
    if mistake == "squared distance":
        return np.exp(-d ** 2 / bw)
    if mistake == "Gaussian kernel":
        return np.exp(-d ** 2 / (2 * bw ** 2))
    if mistake == "expansion without clipping (NaN)":
        sq = (X1 ** 2).sum(1)[:, None] + (X2 ** 2).sum(1)[None, :] - 2 * X1 @ X2.T
        with np.errstate(invalid="ignore"):
            return np.exp(-np.sqrt(sq) / bw)
    if mistake == "times the bandwidth":
        return np.exp(-d * bw)
    if mistake == "twice the bandwidth":
        return np.exp(-d / (2 * bw))
    if mistake == "bandwidth squared":
        return np.exp(-d / bw ** 2)
    if mistake == "transposed (n2, n1)":
        return np.exp(-d / bw).T
    if mistake == "max norm (Chebyshev)":
        return np.exp(-np.abs(diff).max(-1) / bw)
    if mistake == "expansion with abs instead of the clip, in float32":
        a, c = X1.astype(np.float32), X2.astype(np.float32)
        sq = (a ** 2).sum(1)[:, None] + (c ** 2).sum(1)[None, :] - 2 * a @ c.T
        return np.exp(-np.sqrt(np.abs(sq)) / np.float32(bw))
    if mistake == "mean instead of sum of squares":
        return np.exp(-np.sqrt((diff ** 2).mean(-1)) / bw)
    raise ValueError(mistake)


LAP_MISTAKES = ["L1 distance (scikit-learn laplacian_kernel)", "squared distance", "Gaussian kernel",
                "expansion without clipping (NaN)", "times the bandwidth", "twice the bandwidth", "bandwidth squared",
                "transposed (n2, n1)", "max norm (Chebyshev)", "mean instead of sum of squares"]


def lap_cdist(X1, X2, bw):
    from scipy.spatial.distance import cdist
    return np.exp(-cdist(X1, X2) / bw)


def lap_torch(X1, X2, bw):
    return torch.exp(-torch.cdist(torch.as_tensor(X1), torch.as_tensor(X2)) / bw)


def lap_sklearn_euclidean(X1, X2, bw):
    from sklearn.metrics.pairwise import euclidean_distances
    return np.exp(-euclidean_distances(X1, X2) / bw)


def lap_expansion_in_dtype(X1, X2, bw):
    """The expansion clipped at 0, in the inputs' own dtype (float32 stays float32)."""
    X1, X2 = np.asarray(X1), np.asarray(X2)
    sq = -2 * np.einsum("ik,jk->ij", X1, X2) + (X1 * X1).sum(1)[:, None] + (X2 * X2).sum(1)[None, :]
    return np.exp(-np.sqrt(np.clip(sq, 0, None)) / np.asarray(bw, dtype=X1.dtype))


def lap_direct(X1, X2, bw):
    return np.exp(-np.linalg.norm(np.asarray(X1)[:, None] - np.asarray(X2)[None], axis=-1) / bw)


@pytest.mark.parametrize("fn", [SOLUTION["laplace_kernel"], GRADING.laplace_kernel, lap_cdist, lap_torch,
                                lap_sklearn_euclidean, lap_expansion_in_dtype, lap_direct],
                         ids=["solution (clipped expansion)", "reference", "scipy cdist", "torch.cdist",
                              "sklearn euclidean_distances", "expansion in the input dtype", "differences"])
def test_laplace_correct_alternatives_keep_full_marks(fn):
    assert_full("laplace_kernel", fn)


@pytest.mark.parametrize("mistake", LAP_MISTAKES)
def test_laplace_wrong_implementations_lose_points(mistake):
    assert_loses("laplace_kernel", functools.partial(lap_variant, mistake=mistake))


def test_laplace_hints():
    _, text = grade("laplace_kernel", functools.partial(lap_variant,
                                                        mistake="L1 distance (scikit-learn laplacian_kernel)"), "visible")
    assert "Euclidean" in text
    _, text = grade("laplace_kernel", functools.partial(lap_variant, mistake="expansion without clipping (NaN)"),
                    "visible")
    assert "clip it at 0" in text


def test_laplace_visible_literals():
    assert np.allclose(GRADING.laplace_kernel(kernels._LAP_X1, kernels._LAP_X2, 2.0), np.exp(-kernels._LAP_DIST / 2),
                       atol=1e-15)
    from scipy.spatial.distance import cdist
    assert np.array_equal(cdist(kernels._LAP_X1, kernels._LAP_X2, "cityblock"), kernels._LAP_L1)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (4, 3), elements=st.floats(-10, 10)), arrays(np.float64, (2, 3), elements=st.floats(-10, 10)),
       st.floats(0.1, 10))
def test_laplace_reference_agrees_with_differences_and_is_one_on_the_diagonal(X1, X2, bw):
    assert np.allclose(GRADING.laplace_kernel(X1, X2, bw), lap_direct(X1, X2, bw), atol=1e-12)
    assert np.all(np.diag(GRADING.laplace_kernel(X1, X1, bw)) == 1.0)


def test_float32_tolerances_cover_measured_errors():
    """The float32 atol (4e-3) is about 3 times the worst diagonal error 1.4e-3 of four correct float32
    implementations over 200 random 12 x 3 float32 point sets (measured here on 40); the wrong variants are off by far
    more on the graded float32 cases."""
    impls = [lap_expansion_in_dtype, lap_direct, lambda a, b, s: lap_torch(a, b, s).numpy(),
             lambda a, b, s: torch.exp(-torch.cdist(torch.as_tensor(a), torch.as_tensor(b),
                                                    compute_mode="use_mm_for_euclid_dist") / s).numpy()]
    worst = 0.0
    for seed in range(40):
        X = np.random.default_rng(seed).normal(size=(12, 3)).astype(np.float32)
        ref = GRADING.laplace_kernel(X, X, 1.0)
        worst = max(worst, max(np.abs(_f(f(X, X, 1.0)) - ref).max() for f in impls))
    assert worst < kernels.KERNEL_ATOL["float32"] / 2
    for case in (c for c in GRADING.laplace_cases() if c["X1"].dtype == np.float32):
        ref = GRADING.laplace_kernel(case["X1"], case["X2"], case["bandwidth"])
        for mistake in LAP_MISTAKES[1:]:
            if mistake in ("transposed (n2, n1)", "expansion without clipping (NaN)"):
                continue
            got = lap_variant(case["X1"], case["X2"], case["bandwidth"], mistake=mistake)
            assert np.abs(got - ref).max() > 3 * kernels.KERNEL_ATOL["float32"], mistake


# ==============================================================================================================
# sample_rff (the experiment part)
# ==============================================================================================================
def srff_variant(X, bw, D, seed, *, mistake=None):
    rng = np.random.default_rng(seed)
    d = np.shape(X)[1]
    omega = rng.normal(size=(D, d)) / bw
    b = rng.uniform(0, 2 * np.pi, D)
    if mistake == "omega of standard deviation s":
        omega = omega * bw * bw
    elif mistake == "omega of standard deviation 1/sqrt(s)":
        omega = omega * np.sqrt(bw)
    elif mistake == "omega of standard deviation 1.1/s":
        omega = 1.1 * omega
    elif mistake == "b = 0":
        b = np.zeros(D)
    elif mistake == "b uniform on [0, 1]":
        b = rng.uniform(0, 1, D)
    elif mistake == "uniform omega of the right variance":
        omega = rng.uniform(-1, 1, size=(D, d)) * np.sqrt(3) / bw
    elif mistake == "global np.random state, not seeded":
        omega = np.random.normal(size=(D, d)) / bw
        b = np.random.uniform(0, 2 * np.pi, D)
    elif mistake == "the seed argument ignored":
        r = np.random.default_rng(0)
        omega, b = r.normal(size=(D, d)) / bw, r.uniform(0, 2 * np.pi, D)
    elif mistake == "features scaled sqrt(1/D)":
        return np.sqrt(1 / D) * np.cos(X @ omega.T + b), omega, b
    elif mistake == "Z from another draw than the omega and b returned":
        other = np.random.default_rng(seed + 10 ** 6)
        o2, b2 = other.normal(size=(D, d)) / bw, other.uniform(0, 2 * np.pi, D)
        return np.sqrt(2 / D) * np.cos(X @ o2.T + b2), omega, b
    elif mistake == "omega returned transposed (d, D)":
        return np.sqrt(2 / D) * np.cos(X @ omega.T + b), omega.T, b
    elif mistake == "Cauchy frequencies (the Laplace kernel's, in d = 1)":
        omega = rng.standard_cauchy(size=(D, d)) / bw
    elif mistake == "returns Z only":
        return np.sqrt(2 / D) * np.cos(X @ omega.T + b)
    return np.sqrt(2 / D) * np.cos(X @ omega.T + b), omega, b


SRFF_MISTAKES = ["omega of standard deviation s", "omega of standard deviation 1/sqrt(s)",
                 "omega of standard deviation 1.1/s", "b = 0", "b uniform on [0, 1]",
                 "uniform omega of the right variance", "global np.random state, not seeded",
                 "the seed argument ignored", "features scaled sqrt(1/D)",
                 "Z from another draw than the omega and b returned", "omega returned transposed (d, D)",
                 "Cauchy frequencies (the Laplace kernel's, in d = 1)", "returns Z only"]


def srff_torch(X, bw, D, seed):
    g = torch.Generator().manual_seed(int(seed))
    d = X.shape[1]
    omega = torch.randn(D, d, generator=g, dtype=torch.float64) / bw
    b = 2 * torch.pi * torch.rand(D, generator=g, dtype=torch.float64)
    return (2 / D) ** 0.5 * torch.cos(torch.as_tensor(X) @ omega.T + b), omega, b


def srff_legacy(X, bw, D, seed):
    rs = np.random.RandomState(seed)
    b = rs.uniform(0, 2 * np.pi, size=D)                    # b first, then omega
    omega = rs.randn(D, X.shape[1]) / bw
    return SOLUTION["random_fourier_features"](X, omega, b), omega, b


def srff_float32(X, bw, D, seed):
    rng = np.random.Generator(np.random.PCG64(seed))
    omega = (rng.standard_normal((D, X.shape[1]), dtype=np.float32) / np.float32(bw))
    b = (rng.random(D, dtype=np.float32) * np.float32(2 * np.pi))
    return rff_in_dtype(X.astype(np.float32), omega, b), omega, b


@pytest.mark.parametrize("fn", [SOLUTION["sample_rff"], GRADING.sample_rff, srff_variant, srff_torch, srff_legacy,
                                srff_float32],
                         ids=["solution", "reference", "default_rng", "torch generator", "legacy RandomState, b first",
                              "float32 PCG64"])
def test_sample_rff_correct_alternatives_keep_full_marks(fn):
    assert_full("sample_rff", fn)


@pytest.mark.parametrize("mistake", SRFF_MISTAKES)
def test_sample_rff_wrong_implementations_lose_points(mistake):
    assert_loses("sample_rff", functools.partial(srff_variant, mistake=mistake))


def test_rff_variance_formula_by_monte_carlo():
    """The theory's number, E|Z Z^T - K|_F^2 = (1/D) sum (1 - K^2 + K^4/2), against 400 independent draws."""
    X = kernels._VIS_X
    K = GRADING.gaussian_kernel(X, X, 1.0)
    assert np.allclose(K, np.exp(-kernels._VIS_SQ / 2), atol=1e-15)   # the visible literals
    assert np.isclose(kernels.rff_variance(K, 50), GRADING.rff_second_moment(K, 50))
    errs = [np.sum(((lambda Z: Z @ Z.T)(srff_variant(X, 1.0, 50, 5000 + s)[0]) - K) ** 2) for s in range(400)]
    ratio = np.mean(errs) / kernels.rff_variance(K, 50)
    assert 0.9 < ratio < 1.1        # sd of the mean of 400 ratios ~ 0.02


def _statistics(sample, X, bw, D, offset):
    K = GRADING.gaussian_kernel(X, X, bw)
    V = kernels.rff_variance(K, D)
    G = np.array([(lambda Z: Z @ Z.T)(_f(sample(X, bw, D, offset + s)[0])) for s in kernels.RFF_SEEDS])
    T = np.mean([np.sum((g - K) ** 2) for g in G]) / V
    B = len(G) * np.sum((G.mean(0) - K) ** 2) / V
    return T, B


def test_rff_thresholds_separate_correct_and_wrong_on_fresh_seeds():
    """Re-measures a sample of the distribution behind RFF_T_RANGE and RFF_B_MAX (the full measurement, 200 runs of
    40 seeds per setting, is recorded in autograder/kernels.py): correct implementations on 10 fresh runs per setting
    stay inside with a margin; the wrong ones the law-of-omega check does not name are outside."""
    settings_ = [(kernels._VIS_X, 1.0, 100)] + [(c["X"], c["bandwidth"], c["D"]) for c in GRADING.rff_experiment_cases()]
    lo, hi = kernels.RFF_T_RANGE
    for X, bw, D in settings_:
        for k in range(10):
            T, B = _statistics(srff_variant, X, bw, D, 777_000 + 1000 * k)
            assert lo + 0.05 < T < hi - 0.1 and B < kernels.RFF_B_MAX - 2
        for mistake in ("b uniform on [0, 1]", "features scaled sqrt(1/D)"):
            T, B = _statistics(functools.partial(srff_variant, mistake=mistake), X, bw, D, 999_000)
            assert T > hi or B > kernels.RFF_B_MAX, mistake


# ==============================================================================================================
# Every part: stubs, garbage, liars, noise, determinism, the student side
# ==============================================================================================================
@pytest.mark.parametrize("part", PARTS)
def test_untouched_stub_scores_zero_with_a_clear_message(part):
    points, text = grade(part, stub)
    assert points == 0 and "not implemented yet" in text


@pytest.mark.parametrize("part", PARTS)
def test_returning_none_garbage_or_liars_scores_zero(part):
    assert grade(part, lambda *a, **k: None)[0] == 0
    assert grade(part, lambda *a, **k: "8")[0] == 0
    liar = np.zeros(3).view(AlwaysEqual)
    assert grade(part, lambda *a, **k: liar)[0] == 0
    assert grade(part, lambda *a, **k: (liar, liar, liar))[0] == 0


def test_warnings_and_prints_inside_a_correct_function_cost_nothing(capsys):
    for part in PARTS:
        assert_full(part, noisy(SOLUTION[part]))
    assert capsys.readouterr().err == ""


def test_same_submission_same_score():
    wrong = functools.partial(srff_variant, mistake="global np.random state, not seeded")
    assert grade("sample_rff", wrong)[0] == grade("sample_rff", wrong)[0]
    assert grade("kernel_ridge", kr_eigh) == grade("kernel_ridge", kr_eigh)


def test_topic_points_and_notebook_metadata_agree():
    from tests.notebooks import source_notebook
    meta = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"].get("points")
            for c in source_notebook("kernels").cells if c.metadata.get("nbgrader", {}).get("grade")}
    assert meta == kernels.TOPIC.points
    assert kernels.TOPIC.max_score == 17


def test_student_side_module_has_no_reference_implementation():
    """autograder/kernels.py solves no linear system, takes no distance, draws no feature: the names and routines
    of the references and the solution are absent, and it cannot score a stub through its own helpers."""
    import inspect
    source = inspect.getsource(kernels)
    for forbidden in ("np.linalg.solve", "linalg.inv", "linalg.eigh", "cdist", "np.cos(", "np.sin(", "def kernel_ridge",
                      "def rkhs_norm", "def random_fourier_features", "def laplace_kernel", "def sample_rff",
                      "normal(size=(D", "np.sqrt(np.maximum"):
        assert forbidden not in source, forbidden
    for name in dir(kernels):
        obj = getattr(kernels, name)
        if callable(obj) and getattr(obj, "__module__", "") == kernels.__name__ and not name.startswith("check_"):
            for part, args in [("laplace_kernel", (kernels._LAP_X1, kernels._LAP_X2, 2.0)),
                               ("random_fourier_features", (kernels._RFF_X, kernels._RFF_OMEGA, kernels._RFF_B))]:
                try:
                    assert grade(part, lambda *a, o=obj: o(*a))[0] == 0
                except (TypeError, ValueError):
                    pass


# ==============================================================================================================
# The full pipeline (slow): a small class through the isolated engine and through real nbgrader
# ==============================================================================================================
@pytest.mark.slow
def test_kernels_class_through_both_engines(tmp_path):
    import inspect
    import nbformat

    from autograder import nbgrading
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["kernels"])
    nbgrading.release(course, "kernels")
    release = nbformat.read(course / "exercises" / "kernels" / "kernels.ipynb", as_version=4)
    text = nbformat.writes(release)
    for leak in ("BEGIN SOLUTION", "HIDDEN TESTS", "grading.py", "np.linalg.solve(K + n"):
        assert leak not in text, leak
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("kernels").cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    wrong_ridge = ("import numpy as np\nimport torch\nimport functools\n" + inspect.getsource(_f) + inspect.getsource(kr_variant)
                   + "\nkernel_ridge = functools.partial(kr_variant, mistake='lam without n: (K + lam I)')")
    class_ = {"full": dict(solution), "untouched": {},
              "partial": {"laplace_kernel": solution["laplace_kernel"], "kernel_ridge": wrong_ridge}}
    expected_partial = grade("kernel_ridge", functools.partial(kr_variant, mistake="lam without n: (K + lam I)"))[0]
    assert 0 < expected_partial < 3
    full = {f"check_{p}": float(kernels.TOPIC.part(p).points) for p in PARTS}
    partial = dict({g: 0.0 for g in full}, check_laplace_kernel=3.0, check_kernel_ridge=expected_partial)
    for engine in ("isolated", "nbgrader"):
        folder = tmp_path / f"submissions_{engine}"
        for student, answers in class_.items():
            add_submission(folder, f"{student}_{engine}", "kernels", fill(release, dict(answers)))
        if engine == "isolated":
            results, warnings = nbgrading.grade_isolated(course, "kernels", folder, cell_timeout=60, workers=1)
        else:
            results, warnings = nbgrading.grade(course, "kernels", folder, cell_timeout=60)
        # results are SubmissionResult (``scores``: grade id -> points) or, in the older engine, ``parts`` as a dict
        got = {r.student: {k: float(v) for k, v in (r.scores if hasattr(r, "scores") else r.parts).items()
                           if k.startswith("check_")} for r in results}
        assert got[f"full_{engine}"] == full, (engine, got)
        assert got[f"untouched_{engine}"] == {g: 0.0 for g in full}, (engine, got)
        assert got[f"partial_{engine}"] == partial, (engine, got)
        assert not warnings, warnings
