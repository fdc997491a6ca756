"""Checks of the assignment ``optimization``: overparametrization, the PL* condition and transition to linearity.

Conventions (book/conventions.md, assignment ``optimization``): ``model`` is a ``torch.nn.Module`` with scalar output
mapping (n, d) to (n, 1) or (n,); ``X`` a tensor (n, d) of float32 or float64, cast to the model's dtype; ``y`` a
tensor (n,) compared with the output entrywise. Square loss L(w) = 1/2 sum_i (f(x_i; w) - y_i)^2.

* ``pl_constant(model, X) -> float``: mu = lambda_min(J J^T), J the (n, P) Jacobian of the outputs with respect to
  all parameters (0 when n > P); then (1/2)|grad L|^2 >= mu L at the current parameters (Liu, Zhu & Belkin 2022).
* ``hessian_norm(model, x) -> float``: max |eigenvalue| of the Hessian of f(x; w) with respect to all parameters,
  at one input x of shape (d,), to rtol 1e-3.
* ``gd_losses(model, X, y, lr, steps) -> (steps + 1,)``: full-batch GD on a copy of the model; entry t is L(w_t).
* ``hessian_slope(make_model, x, widths, seeds) -> float``: the least-squares slope of log(mean over seeds of
  hessian_norm(make_model(width, seed), x)) against log(width): -1/2 in the NTK parametrization (Liu, Zhu &
  Belkin 2020), 0 in PyTorch's standard parametrization, -1 in the mean-field scaling.

Visible checks use closed forms (the Hessian of a one-hidden-layer ReLU network, of a quadratic module; the
tangent kernel of a linear model), properties (n > P gives mu = 0; the PL bound of GD on an overparametrized
linear model) and small values precomputed with the instructor's references and written here as literals
(``tests/test_optimization.py`` recomputes them).  No function here computes a graded quantity of a general
model.  The hidden cases and the references live in ``solutions/optimization/grading.py``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .core import Part, Report, Topic, Written, as_array, close, compare, fmt

__all__ = ["TOPIC", "check_pl_constant", "check_hessian_norm", "check_gd_losses", "check_hessian_slope",
           "visible_models"]

# Tolerances (book/conventions.md rules 4, 9, 10).
# pl_constant: |got - mu| <= atol + rtol mu with atol a fraction of lambda_max(J J^T), the scale of the rounding
# of any eigen-solver.  float64: 1e-9 lambda_max (correct implementations measured at <= 1e-15);  float32 models:
# 1e-6 lambda_max (four correct implementations -- J J^T and eigvalsh in float32, torch.linalg.svdvals in float32,
# the float64 solution and numpy's SVD on a float32 model -- measured at <= 1.9e-8 lambda_max on the float32 cases;
# margin 50).
PL_RTOL = {"float64": 1e-6, "float32": 1e-4}
PL_ATOL = {"float64": 1e-9, "float32": 1e-6}
HESSIAN_RTOL = 1e-3  # pinned in book/conventions.md; correct float64 and float32 implementations reach 1e-7
# gd_losses: relative to max |L|.  float64: correct float64 implementations agree to 1e-11; 1e-7 also accepts
# correct losses returned as a float32 array (rounding 6e-8).  float32 models: see solutions/optimization/grading.py.
GD_RTOL = {"float64": 1e-7, "float32": 5e-6}
SLOPE_ATOL = 0.02  # slopes known exactly (one-hidden-layer networks): correct implementations are within 1e-6


# ==============================================================================================================
# Models of the visible checks (weights from numpy's default_rng, so the literals do not depend on torch's RNG)
# ==============================================================================================================
def _rng_linear(rng, a, b, dtype, bias=True, scale=None):
    lin = torch.nn.Linear(a, b, bias=bias)
    s = 1 / np.sqrt(a) if scale is None else scale
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(rng.normal(size=(b, a)) * s))
        if bias:
            lin.bias.copy_(torch.from_numpy(rng.normal(size=b) * 0.5))
    return lin.to(dtype)


def tanh_net(sizes, seed, dtype=torch.float64):
    """nn.Sequential(Linear, Tanh, ..., Linear), weights N(0, 1/fan_in), biases N(0, 1/4) from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    layers = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers += ([torch.nn.Tanh()] if k else []) + [_rng_linear(rng, fan_in, fan_out, dtype)]
    return torch.nn.Sequential(*layers)


def relu_one_hidden(d, width, seed, dtype=torch.float64):
    """nn.Sequential(Linear(d, width), ReLU, Linear(width, 1)) in PyTorch's standard parametrization.  Its Hessian
    at x couples each active unit's output weight v_i with (w_i, b_i) through (x, 1): eigenvalues
    +-sqrt(|x|^2 + 1) and 0, whatever the width and the weights (as long as a unit is active)."""
    rng = np.random.default_rng(seed)
    return torch.nn.Sequential(_rng_linear(rng, d, width, dtype), torch.nn.ReLU(),
                               _rng_linear(rng, width, 1, dtype))


class Quadratic(torch.nn.Module):
    """f(x; w) = (x . c) * (w_1^2 - 2 w_2^2 + 0.5 w_3^2) / 2, output shape (n,): Hessian (x . c) diag(1, -2, 0.5)."""

    def __init__(self, dtype=torch.float64):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([0.3, -0.7, 1.1], dtype=dtype))
        self.register_buffer("c", torch.tensor([1.0, -0.5], dtype=dtype))
        self.register_buffer("diag", torch.tensor([1.0, -2.0, 0.5], dtype=dtype))

    def forward(self, x):
        return (x @ self.c) * (self.diag * self.w ** 2).sum() / 2


class ScaledTwoLayer(torch.nn.Module):
    """f(x) = width^(-a) sum_i v_i relu(w_i . x), no biases, entries N(0, 1): its Hessian norm at x is exactly
    width^(-a) |x| (each active unit couples v_i with w_i through x), so the slope against width is -a.
    a = 1/2 is the NTK scaling of the output layer, a = 1 the mean-field one."""

    def __init__(self, d, width, a, seed, dtype=torch.float64):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.W = torch.nn.Parameter(torch.from_numpy(rng.normal(size=(width, d))).to(dtype))
        self.v = torch.nn.Parameter(torch.from_numpy(rng.normal(size=width)).to(dtype))
        self.scale = float(width) ** (-a)

    def forward(self, x):
        return self.scale * torch.relu(x @ self.W.T) @ self.v


def visible_models() -> dict:
    """The models, inputs and literals of the visible checks (tests/test_optimization.py recomputes the literals
    with the instructor's references)."""
    rng = np.random.default_rng(7)
    return {
        "X_lin": torch.from_numpy(rng.normal(size=(4, 3))),
        "X_lin_over": torch.from_numpy(rng.normal(size=(5, 3))),
        "X_tanh": torch.from_numpy(np.random.default_rng(8).normal(size=(6, 3))),
        "x_relu": torch.from_numpy(np.random.default_rng(9).normal(size=3)),
        "x_quad": torch.tensor([0.9, -0.5], dtype=torch.float64),  # x . c = 1.15: |H| = 2.3, not a round number
        "x_tanh": torch.from_numpy(np.random.default_rng(10).normal(size=4)),
        "X_gd": torch.from_numpy(np.random.default_rng(11).normal(size=(4, 8))),
        "y_gd": torch.from_numpy(np.random.default_rng(12).normal(size=4)),
        "X_gd_tanh": torch.from_numpy(np.random.default_rng(13).normal(size=(5, 3))),
        "y_gd_tanh": torch.from_numpy(np.random.default_rng(14).normal(size=5)),
    }


def linear_model(d, seed, dtype=torch.float64, bias=True):
    return _rng_linear(np.random.default_rng(seed), d, 1, dtype, bias=bias)


# Literals, computed with solutions/optimization/grading.py (per-input backward passes and the SVD of J; the
# full Hessian and eigvalsh; GD on a flat float64 parameter vector), recomputed by tests/test_optimization.py.
# Linear(3, 1) with bias on X_lin (4 x 3): J = [X, 1], mu = lambda_min(X X^T + 1 1^T).
PL_LINEAR = {"mu": 0.14189921684499376, "lam_max": 5.826845677564064}
# tanh_net([3, 8, 1], seed=3) on X_tanh (6 x 3), P = 41.
PL_TANH = {"mu": 0.3217078559264563, "lam_max": 19.689915136827555}
# tanh_net([4, 6, 3, 1], seed=5) at x_tanh, P = 55.
HESSIAN_TANH = 3.3656778828396634  # spectrum from -2.968 to 3.366
# gd_losses(linear_model(8, seed=4, bias=False), X_gd, y_gd, lr=0.05, steps=3)
GD_LINEAR = [0.394437666432559, 0.21591490358496326, 0.1231318039311545, 0.07218722557551413]
# gd_losses(tanh_net([3, 5, 1], seed=6), X_gd_tanh, y_gd_tanh, lr=0.1, steps=4)
GD_TANH = [2.3869007722148954, 1.5509393502033855, 1.1265149940163248, 0.8795408861413466, 0.736593377533344]


# ==============================================================================================================
# Converters (harness side)
# ==============================================================================================================
def as_scalar(value: Any, what: str) -> float:
    """A Python float, 0-d or one-element numpy array or torch tensor -> float; anything else is refused."""
    if isinstance(value, bool):
        raise TypeError(f"{what} is a bool; expected a float")
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.is_complex():
            raise ValueError(f"{what} is a tensor of shape {tuple(value.shape)}; expected one real number")
        return float(value.detach().to("cpu", torch.float64).reshape(()))
    if type(value) is np.ndarray:
        if value.size != 1 or not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
            raise ValueError(f"{what} is an array of shape {value.shape}; expected one real number")
        return float(value.reshape(()))
    raise TypeError(f"{what} has type {type(value).__name__}; expected a float")


def model_dtype(model) -> str:
    p = next(iter(model.parameters()), None)
    return "float32" if p is not None and p.dtype == torch.float32 else "float64"


# ==============================================================================================================
# Verdicts
# ==============================================================================================================
def judge_pl(got: float, mu: float, lam_max: float, n: int, P: int, dtype: str) -> tuple[bool, str]:
    """|got - mu| <= atol + rtol mu, atol a fraction of lambda_max; hints for the usual mistakes."""
    atol = PL_ATOL[dtype] * lam_max
    rtol = PL_RTOL[dtype]
    passed, message = close(np.array(got), np.array(mu), rtol=rtol, atol=atol, scale="elementwise")
    if passed:
        return True, ""
    hints = []
    near = lambda a, b: abs(a - b) <= 1e-3 * abs(b) + atol  # noqa: E731
    if mu > atol and near(got, lam_max):
        hints.append("this is the largest eigenvalue of J J^T; mu is the smallest")
    elif mu > atol and near(got, mu / n):
        hints.append(f"this is mu / n (n = {n}): the loss here is 1/2 sum_i, not the mean")
    elif mu > atol and near(got, mu * n):
        hints.append(f"this is n mu (n = {n})")
    elif mu > atol and near(got, np.sqrt(mu)):
        hints.append("this is the smallest singular value of J; mu is its square (an eigenvalue of J J^T)")
    elif mu > atol and abs(got) <= atol:
        hints.append("mu > 0 here: the n x n matrix J J^T (not the P x P matrix J^T J, which has P - n zero "
                     "eigenvalues) is the tangent kernel")
    elif mu <= atol and got > atol:
        hints.append(f"J J^T is singular here (n = {n}, P = {P}{', n > P' if n > P else ', repeated inputs'}): "
                     "mu = 0, not the smallest nonzero eigenvalue")
    hint = ("\nhint: " + "; ".join(hints)) if hints else ""
    return False, (f"mu: expected {fmt(mu, 10)}, got {fmt(got, 10)} (off by {abs(got - mu):.3g}, allowed "
                   f"{atol + rtol * abs(mu):.3g}; lambda_max(J J^T) = {fmt(lam_max)}){hint}")


def judge_hessian(got: float, expected: float, hints: dict | None = None) -> tuple[bool, str]:
    atol = 1e-9 * abs(expected) + 1e-12
    tol = atol + HESSIAN_RTOL * abs(expected)
    if abs(got - expected) <= tol:
        return True, ""
    lines = [f"|H|: expected {fmt(expected, 8)}, got {fmt(got, 8)} (off by {abs(got - expected):.3g}, allowed "
             f"{tol:.3g})"]
    for hint, value in (hints or {}).items():
        if abs(got - value) <= HESSIAN_RTOL * abs(value) + atol:
            lines.append("hint: " + hint)
            break
    else:
        if got < -atol:
            lines.append("hint: the spectral norm is the largest ABSOLUTE eigenvalue, a number >= 0")
        elif 0 <= got < expected:
            lines.append("hint: too small: is the largest |eigenvalue| negative here (take absolute values), or "
                         "has your power iteration not converged? |H v| / |v| converges to it whatever its sign; "
                         "v^T H v does not when +-lambda are both eigenvalues")
    return False, "\n".join(lines)


def judge_losses(got: np.ndarray, expected: np.ndarray, rtol: float, what: str = "losses") -> tuple[bool, str]:
    expected = np.asarray(expected, dtype=float)
    got = np.asarray(got, dtype=float)
    if got.ndim != 1 or got.shape != expected.shape:
        extra = ""
        if got.size == expected.size - 1:
            extra = ("\nhint: steps + 1 entries are expected: entry 0 is the initial loss L(w_0), before any "
                     "step")
        elif got.size == expected.size + 1:
            extra = "\nhint: one entry too many: steps GD steps give L(w_0), ..., L(w_steps)"
        return False, f"{what}: shape {got.shape}, expected {expected.shape} (steps + 1 entries){extra}"
    atol = 1e-12 * abs(expected[0]) + 1e-14
    passed, message = compare(got, expected, what=what, rtol=rtol, atol=atol)
    if passed:
        return True, ""
    if expected.size and np.isclose(got[0], expected[0], rtol=1e-4):
        if expected.size > 1:
            message += ("\nhint: the initial loss is right but the steps are not: plain GD w <- w - lr grad L with "
                        "L = 1/2 sum_i (f(x_i) - y_i)^2 on ALL parameters (no mean over i, no momentum), and "
                        "f of shape (n, 1) compared with y of shape (n,) entrywise (not broadcast to n x n)")
    elif expected.size and np.isclose(got[0], 2 * expected[0], rtol=1e-4):
        message += "\nhint: L(w_0) is twice the expected: L = 1/2 sum (f - y)^2, with the 1/2"
    elif expected.size and np.isclose(got[0], expected[1 if expected.size > 1 else 0], rtol=1e-6) and \
            expected.size > 1:
        message += "\nhint: entry 0 must be the loss BEFORE the first step"
    return False, message


# ==============================================================================================================
# Part 1: pl_constant(model, X)
# ==============================================================================================================
def _visible_pl_constant(report: Report, pl_constant) -> None:
    v = visible_models()
    out = report.call(pl_constant, linear_model(3, seed=1), v["X_lin"],
                      what="pl_constant(Linear(3, 1), X 4x3)", convert=as_scalar)
    report.judge("linear model Linear(3, 1) with bias, X 4x3: J = [X, 1], mu = lambda_min(X X^T + 1 1^T)", out,
                 judge_pl, PL_LINEAR["mu"], PL_LINEAR["lam_max"], 4, 4, "float64")
    out = report.call(pl_constant, linear_model(3, seed=1), v["X_lin_over"],
                      what="pl_constant(Linear(3, 1), X 5x3)", convert=as_scalar)
    report.judge("Linear(3, 1) has P = 4 parameters < n = 5 inputs: mu = 0", out, judge_pl, 0.0, 10.0, 5, 4,
                 "float64", gated=True)  # 0 is also what a constant returns
    out = report.call(pl_constant, tanh_net([3, 8, 1], seed=3), v["X_tanh"],
                      what="pl_constant(tanh network 3-8-1, X 6x3)", convert=as_scalar)
    report.judge("nn.Sequential(Linear(3, 8), Tanh, Linear(8, 1)), float64, X 6x3 (P = 41)", out, judge_pl,
                 PL_TANH["mu"], PL_TANH["lam_max"], 6, 41, "float64")
    out = report.call(pl_constant, tanh_net([3, 8, 1], seed=3, dtype=torch.float32), v["X_tanh"],
                      what="pl_constant(float32 tanh network 3-8-1, float64 X 6x3)", convert=as_scalar)
    report.judge("the same network in float32, X given in float64 (cast X to the model's dtype)", out, judge_pl,
                 PL_TANH["mu"], PL_TANH["lam_max"], 6, 41, "float32")


def _hidden_pl_constant(report: Report, pl_constant, grading) -> None:
    for case in grading.pl_constant_cases():
        model = case["model"]()
        expected = grading.pl_constant_expected(case)
        out = report.call(pl_constant, model, case["X"], what=f"pl_constant on: {case['name']}", convert=as_scalar)
        report.judge(case["name"], out, judge_pl, expected["mu"], expected["lam_max"], expected["n"],
                     expected["P"], model_dtype(model),
                     gated=expected["mu"] <= 1e-9 * expected["lam_max"])  # mu = 0 (a singular J J^T): 0 passes it


# ==============================================================================================================
# Part 2: hessian_norm(model, x)
# ==============================================================================================================
def _visible_hessian_norm(report: Report, hessian_norm) -> None:
    v = visible_models()
    x = v["x_relu"]
    exact = float(np.sqrt(x.numpy() @ x.numpy() + 1))
    out = report.call(hessian_norm, relu_one_hidden(3, 16, seed=2), x,
                      what="hessian_norm(Linear(3, 16)-ReLU-Linear(16, 1), x)", convert=as_scalar)
    report.judge("one-hidden-layer ReLU network (PyTorch parametrization): eigenvalues +-sqrt(|x|^2 + 1) and 0, "
                 "so |H| = sqrt(|x|^2 + 1)", out, judge_hessian, exact)
    xq = v["x_quad"]
    s = float(xq.numpy() @ np.array([1.0, -0.5]))
    out = report.call(hessian_norm, Quadratic(), xq, what="hessian_norm(Quadratic(), x)", convert=as_scalar)
    report.judge("quadratic module: H = (x . c) diag(1, -2, 0.5), the largest |eigenvalue| is NEGATIVE "
                 f"(-2 (x . c) = {-2 * s:.4g}); output shape (n,)", out, judge_hessian, 2 * abs(s),
                 {"this is the largest eigenvalue of H; the norm is the largest |eigenvalue| (here negative)":
                      abs(s)})
    out = report.call(hessian_norm, tanh_net([4, 6, 3, 1], seed=5, dtype=torch.float32), v["x_tanh"],
                      what="hessian_norm(float32 tanh network 4-6-3-1, float64 x)", convert=as_scalar)
    report.judge("float32 nn.Sequential(Linear(4, 6), Tanh, Linear(6, 3), Tanh, Linear(3, 1)), x given in "
                 "float64 (P = 55)", out, judge_hessian, HESSIAN_TANH)


def _hidden_hessian_norm(report: Report, hessian_norm, grading) -> None:
    for case in grading.hessian_norm_cases():
        expected = grading.hessian_norm_expected(case)
        out = report.call(hessian_norm, case["model"](), case["x"], what=f"hessian_norm on: {case['name']}",
                          convert=as_scalar)
        report.judge(case["name"], out, judge_hessian, expected)


# ==============================================================================================================
# Part 3: gd_losses(model, X, y, lr, steps)
# ==============================================================================================================
def _initial_loss(model, X, y) -> float:
    """L(w_0) = 1/2 |f(X) - y|^2 (one forward pass: the statement's definition, not a GD step)."""
    p = next(model.parameters())
    with torch.no_grad():
        r = model(X.to(p.dtype)).reshape(-1).double() - y.double().reshape(-1)
    return float(0.5 * (r @ r))


def _losses_converter(value, what):
    """The returned losses as a float64 array (numpy array, torch tensor or list)."""
    return as_array(value, what)


def _visible_gd_losses(report: Report, gd_losses) -> None:
    v = visible_models()
    X, y = v["X_gd"], v["y_gd"]
    model = tanh_net([3, 5, 1], seed=6)
    L0 = _initial_loss(model, v["X_gd_tanh"], v["y_gd_tanh"])
    out = report.call(gd_losses, model, v["X_gd_tanh"], v["y_gd_tanh"], 0.1, 0,
                      what="gd_losses(tanh network 3-5-1, X 5x3, y, lr=0.1, steps=0)", convert=_losses_converter)
    report.judge("steps = 0: the array [L(w_0)], L = 1/2 sum (f(x_i) - y_i)^2", out, judge_losses, [L0],
                 GD_RTOL["float64"])
    out = report.call(gd_losses, linear_model(8, seed=4, bias=False), X, y, 0.05, 3,
                      what="gd_losses(Linear(8, 1, bias=False), X 4x8, y, lr=0.05, steps=3)",
                      convert=_losses_converter)
    report.judge("linear model without bias, lr = 0.05, 3 steps: the exact iterates", out, judge_losses, GD_LINEAR,
                 GD_RTOL["float64"])
    out = report.call(gd_losses, tanh_net([3, 5, 1], seed=6), v["X_gd_tanh"], v["y_gd_tanh"], 0.1, 4,
                      what="gd_losses(tanh network 3-5-1, X 5x3, y, lr=0.1, steps=4)", convert=_losses_converter)
    report.judge("nn.Sequential(Linear(3, 5), Tanh, Linear(5, 1)), lr = 0.1, 4 steps: the exact iterates", out,
                 judge_losses, GD_TANH, GD_RTOL["float64"])
    out = report.call(gd_losses, tanh_net([3, 5, 1], seed=6, dtype=torch.float32), v["X_gd_tanh"], v["y_gd_tanh"],
                      0.1, 4, what="gd_losses(float32 tanh network 3-5-1, float64 X and y, lr=0.1, steps=4)",
                      convert=_losses_converter)
    report.judge("the same network in float32, X and y given in float64 (cast them to the model's dtype)", out,
                 judge_losses, GD_TANH, GD_RTOL["float32"])
    # The PL bound, exact for an overparametrized linear model (d = 8 > n = 4) with lr <= 1 / lambda_max(X X^T):
    # L(w_t) <= (1 - lr mu)^t L(w_0), mu = lambda_min(X X^T).  Literals of X X^T's extreme eigenvalues (numpy).
    mu, lam_max = 3.791452802444958, 10.414242983670285
    lr, steps = 1.0 / lam_max, 40
    out = report.call(gd_losses, linear_model(8, seed=4, bias=False), X, y, lr, steps,
                      what=f"gd_losses(Linear(8, 1, bias=False), X 4x8, y, lr=1/lambda_max, steps={steps})",
                      convert=_losses_converter)

    def pl_bound(got):
        got = np.asarray(got, dtype=float)
        if got.shape != (steps + 1,):
            return False, f"shape {got.shape}, expected ({steps + 1},)"
        bound = (1 - lr * mu) ** np.arange(steps + 1) * GD_LINEAR[0]
        slack = 1e-6 * bound  # rounding (a float32 array of correct float64 losses is within 6e-8)
        bad = np.nonzero(got > bound + slack)[0]
        if abs(got[0] - GD_LINEAR[0]) > GD_RTOL["float64"] * GD_LINEAR[0]:
            return False, f"L(w_0): expected {fmt(GD_LINEAR[0], 10)}, got {fmt(got[0], 10)}"
        if bad.size:
            t = int(bad[0])
            return False, (f"L(w_{t}) = {fmt(got[t], 8)} is above the PL bound (1 - lr mu)^t L(w_0) = "
                           f"{fmt(bound[t], 8)} (mu = {mu:.5g}, lr = {lr:.5g})")
        if not np.all(np.diff(got) <= slack[1:]):
            return False, "the loss increased at some step although lr <= 1 / lambda_max"
        return True, ""
    report.judge(f"overparametrized linear model (d = 8 > n = 4), lr = 1/lambda_max, {steps} steps: "
                 "L(w_t) <= (1 - lr mu)^t L(w_0) and the loss never increases", out, pl_bound)


def _hidden_gd_losses(report: Report, gd_losses, grading) -> None:
    for case in grading.gd_losses_cases():
        model = case["model"]()
        expected = grading.gd_losses_expected(case)
        out = report.call(gd_losses, model, case["X"], case["y"], case["lr"], case["steps"],
                          what=f"gd_losses on: {case['name']}", convert=_losses_converter)
        report.judge(case["name"], out, judge_losses, expected, case["rtol"])


# ==============================================================================================================
# Part 4: hessian_slope(make_model, x, widths, seeds) -- the experiment
# ==============================================================================================================
def _ntk_two_layer(width, seed):
    return ScaledTwoLayer(3, int(width), 0.5, seed=100 + int(seed))


def _mean_field_two_layer(width, seed):
    return ScaledTwoLayer(3, int(width), 1.0, seed=200 + int(seed))


def _standard_relu(width, seed):
    return relu_one_hidden(3, int(width), seed=300 + int(seed))


def judge_slope(got: float, low: float, high: float, theory: str) -> tuple[bool, str]:
    if low <= got <= high:
        return True, ""
    hint = ""
    if abs(got) < 0.05 and high < -0.1:
        hint = ("\nhint: a slope near 0: did you fit log-log (np.polyfit(np.log(widths), np.log(norms), 1))? Is "
                "your hessian_norm the spectral norm (the Frobenius norm of this Hessian does not shrink)?")
    elif got < -1.5:
        hint = "\nhint: slope of log(width) against log(norm)? The fit is log(norm) = slope * log(width) + c"
    return False, f"slope: expected {theory} (accepted [{low:.3g}, {high:.3g}]), got {fmt(got, 6)}{hint}"


def _visible_hessian_slope(report: Report, hessian_slope) -> None:
    x = torch.tensor([0.6, -1.2, 0.9], dtype=torch.float64)
    widths, seeds = [8, 16, 32, 64, 128], [0, 1]
    outs = {}
    for make_model, exact, label in [
            (_ntk_two_layer, -0.5, "width^(-1/2) sum_i v_i relu(w_i . x) (NTK scaling): |H| = width^(-1/2) |x|"),
            (_mean_field_two_layer, -1.0, "width^(-1) sum_i v_i relu(w_i . x) (mean-field scaling): "
                                          "|H| = |x| / width"),
            (_standard_relu, 0.0, "Linear(3, width)-ReLU-Linear(width, 1) (PyTorch's parametrization): |H| = "
                                  "sqrt(|x|^2 + 1) at every width")]:
        outs[exact] = out = report.call(hessian_slope, make_model, x, widths, seeds,
                                        what=f"hessian_slope({make_model.__name__}, x, widths=[8..128], seeds=[0, 1])",
                                        convert=as_scalar)
        # each slope is what some constant returns: gated, the values count once the check below passes
        report.judge(f"{label}: slope {exact:g}", out, judge_slope, exact - SLOPE_ATOL, exact + SLOPE_ATOL,
                     f"{exact:g}", gated=True)
    report.check("the mean-field slope is the NTK one minus 1/2 (|H| ~ width^(-1) against width^(-1/2)): the "
                 "slope follows the scaling, as no constant does",
                 lambda: _slope_difference(outs[-1.0], outs[-0.5], -0.5))


def _slope_difference(a: dict, b: dict, want: float) -> tuple[bool, str]:
    """Verdict: slope(a) - slope(b) = want (within twice the tolerance of one slope)."""
    for out in (a, b):
        if out.get("error"):
            return False, out["error"]
    got = float(a["value"]) - float(b["value"])
    if abs(got - want) <= 2 * SLOPE_ATOL:
        return True, ""
    return False, (f"the two slopes differ by {fmt(got, 4)}, expected {fmt(want, 4)}" +
                   ("\nhint: the same slope for every model: does hessian_slope use make_model and x?"
                    if abs(got) < 1e-9 else ""))


def _hidden_hessian_slope(report: Report, hessian_slope, grading) -> None:
    for case in grading.hessian_slope_cases():
        out = report.call(hessian_slope, case["make_model"], case["x"], case["widths"], case["seeds"],
                          what=f"hessian_slope on: {case['name']}", convert=as_scalar)
        low, high = case["bounds"]
        report.judge(case["name"], out, judge_slope, low, high, case["theory"], gated=True)


TOPIC = Topic("optimization", [
    Part("pl_constant", 3, _visible_pl_constant, _hidden_pl_constant, purity="its inputs (the model and X)"),
    Part("hessian_norm", 3, _visible_hessian_norm, _hidden_hessian_norm, purity="its inputs (the model and x)"),
    Part("gd_losses", 3, _visible_gd_losses, _hidden_gd_losses, purity="its inputs (the model is trained as a copy)"),
    Part("hessian_slope", 2, _visible_hessian_slope, _hidden_hessian_slope, purity="its inputs"),
    Written("written_pl_convergence", 3),
])
check_pl_constant = TOPIC.checker("pl_constant")
check_hessian_norm = TOPIC.checker("hessian_norm")
check_gd_losses = TOPIC.checker("gd_losses")
check_hessian_slope = TOPIC.checker("hessian_slope")
