"""Tests of autograder/ntk.py: the checks discriminate.

* the solution notebook and correct alternatives (other algorithms, float32, torch or numpy) keep full marks;
* plausible wrong implementations, the mistakes students make, lose points;
* the instructor references agree with independent computations (neural-tangents values of book/conventions.md,
  the solution notebook's different algorithms, Hypothesis-generated inputs).
Wrong and alternative implementations are graded in-process through the same entry points the notebook uses.
"""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from autograder import ntk
from autograder.core import instructor_module
from tests.grading import AlwaysEqual, Grader
from tests.notebooks import solution_namespace

SOLUTION = solution_namespace("ntk")
GRADING = instructor_module("ntk")


GRADER = Grader(ntk)
grade, assert_full, assert_loses = GRADER.grade, GRADER.assert_full, GRADER.assert_loses


# ==============================================================================================================
# empirical_ntk
# ==============================================================================================================
def _jacobian_rows(model, X, params=None):
    params = list(model.parameters()) if params is None else params
    rows = []
    for i in range(X.shape[0]):
        g = torch.autograd.grad(model(X[i:i + 1]).sum(), params, allow_unused=True)
        rows.append(torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1)
                               for gi, p in zip(g, params)]))
    return torch.stack(rows)


def entk_loop(model, X1, X2):
    """Correct: one autograd.grad per input, then J1 J2^T."""
    return _jacobian_rows(model, X1) @ _jacobian_rows(model, X2).T


def entk_ntk_vector_products(model, X1, X2):
    """Correct: Θ e_j = J1 (J2^T e_j) by a vector-Jacobian then a Jacobian-vector product (torch.func)."""
    from torch.func import functional_call, jvp, vjp
    params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p, X):
        return functional_call(model, p, (X,)).reshape(-1)

    _, pullback = vjp(lambda p: f(p, X2), params)
    columns = []
    for j in range(X2.shape[0]):
        e = torch.zeros(X2.shape[0], dtype=X2.dtype)
        e[j] = 1
        (tangent,) = pullback(e)
        columns.append(jvp(lambda p: f(p, X1), (params,), (tangent,))[1])
    return torch.stack(columns, dim=1)


def entk_numpy_float64(model, X1, X2):
    """Correct: autograd.functional.jacobian of the flattened parameters, kernel returned as a numpy array."""
    from torch.func import functional_call
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(vec, X):
        chunks, i = {}, 0
        for n, s in zip(names, shapes):
            k = int(np.prod(s))
            chunks[n] = vec[i:i + k].reshape(s)
            i += k
        return functional_call(model, chunks, (X,)).reshape(-1)

    J1 = torch.autograd.functional.jacobian(lambda v: f(v, X1), flat).double()
    J2 = torch.autograd.functional.jacobian(lambda v: f(v, X2), flat).double()
    return (J1 @ J2.T).numpy()


def entk_wrong(mistake):
    def empirical_ntk(model, X1, X2):
        params = list(model.parameters())
        if mistake == "weights only":
            params = [p for p in params if p.ndim > 1]
        if mistake == "last layer only":
            params = params[-2:]
        if mistake == "gradient with respect to the inputs":
            def grads(X):
                X = X.clone().requires_grad_(True)
                return torch.autograd.grad(model(X).sum(), X)[0]
            return grads(X1) @ grads(X2).T
        if mistake == "gradient of the summed batch":
            g = torch.cat([gi.reshape(-1) for gi in torch.autograd.grad(model(X1).sum(), params)])
            h = torch.cat([gi.reshape(-1) for gi in torch.autograd.grad(model(X2).sum(), params)])
            return torch.outer(g, h).sum() * torch.ones(X1.shape[0], X2.shape[0]) / (X1.shape[0] * X2.shape[0])
        if mistake == "grads accumulated across inputs":
            def rows(X):
                for p in model.parameters():
                    p.grad = None
                out = []
                for i in range(X.shape[0]):
                    model(X[i:i + 1]).sum().backward()  # never zeroed: row i holds the sum of rows 0..i
                    out.append(torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()]))
                return torch.stack(out)
            return rows(X1) @ rows(X2).T
        if mistake == "converts the model to float64 in place":
            model.double()
            return entk_loop(model, X1.double(), X2.double())
        if mistake == "leaves .grad filled (backward, right values)":
            def rows_backward(X):
                out = []
                for i in range(X.shape[0]):
                    model.zero_grad(set_to_none=True)
                    model(X[i:i + 1]).sum().backward()
                    out.append(torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()]))
                return torch.stack(out)   # the last input's gradients stay in p.grad
            return rows_backward(X1) @ rows_backward(X2).T
        if mistake == "sets requires_grad on X1 in place (right values)":
            X1.requires_grad_(True)
            return entk_loop(model, X1.detach(), X2)
        if mistake == "switches a submodule to eval mode (right values)":
            for m in list(model.modules())[1:]:   # every submodule, not the model itself
                m.eval()
            return entk_loop(model, X1, X2)
        J1, J2 = _jacobian_rows(model, X1, params), _jacobian_rows(model, X2, params)
        if mistake == "transposed":
            return J2 @ J1.T
        if mistake == "mean over parameters":
            return J1 @ J2.T / J1.shape[1]
        if mistake == "X1 with itself":
            return J1 @ J1.T
        return J1 @ J2.T
    empirical_ntk.__name__ = mistake
    return empirical_ntk


ENTK_MISTAKES = ["weights only", "last layer only", "gradient with respect to the inputs",
                 "gradient of the summed batch", "grads accumulated across inputs",
                 "converts the model to float64 in place", "transposed", "mean over parameters", "X1 with itself",
                 # purity only (the values are right): not detected before issue 10, the harness compared the
                 # parameters' values but not .grad, the inputs' requires_grad or the submodules' train/eval mode
                 "leaves .grad filled (backward, right values)", "sets requires_grad on X1 in place (right values)",
                 "switches a submodule to eval mode (right values)"]


@pytest.mark.parametrize("fn", [SOLUTION["empirical_ntk"], entk_loop, entk_ntk_vector_products, entk_numpy_float64],
                         ids=["solution (torch.func jacrev)", "autograd loop", "NTK-vector products",
                              "numpy float64 jacobian"])
def test_empirical_ntk_correct_alternatives_keep_full_marks(fn):
    assert_full("empirical_ntk", fn)


@pytest.mark.parametrize("mistake", ENTK_MISTAKES)
def test_empirical_ntk_wrong_implementations_lose_points(mistake):
    assert_loses("empirical_ntk", entk_wrong(mistake))


def test_empirical_ntk_hint_names_missing_biases():
    assert "biases" in assert_loses("empirical_ntk", entk_wrong("weights only"))


# ==============================================================================================================
# relu_ntk
# ==============================================================================================================
def relu_ntk_variant(X1, X2, depth, W_std=np.sqrt(2), b_std=0.0, *, mistake=None, xp=np, dtype=np.float64):
    """The recursion with one optional, named mistake; ``xp``/``dtype`` give the numpy or float32 variants."""
    X1 = np.asarray(X1, dtype=dtype)
    X2 = np.asarray(X2, dtype=dtype)
    d = 1 if mistake == "no 1/d" else X1.shape[1]
    w2 = W_std if mistake == "W_std instead of W_std squared" else W_std ** 2
    b2 = b_std ** 2
    sigma = w2 * X1 @ X2.T / d + b2
    if mistake == "diagonal read off the cross kernel":
        q1, q2 = np.diag(sigma), np.diag(sigma)
    else:
        q1 = w2 * np.sum(X1 ** 2, axis=1) / d + b2
        q2 = w2 * np.sum(X2 ** 2, axis=1) / d + b2
    ntk_ = sigma
    for _ in range(depth + (1 if mistake == "depth off by one" else 0)):
        s = np.sqrt(np.outer(q1, q2))
        theta = np.arccos(np.clip(sigma / s, -1, 1))
        relu_factor = 2 if mistake == "Cho-Saul k1 with W_std^2 = 2" else 1
        sigma_dot = w2 * (np.pi - theta) / (2 * np.pi) + (b2 if mistake == "b_std^2 in Sigma-dot" else 0)
        bias = 0 if mistake == "no b_std^2 after the first layer" else b2
        sigma = relu_factor * w2 * (np.sqrt(np.maximum(s ** 2 - sigma ** 2, 0)) + (np.pi - theta) * sigma) \
            / (2 * np.pi) + bias
        ntk_ = sigma_dot * ntk_ if mistake == "Theta without the Sigma term" else sigma + sigma_dot * ntk_
        if mistake != "diagonal not updated":
            q1 = relu_factor * w2 * q1 / 2 + bias
            q2 = relu_factor * w2 * q2 / 2 + bias
    if mistake == "returns (ntk, nngp)":
        return ntk_, sigma
    return sigma, ntk_


def relu_ntk_torch32(X1, X2, depth, W_std=np.sqrt(2), b_std=0.0):
    """Correct: torch float32, on the joint Gram matrix of [X1; X2]."""
    X = torch.tensor(np.vstack([X1, X2]), dtype=torch.float32)
    n1 = len(X1)
    K = W_std ** 2 * X @ X.T / X.shape[1] + b_std ** 2
    T = K.clone()
    for _ in range(depth):
        q = torch.sqrt(torch.diag(K))
        cos = torch.clamp(K / torch.outer(q, q), -1, 1)
        t = torch.arccos(cos)
        dot = W_std ** 2 * (np.pi - t) / (2 * np.pi)
        K = W_std ** 2 * torch.outer(q, q) * (torch.sin(t) + (np.pi - t) * cos) / (2 * np.pi) + b_std ** 2
        T = K + dot * T
    return K[:n1, n1:], T[:n1, n1:]


def relu_ntk_python_loops(X1, X2, depth, W_std=np.sqrt(2), b_std=0.0):
    """Correct: one pair at a time, with the math module."""
    import math
    w2, b2 = W_std ** 2, b_std ** 2
    d = len(X1[0])
    nngp, ntk_ = np.zeros((len(X1), len(X2))), np.zeros((len(X1), len(X2)))
    for i, x in enumerate(X1):
        for j, z in enumerate(X2):
            q, r = w2 * float(np.dot(x, x)) / d + b2, w2 * float(np.dot(z, z)) / d + b2
            c = w2 * float(np.dot(x, z)) / d + b2
            t = c
            for _ in range(depth):
                angle = math.acos(max(-1.0, min(1.0, c / math.sqrt(q * r))))
                c_new = w2 * (math.sqrt(max(q * r - c * c, 0.0)) + (math.pi - angle) * c) / (2 * math.pi) + b2
                t = c_new + w2 * (math.pi - angle) / (2 * math.pi) * t
                c, q, r = c_new, w2 * q / 2 + b2, w2 * r / 2 + b2
            nngp[i, j], ntk_[i, j] = c, t
    return nngp, ntk_


RELU_MISTAKES = ["no 1/d", "W_std instead of W_std squared", "diagonal read off the cross kernel", "depth off by one",
                 "Cho-Saul k1 with W_std^2 = 2", "b_std^2 in Sigma-dot", "no b_std^2 after the first layer",
                 "Theta without the Sigma term", "diagonal not updated", "returns (ntk, nngp)"]


@pytest.mark.parametrize("fn", [SOLUTION["relu_ntk"], relu_ntk_torch32, relu_ntk_python_loops,
                                functools.partial(relu_ntk_variant, dtype=np.float32)],
                         ids=["solution", "torch float32 joint Gram", "python loops", "numpy float32"])
def test_relu_ntk_correct_alternatives_keep_full_marks(fn):
    assert_full("relu_ntk", fn)


@pytest.mark.parametrize("mistake", RELU_MISTAKES)
def test_relu_ntk_wrong_implementations_lose_points(mistake):
    assert_loses("relu_ntk", functools.partial(relu_ntk_variant, mistake=mistake))


@pytest.mark.parametrize("mistake, hint", [("no 1/d", "1/d"), ("depth off by one", "depth counts hidden"),
                                           ("returns (ntk, nngp)", "(nngp, ntk)"),
                                           ("Cho-Saul k1 with W_std^2 = 2", "counted twice")])
def test_relu_ntk_feedback_names_the_mistake(mistake, hint):
    assert hint in assert_loses("relu_ntk", functools.partial(relu_ntk_variant, mistake=mistake))


def test_relu_ntk_entry_feedback_shows_the_difference_and_the_tolerance():
    """A kernel 2e-3 too large (relative): the neural-tangents entries are shown with 8 digits, the difference
    and the tolerance (before issue 10: "expected [0.2956, ...], got [0.29619, ...]" and nothing else)."""
    def off(X1, X2, depth, W_std=np.sqrt(2), b_std=0.0):
        nngp, ntk_ = SOLUTION["relu_ntk"](X1, X2, depth, W_std, b_std)
        return nngp * 1.002, ntk_ * 1.002
    text = assert_loses("relu_ntk", off, tests="visible")
    assert "got 0.42114661 (off by 0.000841, allowed 0.00042)" in text, text


@pytest.mark.parametrize("fn", [SOLUTION["relu_ntk"], GRADING.relu_ntk], ids=["solution", "reference"])
def test_relu_ntk_matches_neural_tangents(fn):
    """Values computed with neural-tangents 0.6.5 (book/conventions.md), an implementation independent of ours."""
    x = np.random.default_rng(0).normal(size=(5, 3))
    nngp, ntk_ = fn(x, x, 2)
    np.testing.assert_allclose(ntk_[0], [0.886802, 0.530974, 0.326673, 0.39853, 0.358484], atol=1e-6)
    np.testing.assert_allclose(nngp[0], [0.295601, 0.233073, 0.315153, 0.299436, 0.420306], atol=1e-6)
    np.testing.assert_allclose(ntk_[4, 4], 14.011864, atol=1e-5)
    np.testing.assert_allclose(fn(x, x, 2, b_std=0.1)[1][0], [0.946802, 0.585446, 0.367785, 0.442836, 0.39941],
                               atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(X=arrays(np.float64, (4, 3), elements=st.floats(-3, 3)).filter(lambda X: np.all(np.abs(X).sum(1) > 0.1)),
       depth=st.integers(0, 4), W_std=st.floats(0.5, 2.0), b_std=st.floats(0.0, 1.0))
def test_relu_ntk_reference_properties(X, depth, W_std, b_std):
    """Reference = solution; symmetric PSD; diagonal Θ(x, x) = 2 (L+1) |x|² / d at W_std² = 2, b_std = 0."""
    nngp, ntk_ = GRADING.relu_ntk(X, X, depth, W_std, b_std)
    s_nngp, s_ntk = SOLUTION["relu_ntk"](X, X, depth, W_std, b_std)
    # For nearly parallel inputs arccos is ill-conditioned (d theta / d rho = -1 / sqrt(1 - rho^2)): there the two
    # algorithms differ by up to ~3e-5 (measured over 3000 near-parallel draws), 30x inside the grading tolerance.
    # Antiparallel inputs likewise: an entry that is 0 in exact arithmetic comes out as rounding noise of ~1e-9
    # times the kernel's scale (found by Hypothesis: rows (-1, 0, 0) and (2.5, 0, 0), depth 1), so the absolute
    # floor is relative to the largest entry.
    np.testing.assert_allclose(s_ntk, ntk_, rtol=1e-4, atol=1e-7 * np.abs(ntk_).max() + 1e-12)
    np.testing.assert_allclose(s_nngp, nngp, rtol=1e-4, atol=1e-7 * np.abs(nngp).max() + 1e-12)
    for K in (nngp, ntk_):
        # parallel inputs (correlation 1 up to rounding): arccos amplifies a last-bit asymmetry of X X^T to ~2e-9
        # (found by Hypothesis: X with rows (1.36, 0, 0) and (0.34, 0, 0), depth 1)
        np.testing.assert_allclose(K, K.T, rtol=1e-7)
        # nearly parallel inputs make K nearly singular; arccos keeps ~1e-8 relative there (see above)
        assert np.linalg.eigvalsh(K).min() >= -1e-8 * np.abs(K).max()
    _, ntk_default = GRADING.relu_ntk(X, X, depth)
    np.testing.assert_allclose(np.diag(ntk_default), 2 * (depth + 1) * np.sum(X * X, axis=1) / 3, rtol=1e-6)


def _kernels_by_quadrature(X1, X2, depth, W_std, b_std):
    """The NNGP and NTK recursion with its Gaussian expectations computed numerically, not by the arc-cosine
    formulas: u = sqrt(q1) z1, v = sqrt(q2) (rho z1 + sqrt(1 - rho²) z2); for fixed z1 the z2-expectation of
    relu(a + b z2) is a Phi(a/b) + b phi(a/b) and of step(a + b z2) is Phi(a/b); the z1-integral over z1 > 0 is
    done by scipy.integrate.quad.  E[relu(u)²] = q/2 (half of E[u²])."""
    from scipy import integrate, stats
    w2, b2 = W_std ** 2, b_std ** 2
    d = X1.shape[1]
    nngp, ntk_ = np.zeros((len(X1), len(X2))), np.zeros((len(X1), len(X2)))
    for i, x in enumerate(X1):
        for j, z in enumerate(X2):
            q1, q2, c = w2 * x @ x / d + b2, w2 * z @ z / d + b2, w2 * x @ z / d + b2
            t = c
            for _ in range(depth):
                rho = np.clip(c / np.sqrt(q1 * q2), -1, 1)
                a_, b_ = np.sqrt(q2) * rho, np.sqrt(q2) * np.sqrt(1 - rho ** 2)

                def relu_relu(z1):
                    m = a_ * z1
                    return np.sqrt(q1) * z1 * (m * stats.norm.cdf(m / b_) + b_ * stats.norm.pdf(m / b_)) * \
                        stats.norm.pdf(z1)

                def step_step(z1):
                    return stats.norm.cdf(a_ * z1 / b_) * stats.norm.pdf(z1)
                e_rr = integrate.quad(relu_relu, 0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
                e_ss = integrate.quad(step_step, 0, np.inf, epsabs=1e-13, epsrel=1e-12)[0]
                c, dot = w2 * e_rr + b2, w2 * e_ss
                t = c + dot * t
                q1, q2 = w2 * q1 / 2 + b2, w2 * q2 / 2 + b2
            nngp[i, j], ntk_[i, j] = c, t
    return nngp, ntk_


def test_visible_depth3_values_match_an_independent_quadrature():
    """The hard-coded kernels of the visible depth-3 check (b_std = 0.5) are those of the recursion with its
    expectations integrated numerically (no arc-cosine formula), and those of the reference."""
    X1 = ntk._points(5, 4, 5) * np.array([[0.5], [1.0], [2.0], [3.0]])
    X2 = ntk._points(6, 3, 5)
    nngp, ntk_ = _kernels_by_quadrature(X1, X2, 3, 1.3, 0.5)
    np.testing.assert_allclose(ntk.DEEP_NNGP, nngp, rtol=1e-8)
    np.testing.assert_allclose(ntk.DEEP_NTK, ntk_, rtol=1e-8)
    ref = GRADING.relu_ntk(X1, X2, 3, 1.3, 0.5)
    np.testing.assert_allclose(ntk.DEEP_NNGP, ref[0], rtol=1e-9)
    np.testing.assert_allclose(ntk.DEEP_NTK, ref[1], rtol=1e-9)


def test_relu_ntk_without_sigma_b_loses_visible_points_with_a_hint_naming_sigma_b():
    """Before issue 12 it kept 3 of 4 visible points with no hint."""
    fn = functools.partial(relu_ntk_variant, mistake="no b_std^2 after the first layer")
    points, text = grade("relu_ntk", fn, tests="visible")
    assert points < 2.7 and text.count("sigma_b") >= 2, text
    assert "sigma_b" in assert_loses("relu_ntk", fn)
    # the hint is about b_std: a mistake that is wrong at b_std = 0 as well does not get it
    assert "sigma_b" not in grade("relu_ntk", functools.partial(relu_ntk_variant, mistake="no 1/d"), "visible")[1]


def test_relu_ntk_swapped_outputs_get_a_hint_in_the_visible_checks():
    text = assert_loses("relu_ntk", functools.partial(relu_ntk_variant, mistake="returns (ntk, nngp)"), "visible")
    assert "the two outputs look swapped" in text, text


def test_relu_ntk_ratio_hint_once_per_check_and_only_for_a_constant_ratio():
    """Before issue 12 a ratio hint was printed once per entry, with eight different factors in one check."""
    _, text = grade("relu_ntk", functools.partial(relu_ntk_variant, mistake="W_std instead of W_std squared"),
                    "visible")
    checks = text.split("  [")[1:]
    assert all(c.count("hint:") <= 1 for c in checks), text
    assert "hint: your nngp and ntk are both about 0.3536 times the expected ones everywhere" in text
    diagonal = next(c for c in checks if c.startswith("FAIL] X1 with itself"))
    assert "times the expected" not in diagonal  # the ratio differs from entry to entry: no factor to name


# ==============================================================================================================
# NTKMLP
# ==============================================================================================================
class MLPVariant(torch.nn.Module):
    """The NTK-parametrized MLP, correct or with one named mistake, with weights stored input-major."""

    def __init__(self, d_in, width, depth, W_std=np.sqrt(2), b_std=0.0, mistake=None, squeeze=False):
        super().__init__()
        self.mistake, self.squeeze = mistake, squeeze
        hidden = depth + (1 if mistake == "depth off by one" else 0)
        sizes = [d_in] + [width] * hidden + [1]
        self.W_std, self.b_std = W_std, b_std
        weights, biases = [], []
        for a, b in zip(sizes, sizes[1:]):
            if mistake == "standard parametrization":
                weights.append(torch.randn(a, b) * W_std / np.sqrt(a))
                biases.append(torch.randn(b) * b_std)
            elif mistake == "uniform initialization with variance 1":
                weights.append((torch.rand(a, b) * 2 - 1) * np.sqrt(3))
                biases.append((torch.rand(b) * 2 - 1) * np.sqrt(3))
            elif mistake == "PyTorch's default initialization kept":
                layer = torch.nn.Linear(a, b)
                weights.append(layer.weight.detach().T.clone())
                biases.append(layer.bias.detach().clone())
            else:
                weights.append(torch.randn(a, b))
                biases.append(torch.randn(b))
        self.W = torch.nn.ParameterList(weights)
        self.b = None if mistake == "no biases" else torch.nn.ParameterList(biases)
        if mistake == "biases as buffers":
            self.b = None
            for i, bias in enumerate(biases):
                self.register_buffer(f"bias{i}", bias)

    def forward(self, x):
        m = self.mistake
        for i, W in enumerate(self.W):
            if i:
                x = torch.relu(x)
            fan = W.shape[1] if m == "fan-out normalization" else W.shape[0]
            scale = 1.0 if (m == "standard parametrization" or (m == "no 1/sqrt(d) in the first layer" and i == 0)) \
                else 1 / np.sqrt(fan)
            w_std = 1.0 if (m == "standard parametrization" or (m == "W_std only in the first layer" and i)) \
                else self.W_std
            x = w_std * scale * x @ W
            if self.b is not None:
                x = x + (1.0 if m in ("standard parametrization", "b_std ignored") else self.b_std) * self.b[i]
            elif m == "biases as buffers":
                x = x + self.b_std * getattr(self, f"bias{i}")
        if m == "ReLU on the output":
            x = torch.relu(x)
        return x.reshape(-1) if self.squeeze else x


class ScaledLinear(torch.nn.Module):
    def __init__(self, a, b, W_std, b_std):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(b, a))
        self.bias = torch.nn.Parameter(torch.randn(b))
        self.W_std, self.b_std = W_std, b_std

    def forward(self, x):
        return torch.nn.functional.linear(x, self.W_std / np.sqrt(self.weight.shape[1]) * self.weight,
                                          self.b_std * self.bias)


def ntkmlp_sequential(d_in, width, depth, W_std=np.sqrt(2), b_std=0.0):
    """Correct: an nn.Sequential of scaled linear layers and ReLUs."""
    sizes = [d_in] + [width] * depth + [1]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        if i:
            layers.append(torch.nn.ReLU())
        layers.append(ScaledLinear(a, b, W_std, b_std))
    return torch.nn.Sequential(*layers)


NTKMLP_MISTAKES = ["standard parametrization", "no 1/sqrt(d) in the first layer", "b_std ignored", "no biases",
                   "biases as buffers", "depth off by one", "ReLU on the output", "fan-out normalization",
                   "W_std only in the first layer", "uniform initialization with variance 1",
                   "PyTorch's default initialization kept"]


@pytest.mark.parametrize("fn", [SOLUTION["NTKMLP"], MLPVariant, functools.partial(MLPVariant, squeeze=True),
                                ntkmlp_sequential],
                         ids=["solution (nn.Linear)", "input-major parameters", "output shape (n,)",
                              "nn.Sequential of scaled layers"])
def test_ntkmlp_correct_alternatives_keep_full_marks(fn):
    assert_full("NTKMLP", fn)


@pytest.mark.parametrize("mistake", NTKMLP_MISTAKES)
def test_ntkmlp_wrong_implementations_lose_points(mistake):
    assert_loses("NTKMLP", functools.partial(MLPVariant, mistake=mistake))


def test_init_acceptance_region_fails_a_correct_init_with_probability_below_1e_minus_8():
    """The bounds of ntk.init_bounds against the exact distributions (scipy): the mean of n N(0, 1) entries is
    N(0, 1/n), n times the mean square is chi-square with n degrees of freedom, the KS distance has the
    distribution scipy.stats.kstwo; each test fails a correct initialization with probability <= INIT_P."""
    from scipy import stats
    for n in (1, 7, 100, 600, 2048, 262144):
        b = ntk.init_bounds(n)
        assert 2 * stats.norm.sf(b["mean"] * np.sqrt(n)) <= ntk.INIT_P
        assert stats.chi2.sf(n * b["m2_high"], n) <= ntk.INIT_P / 2
        assert b["m2_low"] <= 0 or stats.chi2.cdf(n * b["m2_low"], n) <= ntk.INIT_P / 2
        assert stats.kstwo.sf(b["ks"], n) <= ntk.INIT_P


def nn_linear_default_init(d_in, width, depth, W_std=np.sqrt(2), b_std=0.0):
    """Wrong: nn.Linear layers scaled in the forward pass as they should be, but PyTorch's default
    initialization U(±1/sqrt(fan_in)) kept instead of N(0, 1)."""
    sizes = [d_in] + [width] * depth + [1]

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))

        def forward(self, x):
            for i, layer in enumerate(self.layers):
                x = torch.relu(x) if i else x
                x = W_std / np.sqrt(layer.in_features) * (x @ layer.weight.T) + b_std * layer.bias
            return x
    return Net()


def test_ntkmlp_default_nn_linear_init_fails_the_small_network_too():
    """Before issue 12 only the number of parameters of the small NTKMLP(6, 32, 0) was checked: PyTorch's
    default initialization passed "each entry N(0, 1)" there."""
    text = assert_loses("NTKMLP", nn_linear_default_init, "visible")
    small = next(c for c in text.split("  [")[1:] if "NTKMLP(6, 32, 0" in c)
    assert small.startswith("FAIL]") and "PyTorch's default initialization" in small, text


def test_ntkmlp_hint_on_standard_parametrization():
    assert "NTK parametrization" in assert_loses("NTKMLP", functools.partial(MLPVariant,
                                                                            mistake="standard parametrization"))


def test_reference_empirical_ntk_agrees_with_solution_and_analytic_limit():
    """Two independent algorithms (reference: autograd loop in float64; solution: torch.func.jacrev) agree, and
    at width 4096 the empirical NTK is within a few percent of the analytic kernel (book/conventions.md)."""
    X = np.random.default_rng(3).normal(size=(6, 3))
    torch.manual_seed(0)
    model = SOLUTION["NTKMLP"](3, 4096, 2).double()
    ref = GRADING.empirical_ntk(model, X, X)
    sol = SOLUTION["empirical_ntk"](model, torch.tensor(X), torch.tensor(X)).numpy()
    np.testing.assert_allclose(sol, ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    _, analytic = GRADING.relu_ntk(X, X, 2)
    assert np.linalg.norm(ref - analytic) / np.linalg.norm(analytic) < 0.1


def test_reference_empirical_ntk_of_a_wide_float32_network_is_float64_accurate_enough():
    """A float32 network's gradients are multiplied in float32 chunks of grading.BLOCK entries: against the same
    float32 gradients summed in float64 (torch.func.jacrev, concatenated) the kernel is within 2e-6, far below the
    0.15 the hidden NTKMLP cases allow; against the float64 network within 1e-4 (the float32 forward pass)."""
    from torch.func import functional_call, jacrev, vmap
    X = np.random.default_rng(4).normal(size=(4, 5)).astype(np.float32)
    torch.manual_seed(1)
    model = SOLUTION["NTKMLP"](5, 2048, 2, W_std=1.3, b_std=0.5)
    assert any(p.numel() > 4 * GRADING.BLOCK for p in model.parameters())
    fast = GRADING.empirical_ntk(model, X, X[:3])
    params = {k: v.detach() for k, v in model.named_parameters()}

    def jac(x):
        J = vmap(jacrev(lambda p, xi: functional_call(model, p, (xi.unsqueeze(0),)).reshape(())),
                 in_dims=(None, 0))(params, torch.tensor(x))
        return torch.cat([j.reshape(len(x), -1) for j in J.values()], dim=1).double()

    same_gradients = (jac(X) @ jac(X[:3]).T).numpy()
    np.testing.assert_allclose(fast, same_gradients, rtol=2e-6, atol=1e-6 * np.abs(same_gradients).max())
    exact = GRADING.empirical_ntk(model.double(), X.astype(np.float64), X[:3].astype(np.float64))
    np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=1e-6 * np.abs(exact).max())


# ==============================================================================================================
# ntk_predict
# ==============================================================================================================
def predict_variant(K_train, K_test_train, y_train, lr, steps=None, f0_train=None, f0_test=None, *, mistake=None,
                    dtype=np.float64):
    """Closed form through an eigendecomposition, with one optional, named mistake."""
    K, Kx, y = (np.asarray(a, dtype=dtype) for a in (K_train, K_test_train, y_train))
    n, m = K.shape[0], Kx.shape[0]
    f0 = np.zeros(n, dtype) if (f0_train is None or mistake == "f0 ignored") else np.asarray(f0_train, dtype)
    g0 = np.zeros(m, dtype) if (f0_test is None or mistake in ("f0 ignored", "f0_test not added")) \
        else np.asarray(f0_test, dtype)
    if mistake == "mean loss (lr / n)":
        lr = lr / n
    if steps is not None and mistake == "one step too many":
        steps += 1
    if steps is not None and mistake == "one step too few":
        steps = max(steps - 1, 0)
    if mistake == "steps ignored (always the limit)":
        steps = None
    residual = y - f0
    if steps is None:
        return g0 + Kx @ np.linalg.solve(K, residual)
    if mistake == "inverse of K_train":
        A = np.linalg.inv(K) @ (np.eye(n) - np.linalg.matrix_power(np.eye(n) - lr * K, steps))
        return g0 + Kx @ A @ residual
    if mistake == "elementwise power":
        A = np.linalg.pinv(K) @ (np.eye(n) - (np.eye(n) - lr * K) ** steps)
        return g0 + Kx @ A @ residual
    lam, Q = np.linalg.eigh(K)
    if mistake == "continuous time (exponential)":
        factor = -np.expm1(-lr * steps * lam)
    else:
        factor = 1 - (1 - lr * lam) ** steps
    tiny = np.abs(lam) < 1e-10 * np.abs(lam).max()
    g = np.where(tiny, (lr * steps), factor / np.where(tiny, 1, lam))
    sign = -1 if mistake == "sign of the residual" else 1
    return g0 + sign * Kx @ (Q @ (g * (Q.T @ residual)))


def predict_torch_simulation(K_train, K_test_train, y_train, lr, steps=None, f0_train=None, f0_test=None):
    """Correct: simulate the steps in torch (steps=None: a linear solve)."""
    K, Kx, y = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (K_train, K_test_train, y_train))
    f = torch.zeros_like(y) if f0_train is None else torch.as_tensor(np.asarray(f0_train), dtype=torch.float64)
    g = torch.zeros(Kx.shape[0], dtype=torch.float64) if f0_test is None \
        else torch.as_tensor(np.asarray(f0_test), dtype=torch.float64)
    if steps is None:
        return (g + Kx @ torch.linalg.solve(K, y - f)).numpy()
    for _ in range(steps):
        r = f - y
        f, g = f - lr * K @ r, g - lr * Kx @ r
    return g.numpy()


def predict_power_series(K_train, K_test_train, y_train, lr, steps=None, f0_train=None, f0_test=None):
    """Correct: lr Σ_{j<t} (I - lr K)^j accumulated with matrix products."""
    K, Kx, y = np.asarray(K_train, float), np.asarray(K_test_train, float), np.asarray(y_train, float)
    f0 = np.zeros_like(y) if f0_train is None else np.asarray(f0_train, float)
    g0 = np.zeros(len(Kx)) if f0_test is None else np.asarray(f0_test, float)
    if steps is None:
        return g0 + Kx @ np.linalg.lstsq(K, y - f0, rcond=None)[0]
    A, P, M = np.zeros_like(K), np.eye(len(K)), np.eye(len(K)) - lr * K
    for _ in range(steps):
        A, P = A + lr * P, P @ M
    return g0 + Kx @ A @ (y - f0)


def predict_residual_propagator(K_train, K_test_train, y_train, lr, steps=None, f0_train=None, f0_test=None):
    """Correct: the training residual after t steps is P r with P = (I - lr K)^t = Q diag((1 - lr λ)^t) Q^T; the
    training predictions moved by (I - P) r, the test ones by K*X K^+ (I - P) r, plus lr t K*X r along the flat
    directions of K.  At t = 0, I - Q Q^T is 0 only up to rounding: with f0 = None the predictions are ~1e-16, not 0,
    so it failed before issue 10 (the expected zeros had no absolute floor)."""
    K, Kx, y = (np.asarray(a, float) for a in (K_train, K_test_train, y_train))
    f0 = np.zeros(len(y)) if f0_train is None else np.asarray(f0_train, float)
    g0 = np.zeros(len(Kx)) if f0_test is None else np.asarray(f0_test, float)
    r = y - f0
    if steps is None:
        return g0 + Kx @ np.linalg.lstsq(K, r, rcond=None)[0]
    lam, Q = np.linalg.eigh(K)
    flat = np.abs(lam) < 1e-10 * np.abs(lam).max()
    P = Q @ np.diag((1 - lr * lam) ** steps) @ Q.T
    moved = (np.eye(len(y)) - P) @ r
    inv = np.where(flat, 0.0, 1 / np.where(flat, 1.0, lam))
    Qf = Q[:, flat]
    return g0 + Kx @ (Q @ (inv * (Q.T @ moved))) + lr * steps * Kx @ (Qf @ (Qf.T @ r))


def predict_torch_float32(K_train, K_test_train, y_train, lr, steps=None, f0_train=None, f0_test=None):
    """Correct: the simulation in torch float32 (measured: at most 9.5e-7 of max|f| on every case, t = 300
    included, against the tolerance 1e-5)."""
    K, Kx, y = (torch.tensor(np.asarray(a)).float() for a in (K_train, K_test_train, y_train))
    f = torch.zeros_like(y) if f0_train is None else torch.tensor(np.asarray(f0_train)).float()
    g = torch.zeros(Kx.shape[0]) if f0_test is None else torch.tensor(np.asarray(f0_test)).float()
    if steps is None:
        return g + Kx @ torch.linalg.solve(K, y - f)
    for _ in range(steps):
        r = f - y
        f, g = f - lr * K @ r, g - lr * Kx @ r
    return g


PREDICT_MISTAKES = ["f0 ignored", "f0_test not added", "mean loss (lr / n)", "one step too many", "one step too few",
                    "steps ignored (always the limit)", "inverse of K_train", "elementwise power",
                    "continuous time (exponential)", "sign of the residual"]


@pytest.mark.parametrize("fn", [SOLUTION["ntk_predict"], predict_variant, predict_torch_simulation,
                                predict_power_series, functools.partial(predict_variant, dtype=np.float32),
                                predict_residual_propagator, predict_torch_float32],
                         ids=["solution", "eigendecomposition", "torch simulation", "power series", "float32",
                              "residual propagator (t = 0 gives 1e-16)", "torch float32 simulation"])
def test_ntk_predict_correct_alternatives_keep_full_marks(fn):
    assert_full("ntk_predict", fn)


@pytest.mark.parametrize("mistake", PREDICT_MISTAKES)
def test_ntk_predict_wrong_implementations_lose_points(mistake):
    assert_loses("ntk_predict", functools.partial(predict_variant, mistake=mistake))


def test_ntk_predict_hint_names_off_by_one():
    assert "after 8 steps instead of 7" in assert_loses("ntk_predict",
                                                         functools.partial(predict_variant, mistake="one step too many"))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 6), rank=st.integers(1, 6), steps=st.integers(0, 60),
       lr_fraction=st.floats(0.05, 1.9))
def test_ntk_predict_reference_simulation_equals_closed_form(seed, n, rank, steps, lr_fraction):
    """The reference (step-by-step simulation) equals the solution's closed form, also for singular K."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, min(rank, n)))
    K = A @ A.T
    lr = lr_fraction / np.linalg.eigvalsh(K).max()
    Kx, y, f0, g0 = rng.normal(size=(3, n)), rng.normal(size=n), rng.normal(size=n), rng.normal(size=3)
    ref = GRADING.ntk_predict(K, Kx, y, lr, steps, f0, g0)
    sol = SOLUTION["ntk_predict"](K, Kx, y, lr, steps, f0, g0)
    np.testing.assert_allclose(sol, ref, rtol=1e-7, atol=1e-7 * max(1.0, np.abs(ref).max()))


# ==============================================================================================================
# Every part: stubs, crashes, hostile return values
# ==============================================================================================================






@pytest.mark.parametrize("part", ["relu_ntk", "ntk_predict", "empirical_ntk"])
def test_objects_that_lie_score_zero(part):
    liar = np.zeros(3).view(AlwaysEqual)
    points, text = grade(part, lambda *a, **k: (liar, liar) if part == "relu_ntk" else liar)
    assert points == 0, text






def test_same_submission_same_score():
    wrong = functools.partial(relu_ntk_variant, mistake="b_std^2 in Sigma-dot")
    assert grade("relu_ntk", wrong) == grade("relu_ntk", wrong)
    assert grade("NTKMLP", SOLUTION["NTKMLP"]) == grade("NTKMLP", SOLUTION["NTKMLP"])


# ==============================================================================================================
# The whole pipeline through real nbgrader: release, submit, autograde, gradebook
# ==============================================================================================================
@pytest.mark.slow
def test_ntk_class_through_nbgrader(tmp_path):
    """Full solution: full automatic marks; untouched release: 0 without error; a partly correct submission: the
    same partial credit as graded in-process; an endless loop in one function costs only that part."""
    import nbformat
    from autograder import nbgrading
    from autograder.course import default_course
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["ntk"])
    nbgrading.release(course, "ntk")
    release = nbformat.read(course / "exercises" / "ntk" / "ntk.ipynb", as_version=4)
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("ntk").cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    wrong_predict = ("import functools\nfrom tests.test_ntk import predict_variant\n"
                     "ntk_predict = functools.partial(predict_variant, mistake='one step too many')")
    looping = "def ntk_predict(*args, **kwargs):\n    while True:\n        pass"
    class_ = {
        "full": dict(solution),
        "untouched": {},
        "partial": {"relu_ntk": solution["relu_ntk"], "ntk_predict": wrong_predict},
        "loops": dict(solution, ntk_predict=looping),
    }
    submissions = tmp_path / "submissions"
    for student, answers in class_.items():
        add_submission(submissions, student, "ntk", fill(release, answers))
    import os
    os.environ.setdefault("PYTHONPATH", str(default_course()))  # lets the 'partial' kernel import tests
    results, warnings = nbgrading.grade(course, "ntk", submissions, cell_timeout=30)
    got = {r.student: r for r in results}
    full = {f"check_{p}": float(v) for p, v in ntk.POINTS.items()}
    assert {k: v for k, v in got["full"].scores.items() if k.startswith("check_")} == full
    assert got["full"].scores["written_finite_width"] == 0  # left unanswered: nbgrader scores it 0 itself
    assert got["untouched"].graded and got["untouched"].total == 0
    expected_partial = grade("ntk_predict", functools.partial(predict_variant, mistake="one step too many"))[0]
    assert 0 < expected_partial < ntk.POINTS["ntk_predict"]
    assert got["partial"].scores == {"check_empirical_ntk": 0, "check_relu_ntk": 4, "check_NTKMLP": 0,
                                    "check_ntk_predict": expected_partial, "check_ntk_theta": 0,
                                    "written_finite_width": 0}
    assert got["loops"].scores == dict(full, check_ntk_predict=0, written_finite_width=0)
    assert "check_ntk_predict raised KeyboardInterrupt" in " ".join(got["loops"].notes) or \
        "timed out" in " ".join(got["loops"].notes), got["loops"].notes
    assert not warnings


# ==============================================================================================================
# Part 5, the derivation ntk_theta (autograder.derivation): the closed form against relu_ntk, wrong forms lose,
# equivalent forms keep full marks
# ==============================================================================================================
import sympy as sp  # noqa: E402

R1, R2, THETA, SW, SB = sp.symbols("r1 r2 theta sigma_w sigma_b", positive=True)
D = sp.Symbol("d", positive=True, integer=True)
_Q1, _Q2 = SW**2 * R1**2 / D + SB**2, SW**2 * R2**2 / D + SB**2
_C = SW**2 * R1 * R2 * sp.cos(THETA) / D + SB**2
_ROOT = sp.sqrt(_Q1 * _Q2 - _C**2)
_PHI = sp.acos(_C / sp.sqrt(_Q1 * _Q2))


def _pair(r1, r2, theta, d, seed):
    """Two vectors of R^d with norms r1, r2 at angle theta (d >= 2)."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, 2)))
    return (r1 * q[:, 0])[None], (r2 * (np.cos(theta) * q[:, 0] + np.sin(theta) * q[:, 1]))[None]


def test_ntk_theta_reference_matches_relu_ntk_at_depth_one():
    """The reference of grading.py against the recursion relu_ntk(..., depth=1), at random points of the domain
    (sigma_b > 0 included, where the covariance's angle differs from the inputs' angle)."""
    grading = instructor_module("ntk")
    ref = grading.ntk_theta(R1, R2, THETA, D, SW, SB)
    rng = np.random.default_rng(5)
    for i in range(40):
        r1, r2, theta = rng.uniform(0.2, 3), rng.uniform(0.2, 3), rng.uniform(0.01, 3.13)
        d, sw, sb = int(rng.integers(2, 65)), rng.uniform(0.3, 2.5), rng.uniform(0, 1.5)
        x1, x2 = _pair(r1, r2, theta, d, i)
        want = grading.relu_ntk(x1, x2, 1, W_std=sw, b_std=sb)[1][0, 0]
        got = float(ref.subs({R1: r1, R2: r2, THETA: theta, D: d, SW: sw, SB: sb}).evalf(20))
        assert abs(got - want) <= 1e-10 * max(1.0, abs(want)), (i, got, want)


def test_ntk_theta_visible_values_come_from_relu_ntk():
    grading = instructor_module("ntk")
    for point, value in ntk.NTK_THETA.examples:
        p = {k: float(sp.sympify(v)) for k, v in point.items()}
        x1, x2 = _pair(p["r1"], p["r2"], p["theta"], int(p["d"]), 0)
        want = grading.relu_ntk(x1, x2, 1, W_std=p["sigma_w"], b_std=p["sigma_b"])[1]
        assert abs(float(sp.sympify(value)) - want[0, 0]) < 1e-12, (point, value, want)


NTK_THETA_RIGHT = {
    "acos, as the course writes it": SW**2 / (2 * sp.pi) * (_ROOT + 2 * (sp.pi - _PHI) * _C) + SB**2,
    "atan2 of (sqrt(q q' - c^2), c)": SW**2 / (2 * sp.pi) * (_ROOT + 2 * (sp.pi - sp.atan2(_ROOT, _C)) * _C) + SB**2,
    "the other branch: pi - acos(u) = acos(-u), expanded":
        sp.expand(SW**2 / (2 * sp.pi) * _ROOT + SW**2 / sp.pi * sp.acos(-_C / sp.sqrt(_Q1 * _Q2)) * _C) + SB**2,
    "Sigma^2 + Sigmadot^2 * Theta^1 with sqrt(q) sqrt(q') and the correlation rho":
        (SW**2 * sp.sqrt(_Q1) * sp.sqrt(_Q2) * (sp.sqrt(1 - (_C / (sp.sqrt(_Q1) * sp.sqrt(_Q2)))**2)
                                                + (sp.pi - sp.acos(_C / (sp.sqrt(_Q1) * sp.sqrt(_Q2))))
                                                * _C / (sp.sqrt(_Q1) * sp.sqrt(_Q2))) / (2 * sp.pi) + SB**2
         + SW**2 * (sp.pi - sp.acos(_C / (sp.sqrt(_Q1) * sp.sqrt(_Q2)))) / (2 * sp.pi) * _C),
    "as text, numpy names": ("sigma_w**2/(2*pi)*(sqrt((sigma_w**2*r1**2/d + sigma_b**2)*(sigma_w**2*r2**2/d + "
                             "sigma_b**2) - (sigma_w**2*r1*r2*cos(theta)/d + sigma_b**2)**2) + 2*(pi - arccos("
                             "(sigma_w**2*r1*r2*cos(theta)/d + sigma_b**2)/sqrt((sigma_w**2*r1**2/d + sigma_b**2)*"
                             "(sigma_w**2*r2**2/d + sigma_b**2))))*(sigma_w**2*r1*r2*cos(theta)/d + sigma_b**2)) "
                             "+ sigma_b**2"),
}
_PSI = THETA  # the inputs' angle
NTK_THETA_WRONG = {
    "the NNGP (missing the Sigmadot Theta^1 term)": (SW**2 / (2 * sp.pi) * (_ROOT + (sp.pi - _PHI) * _C) + SB**2,
                                                     "NNGP"),
    "the inputs' angle instead of the covariance's": (SW**2 / (2 * sp.pi) * (_ROOT + 2 * (sp.pi - _PSI) * _C)
                                                      + SB**2, "angle of the first layer's covariance"),
    "no 1/d": (SW**2 / (2 * sp.pi) * (_ROOT + 2 * (sp.pi - _PHI) * _C) + SB**2).subs(D, 1),
    "sigma_w instead of sigma_w**2 in front": SW / (2 * sp.pi) * (_ROOT + 2 * (sp.pi - _PHI) * _C) + SB**2,
    "a sign: pi + phi": SW**2 / (2 * sp.pi) * (_ROOT + 2 * (sp.pi + _PHI) * _C) + SB**2,
    "the last bias missing": (SW**2 / (2 * sp.pi) * (_ROOT + 2 * (sp.pi - _PHI) * _C), "sigma_b^2 is missing"),
    "twice the answer (Cho & Saul's k1 with W_std^2 = 2 counted twice)":
        (2 * (SW**2 / (2 * sp.pi) * (_ROOT + 2 * (sp.pi - _PHI) * _C) + SB**2), "twice the expected one"),
}


@pytest.mark.parametrize("form", list(NTK_THETA_RIGHT))
def test_ntk_theta_equivalent_forms_keep_full_marks(form):
    assert_full("ntk_theta", NTK_THETA_RIGHT[form])


@pytest.mark.parametrize("mistake", list(NTK_THETA_WRONG))
def test_ntk_theta_wrong_forms_score_zero_with_a_hint(mistake):
    wrong = NTK_THETA_WRONG[mistake]
    expr, hint = wrong if isinstance(wrong, tuple) else (wrong, "differs from the expected one")
    points, text = grade("ntk_theta", expr)
    assert points == 0, text
    assert "differs from the expected one at r1 = " in text and hint in text, text


# ==============================================================================================================
# Per-student variants of ntk_theta (autograder.variants): each student's sigma_w and sigma_b
# ==============================================================================================================
from autograder import variants  # noqa: E402

_GENERAL = NTK_THETA_RIGHT["acos, as the course writes it"]


def _two_students():
    """Two course ids whose variants differ in both values (found by scanning ids, not hard-coded draws)."""
    first = variants.draw("ntk_theta", "student-0", ntk.NTK_THETA.variant)
    for i in range(1, 200):
        other = variants.draw("ntk_theta", f"student-{i}", ntk.NTK_THETA.variant)
        if all(other[k] != first[k] for k in first):
            return ("student-0", first), (f"student-{i}", other)
    raise AssertionError("no two different variants in 200 ids")


def _numbers(values):
    """The answer a student writes with their own numbers substituted for sigma_w and sigma_b."""
    return _GENERAL.subs({SW: sp.sympify(values["sigma_w"]), SB: sp.sympify(values["sigma_b"])})


def test_variants_are_deterministic_and_spread_over_the_choices():
    assert variants.draw("ntk_theta", "alice", ntk.NTK_THETA.variant) == \
        variants.draw("ntk_theta", "alice", ntk.NTK_THETA.variant)
    drawn = {tuple(variants.draw("ntk_theta", f"s{i}", ntk.NTK_THETA.variant).values()) for i in range(300)}
    assert len(drawn) > 40  # of 56 combinations


def test_each_student_is_graded_against_their_own_variant_and_a_copier_loses():
    (a, va), (b, vb) = _two_students()
    for student, mine, theirs in [(a, va, vb), (b, vb, va)]:
        with variants.grading_student(student):
            points, text = grade("ntk_theta", _numbers(mine))
            assert points == 2, text
            points, text = grade("ntk_theta", _numbers(theirs))  # another student's numbers
            assert points == 0, text
            assert f"graded with the values of course id {student!r}" in text
            assert_full("ntk_theta", _GENERAL)  # the general closed form is right for everyone


def test_the_variant_is_the_nbgrader_ids_and_a_declared_id_that_differs_is_flagged():
    import nbformat
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('STUDENT_ID = "bob"')])
    assert variants.declared_id(nb) == "bob"
    assert variants.mismatch(nb, "bob") is None
    assert "declares course id 'bob' but is submitted as 'alice'" in variants.mismatch(nb, "alice")
    nb.cells[0].source = 'STUDENT_ID = ""'
    assert variants.declared_id(nb) is None and variants.mismatch(nb, "alice") is None


def test_the_instructor_report_lists_each_students_variant():
    from autograder.report import summary
    from autograder.results import PartResult, SubmissionResult
    (a, va), (b, vb) = _two_students()
    results = [SubmissionResult(s, [PartResult("check_ntk_theta", "auto", 2, 2, "", "ok")]) for s in (a, b)]
    text = summary(results, "ntk")
    for s, v in ((a, va), (b, vb)):
        assert f"{s}: ntk_theta: sigma_w = {v['sigma_w']}, sigma_b = {v['sigma_b']}" in text, text


@pytest.mark.slow
def test_variants_through_both_engines(tmp_path):
    """Two students answer with their own numbers and keep full marks; a third submits the first's notebook
    (his numbers, his declared id) and scores 0 on the part, flagged; through the isolated engine and plain
    nbgrader (whose kernel learns the student from TFDL_STUDENT)."""
    import nbformat
    from autograder import nbgrading
    from tests.conftest import add_submission, fill, make_course

    course = make_course(tmp_path, ["ntk"])
    nbgrading.release(course, "ntk")
    release = nbformat.read(course / "exercises" / "ntk" / "ntk.ipynb", as_version=4)
    (a, va), (b, vb) = _two_students()
    copier = next(f"copier-{i}" for i in range(200) if variants.draw("ntk_theta", f"copier-{i}",
                                                                      ntk.NTK_THETA.variant) != va)

    def notebook(declared, values):
        nb = fill(release, {"ntk_theta": f"ntk_theta = sp.sympify({sp.sstr(_numbers(values))!r})"})
        for cell in nb.cells:
            if cell.cell_type == "code" and cell.source.rstrip().endswith('STUDENT_ID = ""'):
                cell.source = cell.source.replace('STUDENT_ID = ""', f'STUDENT_ID = "{declared}"')
        return nb

    folder = tmp_path / "submissions"
    add_submission(folder, a, "ntk", notebook(a, va))
    add_submission(folder, b, "ntk", notebook(b, vb))
    add_submission(folder, copier, "ntk", notebook(a, va))  # a's notebook, submitted by someone else
    for engine in ("isolated", "nbgrader"):
        if engine == "isolated":
            results, _ = nbgrading.grade_isolated(course, "ntk", folder, workers=1)
        else:
            results, _ = nbgrading.grade(course, "ntk", folder, cell_timeout=120)
        got = {r.student: r for r in results}
        assert got[a].scores["check_ntk_theta"] == 2, (engine, got[a].parts)
        assert got[b].scores["check_ntk_theta"] == 2, (engine, got[b].parts)
        assert got[copier].scores["check_ntk_theta"] == 0, (engine, got[copier].parts)
        assert not got[a].flags and not got[b].flags, engine
        assert any(f"declares course id {a!r} but is submitted as {copier!r}" in f for f in got[copier].flags), \
            (engine, got[copier].flags)


@pytest.mark.slow
def test_isolated_engine_feedback_is_short_and_shows_prints_and_the_line(tmp_path):
    """Issue 12, point 3, through the isolated engine on a whole release notebook: an untouched part says "not
    implemented yet" once (not once per check); a student's own print output is shown (truncated) and an error
    names the line of the student's cell; the headline is worded from the counts."""
    import nbformat
    from autograder import nbgrading
    from autograder.submission import grade_submission
    from tests.conftest import add_submission, fill, make_course

    course = make_course(tmp_path, ["ntk"])
    nbgrading.release(course, "ntk")
    release = nbformat.read(course / "exercises" / "ntk" / "ntk.ipynb", as_version=4)
    chatty = ("def relu_ntk(X1, X2, depth, W_std=np.sqrt(2), b_std=0.0):\n"
              "    print('shapes', X1.shape, X2.shape)\n"
              "    K = X1 @ X2.T\n"
              "    return K, K[7]\n")
    submissions = tmp_path / "submissions"
    add_submission(submissions, "untouched", "ntk", release)
    add_submission(submissions, "chatty", "ntk", fill(release, {"relu_ntk": chatty}))
    untouched = grade_submission(course, "ntk", "untouched", submissions / "untouched" / "ntk.ipynb")
    for part in untouched.parts:
        if part.grade_id in ("check_empirical_ntk", "check_relu_ntk", "check_NTKMLP", "check_ntk_predict"):
            assert part.feedback.count("not implemented yet") == 1, part.feedback
            assert len(part.feedback.splitlines()) == 1, part.feedback
    relu = {p.grade_id: p for p in grade_submission(course, "ntk", "chatty",
                                                    submissions / "chatty" / "ntk.ipynb").parts}["check_relu_ntk"]
    text = relu.feedback
    assert text.startswith("relu_ntk: none of the ") and "all checks" not in text, text
    assert "IndexError: index 7 is out of bounds" in text and "(line 4 of cell relu_ntk in relu_ntk: return K, K[7])" \
        in text, text
    assert "Your code printed during these checks" in text and "    | shapes (5, 3) (5, 3)" in text, text
    assert text.count("    | shapes") <= 12


# ==============================================================================================================
# relu_ntk: each student's own hidden case (Part(variant=...), autograder.core; issue 19)
# ==============================================================================================================
from tests.grading import every_combination, own_case_verdicts, own_cases_and_a_replay, two_draws  # noqa: E402

RELU_PART = ntk.TOPIC.part("relu_ntk")
RELU_CORRECT = {"solution": SOLUTION["relu_ntk"], "torch float32 joint Gram": relu_ntk_torch32,
                "python loops": relu_ntk_python_loops,
                "numpy float32": functools.partial(relu_ntk_variant, dtype=np.float32)}


def _own(fn, values):
    return own_case_verdicts(ntk.TOPIC, "relu_ntk", fn, values, "relu_ntk_cases")


def test_relu_ntk_own_case_for_every_combination_of_options():
    """For each of the 256 combinations of W_std, b_std, depth and data seed: the solution and the correct
    alternatives (float32 included) pass the own case, and every known mistake fails it (no option makes a
    mistake coincide with the recursion)."""
    combos = every_combination(RELU_PART.variant)
    assert len(combos) == 256
    for values in combos:
        for name, fn in RELU_CORRECT.items():
            verdicts = _own(fn, values)
            assert len(verdicts) == 2 and all(v.passed for v in verdicts), (name, values, verdicts)
        for mistake in RELU_MISTAKES:
            own = _own(functools.partial(relu_ntk_variant, mistake=mistake), values)[0]
            assert own.name.startswith("your own case") and not own.passed, (mistake, values)


def test_relu_ntk_two_students_get_their_own_case_and_a_replay_of_anothers_outputs_loses():
    a, b = two_draws(RELU_PART)
    names, copied = own_cases_and_a_replay(ntk.TOPIC, "relu_ntk", SOLUTION["relu_ntk"], a, b)
    for s in (a, b):
        values = RELU_PART.student_values(s)[1]
        assert f"course id {s!r}" in names[s] and f"depth {values['depth']}, W_std = {values['W_std']}, b_std = " \
            f"{values['b_std']}, data seed {values['seed']}" in names[s], names[s]
    assert names[a] != names[b]
    assert copied.earned < 4
    assert [v.name for v in copied.verdicts if not v.passed] == [names[b]], copied.text()


@pytest.mark.slow
def test_relu_ntk_own_cases_through_both_engines(tmp_path):
    """One class graded once by each engine: two students submit the solution of relu_ntk and keep its 4 points
    (each graded on their own case, named in the feedback); a third submits code that returns the first student's
    own-case kernels (hard-coded) and loses points on that case only, in both engines."""
    import nbformat
    from autograder import nbgrading
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["ntk"])
    nbgrading.release(course, "ntk")
    release = nbformat.read(course / "exercises" / "ntk" / "ntk.ipynb", as_version=4)
    solution = next(c.source for c in source_notebook("ntk").cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == "relu_ntk")
    a, b = two_draws(RELU_PART)
    copier = next(f"copier-{i}" for i in range(500)
                  if RELU_PART.student_values(f"copier-{i}")[1] != RELU_PART.student_values(a)[1])
    (case,) = GRADING.relu_ntk_variant_cases(**RELU_PART.student_values(a)[1])
    nngp, ntk_ = GRADING.relu_ntk(case["X1"], case["X2"], case["depth"], case["W_std"], case["b_std"])
    hard_coded = (solution + "\n\n_computed = relu_ntk\n\n"
                  "def relu_ntk(X1, X2, depth, W_std=np.sqrt(2), b_std=0.0):\n"
                  "    if np.shape(X1)[0] == 5 and np.shape(X2)[0] == 4:  # the own case: the first student's answer\n"
                  f"        return np.array({nngp.tolist()!r}), np.array({ntk_.tolist()!r})\n"
                  "    return _computed(X1, X2, depth, W_std, b_std)\n")
    folder = tmp_path / "submissions"
    add_submission(folder, a, "ntk", fill(release, {"relu_ntk": solution}))
    add_submission(folder, b, "ntk", fill(release, {"relu_ntk": solution}))
    add_submission(folder, copier, "ntk", fill(release, {"relu_ntk": hard_coded}))
    isolated, _ = nbgrading.grade_isolated(course, "ntk", folder, workers=1)
    plain, _ = nbgrading.grade(course, "ntk", folder, cell_timeout=120)
    for engine, results in (("isolated", isolated), ("nbgrader", plain)):
        got = {r.student: r for r in results}
        assert got[a].scores["check_relu_ntk"] == 4, (engine, got[a].parts)
        assert got[b].scores["check_relu_ntk"] == 4, (engine, got[b].parts)
        assert 0 < got[copier].scores["check_relu_ntk"] < 4, (engine, got[copier].parts)
    feedback = {r.student: {p.grade_id: p for p in r.parts}["check_relu_ntk"].feedback for r in isolated}
    for s in (a, b, copier):
        assert f"your own case (drawn from course id {s!r})" in feedback[s], feedback[s]
    failed = [line for line in feedback[copier].splitlines() if line.startswith("  [FAIL]")]
    assert len(failed) == 1 and f"course id {copier!r}" in failed[0], feedback[copier]


@pytest.mark.slow
def test_relu_ntk_visible_check_in_a_kernel_names_the_students_hidden_values(monkeypatch):
    """In a real Jupyter kernel, the visible check of relu_ntk reads the notebook's STUDENT_ID and says which
    values the student's hidden case uses (the same the grader draws from that id)."""
    import nbformat
    from nbclient import NotebookClient
    from tests.notebooks import source_notebook
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    monkeypatch.delenv("TFDL_STUDENT", raising=False)
    solution = next(c.source for c in source_notebook("ntk").cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == "relu_ntk")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('STUDENT_ID = "alice"'),
                                         nbformat.v4.new_code_cell("import numpy as np\n" + solution),
                                         nbformat.v4.new_code_cell("from autograder.ntk import check_relu_ntk\n"
                                                                   "check_relu_ntk(relu_ntk)")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    text = "".join(o.get("text", "") for o in nb.cells[2].outputs if o.get("output_type") == "stream")
    values = RELU_PART.student_values("alice")[1]
    assert ("Your hidden checks of relu_ntk use " + ", ".join(f"{k} = {v}" for k, v in values.items())
            + ", drawn from your course id 'alice'.") in text, text
