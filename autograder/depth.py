"""Checks of the assignment ``depth``: depth separation and linear regions.

Conventions (book/conventions.md): the tent map Δ(x) = 2 relu(x) - 4 relu(x - 1/2) maps [0, 1] onto [0, 1]; its k-fold
composition f_k = Δ∘…∘Δ has 2^k affine pieces on [0, 1], f_k(x) = 1 - |2 frac(2^(k-1) x) - 1| (Telgarsky 2015,
2016).  "Linear pieces" of a function on [a, b] means the number of maximal intervals of [a, b] on which it is
affine: not breakpoints (a kink can cancel, a unit can feed a zero weight), not activation patterns.

* ``sawtooth_net(k)``: an ``nn.Sequential`` of ``Linear`` and ``ReLU`` modules only, ``Linear(1, 2)``, ``ReLU``,
  then k - 1 times ``Linear(2, 2)``, ``ReLU``, and a ``Linear(2, 1)`` readout, computing f_k on [0, 1]
  (endpoints included).  Nothing is required outside [0, 1]: different exact constructions differ there.
* ``count_linear_pieces(model, a=0.0, b=1.0) -> int``: exact count for any nn.Sequential of Linear and ReLU
  modules with one input and one output, in float64 (float32 models are counted as the float64 functions their
  weights define); it must not modify the model.
* ``shallow_approximation(k, t) -> (knots, values, error)``: a continuous piecewise-linear g with at most t pieces
  (knots increasing from 0 to 1, at most t + 1 of them), and error = the exact L1 distance int_0^1 |f_k - g|.
  It must be at least as good as the construction stated in the notebook (follow f_k exactly up to a crossing of
  the level 1/2, then stay at 1/2), and the proven lower bound (1 - 2t 2^-k)/8 constrains it.

Each graded function has one entry point, ``check_<name>(student_fn, tests="visible", points=...)``, used as the
last line of its grade cell.  Visible checks use properties, values known by construction and small closed forms
(the sawtooth's values, piece counts of tiny hand-built networks); ``tests="all"`` adds the hidden cases, whose
reference implementations (exact rational arithmetic) live on the instructor's side in
``solutions/depth/grading.py``.  Harnesses (``run_*``) call student code and return plain data; verdicts
(``judge_*``) are pure functions of plain data.  Piece counts are compared exactly.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from .core import Part, Report, Topic, Written, as_array, call_student, error_verdict, fmt, judge_purity, snapshot, \
    unchanged

__all__ = ["check_sawtooth_net", "check_count_linear_pieces", "check_shallow_approximation", "POINTS",
           "sawtooth_values", "lower_bound", "construction_error"]


VALUE_ATOL = 1e-6      # network values against f_k (float64 evaluation of the student's weights)
L1_RTOL = 1e-7         # reported L1 error against the exact one (hidden checks; float32 rounding is 6e-8)


# ==============================================================================================================
# Closed forms of the statement (not implementations of a graded function)
# ==============================================================================================================
def sawtooth_values(k: int, x) -> np.ndarray:
    """f_k(x) = 1 - |2 frac(2^(k-1) x) - 1| for x in [0, 1] (the k-fold tent map, k >= 1)."""
    y = np.asarray(x, dtype=np.float64) * 2.0 ** (k - 1)
    return 1.0 - np.abs(2.0 * (y - np.floor(y)) - 1.0)


def lower_bound(k: int, t: int) -> float:
    """Proven in the chapter: int_0^1 |f_k - g| >= (1 - 2 t 2^-k) / 8 for every continuous g with t affine pieces."""
    return (1.0 - 2.0 * t * 2.0 ** -k) / 8.0


def construction_error(k: int, t: int) -> float:
    """L1 error of the notebook's target construction with at most t pieces: 0 if t >= 2^k (g = f_k), 1/4 if t = 1
    (the constant 1/2), else (1 - (2t - 3) 2^(-k-1)) / 4 (follow f_k up to the crossing of 1/2 in piece t - 2)."""
    if t >= 2 ** k:
        return 0.0
    if t == 1:
        return 0.25
    return (1.0 - (2 * t - 3) * 2.0 ** (-k - 1)) / 4.0


# ==============================================================================================================
# Part 1: sawtooth_net(k)
# ==============================================================================================================
def _describe_layers(net) -> dict:
    """Plain description of an nn.Sequential: a list of ("Linear", W, b) / ("ReLU",) / ("other", name)."""
    if type(net) is not torch.nn.Sequential:
        return {"error": f"expected a torch.nn.Sequential, got {type(net).__name__}"}
    layers = []
    for module in net:
        if type(module) is torch.nn.Linear:
            W = module.weight
            if not isinstance(W, torch.Tensor) or W.ndim != 2:
                return {"error": "a Linear module whose weight is not a matrix"}
            bias = module.bias
            layers.append(("Linear", W.detach().to("cpu", torch.float64).numpy().copy(),
                           None if bias is None else bias.detach().to("cpu", torch.float64).numpy().reshape(-1).copy()))
        elif type(module) is torch.nn.ReLU:
            layers.append(("ReLU",))
        else:
            layers.append(("other", type(module).__name__))
    return {"layers": layers}


def run_sawtooth_net(fn: Callable, k: int) -> dict:
    """Harness: build the student's network for k and describe its layers as plain data."""
    call = call_student(fn, k)
    if not call.ok:
        return {"error": f"sawtooth_net({k}) raised {call.error}"}
    described = call_student(_describe_layers, call.value)
    if not described.ok:
        return {"error": f"could not read the network returned by sawtooth_net({k}): {described.error}"}
    return described.value


def evaluate_layers(layers, x) -> np.ndarray:
    """The function a list of plain Linear/ReLU layers computes at the points x (float64), shape (len(x),)."""
    h = np.asarray(x, dtype=np.float64).reshape(-1, 1)
    for layer in layers:
        if layer[0] == "Linear":
            _, W, b = layer
            if h.shape[1] != W.shape[1]:
                raise ValueError(f"a Linear layer expects {W.shape[1]} inputs but receives {h.shape[1]}")
            h = h @ W.T + (0.0 if b is None else b)
        elif layer[0] == "ReLU":
            h = np.maximum(h, 0.0)
        else:
            raise ValueError(f"module {layer[1]} is neither Linear nor ReLU")
    if h.shape[1] != 1:
        raise ValueError(f"the network has {h.shape[1]} outputs; one is needed")
    return h[:, 0]


def _shape_text(layer) -> str:
    if layer[0] == "Linear":
        return f"Linear({layer[1].shape[1]}, {layer[1].shape[0]})"
    return "ReLU" if layer[0] == "ReLU" else layer[1]


def judge_sawtooth_structure(out: dict, k: int) -> tuple[bool, str]:
    """Verdict: Linear(1, 2), ReLU, (Linear(2, 2), ReLU) x (k - 1), Linear(2, 1): k hidden ReLU layers of width 2."""
    failed = error_verdict(out)
    if failed:
        return failed
    want = ["Linear(1, 2)", "ReLU"] + ["Linear(2, 2)", "ReLU"] * (k - 1) + ["Linear(2, 1)"]
    got = [_shape_text(layer) for layer in out["layers"]]
    if got == want:
        return True, ""
    lines = [f"expected the modules {', '.join(want)}", f"got {', '.join(got) if got else 'an empty Sequential'}"]
    others = sorted({layer[1] for layer in out["layers"] if layer[0] == "other"})
    if got and got[-1] == "ReLU" and got[:-1] == want:
        lines.append("hint: the network ends with a ReLU after the Linear(2, 1) readout: the readout is the last "
                     "module (f_k is already the readout's output; a ReLU after it is not part of the architecture)")
    elif got and got[-1] == "ReLU" and not others and got[-2:-1] == ["Linear(2, 1)"]:
        lines.append("hint: the last module is a ReLU: the network ends with its Linear(2, 1) readout, with no "
                     "activation after it")
    elif others:
        lines.append(f"hint: only Linear and ReLU modules are allowed (found {', '.join(others)})")
    # hidden layers: ReLUs followed by a Linear layer (a ReLU after the readout is diagnosed above)
    hidden = sum(1 for layer, nxt in zip(out["layers"], out["layers"][1:]) if layer[0] == "ReLU" and nxt[0] == "Linear")
    diagnosed = len(lines) > 2
    if hidden != k and not others and not diagnosed:
        lines.append(f"hint: your network has {hidden} ReLU layers; the k-fold composition needs k = {k} "
                     "hidden layers, one per tent")
    elif not diagnosed and any(layer[0] == "Linear" and 2 not in layer[1].shape for layer in out["layers"]):
        lines.append("hint: every hidden layer has exactly 2 units (a wide shallow network is not the point)")
    return False, "\n".join(lines)


def judge_sawtooth_values(out: dict, k: int, x: np.ndarray, expected: np.ndarray,
                          what: str = "") -> tuple[bool, str]:
    """Verdict: the network (evaluated in float64 from its weights) equals f_k at the points x within 1e-6."""
    failed = error_verdict(out)
    if failed:
        return failed
    try:
        got = evaluate_layers(out["layers"], x)
    except ValueError as exc:
        return False, f"could not evaluate your network: {exc}"
    if not np.all(np.isfinite(got)):
        return False, "your network returns non-finite values"
    err = np.abs(got - expected)
    if np.all(err <= VALUE_ATOL):
        return True, ""
    i = int(np.argmax(err))
    # 10 digits, the difference and the tolerance (book/conventions.md rule 11): an error of 2e-6 must show
    lines = [f"{int(np.sum(err > VALUE_ATOL))} of {len(x)} values {what}wrong; worst at x = {x[i]:.10g}: "
             f"f_{k}(x) = {expected[i]:.10g}, your network gives {got[i]:.10g} (off by {err[i]:.3g}, allowed "
             f"{VALUE_ATOL:g})"]
    for j, name in [(k - 1, f"f_{k - 1}"), (k + 1, f"f_{k + 1}")]:
        if j >= 1 and np.all(np.abs(got - sawtooth_values(j, x)) <= VALUE_ATOL):
            lines.append(f"hint: your network computes {name}: one tent too {'few' if j < k else 'many'}")
    if np.all(np.abs(got - expected / 2) <= VALUE_ATOL) or np.all(np.abs(got - 2 * expected) <= VALUE_ATOL):
        lines.append("hint: your values are off by a factor 2: the tent is Δ(x) = 2 relu(x) - 4 relu(x - 1/2), "
                     "with Δ(1/2) = 1")
    return False, "\n".join(lines)


def _dyadic_and_random(k: int, seed: int, n_random: int) -> np.ndarray:
    grid = np.arange(2 ** (k + 1) + 1) / 2 ** (k + 1)
    return np.concatenate([grid, np.random.default_rng(seed).uniform(0, 1, n_random)])


def _visible_sawtooth_net(report: Report, sawtooth_net: Callable) -> None:
    """Check ``sawtooth_net(k)``: the architecture, and the values of f_k on [0, 1] (nothing outside)."""
    for k in (1, 2, 3, 5):
        out = run_sawtooth_net(sawtooth_net, k)
        report.check(f"k = {k}: modules Linear(1, 2), ReLU, (Linear(2, 2), ReLU) x {k - 1}, Linear(2, 1)",
                     lambda: judge_sawtooth_structure(out, k))
        grid = np.arange(2 ** k + 1) / 2 ** k
        mids = (np.arange(2 ** k) + 0.5) / 2 ** k
        x = np.concatenate([grid, mids, (np.arange(2 ** k) + 0.25) / 2 ** k])
        expected = np.concatenate([np.arange(2 ** k + 1) % 2, np.full(2 ** k, 0.5),
                                   np.where(np.arange(2 ** k) % 2 == 0, 0.25, 0.75)])
        report.check(f"k = {k}: f_{k}(j / 2^{k}) is 0 for even j and 1 for odd j (0 and 1 included), 1/2 halfway, "
                     "1/4 or 3/4 at the quarter points",
                     lambda: judge_sawtooth_values(out, k, x, expected.astype(float), "at dyadic points "))
        xr = np.random.default_rng(k).uniform(0, 1, 500)
        report.check(f"k = {k}: 500 random points of [0, 1]: f_{k}(x) = 1 - |2 frac(2^{k - 1} x) - 1|",
                     lambda: judge_sawtooth_values(out, k, xr, sawtooth_values(k, xr), "at random points "))


def _hidden_sawtooth_net(report: Report, sawtooth_net: Callable, grading) -> None:
    for case in grading.sawtooth_cases():
        k = case["k"]
        out = run_sawtooth_net(sawtooth_net, k)
        report.check(f"k = {k}: architecture", lambda: judge_sawtooth_structure(out, k))
        x = _dyadic_and_random(k, 100 + k, 4000)
        report.check(f"k = {k}: values at every multiple of 2^-{k + 1} and 4000 random points of [0, 1]",
                     lambda: judge_sawtooth_values(out, k, x, sawtooth_values(k, x)))
        if case["count"]:
            def pieces_check():
                failed = error_verdict(out) or judge_sawtooth_structure(out, k)
                if not failed[0]:
                    return False, "not checked: the architecture is wrong"
                n = grading.count_linear_pieces(_rebuild(out["layers"]), 0.0, 1.0)
                return (n == 2 ** k), f"your network has {n} linear pieces on [0, 1]; f_{k} has {2 ** k}"
            report.check(f"k = {k}: exactly 2^{k} linear pieces on [0, 1] (exact count)", pieces_check)


def _rebuild(layers) -> torch.nn.Sequential:
    """A fresh float64 nn.Sequential from plain layer data (so that no student object reaches the reference)."""
    modules = []
    for layer in layers:
        if layer[0] == "ReLU":
            modules.append(torch.nn.ReLU())
        else:
            W, b = layer[1], layer[2]
            lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=b is not None, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W))
                if b is not None:
                    lin.bias.copy_(torch.from_numpy(b))
            modules.append(lin)
    return torch.nn.Sequential(*modules)


# ==============================================================================================================
# Part 2: count_linear_pieces(model, a=0.0, b=1.0)
# ==============================================================================================================
def _model_state(model: torch.nn.Module):
    """What counting may not change, bit for bit: core.snapshot (parameters' values, dtype, requires_grad and
    .grad, buffers, the train/eval mode of every submodule) and the modules' types."""
    return snapshot(model), [type(m).__name__ for m in model.modules()]


def _same_state(before, model: torch.nn.Module) -> bool:
    return unchanged(before[0], model) and before[1] == [type(m).__name__ for m in model.modules()]


def as_count(value, what: str) -> int:
    """A returned count as a Python int: an int, a numpy integer, or a number/0-d array with an integer value."""
    if isinstance(value, bool):
        raise TypeError(f"{what} returned a bool; expected an int")
    if isinstance(value, int):
        return int.__add__(value, 0)     # a plain int even for int subclasses (that may redefine ==)
    if isinstance(value, np.integer):
        return int(np.int64(value))
    arr = as_array(value, f"the value returned by {what}")
    if arr.size != 1:
        raise TypeError(f"{what} returned {arr.size} numbers; expected one int")
    v = float(arr.reshape(-1)[0])
    if not np.isfinite(v) or v != np.floor(v):
        raise TypeError(f"{what} returned {v!r}; a number of pieces is an integer")
    return int(v)


def run_count_linear_pieces(fn: Callable, model: torch.nn.Module, a=None, b=None) -> dict:
    """Harness: count the pieces of ``model`` on [a, b] (defaults when a, b are None); record modifications."""
    before = _model_state(model)
    if a is None:
        call = call_student(fn, model)
    else:
        call = call_student(fn, model, a=a, b=b)
    modified = not _same_state(before, model)
    what = "count_linear_pieces(model)" if a is None else f"count_linear_pieces(model, a={a}, b={b})"
    if not call.ok:
        return {"error": f"{what} raised {call.error}", "modified": modified}
    try:
        return {"value": as_count(call.value, what), "modified": modified}
    except TypeError as exc:
        return {"error": str(exc), "modified": modified}


def judge_count(out: dict, expected: int, hints: dict | None = None) -> tuple[bool, str]:
    """Verdict: the count equals the expected number of pieces exactly; name the mistake a known wrong count
    points at (``hints``: wrong count -> hint)."""
    failed = error_verdict(out)
    if failed:
        return failed
    got = out["value"]
    if got == expected:
        return True, ""
    lines = [f"expected {expected} linear pieces, got {got}"]
    if hints and got in hints:
        lines.append("hint: " + hints[got])
    elif got == expected - 1:
        lines.append("hint: one less than expected: are you counting kinks (breakpoints between pieces) "
                     "instead of pieces?")
    elif got > expected:
        lines.append("hint: more pieces than there are: a kink can cancel (equal slopes on both sides, up to "
                     "rounding) and a unit can feed a zero weight; merge adjacent intervals with the same slope")
    return False, "\n".join(lines)


def build_sequential(*items, dtype=torch.float64) -> torch.nn.Sequential:
    """nn.Sequential from ("L", W, b) entries (b None: no bias) and "R" entries; weights stored exactly."""
    modules = []
    for item in items:
        if item == "R":
            modules.append(torch.nn.ReLU())
            continue
        _, W, b = item
        W = np.atleast_2d(np.asarray(W, dtype=np.float64))
        lin = torch.nn.Linear(W.shape[1], W.shape[0], bias=b is not None, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W))
            if b is not None:
                lin.bias.copy_(torch.tensor(np.asarray(b, dtype=np.float64).reshape(-1)))
        modules.append(lin)
    return torch.nn.Sequential(*modules).to(dtype)


def _visible_count_cases():
    """Tiny networks whose pieces are known by construction, with hints for the counts known mistakes give."""
    breakpoints = "you count breakpoints (or activation changes), but two kinks cancel here: the function is affine"
    close = ("two kinks 1e-9 apart were merged: a sampling grid, float32 arithmetic or a tolerance on the "
             "positions coarser than 1e-9 cannot separate them (in float64 they are distinct)")
    narrow = ("these pieces are about 1e-9 wide, narrower than any sampling grid: count the pieces exactly from the "
              "weights (the breakpoints of each layer, then merge equal slopes), not by sampling")
    c = 0.6180339887
    # a comb: 2500 units relu(x - c_i), c_i = (i + 1/2) / 2500, output weights alternately +1 and -1
    n = 2500
    centers = (np.arange(n) + 0.5) / n
    comb = build_sequential(("L", np.ones((n, 1)), -centers), "R", ("L", np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[None], [0.]))
    # one hidden layer in float32 with dyadic kinks, some outside [-1, 2]: 1 + (kinks strictly inside)
    kinks = np.array([-1.5, -1.0, -0.25, 0.5, 1.75, 2.0, 3.0])
    w = np.array([1.0, 2.0, -1.0, 4.0, 0.5, 1.0, -2.0])
    v = np.array([1.0, -1.0, 0.5, 2.0, -3.0, 1.0, 1.0])
    one_layer = build_sequential(("L", w[:, None], -w * kinks), "R", ("L", v[None], [0.0]), dtype=torch.float32)
    inside = int(np.sum((kinks > -1) & (kinks < 2)))
    kink_text = "[" + ", ".join(fmt(k) for k in kinks) + "]"
    return [
        dict(name="an affine function (Linear(1, 1) alone), default interval [0, 1]: 1 piece",
             model=lambda: build_sequential(("L", [[2.0]], [1.0])), a=None, b=None, expected=1),
        dict(name="relu(x - 1/2), default interval [0, 1]: 2 pieces",
             model=lambda: build_sequential(("L", [[1.0]], [-0.5]), "R", ("L", [[1.0]], [0.0])), a=None, b=None, expected=2),
        dict(name="relu(x - 1/2) on [0.6, 2] (the kink is outside): 1 piece",
             model=lambda: build_sequential(("L", [[1.0]], [-0.5]), "R", ("L", [[1.0]], [0.0])), a=0.6, b=2.0, expected=1,
             hints={2: "the interval is [a, b], not [0, 1]: a kink outside [a, b] does not split it"}),
        dict(name="relu(x - 1/2) on [-1, 0.5] (the kink is the endpoint b): 1 piece",
             model=lambda: build_sequential(("L", [[1.0]], [-0.5]), "R", ("L", [[1.0]], [0.0])), a=-1.0, b=0.5, expected=1,
             hints={2: "a kink at an endpoint of [a, b] does not split the interval"}),
        dict(name="|x - 0.3| = relu(x - 0.3) + relu(0.3 - x) on [0, 1]: 2 pieces",
             model=lambda: build_sequential(("L", [[1.0], [-1.0]], [-0.3, 0.3]), "R", ("L", [[1.0, 1.0]], [0.0])),
             a=0.0, b=1.0, expected=2, hints={3: "both units have their kink at 0.3: it is one kink"}),
        dict(name="relu(x - 0.3) - relu(0.3 - x) = x - 0.3 on [0, 1] (the kinks cancel): 1 piece",
             model=lambda: build_sequential(("L", [[1.0], [-1.0]], [-0.3, 0.3]), "R", ("L", [[1.0, -1.0]], [0.0])),
             a=0.0, b=1.0, expected=1, hints={2: breakpoints, 3: breakpoints}),
        dict(name="0.949 relu(1.378 x + c) - 0.4745 relu(2.756 x + 2c) + 0.861 relu(1.121 x + 5) + 0.9 relu(1.3 x - "
                  "0.806), c = -1.378 * 0.434, on [0, 1]: the first two kinks (at -c/1.378) cancel exactly, the slopes "
                  "are rounded: 2 pieces",
             model=lambda: build_sequential(("L", [[1.378], [2 * 1.378], [1.121], [1.3]],
                                 [-(1.378 * 0.434), -2 * (1.378 * 0.434), 5.0, -0.806]),
                                "R", ("L", [[0.949, -0.949 / 2, 0.861, 0.9]], [0.0])), a=0.0, b=1.0, expected=2,
             hints={3: "the slope changes of two kinks cancel exactly, but rounding makes the computed slopes "
                       "differ in the last bits: compare slopes with a relative tolerance, not =="}),
        dict(name="relu(x - 0.3) + relu(x - 0.3 - 1e-9) on [0, 1] (kinks 1e-9 apart): 3 pieces",
             model=lambda: build_sequential(("L", [[1.0], [1.0]], [-0.3, -0.3 - 1e-9]), "R", ("L", [[1.0, 1.0]], [0.0])),
             a=0.0, b=1.0, expected=3, hints={2: close}, weight=2.0),
        dict(name="0 * relu(x - 0.5) + relu(x - 0.25) on [0, 1] (a unit feeding a zero weight): 2 pieces",
             model=lambda: build_sequential(("L", [[1.0], [1.0]], [-0.5, -0.25]), "R", ("L", [[0.0, 1.0]], [0.0])),
             a=0.0, b=1.0, expected=2, hints={3: "a unit whose output weight is 0 adds no kink"}),
        dict(name="depth 2: relu(|x| - 1/2) on [-1, 1] (the kink of |x| at 0 is hidden): 3 pieces",
             model=lambda: build_sequential(("L", [[1.0], [-1.0]], [0.0, 0.0]), "R", ("L", [[1.0, 1.0]], [-0.5]), "R",
                                ("L", [[1.0]], [0.0])), a=-1.0, b=1.0, expected=3,
             hints={4: "the kink of |x| at 0 lies where relu(|x| - 1/2) is 0: it does not show; count where the "
                       "function's slope changes, not where a unit switches"}),
        dict(name="Linear layers without bias: relu(x) + relu(-x) = |x| on [-1, 1]: 2 pieces",
             model=lambda: build_sequential(("L", [[1.0], [-1.0]], None), "R", ("L", [[1.0, 1.0]], None)), a=-1.0, b=1.0,
             expected=2),
        dict(name="a trailing ReLU: relu(0.2 - relu(x - 0.5)) on [0, 1]: 3 pieces",
             model=lambda: build_sequential(("L", [[1.0]], [-0.5]), "R", ("L", [[-1.0]], [0.2]), "R"), a=0.0, b=1.0,
             expected=3),
        dict(name=f"float32 network, one hidden layer of 7 units with kinks at {kink_text} on [-1, 2]: "
                  f"{inside + 1} pieces", model=lambda: one_layer, a=-1.0, b=2.0, expected=inside + 1,
             hints={len(kinks) + 1: "kinks outside [a, b] or at its endpoints do not count"}),
        dict(name=f"a comb of {n} units with kinks (i + 1/2)/{n} on [0, 1]: {n + 1} pieces", model=lambda: comb,
             a=0.0, b=1.0, expected=n + 1),
        # Pieces narrower than any sampling grid (1e-9 wide): only an exact count from the weights finds them; these
    # cases weigh double, since the notebook asks for an exact count, not a sampled one.
        dict(name="a spike 2e-9 wide: relu(x - c) - 2 relu(x - c - 1e-9) + relu(x - c - 2e-9), c = 0.6180339887, "
                  "on [0, 1]: 4 pieces",
             model=lambda: build_sequential(("L", [[1.0], [1.0], [1.0]], [-c, -c - 1e-9, -c - 2e-9]), "R",
                                            ("L", [[1.0, -2.0, 1.0]], [0.0])),
             a=0.0, b=1.0, expected=4, hints={1: narrow, 2: narrow, 3: narrow}, weight=2.0),
        dict(name="depth 2: a hump relu(1e-9 - |x - 0.45|), 2e-9 wide, made in the second layer, on [0, 1]: 4 pieces",
             model=lambda: build_sequential(("L", [[1.0], [-1.0]], [-0.45, 0.45]), "R", ("L", [[-1.0, -1.0]], [1e-9]),
                                            "R", ("L", [[1.0]], [0.0])),
             a=0.0, b=1.0, expected=4, hints={1: narrow, 2: narrow, 3: narrow}, weight=2.0),
        dict(name="50 kinks 1e-9 apart: the sum of relu(x - 0.2 - i 1e-9), i = 0..49, on [0, 1]: 51 pieces",
             model=lambda: build_sequential(("L", np.ones((50, 1)), -(0.2 + 1e-9 * np.arange(50))), "R",
                                            ("L", np.ones((1, 50)), [0.0])),
             a=0.0, b=1.0, expected=51, hints={k: narrow for k in range(1, 51)}, weight=2.0),
    ]


def judge_count_purity(outs: list[tuple[str, dict]], n_correct: int) -> tuple[bool, str]:
    """Verdict: no call modified the model; it counts only when some count was right (a function that returns a
    constant without looking at the model has not shown anything)."""
    if n_correct == 0:
        return False, "not checked: none of your counts was right"
    return judge_purity(outs)


def _run_counted_cases(report: Report, cases, harness, judge, purity_what: str) -> None:
    """Like core.run_cases, with the purity check of :func:`judge_count_purity`."""
    outs, verdicts = [], []
    for case in cases:
        out = harness(case)
        outs.append((case["name"], out))
        verdicts.append(report.check(case["name"], lambda: judge(case, out), case.get("weight", 1.0)))
    n_correct = sum(v.passed for v in verdicts)
    report.check(f"leaves {purity_what} unchanged", lambda: judge_count_purity(outs, n_correct))


def _visible_count_linear_pieces(report: Report, count_linear_pieces: Callable) -> None:
    """Check ``count_linear_pieces(model, a=0.0, b=1.0)``: exact counts of maximal affine intervals."""
    _run_counted_cases(report, _visible_count_cases(),
                       lambda case: run_count_linear_pieces(count_linear_pieces, case["model"](), case["a"],
                                                            case["b"]),
                       lambda case, out: judge_count(out, case["expected"], case.get("hints")),
                       "the model (parameters, dtype, requires_grad, train/eval mode)")


def _hidden_count_linear_pieces(report: Report, count_linear_pieces: Callable, grading) -> None:
    fresh = {}

    def harness(case):
        fresh[case["name"]] = case["model"]()
        return run_count_linear_pieces(count_linear_pieces, copy.deepcopy(fresh[case["name"]]), case["a"],
                                       case["b"])

    def judge(case, out):
        expected = case.get("expected")
        if expected is None:
            expected = grading.count_linear_pieces(fresh[case["name"]], case["a"], case["b"])
        return judge_count(out, expected)

    # the student's own case (their data seed and interval: the part's variant) with the others
    _run_counted_cases(report, grading.count_cases() + report.own_cases(grading), harness, judge,
                       "the model in the hidden cases")


# ==============================================================================================================
# Part 3: shallow_approximation(k, t) -> (knots, values, error)
# ==============================================================================================================
def run_shallow_approximation(fn: Callable, k: int, t: int) -> dict:
    """Harness: call the student's function; return knots, values and the reported error as float64 data."""
    what = f"shallow_approximation({k}, {t})"
    call = call_student(fn, k, t)
    if not call.ok:
        return {"error": f"{what} raised {call.error}"}
    if not isinstance(call.value, (tuple, list)) or len(call.value) != 3:
        return {"error": f"{what} must return a triple (knots, values, error); it returned "
                         f"{type(call.value).__name__}"}
    try:
        knots = as_array(call.value[0], "knots")
        values = as_array(call.value[1], "values")
        error = as_array(call.value[2], "error")
    except TypeError as exc:
        return {"error": str(exc)}
    if error.size != 1:
        return {"error": f"the error must be one number; got {error.size}"}
    return {"knots": knots, "values": values, "reported": float(error.reshape(-1)[0])}


def judge_shallow_function(out: dict, k: int, t: int) -> tuple[bool, str]:
    """Verdict: (knots, values) define a continuous piecewise-linear function on [0, 1] with at most t pieces."""
    failed = error_verdict(out)
    if failed:
        return failed
    x, y = out["knots"], out["values"]
    if x.ndim != 1 or y.shape != x.shape:
        return False, f"knots and values must be 1-D arrays of the same length; got shapes {x.shape} and {y.shape}"
    if len(x) < 2 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return False, "at least two knots, all knots and values finite"
    if x[0] != 0.0 or x[-1] != 1.0:
        return False, f"the knots must start at 0 and end at 1; got {fmt(x[0])} ... {fmt(x[-1])}"
    if np.any(np.diff(x) <= 0):
        return False, "the knots must be strictly increasing"
    if len(x) > t + 1:
        return False, (f"{len(x)} knots make up to {len(x) - 1} pieces; with t = {t} pieces use at most "
                       f"{t + 1} knots")
    return True, ""


def midpoint_l1(k: int, knots: np.ndarray, values: np.ndarray, cells: int = 3 ** 11) -> float:
    """A numerical estimate of int_0^1 |f_k - g| by the midpoint rule on ``cells`` cells.  The midpoint rule is
    exact on cells where the integrand is linear; each of the at most 2^k + t + (crossings) cells holding a kink
    costs at most (jump / 8) h^2, so for k <= 5, t <= 40 the estimate is within 1e-7.  The cells (3^11 of them) are
    deliberately not dyadic: the estimate is not exact, and not accurate enough for the hidden checks."""
    x = (np.arange(cells) + 0.5) / cells
    return float(np.mean(np.abs(sawtooth_values(k, x) - np.interp(x, knots, values))))


def judge_shallow_error(out: dict, k: int, t: int, true_error: float | None, tol: float) -> tuple[bool, str]:
    """Verdict: the reported error is the L1 distance of the returned function to f_k (within ``tol``)."""
    failed = error_verdict(out) or judge_shallow_function(out, k, t)
    if not failed[0]:
        return False, "not checked: " + failed[1]
    if true_error is None:
        return False, "could not compute the error of your function"
    got = out["reported"]
    if abs(got - true_error) <= tol:
        return True, ""
    lines = [f"you report an L1 error of {got:.10g}; your function's L1 distance to f_{k} is {true_error:.10g} "
             f"(off by {abs(got - true_error):.3g}, allowed {tol:.3g})"]
    if abs(got - lower_bound(k, t)) <= 1e-12:
        lines.append("hint: that is the lower bound, not the error of your function")
    elif abs(got - true_error) <= 1e-3 * max(true_error, 1e-3):
        lines.append("hint: close but not exact: an average over sample points is not the integral; the "
                     "integrand is piecewise linear, so it can be integrated exactly piece by piece")
    return False, "\n".join(lines)


def judge_shallow_bound(out: dict, k: int, t: int) -> tuple[bool, str]:
    """Verdict: the reported error respects the proven lower bound (1 - 2t 2^-k)/8 (no function beats it)."""
    failed = error_verdict(out)
    if failed:
        return failed
    bound = lower_bound(k, t)
    if out["reported"] >= bound - 1e-12:
        return True, ""
    return False, (f"you report {out['reported']:.10g}, below the proven lower bound (1 - 2t 2^-k)/8 = {bound:.10g} "
                   f"for t = {t}, k = {k}: no function with {t} pieces is that close to f_{k}")


def judge_shallow_quality(out: dict, k: int, t: int, true_error: float | None, tol: float) -> tuple[bool, str]:
    """Verdict: the function is at least as good as the stated construction (error <= its error + tol)."""
    failed = error_verdict(out) or judge_shallow_function(out, k, t)
    if not failed[0]:
        return False, "not checked: " + failed[1]
    if true_error is None:
        return False, "could not compute the error of your function"
    target = construction_error(k, t)
    if true_error <= target + tol:
        return True, ""
    hint = ""
    if t >= 2 ** k:
        hint = f"\nhint: with t >= 2^k = {2 ** k} pieces, f_{k} itself is available (error 0)"
    return False, (f"the L1 distance of your function to f_{k} is {true_error:.10g}; the construction of the notebook "
                   f"reaches {target:.10g} with {t} pieces (allowed up to {target + tol:.10g}){hint}")


def _visible_shallow_approximation(report: Report, shallow_approximation: Callable) -> None:
    """Check ``shallow_approximation(k, t) -> (knots, values, error)``."""
    for k, t in [(3, 1), (4, 3), (4, 16), (5, 9), (3, 20)]:
        out = run_shallow_approximation(shallow_approximation, k, t)
        estimate = None
        if not error_verdict(out) and judge_shallow_function(out, k, t)[0]:
            estimate = midpoint_l1(k, out["knots"], out["values"])
        report.check(f"k = {k}, t = {t}: knots from 0 to 1, strictly increasing, at most {t + 1} of them",
                     lambda: judge_shallow_function(out, k, t))
        report.check(f"k = {k}, t = {t}: the reported error is the L1 distance to f_{k} (estimated by the midpoint "
                     "rule on 3^11 cells, within 1e-6)", lambda: judge_shallow_error(out, k, t, estimate, 1e-6))
        report.check(f"k = {k}, t = {t}: the reported error respects the lower bound (1 - 2t 2^-k)/8 = "
                     f"{lower_bound(k, t):.6g}", lambda: judge_shallow_bound(out, k, t))
        report.check(f"k = {k}, t = {t}: at least as good as the construction ({construction_error(k, t):.6g})",
                     lambda: judge_shallow_quality(out, k, t, estimate, 1e-6))


def _hidden_shallow_approximation(report: Report, shallow_approximation: Callable, grading) -> None:
    for case in grading.shallow_cases():
        k, t = case["k"], case["t"]
        out = run_shallow_approximation(shallow_approximation, k, t)
        exact = None
        if not error_verdict(out) and judge_shallow_function(out, k, t)[0]:
            exact = float(grading.l1_to_sawtooth(k, out["knots"], out["values"]))
        tol = L1_RTOL * max(exact or 0.0, 1e-3)
        report.check(f"k = {k}, t = {t}: a valid function with at most {t} pieces",
                     lambda: judge_shallow_function(out, k, t))
        report.check(f"k = {k}, t = {t}: the reported error is its exact L1 distance to f_{k}",
                     lambda: judge_shallow_error(out, k, t, exact, tol))
        report.check(f"k = {k}, t = {t}: at least as good as the construction",
                     lambda: judge_shallow_quality(out, k, t, exact, tol))


# ==============================================================================================================
# The parts of the assignment, declared once: names, points, visible and hidden checks
# ==============================================================================================================
# ==============================================================================================================
# Part 4 (a derivation, autograder.derivation): the number of linear pieces of the k-fold tent map f_k on [a, b],
# 0 < a < 1/2 < b < 1, as a SymPy expression in a, b, k; the reference is ``pieces_on_interval`` of
# solutions/depth/grading.py. The visible values were counted exactly on sawtooth_net(k) (tests/test_depth.py).
# ==============================================================================================================
from .derivation import Derivation  # noqa: E402

PIECES_ON_INTERVAL = Derivation(
    "pieces_on_interval", 2, symbols="a b k", domain={"a": (0.01, 0.49), "b": (0.51, 0.99), "k": range(1, 11)},
    reference="pieces_on_interval", slips="pieces_on_interval_slips",
    # Per-student k (autograder.variants); a and b stay free. Not k = 1: there every [a, b] of the domain holds
    # both pieces of f_1, so the wrong answer 2**k (all the pieces of [0, 1]) would be right. Different k give
    # different counts at almost every (a, b). Proved over every value in tests/test_variants.py.
    variant={"k": ("2", "3", "4", "5", "6", "7", "8", "9", "10")},
    examples=(({"a": "3/10", "b": "4/5", "k": "3"}, "5"), ({"a": "1/10", "b": "9/10", "k": "1"}, "2")))

TOPIC = Topic("depth", [
    Part("sawtooth_net", 3, _visible_sawtooth_net, _hidden_sawtooth_net, purity=None),
    # Per-student hidden case (autograder.variants; the case: count_variant_cases of solutions/depth/grading.py),
    # proven for every combination in tests/test_depth.py.
    Part("count_linear_pieces", 4, _visible_count_linear_pieces, _hidden_count_linear_pieces, purity=None,
         variant={"seed": (1, 2, 3, 4, 5, 6), "a": (-2.0, -1.5, -1.0, -0.5), "b": (0.5, 1.0, 1.5, 2.0)},
         variant_cases="count_variant_cases"),
    Part("shallow_approximation", 3, _visible_shallow_approximation, _hidden_shallow_approximation, purity=None),
    PIECES_ON_INTERVAL,
    Written("written_depth", 2),
])
POINTS = {p.name: p.points for p in TOPIC.parts if isinstance(p, Part)}

check_sawtooth_net = TOPIC.checker("sawtooth_net")
check_count_linear_pieces = TOPIC.checker("count_linear_pieces")
check_shallow_approximation = TOPIC.checker("shallow_approximation")
check_pieces_on_interval = TOPIC.checker("pieces_on_interval")
