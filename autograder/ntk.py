"""Checks of the assignment ``ntk``: the Neural Tangent Kernel.

Conventions (book/conventions.md, neural-tangents ``stax`` with ``parameterization='ntk'``): ReLU MLP with ``depth``
hidden layers, layer ``l`` computes ``W_std / sqrt(fan_in) * W h + b_std * b`` with every entry of ``W`` and ``b``
i.i.d. N(0, 1); the infinite-width NNGP and NTK follow the recursion of Jacot, Gabriel & Hongler (2018) with the
arc-cosine expectations of Cho & Saul (2009); ``ntk_predict`` is discrete gradient descent on the linearized
model (Lee et al. 2019) for the loss 1/2 Σ (f(x_i) - y_i)^2.

Each graded function has one entry point, ``check_<name>(student_fn, tests="visible", points=...)``, used as the
last line of its grade cell.  ``tests="visible"`` runs the checks a student sees (small cases, properties and
values computed independently with neural-tangents 0.6.5); ``tests="all"`` adds the hidden cases, whose inputs
and reference implementations live on the instructor's side in ``solutions/ntk/grading.py``.

Every check has a harness (``run_*``: calls student code, returns plain data) and a verdict (``judge_*``: a pure
function of plain data).  Tolerances (book/conventions.md, rule 4): analytic kernels 1e-3 of max|K|; empirical NTK
1e-4 against an exact reference on the same parameters; GD predictions 1e-5 of max|f| plus 1e-5 of the targets' scale
(an expected 0 is met by 1e-16, rule 9).  float32 answers are accepted (float32 errors measured, rule 10).  Purity
is checked bit for bit with core.snapshot (parameters, .grad, buffers, every module's mode, inputs).
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from .core import (Part, Report, StudentCall, Topic, Written, as_array, call_student, close, compare, error_verdict,
                   fmt, judge_purity, near, plain_value, ratio_hint, run_cases, snapshot, unchanged)

__all__ = ["check_empirical_ntk", "check_relu_ntk", "check_NTKMLP", "check_ntk_predict", "POINTS"]


KERNEL_RTOL = 1e-3
EMPIRICAL_RTOL = 1e-4
GD_RTOL = 1e-5


# ==============================================================================================================
# Shared pieces
# ==============================================================================================================
def _ratio_hint(got: np.ndarray, expected: np.ndarray, what: str) -> str:
    """A constant-factor hint; a power of 2 points at the ReLU factor counted twice."""
    c, text = ratio_hint(got, expected, what)
    if c is not None and c > 0 and text:
        power = np.log2(c)
        if abs(power - round(power)) < 0.01 and round(power) != 0:
            text += (f" (= 2^{round(power)}): is a factor 2 of the ReLU counted twice, e.g. Cho & Saul's k_1, "
                     "which is already twice E[relu(u) relu(v)], together with W_std^2 = 2?")
    return text


def _points(seed: int, n: int, d: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


# ==============================================================================================================
# Part 1: empirical_ntk(model, X1, X2)
# ==============================================================================================================
def run_empirical_ntk(fn: Callable, model: torch.nn.Module, X1: np.ndarray, X2: np.ndarray) -> dict:
    """Harness: call ``fn(model, X1, X2)`` with tensors of the model's dtype; return the kernel as plain data."""
    dtype = next(model.parameters()).dtype
    t1 = torch.as_tensor(np.array(X1), dtype=dtype)
    t2 = torch.as_tensor(np.array(X2), dtype=dtype)
    # Bit for bit (core.snapshot): the model's parameters, their dtype, requires_grad and .grad, its buffers and
    # the train/eval mode of every submodule; the inputs' values, dtype and requires_grad.
    before = [snapshot(model), snapshot(t1), snapshot(t2)]
    call = call_student(fn, model, t1, t2)
    modified = not all(unchanged(b, a) for b, a in zip(before, (model, t1, t2)))
    return plain_value(call, "empirical_ntk(model, X1, X2)") | {"modified": modified}


def judge_empirical_ntk(out: dict, expected: np.ndarray, rtol: float = EMPIRICAL_RTOL,
                        variants: dict | None = None) -> tuple[bool, str]:
    """Verdict: the kernel equals the exact empirical NTK of the same parameters."""
    return error_verdict(out) or compare(out["value"], expected, what="kernel", rtol=rtol, variants=variants)


def _one_hidden_layer_ntk(model: torch.nn.Sequential, X1, X2) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form empirical NTK of Linear-ReLU-Linear (f = w2 relu(W1 x + b1) + b2), and the same sum without
    the biases' terms:  Θ = Σ_j relu(h_j) relu(h'_j) + 1 + Σ_j w2_j² step(h_j) step(h'_j) (<x, x'> + 1)."""
    W1, b1, w2 = (model[0].weight.detach().double(), model[0].bias.detach().double(),
                  model[2].weight.detach().double()[0])
    X1, X2 = torch.as_tensor(X1, dtype=torch.float64), torch.as_tensor(X2, dtype=torch.float64)
    h1, h2 = X1 @ W1.T + b1, X2 @ W1.T + b1
    a1, a2 = torch.relu(h1), torch.relu(h2)
    s1, s2 = (h1 > 0).double() * w2, (h2 > 0).double() * w2
    gram = X1 @ X2.T
    full = a1 @ a2.T + 1 + (s1 @ s2.T) * (gram + 1)
    weights_only = a1 @ a2.T + (s1 @ s2.T) * gram
    return full.numpy(), weights_only.numpy()


def _visible_empirical_ntk(report: Report, empirical_ntk: Callable) -> None:
    """Check ``empirical_ntk(model, X1, X2)``: Θ(x, x') = Σ_p ∂f(x)/∂θ_p ∂f(x')/∂θ_p over ALL parameters."""
    untouched = []

    # A linear model: Θ(x, x') = <x, x'> + 1 exactly (weights and bias).
    torch.manual_seed(0)
    linear = torch.nn.Linear(3, 1).double()
    X1, X2 = _points(1, 4, 3), _points(2, 2, 3)
    out = run_empirical_ntk(empirical_ntk, linear, X1, X2)
    untouched.append(("linear model", out))
    report.check("linear model nn.Linear(3, 1), X1 4x3, X2 2x3: kernel = X1 X2^T + 1",
                 lambda: judge_empirical_ntk(out, X1 @ X2.T + 1, variants={
                     "the bias's gradient (which is 1) is missing from the sum over parameters": X1 @ X2.T}))

    # One hidden ReLU layer, float64 and float32: compare with the closed form of its gradients.
    for dtype, name in [(torch.float64, "float64"), (torch.float32, "float32")]:
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)).to(dtype)
        X1, X2 = _points(3, 5, 3), _points(4, 3, 3)
        full, weights_only = _one_hidden_layer_ntk(net, X1, X2)
        out_net = run_empirical_ntk(empirical_ntk, net, X1, X2)
        untouched.append((f"{name} one-hidden-layer network", out_net))
        report.check(f"{name} Linear(3, 8)-ReLU-Linear(8, 1), X1 5x3, X2 3x3: closed form of its gradients",
                     lambda: judge_empirical_ntk(out_net, full, variants={
                         "the biases' terms are missing: the sum runs over ALL parameters": weights_only}))

    report.check("leaves the model (parameters, dtype, requires_grad, .grad, buffers, train/eval mode) and X1, X2 "
                 "unchanged",
                 lambda: judge_purity(untouched, credited=any(v.passed for v in report.verdicts)))


def _hidden_empirical_ntk(report: Report, empirical_ntk: Callable, grading) -> None:
    models = {}

    def harness(case):
        models[case["name"]] = model = case["model"]()
        return run_empirical_ntk(empirical_ntk, copy.deepcopy(model), case["X1"], case["X2"])

    def judge(case, out):
        expected = grading.empirical_ntk(models[case["name"]], case["X1"], case["X2"])
        return judge_empirical_ntk(out, expected, case["rtol"])

    run_cases(report, grading.empirical_ntk_cases(), harness, judge, "the model in the hidden cases")


# ==============================================================================================================
# Part 2: relu_ntk(X1, X2, depth, W_std, b_std) -> (nngp, ntk)
# ==============================================================================================================
def run_relu_ntk(fn: Callable, X1, X2, depth: int, W_std: float, b_std: float) -> dict:
    """Harness: call the student's closed form on copies; return both kernels as float64 arrays."""
    X1 = np.array(X1)
    X2 = X1 if X2 is None else np.array(X2)
    before = [snapshot(X1), snapshot(X2)]
    call = call_student(fn, X1, X2, depth, W_std=W_std, b_std=b_std)
    modified = not (unchanged(before[0], X1) and unchanged(before[1], X2))
    if not call.ok:
        return {"error": f"relu_ntk raised {call.error}", "modified": modified}
    if not isinstance(call.value, (tuple, list)) or len(call.value) != 2:
        return {"error": f"relu_ntk must return a pair (nngp, ntk); it returned {type(call.value).__name__}",
                "modified": modified}
    try:
        return {"nngp": as_array(call.value[0], "nngp"), "ntk": as_array(call.value[1], "ntk"),
                "modified": modified}
    except TypeError as exc:
        return {"error": str(exc), "modified": modified}


def judge_relu_ntk(out: dict, expected: dict, variants: dict | None = None) -> tuple[bool, str]:
    """Verdict: NNGP and NTK within 1e-3 of max|K| of the expected kernels (entries given as ``expected``:
    full arrays, or a list of ``(index, value)`` entries computed independently).

    The feedback names each wrong entry, then at most one hint for the check: the named mistake of ``variants``,
    the two outputs swapped, or a constant factor when the ratio is the same (within 1 %) over every wrong entry
    of the check (a ratio that varies from entry to entry says nothing and is not shown)."""
    failed = error_verdict(out)
    if failed:
        return failed
    messages, wrong = _relu_ntk_mismatches(out, expected, variants)
    if not messages:
        return True, ""
    hints = [line for m in messages for line in m.splitlines() if line.startswith("hint:")]
    if not hints:
        swapped = {"nngp": out["ntk"], "ntk": out["nngp"]}
        if all(expected[k] is not None for k in ("nngp", "ntk")) and not _relu_ntk_mismatches(
                swapped, expected, None)[0] and not (
                np.shape(out["nngp"]) == np.shape(out["ntk"]) and np.allclose(out["nngp"], out["ntk"])):
            messages.append("hint: the two outputs look swapped: relu_ntk returns (nngp, ntk), in this order")
        else:
            hint = _pooled_ratio_hint(wrong)
            if hint:
                messages.append(hint)
    lines = [line for m in messages for line in m.splitlines()]
    lines = [line for i, line in enumerate(lines) if not line.startswith("hint:") or line not in lines[:i]]
    return False, "\n".join(lines)


def _relu_ntk_mismatches(out: dict, expected: dict, variants: dict | None) -> tuple[list[str], list]:
    """The messages of the wrong entries (and a variant's hint) and the wrong (key, got, expected) pairs."""
    messages, wrong = [], []
    for key in ("nngp", "ntk"):
        want = expected[key]
        got = np.asarray(out[key], dtype=float)
        if isinstance(want, list):  # selected entries, e.g. [((0, slice(None)), [...]), ((4, 4), 14.01)]
            if not want:
                continue
            scale = expected.get(f"{key}_scale", max(np.max(np.abs(v)) for _, v in want))
            for idx, value in want:
                try:
                    part = np.asarray(got[idx], dtype=float)
                except IndexError:
                    messages.append(f"{key}: shape {got.shape} is too small for entry {idx}")
                    continue
                ok, msg = close(part, np.asarray(value, dtype=float), rtol=0, atol=KERNEL_RTOL * scale)
                if not ok:
                    # 8 digits, the difference and the tolerance (book/conventions.md rule 11)
                    messages.append(f"{key}[{_index_text(idx)}]: expected {fmt(value, 8)}, got {fmt(part, 8)}; {msg}")
                    wrong.append((key, part, np.asarray(value, dtype=float)))
            continue
        var = {hint: v[key] for hint, v in (variants or {}).items()}
        ok, msg = compare(got, want, what=key, rtol=KERNEL_RTOL, variants=var, fallback=lambda *_: "")
        if not ok:
            messages.append(msg)
            wrong.append((key, got, np.asarray(want, dtype=float)))
    return messages, wrong


def _pooled_ratio_hint(wrong: list) -> str:
    """One constant-factor hint over all wrong entries of a check (see :func:`_ratio_hint`), or ""."""
    if not wrong or any(np.shape(g) != np.shape(e) for _, g, e in wrong):
        return ""
    keys = list(dict.fromkeys(k for k, _, _ in wrong))
    for group in ([keys] if len(keys) == 1 else [keys] + [[k] for k in keys]):  # both kernels, else each alone
        got = np.concatenate([np.ravel(g) for k, g, _ in wrong if k in group])
        want = np.concatenate([np.ravel(e) for k, _, e in wrong if k in group])
        text = _ratio_hint(got, want, group[0])
        if text and len(group) > 1:
            text = text.replace(f"your {group[0]} is about", "your nngp and ntk are both about").replace(
                "the expected one", "the expected ones")
        if text:
            return text
    return ""


def _index_text(idx) -> str:
    return ", ".join(":" if isinstance(i, slice) else str(i) for i in (idx if isinstance(idx, tuple) else (idx,)))


def _relu_ntk_properties(out: dict, X1, X2, depth, W_std, b_std) -> tuple[bool, str]:
    """Shape, finiteness, and the diagonal of the recursion: Σ(x,x) = W²q/2 + b², Θ = Σ + (W²/2) Θ_prev."""
    failed = error_verdict(out)
    if failed:
        return failed
    n1, n2 = len(X1), len(X2)
    for key in ("nngp", "ntk"):
        if out[key].shape != (n1, n2):
            return False, f"{key} has shape {out[key].shape}; expected ({n1}, {n2}) for X1 {n1}x{X1.shape[1]} " \
                          f"and X2 {n2}x{X2.shape[1]}"
        if not np.all(np.isfinite(out[key])):
            return False, f"{key} has non-finite entries (clip the cosine to [-1, 1] before arccos?)"
    return True, ""


def _diagonal(X, depth, W_std, b_std):
    """Diagonal of NNGP and NTK from the convention's diagonal formula (no arccos needed)."""
    w2, b2 = W_std ** 2, b_std ** 2
    q = w2 * np.sum(X * X, axis=1) / X.shape[1] + b2
    theta = q.copy()
    for _ in range(depth):
        q = w2 * q / 2 + b2
        theta = q + (w2 / 2) * theta
    return q, theta


def _visible_relu_ntk(report: Report, relu_ntk: Callable) -> None:
    """Check ``relu_ntk(X1, X2, depth, W_std=sqrt(2), b_std=0.0) -> (nngp, ntk)``."""
    untouched = []

    # neural-tangents 0.6.5, stax.serial(Dense(512, W_std=sqrt(2), b_std=b, parameterization='ntk'), Relu, ...)
    x = np.random.default_rng(0).normal(size=(5, 3))
    out = run_relu_ntk(relu_ntk, x, x, 2, np.sqrt(2), 0.0)
    untouched.append(("neural-tangents inputs", out))
    report.check("depth 2, W_std=sqrt(2), b_std=0, 5 points in R^3: values computed with neural-tangents",
                 lambda: judge_relu_ntk(out, {
                     "nngp": [((0, slice(None)), [0.295601, 0.233073, 0.315153, 0.299436, 0.420306])],
                     "ntk": [((0, slice(None)), [0.886802, 0.530974, 0.326673, 0.39853, 0.358484]),
                             ((4, 4), 14.011864)],
                 }))
    unbiased = report.verdicts[-1]
    out_b = run_relu_ntk(relu_ntk, x, x, 2, np.sqrt(2), 0.1)
    untouched.append(("neural-tangents inputs, b_std=0.1", out_b))
    biased = [report.check("the same with b_std=0.1: values computed with neural-tangents",
                           lambda: judge_relu_ntk(out_b, {
                               "nngp": [], "ntk_scale": 14.0,
                               "ntk": [((0, slice(None)), [0.946802, 0.585446, 0.367785, 0.442836, 0.39941])]}))]

    # Properties on rectangular inputs of different norms, at a non-default setting.
    X1 = _points(5, 4, 5) * np.array([[0.5], [1.0], [2.0], [3.0]])
    X2 = _points(6, 3, 5)
    W_std, b_std, depth = 1.3, 0.5, 2
    rect = run_relu_ntk(relu_ntk, X1, X2, depth, W_std, b_std)
    swapped = run_relu_ntk(relu_ntk, X2, X1, depth, W_std, b_std)
    square = run_relu_ntk(relu_ntk, X1, X1, depth, W_std, b_std)
    untouched += [("X1, X2", rect), ("X2, X1", swapped), ("X1, X1", square)]
    report.check("X1 4x5, X2 3x5 (different norms), depth 2, W_std=1.3, b_std=0.5: shapes (4, 3), finite",
                 lambda: _relu_ntk_properties(rect, X1, X2, depth, W_std, b_std))
    report.check("swapping X1 and X2 transposes both kernels",
                 lambda: error_verdict(swapped) or error_verdict(rect) or _both(
                     close(swapped["nngp"].T, rect["nngp"], rtol=KERNEL_RTOL),
                     close(swapped["ntk"].T, rect["ntk"], rtol=KERNEL_RTOL)))

    def diagonal_check():
        failed = error_verdict(square)
        if failed:
            return failed
        q, theta = _diagonal(X1, depth, W_std, b_std)
        diag = {"nngp": [((i, i), q[i]) for i in range(4)], "ntk": [((i, i), theta[i]) for i in range(4)]}
        return judge_relu_ntk(square, diag)
    biased.append(report.check("X1 with itself: the diagonal follows Σ(x,x) = W_std² q / 2 + b_std², "
                               "Θ = Σ + (W_std²/2) Θ_prev", diagonal_check))

    # Every entry at depth 3 with b_std = 0.5: values of the recursion computed with 2-D Gauss-Hermite quadrature
    # of E[relu(u) relu(v)] and E[step(u) step(v)] (no arc-cosine formula; tests/test_ntk.py recomputes them).
    deep = run_relu_ntk(relu_ntk, X1, X2, 3, W_std, b_std)
    untouched.append(("depth 3", deep))
    biased.append(report.check(
        "X1 4x5, X2 3x5, depth 3, W_std=1.3, b_std=0.5: every entry (values computed by Gaussian quadrature)",
        lambda: judge_relu_ntk(deep, {"nngp": [((i, slice(None)), row) for i, row in enumerate(DEEP_NNGP)],
                                      "ntk": [((i, slice(None)), row) for i, row in enumerate(DEEP_NTK)]})))

    def psd_check():
        failed = error_verdict(square)
        if failed:
            return failed
        for key in ("nngp", "ntk"):
            K = square[key]
            if K.shape != (4, 4) or not np.all(np.isfinite(K)):
                return False, f"{key}: shape {K.shape} or non-finite values"
            ok, msg = close(K, K.T, rtol=KERNEL_RTOL)
            if not ok:
                return False, f"{key}(X, X) is not symmetric: K vs K^T: {msg}"
            low = np.linalg.eigvalsh((K + K.T) / 2).min()
            if low < -KERNEL_RTOL * np.abs(K).max():
                return False, (f"{key}(X, X) has a negative eigenvalue {low:.4g} (allowed down to "
                               f"{-KERNEL_RTOL * np.abs(K).max():.3g}): a kernel is positive semi-definite")
        return True, ""
    report.check("kernels of X1 with itself are symmetric positive semi-definite", psd_check)

    d0 = run_relu_ntk(relu_ntk, X1, X2, 0, W_std, b_std)
    untouched.append(("depth 0", d0))
    linear = W_std ** 2 * X1 @ X2.T / X1.shape[1] + b_std ** 2
    report.check("depth 0 (a linear model): NNGP = NTK = W_std² <x, x'> / d + b_std²",
                 lambda: judge_relu_ntk(d0, {"nngp": linear, "ntk": linear}, variants={}))
    if unbiased.passed:
        for v in biased:
            if not v.passed and not v.message.startswith("relu_ntk"):
                v.message += BIAS_HINT
    report.check("leaves X1 and X2 unchanged",
                 lambda: judge_purity(untouched, credited=any(v.passed for v in report.verdicts)))


# The kernels of the visible depth-3 check (X1, X2 of the property checks, W_std = 1.3, b_std = 0.5).
DEEP_NNGP = [[1.2372716589, 1.0107225588, 0.9865825837], [1.7828665142, 1.2820898194, 1.1744185652],
             [2.7069083209, 1.909356118, 2.0673953368], [3.7028112019, 2.3064915821, 2.3566934423]]
DEEP_NTK = [[2.0552323017, 1.6874961974, 1.9615190505], [3.6766531815, 2.2471886082, 2.2439394108],
            [4.9040405743, 3.0476352198, 4.978997503], [6.7149243834, 3.1390997324, 4.4196036664]]
BIAS_HINT = ("\nhint: your kernels are right with b_std = 0 and wrong with b_std != 0: every layer adds "
             "b_std² (sigma_b²) to Σ, Σ^(l+1) = W_std² E[relu(u) relu(v)] + b_std², not only the first one "
             "(and the derivative kernel Σ-dot has no b_std²)")


def _hidden_relu_ntk(report: Report, relu_ntk: Callable, grading) -> None:

    def harness(case):
        return run_relu_ntk(relu_ntk, case["X1"], case["X2"], case["depth"], case["W_std"], case["b_std"])

    def judge(case, out):
        X1, X2 = case["X1"], case["X1"] if case["X2"] is None else case["X2"]
        nngp, ntk = grading.relu_ntk(X1, X2, case["depth"], case["W_std"], case["b_std"])
        variants = {}
        for shift in (-1, 1):
            if case["depth"] + shift >= 0:
                n, t = grading.relu_ntk(X1, X2, case["depth"] + shift, case["W_std"], case["b_std"])
                variants[f"this is the kernel of depth {case['depth'] + shift}: depth counts hidden "
                         f"ReLU layers (depth 0 is a linear model)"] = {"nngp": n, "ntk": t}
        d = X1.shape[1]
        n, t = grading.relu_ntk(X1 * np.sqrt(d), X2 * np.sqrt(d), case["depth"], case["W_std"], case["b_std"])
        variants["your kernel is what you get without the 1/d of the input layer "
                 f"(Σ¹ = W_std² <x, x'> / d + b_std², here d = {d})"] = {"nngp": n, "ntk": t}
        variants["the two outputs look swapped: relu_ntk returns (nngp, ntk), in this order"] = {"nngp": ntk, "ntk": nngp}
        return judge_relu_ntk(out, {"nngp": nngp, "ntk": ntk}, variants)

    # the student's own case (their W_std, b_std, depth and data seed: the part's variant) with the others
    run_cases(report, grading.relu_ntk_cases() + report.own_cases(grading), harness, judge,
              "X1 and X2 in the hidden cases")


def _both(*results: tuple[bool, str]) -> tuple[bool, str]:
    return all(ok for ok, _ in results), "\n".join(m for ok, m in results if not ok)


# ==============================================================================================================
# Part 3: NTKMLP(d_in, width, depth, W_std, b_std)
# ==============================================================================================================
def _n_parameters(d_in: int, width: int, depth: int) -> int:
    sizes = [d_in] + [width] * depth + [1]
    return sum(a * b + b for a, b in zip(sizes, sizes[1:]))


def run_ntkmlp_build(cls: Callable, d_in: int, width: int, depth: int, W_std: float, b_std: float,
                     seed: int) -> StudentCall:
    """Harness step: construct the student's network under ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return call_student(cls, d_in, width, depth, W_std=W_std, b_std=b_std)


def run_ntkmlp_forward(model, X: np.ndarray) -> dict:
    """Harness step: the network's outputs on X (in the dtype of its parameters), one value per input."""
    call = call_student(lambda: model(torch.as_tensor(X, dtype=next(model.parameters()).dtype)))
    out = plain_value(call, "the forward pass")
    if "value" in out and out["value"].size != len(X):
        return {"error": f"the forward pass on {len(X)} inputs returned shape {tuple(out['value'].shape)}; "
                         f"expected one scalar per input, shape ({len(X)},) or ({len(X)}, 1)"}
    if "value" in out:
        out["value"] = out["value"].reshape(-1)
    return out


def run_ntkmlp_parameters(models) -> dict:
    """Harness step: the parameters of one network, or of several built with different seeds, as plain data:
    their number (of the first network) and, per parameter tensor (pooled over the networks), its shape, number
    of entries, mean, mean square, largest |entry| and Kolmogorov-Smirnov distance to N(0, 1)."""
    models = models if isinstance(models, list) else [models]
    pooled, count = None, 0
    for model in models:
        call = call_student(lambda: [p.detach().double().numpy().copy() for p in model.parameters()])
        if not call.ok:
            return {"error": f"reading model.parameters() raised {call.error}"}
        if pooled is None:
            pooled, count = [[p] for p in call.value], int(sum(p.size for p in call.value))
            continue
        if len(call.value) != len(pooled):
            return {"error": "networks built with different seeds have different numbers of parameter tensors"}
        for bucket, p in zip(pooled, call.value):
            bucket.append(p)
    return {"count": count, "networks": len(models),
            "stats": [_entry_stats(bucket[0].shape, np.concatenate([p.reshape(-1) for p in bucket]))
                      for bucket in (pooled or [])]}


def run_ntkmlp_init(cls: Callable, d_in: int, width: int, depth: int, W_std: float, b_std: float,
                    seeds) -> dict:
    """Harness step (run beside the student's code, :func:`~autograder.core.near`): the parameters' statistics
    (:func:`run_ntkmlp_parameters`) of the networks built with each of ``seeds``."""
    built = []
    for seed in seeds:
        call = run_ntkmlp_build(cls, d_in, width, depth, W_std, b_std, seed)
        if not call.ok:
            return {"error": f"NTKMLP({d_in}, {width}, {depth}, W_std={W_std:.3g}, b_std={b_std:.3g}) raised "
                             f"{call.error}"}
        built.append(call.value)
    return run_ntkmlp_parameters(built)


def run_ntkmlp_outputs(cls: Callable, d_in: int, width: int, depth: int, W_std: float, b_std: float,
                       x: np.ndarray, seeds) -> dict:
    """Harness step (run beside the student's code): ``{"values": f(x)}`` of one input ``x`` (1 x d_in) for the
    networks built with each of ``seeds``, or the first error."""
    values = []
    for seed in seeds:
        built = run_ntkmlp_build(cls, d_in, width, depth, W_std, b_std, seed)
        out = run_ntkmlp_forward(built.value, x) if built.ok else {"error": f"NTKMLP raised {built.error}"}
        if out.get("error"):
            return {"error": out["error"]}
        values.append(float(out["value"][0]))
    return {"values": np.array(values)}


def _entry_stats(shape, x: np.ndarray) -> tuple:
    """(shape, n, mean, mean square, max |x|, KS distance sup |F_n - Φ|) of the entries x."""
    n = int(x.size)
    if n == 0:
        return tuple(shape), 0, 0.0, 1.0, 0.0, 0.0
    z = torch.sort(torch.as_tensor(x, dtype=torch.float64)).values
    cdf = 0.5 * (1 + torch.erf(z / np.sqrt(2.0)))
    i = torch.arange(1, n + 1, dtype=torch.float64)
    ks = float(torch.maximum(i / n - cdf, cdf - (i - 1) / n).max())
    return tuple(shape), n, float(x.mean()), float(np.mean(x * x)), float(np.abs(x).max()), ks


# Every test of the initialization may fail a correct N(0, 1) initialization with probability at most INIT_P
# (rigorous bounds, no normal approximation): the mean by the Chernoff bound P(|mean| > t) <= 2 exp(-n t² / 2),
# the mean square (χ²_n / n) by Laurent & Massart (2000), the distribution by the Dvoretzky-Kiefer-Wolfowitz
# inequality with Massart's constant, P(sup |F_n - Φ| > e) <= 2 exp(-2 n e²).  The visible checks make 24 such
# tests (8 parameter tensors), so a correct initialization fails one with probability below 3e-7.
INIT_P = 1e-8


def init_bounds(n: int, p: float = INIT_P) -> dict:
    """The acceptance region of the tests of :func:`judge_ntkmlp_parameters` for n entries."""
    x = np.log(2 / p)
    return {"mean": np.sqrt(2 * x / n), "m2_low": 1 - 2 * np.sqrt(x / n), "m2_high": 1 + 2 * np.sqrt(x / n) + 2 * x / n,
            "ks": np.sqrt(x / (2 * n))}


def judge_ntkmlp_parameters(out: dict, d_in: int, width: int, depth: int) -> tuple[bool, str]:
    """Verdict: all of W and b, every entry N(0, 1) (the scale W_std / sqrt(fan_in) belongs to the forward pass):
    the count, then per parameter tensor (pooled over the networks) its mean, mean square and distribution."""
    failed = error_verdict(out)
    if failed:
        return failed
    want = _n_parameters(d_in, width, depth)
    if out["count"] != want:
        return False, (f"the network has {out['count']} scalar parameters; an MLP with d_in={d_in}, width={width}, "
                       f"depth={depth} (hidden layers), a scalar output and a bias in every layer has {want}")
    pooled = f", pooled over {out['networks']} networks built with different seeds" if out["networks"] > 1 else ""
    for shape, n, mean, m2, largest, ks in out["stats"]:
        b = init_bounds(n)
        what = f"the parameter tensor of shape {shape} ({n} entries{pooled})"
        if not (b["m2_low"] <= m2 <= b["m2_high"]) or abs(mean) > b["mean"]:
            hint = ""
            if largest < 1 and m2 < 0.5:
                hint = ("\nhint: every entry lies within ±" + fmt(largest, 3) + ": this looks like PyTorch's default "
                        "initialization of nn.Linear (uniform on ±1/sqrt(fan_in)); the NTK parametrization draws every "
                        "entry from N(0, 1), e.g. torch.nn.init.normal_(layer.weight), and likewise the bias")
            elif m2 < b["m2_low"]:
                hint = ("\nhint: in the NTK parametrization the parameters are N(0, 1) and the factor "
                        "W_std / sqrt(fan_in) multiplies in the forward pass; scaling the initialization instead "
                        "is the standard parametrization, whose NTK is different")
            return False, (f"{what} has mean {fmt(mean, 3)} and mean square {fmt(m2, 3)}; N(0, 1) entries give "
                           f"|mean| <= {fmt(b['mean'], 3)} and a mean square in [{fmt(max(b['m2_low'], 0), 3)}, "
                           f"{fmt(b['m2_high'], 3)}] except with probability {INIT_P:g}{hint}")
        if ks > b["ks"]:
            return False, (f"{what} is not distributed as N(0, 1): its empirical distribution function is "
                           f"{fmt(ks, 3)} away from the normal one (at most {fmt(b['ks'], 3)} for N(0, 1) entries, "
                           f"except with probability {INIT_P:g}); a uniform distribution of variance 1 is not "
                           "Gaussian: initialize with N(0, 1)")
    return True, ""


def judge_output_variance(values: np.ndarray, expected: float, tolerance: float) -> tuple[bool, str]:
    """Verdict: the mean square of f(x) over independent initializations matches the NNGP value."""
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)):
        return False, "some outputs are not finite"
    got = float(np.mean(values ** 2))
    if abs(got - expected) <= tolerance * expected:
        return True, ""
    return False, (f"E[f(x)²] over {len(values)} initializations is {got:.4g}; the NNGP predicts {expected:.4g} "
                   f"(allowed: ±{100 * tolerance:.0f}%)" + (
                       f"\nhint: the ratio is {got / expected:.3g}: check the 1/sqrt(fan_in) factors, "
                       "W_std and b_std in every layer" if expected else ""))


def run_ntkmlp_kernel(cls: Callable, case: dict, kernel: Callable) -> dict:
    """Harness step: the empirical NTK (computed by the trusted ``kernel``) of ``case["networks"]`` independent
    networks built with seeds ``seed, seed + 1, ...``, averaged: averaging shrinks the finite-width fluctuations
    (a few % at width 2048) while a wrong parametrization stays systematically off."""
    kernels = []
    for j in range(case.get("networks", 1)):
        built = run_ntkmlp_build(cls, case["d_in"], case["width"], case["depth"], case["W_std"], case["b_std"],
                                 case["seed"] + j)
        if not built.ok:
            return {"error": f"NTKMLP({case['d_in']}, {case['width']}, {case['depth']}, W_std={case['W_std']:.3g}, "
                             f"b_std={case['b_std']:.3g}) raised {built.error}"}
        out = plain_value(call_student(kernel, built.value, case["X1"], case["X2"]),
                          "the empirical NTK of your network")
        if out.get("error"):
            return out
        kernels.append(out["value"])
    return {"value": np.mean(kernels, axis=0)}


def judge_ntkmlp_kernel(out: dict, analytic: np.ndarray, max_error: float) -> tuple[bool, str]:
    """Verdict: the (averaged) empirical NTK at initialization is close to the analytic kernel in relative
    Frobenius norm: a coarse parametrization check, with the threshold measured by bench/ntk_thresholds.py."""
    failed = error_verdict(out)
    if failed:
        return failed
    K = out["value"]
    if K.shape != analytic.shape or not np.all(np.isfinite(K)):
        return False, f"the empirical NTK has shape {K.shape} or non-finite values"
    err = float(np.linalg.norm(K - analytic) / np.linalg.norm(analytic))
    if err <= max_error:
        return True, ""
    lines = [f"relative Frobenius error between the empirical NTK of your network and the analytic NTK is "
             f"{err:.3g} (allowed {max_error:g}); analytic NTK[0] = {fmt(analytic[0])}, yours {fmt(K[0])}"]
    ratio = float(np.sum(K * analytic) / np.sum(analytic * analytic))
    if ratio < 0.2 or ratio > 5:
        lines.append(f"hint: your kernel is about {ratio:.3g} times the analytic one: in the NTK parametrization "
                     "the parameters are N(0, 1) and W_std / sqrt(fan_in) multiplies in the forward pass (scaling "
                     "the initialization instead is the standard parametrization, whose NTK is different)")
    elif abs(ratio - 1) > 0.1:
        lines.append(f"hint: your kernel is about {ratio:.3g} times the analytic one")
    return False, "\n".join(lines)


def _visible_NTKMLP(report: Report, NTKMLP: Callable) -> None:
    """Check the NTK-parametrized ReLU MLP ``NTKMLP(d_in, width, depth, W_std=sqrt(2), b_std=0.0)``."""

    X = _points(7, 5, 3)
    call = run_ntkmlp_build(NTKMLP, 3, 16, 2, np.sqrt(2), 0.0, seed=0)
    forward = run_ntkmlp_forward(call.value, X) if call.ok else {"error": f"NTKMLP(3, 16, 2) raised {call.error}"}
    report.check("NTKMLP(3, 16, 2) maps 5 inputs (float32, 5x3) to 5 finite outputs",
                 lambda: error_verdict(forward) or (bool(np.all(np.isfinite(forward["value"]))),
                                                     "non-finite outputs"))

    # A small network has few entries: its parameters are pooled over 100 seeds (700 weights, 100 biases), enough
    # to tell N(0, 1) from PyTorch's default U(±1/sqrt(fan_in)) or a scaled initialization.
    for d_in, width, depth, networks in [(4, 512, 2, 1), (6, 32, 0, 100)]:
        stats = near(run_ntkmlp_init, NTKMLP, d_in, width, depth, 1.3, 0.5, seeds=range(1, 1 + networks))
        seeds = "" if networks == 1 else f" ({networks} networks, different seeds)"
        report.check(f"NTKMLP({d_in}, {width}, {depth}, W_std=1.3, b_std=0.5){seeds}: weights and biases of every "
                     "layer, each entry N(0, 1) (mean, mean square and distribution)",
                     lambda: judge_ntkmlp_parameters(stats, d_in, width, depth))

    # E[f(x)^2] = Σ²(x, x) = W_std² (W_std² |x|²/d + b_std²) / 2 + b_std² for one hidden layer, at any width.
    d, W_std, b_std = 16, 1.3, 0.5
    x = _points(8, 1, d)
    q1 = W_std ** 2 * (x @ x.T).item() / d + b_std ** 2
    expected = W_std ** 2 * q1 / 2 + b_std ** 2
    out = near(run_ntkmlp_outputs, NTKMLP, d, 64, 1, W_std, b_std, x, seeds=range(1000, 1500))
    error, values = out.get("error"), out.get("values")
    report.check("500 networks NTKMLP(16, 64, 1, W_std=1.3, b_std=0.5): E[f(x)²] matches the NNGP "
                 f"Σ²(x, x) = {expected:.4g} within 25%",
                 lambda: (False, error) if error else judge_output_variance(np.array(values), expected, 0.25))


def _hidden_NTKMLP(report: Report, NTKMLP: Callable, grading) -> None:
    for case in grading.ntk_mlp_cases():
        out = run_ntkmlp_kernel(NTKMLP, case, grading.empirical_ntk)
        _, analytic = grading.relu_ntk(case["X1"], case["X2"], case["depth"], case["W_std"], case["b_std"])
        report.check(case["name"], lambda: judge_ntkmlp_kernel(out, analytic, case["max_error"]))


# ==============================================================================================================
# Part 4: ntk_predict(K_train, K_test_train, y_train, lr, steps=None, f0_train=None, f0_test=None)
# ==============================================================================================================
def run_ntk_predict(fn: Callable, case: dict) -> dict:
    """Harness: call the student's predictor on copies of the arrays; return the predictions (m,)."""
    keys = ("K_train", "K_test_train", "y_train", "f0_train", "f0_test")
    args = {k: (None if case.get(k) is None else np.array(case[k])) for k in keys}
    copies = {k: snapshot(v) for k, v in args.items()}
    call = call_student(fn, args["K_train"], args["K_test_train"], args["y_train"], case["lr"],
                        steps=case["steps"], f0_train=args["f0_train"], f0_test=args["f0_test"])
    modified = any(not unchanged(copies[k], v) for k, v in args.items())
    out = plain_value(call, "ntk_predict") | {"modified": modified}
    m = np.shape(case["K_test_train"])[0]
    if "value" in out:
        if out["value"].shape not in ((m,), (m, 1)):
            return {"error": f"ntk_predict returned shape {out['value'].shape}; expected ({m},), one prediction "
                             "per test point", "modified": modified}
        out["value"] = out["value"].reshape(m)
    return out


def judge_ntk_predict(out: dict, expected: np.ndarray, rtol: float = GD_RTOL,
                      variants: dict | None = None, scale: float = 0.0) -> tuple[bool, str]:
    """Verdict: predictions within ``rtol`` · (max|f| + ``scale``) of gradient descent on the linearized model;
    ``scale`` is the scale of the targets (max of |y|, |f0_train|, |f0_test|), so that expected zeros (t = 0 with
    f0 = None) are met by a closed form that rounds to 1e-16 (book/conventions.md rule 9)."""
    return error_verdict(out) or compare(out["value"], expected, what="prediction", rtol=rtol, atol=rtol * scale,
                                         variants=variants)


def _predict_scale(case: dict) -> float:
    """The scale of the predictions: max of |y_train|, |f0_train|, |f0_test|."""
    return max(float(np.max(np.abs(np.asarray(case[k], dtype=float)), initial=0.0))
               for k in ("y_train", "f0_train", "f0_test") if case.get(k) is not None)


def _predict_tolerance(case: dict) -> float:
    """1e-5 for float64 inputs; float32 inputs carry ~1e-7 relative rounding per step, so 1e-4.  Correct float32
    implementations (numpy and torch simulations, a float32 eigendecomposition) measured on every visible and
    hidden case, float64 inputs included: at most 1.8e-6 of max|f| (t = 1, float32 eigendecomposition), 9.5e-7 at
    t = 300, so 1e-5 holds them with a 5x margin (issue 10 measurement; the float32
    alternatives of tests/test_ntk.py keep full marks)."""
    float32 = any(np.asarray(case.get(k)).dtype == np.float32 for k in ("K_train", "K_test_train", "y_train")
                  if case.get(k) is not None)
    return 1e-4 if float32 else GD_RTOL


def _visible_ntk_predict(report: Report, ntk_predict: Callable) -> None:
    """Check ``ntk_predict``: f_t(X*) = f0(X*) + K*X K^{-1} (I - (I - lr K)^t) (y - f0(X)); steps=None is t = ∞."""
    rng = np.random.default_rng(9)
    K = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]])
    base = dict(K_train=K, K_test_train=rng.normal(size=(2, 3)), y_train=rng.normal(size=3), lr=0.3,
                f0_train=rng.normal(size=3), f0_test=rng.normal(size=2))
    cases = [
        (dict(base, name="t = 0 returns f0_test", steps=0), base["f0_test"]),
        (dict(base, name="t = 0 with f0 = None returns zeros", steps=0, f0_train=None, f0_test=None), np.zeros(2)),
        (dict(base, name="t = 1: one step, f0 + lr K*X (y - f0_train)", steps=1),
         base["f0_test"] + 0.3 * base["K_test_train"] @ (base["y_train"] - base["f0_train"])),
        (dict(base, name="t = None with a diagonal K_train: f0 + K*X K^{-1} (y - f0)", steps=None,
              K_train=np.diag([2.0, 0.5, 1.0])),
         base["f0_test"] + base["K_test_train"] @ ((base["y_train"] - base["f0_train"]) / np.array([2, 0.5, 1]))),
        (dict(name="one training point, K = [[2]], lr = 0.2, t = 3: f0 + k* (1 - (1 - lr k)^t) / k (y - f0)",
              K_train=np.array([[2.0]]), K_test_train=np.array([[0.7], [-1.0]]), y_train=np.array([1.5]), lr=0.2,
              steps=3, f0_train=np.array([0.5]), f0_test=np.array([0.1, 0.2])),
         np.array([0.1, 0.2]) + np.array([0.7, -1.0]) * (1 - (1 - 0.4) ** 3) / 2.0 * 1.0),
    ]

    run_cases(report, [dict(case, expected=expected) for case, expected in cases],
               lambda case: run_ntk_predict(ntk_predict, case),
               lambda case, out: judge_ntk_predict(out, case["expected"], scale=_predict_scale(case)),
               "its input arrays")


def _hidden_ntk_predict(report: Report, ntk_predict: Callable, grading) -> None:

    def judge(case, out):
        args = {k: case[k] for k in ("K_train", "K_test_train", "y_train", "lr", "steps", "f0_train",
                                     "f0_test")}
        expected = grading.ntk_predict(**args)
        variants = {}
        if case["steps"] is not None:
            for shift in (-1, 1):
                if case["steps"] + shift >= 0:
                    variants[f"this is the prediction after {case['steps'] + shift} steps instead of "
                             f"{case['steps']}"] = grading.ntk_predict(**(args | {"steps": case["steps"] + shift}))
            n = len(case["y_train"])
            variants[f"this is gradient descent on the mean loss (learning rate lr/n, n = {n}); the loss "
                     "here is 1/2 Σ (f(x_i) - y_i)², summed"] = grading.ntk_predict(**(args | {"lr": case["lr"] / n}))
        if case["f0_train"] is not None or case["f0_test"] is not None:
            variants["this is the prediction with f0_train and f0_test taken as zero: the linearized model "
                     "starts from f0 and fits the residual y - f0_train"] = grading.ntk_predict(**(args | {"f0_train": None, "f0_test": None}))
        return judge_ntk_predict(out, expected, _predict_tolerance(case), variants, scale=_predict_scale(case))

    run_cases(report, grading.ntk_predict_cases(), lambda case: run_ntk_predict(ntk_predict, case), judge,
               "its input arrays in the hidden cases")


# ==============================================================================================================
# The parts of the assignment, declared once: names, points, visible and hidden checks
# ==============================================================================================================
# ==============================================================================================================
# Part 5 (a derivation, autograder.derivation): Theta(x, x') of one hidden ReLU layer in closed form, as a SymPy
# expression in |x|, |x'|, the angle, d, W_std and b_std; the reference is ``ntk_theta`` of solutions/ntk/grading.py.
# The visible values were computed from relu_ntk(..., depth=1) (tests/test_ntk.py checks them).
# ==============================================================================================================
from .derivation import Derivation  # noqa: E402

NTK_THETA = Derivation(
    "ntk_theta", 2, symbols="r1 r2 theta d sigma_w sigma_b",
    domain={"r1": (0.2, 3.0), "r2": (0.2, 3.0), "theta": (0.01, 3.13), "d": range(1, 65), "sigma_w": (0.3, 2.5),
            "sigma_b": (0.0, 1.5)},
    reference="ntk_theta", slips="ntk_theta_slips",
    # Per-student values of W_std and b_std (autograder.variants): no value at which a known slip vanishes
    # (b_std > 0: the inputs' angle and the missing bias show; W_std != 1: the power of W_std shows).
    variant={"sigma_w": ("9/10", "6/5", "13/10", "sqrt(2)", "3/2", "8/5", "7/4", "2"),
             "sigma_b": ("1/10", "1/5", "3/10", "2/5", "1/2", "3/4", "1")},
    examples=(({"r1": "1", "r2": "1", "theta": "pi/2", "d": "2", "sigma_w": "sqrt(2)", "sigma_b": "0"}, "1/pi"),
              ({"r1": "1", "r2": "2", "theta": "pi/3", "d": "2", "sigma_w": "1", "sigma_b": "1"},
               "17/8 + 3/(4*pi)")))

TOPIC = Topic("ntk", [
    Part("empirical_ntk", 3, _visible_empirical_ntk, _hidden_empirical_ntk, purity=None),
    # Per-student hidden case (autograder.variants): the options are those of solutions/ntk/grading.py, where
    # tests/test_ntk.py proves them (every combination: the solution passes, every known mistake fails).
    Part("relu_ntk", 4, _visible_relu_ntk, _hidden_relu_ntk, purity=None, variant_cases="relu_ntk_variant_cases",
         variant={"W_std": (0.8, 1.2, 1.5, 1.8), "b_std": (0.1, 0.3, 0.6, 0.9), "depth": (2, 3, 4, 5),
                  "seed": (1, 2, 3, 4)}),
    Part("NTKMLP", 3, _visible_NTKMLP, _hidden_NTKMLP, purity=None),
    Part("ntk_predict", 3, _visible_ntk_predict, _hidden_ntk_predict, purity=None),
    NTK_THETA,
    Written("written_finite_width", 2),
])
POINTS = {p.name: p.points for p in TOPIC.parts if isinstance(p, Part)}

check_empirical_ntk = TOPIC.checker("empirical_ntk")
check_relu_ntk = TOPIC.checker("relu_ntk")
check_NTKMLP = TOPIC.checker("NTKMLP")
check_ntk_predict = TOPIC.checker("ntk_predict")
check_ntk_theta = TOPIC.checker("ntk_theta")
