"""Tests of autograder/optimization.py: the checks discriminate.

* the solution notebook and correct alternatives (other algorithms: per-input gradients, SVD, numpy, Lanczos,
  the full Hessian, torch.optim.SGD, torch.func; float32 arithmetic) keep full marks;
* plausible wrong implementations lose points;
* the instructor references agree with independent computations (closed forms of linear and one-hidden-layer
  models, torch.autograd.functional, GD on linear least squares) and recompute the visible literals;
* stubs, objects that lie and exits score 0; prints and warnings cost nothing.
"""
from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch.func import functional_call, grad, jacrev, jvp

from autograder import optimization
from autograder.core import instructor_module
from tests.grading import AlwaysEqual, Grader, noisy, stub
from tests.notebooks import solution_namespace

SOLUTION = solution_namespace("optimization")
GRADING = instructor_module("optimization")
GRADER = Grader(optimization)
grade, assert_full, assert_loses = GRADER.grade, GRADER.assert_full, GRADER.assert_loses
PARTS = ["pl_constant", "hessian_norm", "gd_losses", "hessian_slope"]


def _dtype(model):
    return next(model.parameters()).dtype


def _flat_jacobian(model, X, *, only=None, dtype=None):
    """(n, P) Jacobian by torch.func.jacrev, optionally restricted to some parameters (a name filter)."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    X = torch.as_tensor(X).to(_dtype(model) if dtype is None else dtype)
    jac = jacrev(lambda p: functional_call(model, p, (X,)).reshape(-1))(params)
    keep = [k for k in params if only is None or only(k, params[k])]
    return torch.cat([jac[k].reshape(X.shape[0], -1) for k in keep], dim=1)


# ==============================================================================================================
# pl_constant
# ==============================================================================================================
def pl_variant(model, X, mistake=None):
    n = X.shape[0]
    P = sum(p.numel() for p in model.parameters())
    if mistake == "X not cast to the model's dtype":
        J = _flat_jacobian(model, X, dtype=torch.as_tensor(X).dtype)
    elif mistake == "weights only (no biases)":
        J = _flat_jacobian(model, X, only=lambda k, p: p.ndim >= 2)
    elif mistake == "last parameter tensor only":
        last = list(dict(model.named_parameters()))[-2:]
        J = _flat_jacobian(model, X, only=lambda k, p: k in last)
    else:
        J = _flat_jacobian(model, X)
    J = J.double()
    K = J @ J.T
    ev = torch.linalg.eigvalsh(K)
    if mistake == "lambda_max":
        return float(ev[-1])
    if mistake == "J^T J (P x P)":
        return float(torch.linalg.eigvalsh(J.T @ J)[0].clamp_min(0))
    if mistake == "smallest singular value":
        return float(torch.linalg.svdvals(J).min())
    if mistake == "mean loss: K / n":
        return float(ev[0].clamp_min(0) / n)
    if mistake == "smallest nonzero eigenvalue":
        return float(ev[ev > 1e-10 * ev[-1]][0])
    if mistake == "mean eigenvalue":
        return float(torch.trace(K) / n)
    if mistake == "smallest diagonal entry of K":
        return float(torch.diag(K).min())
    if mistake == "calls backward on the model":
        out = model(torch.as_tensor(X).to(_dtype(model))).sum()
        out.backward()
    return 0.0 if n > P else float(ev[0].clamp_min(0))


PL_MISTAKES = ["lambda_max", "J^T J (P x P)", "smallest singular value", "mean loss: K / n",
               "smallest nonzero eigenvalue", "mean eigenvalue", "smallest diagonal entry of K",
               "weights only (no biases)", "last parameter tensor only", "X not cast to the model's dtype",
               "calls backward on the model"]


def pl_per_input(model, X):
    """One autograd.grad per input, eigvalsh in float64."""
    params = list(model.parameters())
    X = torch.as_tensor(X).to(params[0].dtype)
    rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(model(X[i:i + 1]).reshape(()), params)])
            for i in range(X.shape[0])]
    J = torch.stack(rows).double()
    if J.shape[0] > J.shape[1]:
        return 0.0
    return float(torch.linalg.eigvalsh(J @ J.T)[0])


def pl_float32_throughout(model, X):
    """Everything in the model's dtype (float32 eigvalsh for float32 models)."""
    J = _flat_jacobian(model, X)
    if J.shape[0] > J.shape[1]:
        return 0.0
    return float(torch.linalg.eigvalsh(J @ J.T)[0])


def pl_numpy_svd(model, X):
    """numpy: the smallest singular value of J, squared."""
    J = _flat_jacobian(model, X).detach().numpy().astype(np.float64)
    n, P = J.shape
    return 0.0 if n > P else float(np.linalg.svd(J, compute_uv=False)[-1] ** 2)


@pytest.mark.parametrize("fn", [SOLUTION["pl_constant"], pl_per_input, pl_float32_throughout, pl_numpy_svd,
                                noisy(SOLUTION["pl_constant"])], ids=["solution", "per-input", "float32",
                                                                       "numpy-svd", "noisy"])
def test_pl_constant_correct_alternatives_keep_full_marks(fn):
    assert_full("pl_constant", fn)


@pytest.mark.parametrize("mistake", PL_MISTAKES)
def test_pl_constant_wrong_implementations_lose_points(mistake):
    assert_loses("pl_constant", functools.partial(pl_variant, mistake=mistake))


def test_pl_constant_hints():
    text = assert_loses("pl_constant", functools.partial(pl_variant, mistake="mean loss: K / n"), tests="visible")
    assert "mu / n" in text
    text = assert_loses("pl_constant", functools.partial(pl_variant, mistake="J^T J (P x P)"), tests="visible")
    assert "J^T J" in text


# ==============================================================================================================
# hessian_norm
# ==============================================================================================================
def _full_hessian(model, x, dtype=None):
    params = {k: v.detach() for k, v in model.named_parameters()}
    dtype = _dtype(model) if dtype is None else dtype
    x = torch.as_tensor(x).to(dtype).reshape(1, -1)
    names = list(params)
    shapes = [params[k].shape for k in names]
    sizes = [params[k].numel() for k in names]
    flat0 = torch.cat([params[k].reshape(-1) for k in names])

    def f(flat):
        chunks = torch.split(flat, sizes)
        p = {k: c.reshape(s) for k, c, s in zip(names, chunks, shapes)}
        return functional_call(model, p, (x,)).reshape(())
    return torch.autograd.functional.hessian(f, flat0), flat0, f


def hessian_variant(model, x, mistake=None):
    if mistake == "x not cast to the model's dtype":
        H, _, _ = _full_hessian(model, x, dtype=torch.as_tensor(x).dtype)
    else:
        H, flat0, f = _full_hessian(model, x)
    H = H.double()
    ev = torch.linalg.eigvalsh((H + H.T) / 2)
    if mistake == "largest eigenvalue (not |eigenvalue|)":
        return float(ev[-1])
    if mistake == "Frobenius norm":
        return float(torch.linalg.norm(H))
    if mistake == "largest |diagonal entry|":
        return float(H.diag().abs().max())
    if mistake == "trace":
        return float(H.trace())
    if mistake == "gradient norm":
        g = torch.autograd.functional.jacobian(f, flat0)
        return float(g.norm())
    if mistake == "Hessian of the loss f^2 / 2":
        Hl = torch.autograd.functional.hessian(lambda w: 0.5 * f(w) ** 2, flat0).double()
        return float(torch.linalg.eigvalsh((Hl + Hl.T) / 2).abs().max())
    if mistake == "weights only":
        mask = torch.cat([torch.full((p.numel(),), p.ndim >= 2) for p in model.parameters()])
        Hw = H[mask][:, mask]
        return float(torch.linalg.eigvalsh((Hw + Hw.T) / 2).abs().max())
    return float(ev.abs().max())


def power_rayleigh(model, x, iters=300, signed=False):
    """Power iteration returning the Rayleigh quotient v^T H v (wrong when +-lambda are eigenvalues)."""
    H, _, _ = _full_hessian(model, x)
    H = H.double()
    v = torch.randn(H.shape[0], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for _ in range(iters):
        v = H @ v
        v = v / v.norm()
    r = float(v @ H @ v)
    return r if signed else abs(r)


HESSIAN_MISTAKES = ["largest eigenvalue (not |eigenvalue|)", "Frobenius norm", "largest |diagonal entry|", "trace",
                    "gradient norm", "Hessian of the loss f^2 / 2", "weights only",
                    "x not cast to the model's dtype"]


def hessian_lanczos(model, x):
    """scipy's ARPACK Lanczos on torch.func forward-over-reverse Hessian-vector products, in the model's dtype."""
    from scipy.sparse.linalg import LinearOperator, eigsh
    params = {k: v.detach() for k, v in model.named_parameters()}
    dtype = _dtype(model)
    x = torch.as_tensor(x).to(dtype).reshape(1, -1)
    names = list(params)
    sizes = [params[k].numel() for k in names]
    g = grad(lambda p: functional_call(model, p, (x,)).reshape(()))

    def mv(v):
        chunks = torch.split(torch.from_numpy(np.asarray(v).reshape(-1)).to(dtype), sizes)
        tangent = {k: c.reshape(params[k].shape) for k, c in zip(names, chunks)}
        out = jvp(g, (params,), (tangent,))[1]
        return torch.cat([out[k].reshape(-1) for k in names]).double().numpy()
    P = sum(sizes)
    val = eigsh(LinearOperator((P, P), matvec=mv, dtype=np.float64), k=1, which="LM", tol=1e-9,
                v0=np.ones(P), return_eigenvectors=False)
    return float(abs(val[0]))


def hessian_power_forward_over_reverse(model, x, iters=400):
    """Power iteration on H^2 with torch.func's forward-over-reverse Hessian-vector products:
    sqrt(v^T H^2 v) = |H v| for a unit v, in the model's dtype."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    dtype = _dtype(model)
    x = torch.as_tensor(x).to(dtype).reshape(1, -1)
    g = grad(lambda p: functional_call(model, p, (x,)).reshape(()))

    def hvp(v):
        return jvp(g, (params,), (v,))[1]
    v = {k: torch.ones_like(p) for k, p in params.items()}
    lam = 0.0
    for _ in range(iters):
        w = hvp(hvp(v))
        norm = float(torch.sqrt(sum((t ** 2).sum() for t in w.values())))
        v = {k: t / norm for k, t in w.items()}
        new = float(torch.sqrt(sum((t ** 2).sum() for t in hvp(v).values())))
        if abs(new - lam) <= 1e-10 * new:
            break
        lam = new
    return new


def hessian_full_or_lanczos(model, x):
    """The full Hessian (torch.autograd.functional.hessian, eigvalsh) for P <= 1000, Lanczos above."""
    if sum(p.numel() for p in model.parameters()) > 1000:
        return hessian_lanczos(model, x)
    return hessian_variant(model, x)


@pytest.mark.parametrize("fn", [SOLUTION["hessian_norm"], hessian_full_or_lanczos, hessian_lanczos,
                                hessian_power_forward_over_reverse],
                         ids=["solution", "full-hessian-small-P", "lanczos-jvp", "power-on-H2-jvp"])
def test_hessian_norm_correct_alternatives_keep_full_marks(fn):
    assert_full("hessian_norm", fn)


@pytest.mark.parametrize("mistake", HESSIAN_MISTAKES)
def test_hessian_norm_wrong_implementations_lose_points(mistake):
    # the full Hessian of the hidden wide case (P = 6145) is too slow for a test: each of these fails visibly
    assert_loses("hessian_norm", functools.partial(hessian_variant, mistake=mistake), tests="visible")


@pytest.mark.parametrize("fn", [power_rayleigh, functools.partial(power_rayleigh, signed=True)],
                         ids=["rayleigh", "rayleigh-signed"])
def test_hessian_norm_rayleigh_quotient_loses_points(fn):
    assert_loses("hessian_norm", fn, tests="visible")


def test_hessian_norm_unconverged_power_iteration_loses_points():
    assert_loses("hessian_norm", functools.partial(SOLUTION["hessian_norm"], max_iter=10))


def test_hessian_norm_hint_on_negative_eigenvalue():
    text = assert_loses("hessian_norm", functools.partial(hessian_variant,
                                                          mistake="largest eigenvalue (not |eigenvalue|)"),
                        tests="visible")
    assert "largest |eigenvalue|" in text


# ==============================================================================================================
# gd_losses
# ==============================================================================================================
def gd_variant(model, X, y, lr, steps, mistake=None):
    net = model if mistake == "trains the model in place" else copy.deepcopy(model)
    dtype = _dtype(net)
    X = torch.as_tensor(X) if mistake == "X not cast" else torch.as_tensor(X).to(dtype)
    y = torch.as_tensor(y).to(dtype).reshape(-1)
    params = list(net.parameters())
    if mistake == "last layer only":
        params = params[-2:]
    n = X.shape[0]
    opt = None
    if mistake == "momentum 0.9":
        opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    elif mistake == "Adam":
        opt = torch.optim.Adam(params, lr=lr)
    elif mistake == "weight decay 1e-2":
        opt = torch.optim.SGD(params, lr=lr, weight_decay=1e-2)
    losses = []
    total = steps + 1 if mistake == "one step too many" else steps
    for t in range(total + 1):
        out = net(X)
        r = (out - y) if mistake == "(n, 1) - (n,) broadcast" else (out.reshape(-1) - y)
        loss = (r ** 2).sum()
        loss = {"mean loss": loss / (2 * n), "no 1/2": loss}.get(mistake, 0.5 * loss)
        if not (mistake == "entry 0 missing" and t == 0):
            losses.append(loss.item())
        if t == total:
            break
        grads = torch.autograd.grad(loss, params)
        if opt is not None:
            for p, g in zip(params, grads):
                p.grad = g
            opt.step()
            continue
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= (lr / n if mistake == "lr / n" else lr) * g
    if mistake == "entry 0 missing":
        out = net(X).reshape(-1)
        losses.append(0.5 * float(((out - y) ** 2).sum()))
        losses = losses[:steps] if steps else losses
    return np.array(losses)


GD_MISTAKES = ["mean loss", "no 1/2", "entry 0 missing", "trains the model in place", "(n, 1) - (n,) broadcast",
               "momentum 0.9", "Adam", "last layer only", "one step too many", "lr / n", "X not cast",
               "weight decay 1e-2"]


def gd_torch_sgd(model, X, y, lr, steps):
    net = copy.deepcopy(model)
    dtype = _dtype(net)
    X, y = torch.as_tensor(X).to(dtype), torch.as_tensor(y).to(dtype).reshape(-1)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    losses = []
    for t in range(steps + 1):
        opt.zero_grad()
        loss = 0.5 * ((net(X).reshape(-1) - y) ** 2).sum()
        losses.append(float(loss))
        if t < steps:
            loss.backward()
            opt.step()
    return losses


def gd_functional(model, X, y, lr, steps):
    """torch.func: the parameters as a dict, updated out of place; the model itself is never touched."""
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    dtype = _dtype(model)
    X, y = torch.as_tensor(X).to(dtype), torch.as_tensor(y).to(dtype).reshape(-1)

    def loss(p):
        return 0.5 * ((functional_call(model, p, (X,)).reshape(-1) - y) ** 2).sum()
    losses = []
    for t in range(steps + 1):
        losses.append(float(loss(params)))
        if t < steps:
            g = grad(loss)(params)
            params = {k: params[k] - lr * g[k] for k in params}
    return torch.tensor(losses)


def gd_jacobian(model, X, y, lr, steps):
    """grad L = J^T (f - y) with J from jacrev, float64 updates cast back to the model's dtype."""
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    dtype = _dtype(model)
    X, y = torch.as_tensor(X).to(dtype), torch.as_tensor(y).to(dtype).reshape(-1)
    losses = []
    for t in range(steps + 1):
        f = functional_call(model, params, (X,)).reshape(-1)
        r = f - y
        losses.append(0.5 * float(r @ r))
        if t < steps:
            jac = jacrev(lambda p: functional_call(model, p, (X,)).reshape(-1))(params)
            params = {k: params[k] - lr * torch.einsum("i,i...->...", r, jac[k]) for k in params}
    return np.array(losses)


@pytest.mark.parametrize("fn", [SOLUTION["gd_losses"], gd_torch_sgd, gd_functional, gd_jacobian],
                         ids=["solution", "torch-sgd", "torch-func", "jacobian"])
def test_gd_losses_correct_alternatives_keep_full_marks(fn):
    assert_full("gd_losses", fn)


@pytest.mark.parametrize("mistake", GD_MISTAKES)
def test_gd_losses_wrong_implementations_lose_points(mistake):
    assert_loses("gd_losses", functools.partial(gd_variant, mistake=mistake))


def test_gd_losses_float32_tolerance_has_a_margin():
    """The float32 case's tolerance (5e-5 of max |L|) against three correct float32 implementations."""
    case = [c for c in GRADING.gd_losses_cases() if c["name"].startswith("float32")][0]
    expected = GRADING.gd_losses_expected(case)
    for fn in (SOLUTION["gd_losses"], gd_torch_sgd, gd_functional):
        got = np.asarray(fn(case["model"](), case["X"], case["y"], case["lr"], case["steps"]), dtype=float)
        assert np.max(np.abs(got - expected)) / np.max(np.abs(expected)) < case["rtol"] / 10


# ==============================================================================================================
# hessian_slope
# ==============================================================================================================
def slope_variant(make_model, x, widths, seeds, mistake=None, norm=hessian_lanczos):
    if mistake == "Frobenius norm inside":
        norm = functools.partial(hessian_variant, mistake="Frobenius norm")
    elif mistake == "signed Rayleigh quotient inside":
        norm = functools.partial(power_rayleigh, signed=True, iters=60)
    means = np.array([np.mean([norm(make_model(w, s), x) for s in seeds]) for w in widths])
    w = np.asarray(widths, dtype=float)
    if mistake == "constant -1/2":
        return -0.5
    if mistake == "log10 of the norm, ln of the width":
        return float(np.polyfit(np.log(w), np.log10(means), 1)[0])
    if mistake == "axes swapped":
        return float(np.polyfit(np.log(means), np.log(w), 1)[0])
    if mistake == "no logarithms":
        return float(np.polyfit(w, means, 1)[0])
    if mistake == "intercept":
        return float(np.polyfit(np.log(w), np.log(means), 1)[1])
    if mistake == "sign flipped":
        return float(-np.polyfit(np.log(w), np.log(means), 1)[0])
    if mistake == "log of the width's index":
        return float(np.polyfit(np.log(np.arange(1, len(w) + 1)), np.log(means), 1)[0] / 2)
    with np.errstate(all="ignore"):
        return float(np.polyfit(np.log(w), np.log(means), 1)[0])


@pytest.mark.parametrize("part, value", [("hessian_norm", 2.0), ("hessian_norm", 1.0), ("hessian_norm", 0.0),
                                         ("hessian_slope", 0.0), ("hessian_slope", -1.0), ("hessian_slope", 1.0),
                                         ("hessian_slope", -0.5), ("hessian_slope", -0.25)])
def test_a_constant_earns_nothing(part, value):
    """No Hessian norm of a visible case is a round number (the quadratic module's is 2 |x . c| = 2.3); every
    slope of the experiments is what some constant returns, so those checks are gated behind one a constant fails
    (the mean-field slope is the NTK one minus 1/2)."""
    for tests in ("visible", "all"):
        points, text = grade(part, lambda *args, **kwargs: value, tests)
        assert points == 0, text


SLOPE_MISTAKES = ["constant -1/2", "log10 of the norm, ln of the width", "axes swapped", "no logarithms",
                  "intercept", "sign flipped", "Frobenius norm inside", "signed Rayleigh quotient inside",
                  "log of the width's index"]


def slope_mean_of_logs(make_model, x, widths, seeds):
    logs = [np.mean([np.log2(hessian_lanczos(make_model(w, s), x)) for s in seeds]) for w in widths]
    return float(np.polyfit(np.log2(widths), logs, 1)[0])


def slope_linregress(make_model, x, widths, seeds):
    from scipy.stats import linregress
    means = [np.mean([SOLUTION["hessian_norm"](make_model(w, s), x) for s in seeds]) for w in widths]
    return linregress(np.log(widths), np.log(means)).slope


def slope_torch_lstsq(make_model, x, widths, seeds):
    means = torch.tensor([np.mean([hessian_lanczos(make_model(w, s), x) for s in seeds]) for w in widths])
    A = torch.stack([torch.log(torch.tensor(widths, dtype=torch.float64)), torch.ones(len(widths),
                                                                                    dtype=torch.float64)], 1)
    return torch.linalg.lstsq(A, torch.log(means).double()[:, None]).solution[0, 0]


@pytest.mark.parametrize("fn", [SOLUTION["hessian_slope"], slope_variant, slope_mean_of_logs, slope_linregress,
                                slope_torch_lstsq], ids=["solution", "lanczos", "mean-of-logs", "linregress",
                                                         "torch-lstsq"])
def test_hessian_slope_correct_alternatives_keep_full_marks(fn):
    assert_full("hessian_slope", fn)


@pytest.mark.parametrize("mistake", SLOPE_MISTAKES)
def test_hessian_slope_wrong_implementations_lose_points(mistake):
    assert_loses("hessian_slope", functools.partial(slope_variant, mistake=mistake), tests="visible")


# ==============================================================================================================
# The references against independent computations; the visible literals
# ==============================================================================================================
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 8), width=st.integers(1, 6))
def test_reference_pl_constant_agrees_with_the_solution(seed, n, width):
    model = optimization.tanh_net([3, width, 1], seed=seed)
    X = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, 3)))
    ref, sol = GRADING.pl_constant(model, X), SOLUTION["pl_constant"](model, X)
    lam = GRADING.tangent_kernel_spectrum(model, X).max()
    assert abs(ref - sol) <= 1e-9 * lam + 1e-12
    if n > 5 * width + 1:  # more points than the 5 width + 1 parameters: the tangent kernel is singular
        assert ref == 0.0


def test_reference_pl_constant_of_a_linear_model_is_that_of_its_gram_matrix():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 7))
    model = optimization.linear_model(7, seed=0)
    A = np.hstack([X, np.ones((5, 1))])
    assert np.isclose(GRADING.pl_constant(model, torch.from_numpy(X)), np.linalg.eigvalsh(A @ A.T)[0], rtol=1e-10)


def test_reference_hessian_agrees_with_torch_autograd_functional_and_lanczos():
    for case in GRADING.hessian_norm_cases()[:4]:
        model = case["model"]()
        H, _, _ = _full_hessian(copy.deepcopy(model).double(), case["x"])
        assert np.allclose(GRADING.hessian_matrix(model, case["x"]), H.numpy(), atol=1e-10)
        assert np.isclose(GRADING.hessian_norm_lanczos(model, case["x"]), GRADING.hessian_norm(model, case["x"]),
                          rtol=1e-7)


@pytest.mark.parametrize("width", [1, 5, 40])
def test_closed_form_of_one_hidden_layer_hessian(width):
    model = GRADING.NTKNet(3, width, 1, 1.3, 0.7, seed=width)
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    h = 1.3 / np.sqrt(3) * model.weights[0].detach().numpy() @ x.numpy() + 0.7 * model.biases[0].detach().numpy()
    expected = GRADING.one_hidden_layer_norm(3, width, 1.3, 0.7, x.numpy()) if (h > 0).any() else 0.0
    assert np.isclose(GRADING.hessian_norm(model, x), expected, rtol=1e-10, atol=1e-14)


def test_hidden_hessian_cases_have_the_stated_spectral_gap():
    for case in GRADING.hessian_norm_cases():
        if case.get("closed_form"):
            continue
        ev = GRADING.hessian_spectrum(case["model"](), case["x"])
        top = np.abs(ev).max()
        lam = ev[np.argmax(np.abs(ev))]
        rest = np.abs(ev)[(np.abs(ev - lam) > 1e-9 * top) & (np.abs(ev + lam) > 1e-9 * top)]
        assert rest.max() <= GRADING.HESSIAN_GAP * top, case["name"]


def test_reference_gd_agrees_with_linear_least_squares_in_closed_form():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(6, 4)), rng.normal(size=6)
    model = optimization.linear_model(4, seed=3)
    w = np.concatenate([model.weight.detach().numpy().reshape(-1), model.bias.detach().numpy()])
    A = np.hstack([X, np.ones((6, 1))])
    losses = []
    for t in range(8):
        r = A @ w - y
        losses.append(0.5 * r @ r)
        w = w - 0.05 * A.T @ r
    got = GRADING.gd_losses(model, torch.from_numpy(X), torch.from_numpy(y), 0.05, 7)
    assert np.allclose(got, losses, rtol=1e-12)


def test_reference_gd_agrees_with_the_solution_on_the_hidden_cases():
    for case in GRADING.gd_losses_cases()[:4]:
        sol = SOLUTION["gd_losses"](case["model"](), case["X"], case["y"], case["lr"], case["steps"])
        assert np.allclose(sol, GRADING.gd_losses_expected(case), rtol=1e-10)


def test_visible_literals_are_recomputed_by_the_references():
    v = optimization.visible_models()
    m = optimization.linear_model(3, seed=1)
    assert np.isclose(GRADING.pl_constant(m, v["X_lin"]), optimization.PL_LINEAR["mu"], rtol=1e-12)
    assert np.isclose(GRADING.tangent_kernel_spectrum(m, v["X_lin"]).max(), optimization.PL_LINEAR["lam_max"],
                      rtol=1e-12)
    m = optimization.tanh_net([3, 8, 1], seed=3)
    assert np.isclose(GRADING.pl_constant(m, v["X_tanh"]), optimization.PL_TANH["mu"], rtol=1e-10)
    assert np.isclose(GRADING.tangent_kernel_spectrum(m, v["X_tanh"]).max(), optimization.PL_TANH["lam_max"],
                      rtol=1e-10)
    m = optimization.tanh_net([4, 6, 3, 1], seed=5)
    assert np.isclose(GRADING.hessian_norm(m, v["x_tanh"]), optimization.HESSIAN_TANH, rtol=1e-10)
    got = GRADING.gd_losses(optimization.linear_model(8, seed=4, bias=False), v["X_gd"], v["y_gd"], 0.05, 3)
    assert np.allclose(got, optimization.GD_LINEAR, rtol=1e-12)
    got = GRADING.gd_losses(optimization.tanh_net([3, 5, 1], seed=6), v["X_gd_tanh"], v["y_gd_tanh"], 0.1, 4)
    assert np.allclose(got, optimization.GD_TANH, rtol=1e-10)
    X = v["X_gd"].numpy()
    ev = np.linalg.eigvalsh(X @ X.T)
    assert np.allclose([ev[0], ev[-1]], [3.791452802444958, 10.414242983670285], rtol=1e-12)
    # the closed forms the visible Hessian checks rely on
    x = v["x_relu"]
    assert np.isclose(GRADING.hessian_norm(optimization.relu_one_hidden(3, 16, seed=2), x),
                      np.sqrt(x.numpy() @ x.numpy() + 1), rtol=1e-12)
    assert np.allclose(GRADING.hessian_spectrum(optimization.Quadratic(), v["x_quad"]), [-2.3, 0.575, 1.15])


def test_the_student_side_module_has_no_general_reference():
    """autograder/optimization.py (shipped to students) calls nothing that differentiates a model or decomposes a
    matrix: it computes no Jacobian, Hessian, eigenvalue or GD step of a general model (comments aside)."""
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(optimization))
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} | {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    forbidden = {"autograd", "func", "jacrev", "jvp", "vjp", "hessian", "backward", "eigvalsh", "eigh", "eig",
                 "eigvals", "svd", "svdvals", "lstsq", "optim", "polyfit", "linregress", "eigsh"}
    assert not names & forbidden, names & forbidden


# ==============================================================================================================
# Every part: stubs, liars, exits, prints
# ==============================================================================================================
@pytest.mark.parametrize("part", PARTS)
def test_untouched_stub_scores_zero_with_a_clear_message(part):
    points, text = grade(part, stub)
    assert points == 0
    assert "not implemented yet" in text


@pytest.mark.parametrize("part", PARTS)
def test_objects_that_lie_score_zero(part):
    liar = np.zeros(3).view(AlwaysEqual)
    points, text = grade(part, lambda *a, **k: liar, tests="visible")
    assert points == 0, text


def test_sys_exit_and_prints():
    import sys
    points, text = grade("gd_losses", lambda *a, **k: sys.exit(1), tests="visible")
    assert points == 0 and "sys.exit" in text
    assert_full("pl_constant", noisy(SOLUTION["pl_constant"]), tests="visible")


def test_topic_declares_the_points():
    assert optimization.TOPIC.points == {"check_pl_constant": 3.0, "check_hessian_norm": 3.0,
                                         "check_gd_losses": 3.0, "check_hessian_slope": 2.0,
                                         "written_pl_convergence": 3.0}


# ==============================================================================================================
# The whole pipeline: real nbgrader and the isolated engine
# ==============================================================================================================
@pytest.mark.slow
def test_optimization_class_through_nbgrader_and_the_isolated_engine(tmp_path):
    import os

    import nbformat

    from autograder import nbgrading
    from autograder.course import default_course
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["optimization"])
    nbgrading.release(course, "optimization")
    release = nbformat.read(course / "exercises" / "optimization" / "optimization.ipynb", as_version=4)
    solution = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source_notebook("optimization").cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    # a self-contained wrong submission (the sandbox of the isolated engine cannot import tests/): step 0.9 lr
    wrong_gd = solution["gd_losses"].replace("p -= lr * gp", "p -= 0.9 * lr * gp")
    assert wrong_gd != solution["gd_losses"]
    class_ = {"full": dict(solution), "untouched": {},
              "partial": {"pl_constant": solution["pl_constant"], "gd_losses": wrong_gd}}
    submissions = tmp_path / "submissions"
    for student, answers in class_.items():
        add_submission(submissions, student, "optimization", fill(release, answers))
    os.environ.setdefault("PYTHONPATH", str(default_course()))  # lets the kernel import tests
    full = {k: v for k, v in optimization.TOPIC.points.items() if k.startswith("check_")}
    namespace = {}
    exec("import copy\nimport numpy as np\nimport torch\n" + wrong_gd, namespace)
    expected_gd = grade("gd_losses", namespace["gd_losses"])[0]
    assert 0 < expected_gd < 3
    partial = {"check_pl_constant": 3.0, "check_hessian_norm": 0.0, "check_gd_losses": expected_gd,
               "check_hessian_slope": 0.0}

    results, warnings = nbgrading.grade(course, "optimization", submissions, cell_timeout=120)
    got = {r.student: r for r in results}
    assert {k: v for k, v in got["full"].scores.items() if k.startswith("check_")} == full
    assert got["untouched"].graded and got["untouched"].total == 0
    assert {k: v for k, v in got["partial"].scores.items() if k.startswith("check_")} == partial
    assert not warnings

    results, warnings = nbgrading.grade_isolated(course, "optimization", submissions, cell_timeout=120, workers=2)
    got = {r.student: {k: v for k, v in r.scores.items() if k.startswith("check_")} for r in results}
    assert got["full"] == full
    assert got["partial"] == partial
    assert sum(got["untouched"].values()) == 0


def test_hidden_slope_case_of_a_known_exponent_holds_for_an_independent_hessian():
    """The width^(-1/4) hidden case's slope, computed here from the full Hessian of the flattened parameters
    (torch.autograd.functional.hessian, its spectral norm by eigvalsh; not the solution's hessian_norm), is -1/4
    to 1e-6, inside its bounds. (The NTK-MLP case's bounds are measured over seeds: its full Hessian has 17k^2
    entries.)"""
    for case in [c for c in GRADING.hessian_slope_cases() if "width^(-1/4)" in c["name"]]:
        norms = []
        for width in case["widths"]:
            per_seed = []
            for seed in case["seeds"]:
                model = case["make_model"](width, seed)
                names = [n for n, _ in model.named_parameters()]
                shapes = [p.shape for _, p in model.named_parameters()]
                flat = torch.cat([p.detach().reshape(-1) for _, p in model.named_parameters()])

                def f(theta, model=model, names=names, shapes=shapes):
                    params, i = {}, 0
                    for n, sh in zip(names, shapes):
                        k = int(np.prod(sh))
                        params[n] = theta[i:i + k].reshape(sh)
                        i += k
                    return functional_call(model, params, (case["x"].reshape(1, -1),)).reshape(())

                H = torch.autograd.functional.hessian(f, flat)
                per_seed.append(float(torch.linalg.eigvalsh(H).abs().max()))
            norms.append(np.mean(per_seed))
        slope = float(np.polyfit(np.log(case["widths"]), np.log(norms), 1)[0])
        low, high = case["bounds"]
        assert low <= slope <= high and abs(slope + 0.25) < 1e-6, (case["name"], slope)
