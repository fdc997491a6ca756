"""Checks of the assignment ``implicit_bias``: the implicit bias of gradient descent.

Conventions (book/conventions.md):

* least squares: L(w) = (1/2n) |Xw - y|², plain gradient descent from ``w0`` (zeros when ``None``);
* logistic regression: L(w) = (1/n) Σ log(1 + exp(-y_i <w, x_i>)), labels ±1, no intercept, GD from 0
  (Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018: the direction tends to the hard-margin SVM direction);
* matrix factorization: W = W_N ... W_1, every W_k(0) = init_scale · I, loss ½ Σ over the observed entries,
  GD on all factors at once (Gunasekar et al. 2017; Arora, Cohen, Hu & Luo 2019);
* diagonal linear network: β = u⊙u - v⊙v, u(0) = v(0) = α (every entry), GD in (u, v) on (1/2n)|Xβ - y|², u and
  v updated simultaneously (Woodworth et al. 2020).

Each graded function has one entry point, ``check_<name>(student_fn, tests="visible", points=...)``, the last line
of its grade cell.  ``tests="visible"`` runs what a student sees: edge cases (t = 0), one step of gradient descent
written out by hand, closed forms (orthogonal designs, depth 1, two-point SVMs) and properties of the limits
(minimum-norm interpolant, max-margin direction, low rank, sparse versus minimum-ℓ2 interpolant).  This file
contains no implementation of any graded function.  ``tests="all"`` adds the hidden cases, whose inputs and
reference implementations live on the instructor's side in ``solutions/implicit_bias/grading.py``: exact
iterates at several t, non-default starts and scales, rectangular inputs, float32 inputs.

Every check has a harness (``run_*``: calls student code, returns plain data) and a verdict (``judge_*``: a pure
function of plain data).  Tolerances (book/conventions.md, rules 4, 9, 10): GD iterates rtol 1e-5 of the largest entry
(1e-4 for float32 inputs over many steps) plus the same rtol times the natural scale of the case's inputs, so that
an expected 0 (t = 0 from zero) is met by 1e-17; unit vectors 1e-4; limits of long runs as stated in each check,
dtype-aware where float32 rounding accumulates (LIMIT_RTOL, measured).  Answers computed in float32 are accepted.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
from scipy.optimize import linprog, nnls

from .core import (Part, Report, Topic, Written, as_array, call_student, close, compare, error_verdict, fmt,
                   judge_purity, run_cases, snapshot, unchanged)

__all__ = ["check_gd_least_squares", "check_logistic_gd", "check_max_margin_direction",
           "check_gd_matrix_factorization", "check_diag_net_gd", "POINTS"]


GD_RTOL = 1e-5
UNIT_ATOL = 1e-4
# The long visible run of gd_least_squares (1460 steps to the minimum-norm interpolant; it was 1e-6): float64
# answers within 1e-5 of max|w| (the GD tolerance of the conventions; it also holds a float32 computation returned
# as float64, e.g. through .tolist(), with a 2.3x margin), float32 answers (float32 inputs, or a float32 array or
# tensor returned) within 3e-5 (7x margin).  Measured in the issue-10 review on three correct float32
# implementations (numpy float32 X^T (Xw - y); numpy float32 with H = X^T X / n formed once; torch float32
# autograd; the last two are alternatives in tests/test_implicit_bias.py): worst 4.3e-6 of max|w| on both 1460-step
# cases.  The wrong limits this check catches (ridge, the limit from zero instead of from w0) are off by > 1e-3.  Every other GD check keeps 1e-5 (float32 inputs: the case's rtol):
# the worst float32 error measured there is 2.3e-6 (diag_net_gd, alpha 2, 9 steps; 4.3x margin), 1.5e-6 on the
# float32 logistic case, 1.6e-6 on the 1000-step low-rank completion (judged by properties).
LIMIT_RTOL = {"float64": 1e-5, "float32": 3e-5}


# ==============================================================================================================
# Shared harness: call on copies, detect in-place modification, return a float64 vector / matrix
# ==============================================================================================================
def _copy(value):
    return np.array(value) if isinstance(value, np.ndarray) else value


def _modified(args: dict, copies: dict) -> bool:
    """Whether the call changed any argument, bit for bit (values, dtype, shape: core.snapshot), ``copies`` being
    the snapshots taken before the call."""
    return any(not unchanged(copies[k], v) for k, v in args.items())


def _returned_float32(value) -> bool:
    """The student returned a float32 array or tensor (a float32 computation: float32 tolerances apply).  Tensors
    are recognized by their dtype's name: this module does not use torch."""
    if type(value).__module__.startswith("torch") and hasattr(value, "dtype"):
        return str(value.dtype) == "torch.float32"
    if isinstance(value, dict):
        return any(_returned_float32(v) for v in value.values())
    return isinstance(value, (np.ndarray, np.float32)) and value.dtype == np.float32


def _scale(*arrays) -> float:
    """max |entry| over the given arrays (None skipped): the natural scale of a case's inputs, for absolute floors."""
    return max([float(np.max(np.abs(np.asarray(a, dtype=float)), initial=0.0)) for a in arrays if a is not None],
               default=0.0)


def run_array(fn: Callable, what: str, shape: tuple, args: dict, positional: tuple) -> dict:
    """Harness: call ``fn`` with copies of ``args`` (passed positionally in the order ``positional``, the rest by
    keyword); return ``{"value": float64 array of shape ``shape``}`` or ``{"error": ...}``, and ``modified``."""
    args = {k: _copy(v) for k, v in args.items()}
    copies = {k: snapshot(v) for k, v in args.items()}
    call = call_student(fn, *[args[k] for k in positional],
                        **{k: v for k, v in args.items() if k not in positional})
    modified = _modified(args, copies)
    if not call.ok:
        return {"error": f"{what} raised {call.error}", "modified": modified}
    try:
        value = as_array(call.value, f"the value returned by {what}")
    except TypeError as exc:
        return {"error": str(exc), "modified": modified}
    if value.shape != shape:
        if value.size == int(np.prod(shape)) and len(shape) == 1:
            value = value.reshape(shape)  # (d, 1) or (1, d) for a vector is fine
        else:
            return {"error": f"{what} returned shape {value.shape}; expected {shape}", "modified": modified}
    return _finite(value, what) | {"modified": modified, "float32": _returned_float32(call.value)}


def _finite(value: np.ndarray, what: str) -> dict:
    """``{"value": value}``, or an error when it has nan or inf entries (the verdicts then never see them)."""
    if np.all(np.isfinite(value)):
        return {"value": value}
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(value))[0])
    return {"error": f"{what} returned a non-finite value {value[idx]} at index {idx} (did the iteration diverge "
                     "or overflow?)"}


def judge_iterate(out: dict, expected, rtol: float = GD_RTOL, variants: dict | None = None,
                  what: str = "w", scale: float = 0.0) -> tuple[bool, str]:
    """Verdict: the returned iterate is within ``rtol`` · (max|expected| + ``scale``) of ``expected`` entrywise.

    ``scale`` is the natural scale of the case's inputs (book/conventions.md rule 9): an expected 0 (the iterate at t = 0
    from zero) is then met by a closed form that rounds to 1e-17, not only by an exact 0."""
    return error_verdict(out) or compare(out["value"], np.asarray(expected, dtype=float), what=what, rtol=rtol,
                                         atol=rtol * scale, variants=_finite_variants(variants))


def _finite_variants(variants: dict | None) -> dict:
    """Known-mistake answers that are finite (a diverging mistake, e.g. a learning rate n times too large, would
    otherwise 'match' anything within an infinite tolerance)."""
    return {hint: v for hint, v in (variants or {}).items() if np.all(np.isfinite(np.asarray(v, dtype=float)))}


def _is_float32(*arrays) -> bool:
    return any(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)


# ==============================================================================================================
# Part 1: gd_least_squares(X, y, lr, steps, w0=None)
# ==============================================================================================================
def run_gd_least_squares(fn: Callable, case: dict) -> dict:
    d = np.shape(case["X"])[1]
    args = {"X": case["X"], "y": case["y"], "lr": case["lr"], "steps": case["steps"]}
    if case.get("w0") is not None:
        args["w0"] = case["w0"]
    return run_array(fn, "gd_least_squares", (d,), args, ("X", "y", "lr", "steps"))


def _ls_variants(case: dict, step_fn: Callable[[dict], np.ndarray]) -> dict:
    """Answers of known mistakes, each computed by ``step_fn`` (a closed form or the reference) on other args."""
    n = np.shape(case["X"])[0]
    out = {}
    if n > 1:
        out[f"this is gradient descent on the summed loss ½|Xw - y|² (a learning rate n = {n} times too large): "
            "the loss is the mean (1/2n)|Xw - y|²"] = step_fn(dict(case, lr=case["lr"] * n))
    if case.get("w0") is not None and np.any(np.asarray(case["w0"]) != 0):
        out["this is the iterate started from zero: start from w0 when it is given"] = step_fn(dict(case, w0=None))
    for shift in (-1, 1):
        if case["steps"] + shift >= 0:
            out[f"this is the iterate after {case['steps'] + shift} steps instead of {case['steps']}"] = \
                step_fn(dict(case, steps=case["steps"] + shift))
    return out


def _ls_scale(case: dict) -> float:
    """The natural scale of w: max|w0| and max|y| / max|X| (the units of a solution of Xw = y)."""
    return max(_scale(case.get("w0")), _scale(case["y"]) / max(_scale(case["X"]), 1e-300))


def _diagonal_gd(case: dict) -> np.ndarray:
    """Closed form when X^T X / n = diag(λ): each coordinate w_j(t) = w*_j + (1 - lr λ_j)^t (w0_j - w*_j)."""
    X, y = np.asarray(case["X"], float), np.asarray(case["y"], float)
    n = len(y)
    lam = np.sum(X * X, axis=0) / n
    w_star = (X.T @ y / n) / lam
    w0 = np.zeros(X.shape[1]) if case.get("w0") is None else np.asarray(case["w0"], float)
    return w_star + (1 - case["lr"] * lam) ** case["steps"] * (w0 - w_star)


def _visible_gd_least_squares(report: Report, gd_least_squares: Callable) -> None:
    """Check ``gd_least_squares(X, y, lr, steps, w0=None)``: the iterate after ``steps`` steps of plain GD on
    (1/2n)|Xw - y|² from w0 (zeros when None)."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(3, 4))
    y = rng.normal(size=3)
    w0 = rng.normal(size=4)
    # X with orthogonal columns of different norms: X^T X / n is diagonal and GD decouples by coordinate.
    Q = np.linalg.qr(rng.normal(size=(5, 3)))[0]
    X_orth = Q * np.array([2.0, 1.0, 0.5]) * np.sqrt(5)
    y_orth = rng.normal(size=5)
    w0_orth = np.array([1.0, -2.0, 0.5])
    # Underdetermined system: 4 equations, 7 unknowns.
    X_under = rng.normal(size=(4, 7))
    y_under = rng.normal(size=4)
    w0_under = rng.normal(size=7)
    lam = np.linalg.eigvalsh(X_under @ X_under.T / 4)
    lr_under = 1.0 / lam.max()
    steps_under = int(np.ceil(np.log(1e-13) / np.log(1 - lr_under * lam.min())))
    pinv = np.linalg.pinv(X_under)
    cases = [
        (dict(name="steps = 0 returns w0 (X 3x4, w0 given)", X=X, y=y, lr=0.1, steps=0, w0=w0), w0, None),
        (dict(name="steps = 0 with w0 = None returns zeros", X=X, y=y, lr=0.1, steps=0), np.zeros(4), None),
        (dict(name="one step from 0 (X 3x4, lr 0.1): w_1 = lr X^T y / n", X=X, y=y, lr=0.1, steps=1),
         0.1 * X.T @ y / 3, None),
        (dict(name="orthogonal columns (X^T X / n = diag(4, 1, 0.25)), w0 = [1, -2, 0.5], lr 0.3, 6 steps: "
                   "w_j(t) = w*_j + (1 - lr λ_j)^t (w0_j - w*_j)", X=X_orth, y=y_orth, lr=0.3, steps=6, w0=w0_orth),
         _diagonal_gd(dict(X=X_orth, y=y_orth, lr=0.3, steps=6, w0=w0_orth)), _diagonal_gd),
        (dict(name=f"underdetermined X 4x7 from 0, lr = 1/λ_max, {steps_under} steps: the minimum-norm "
                   "interpolant X^+ y", X=X_under, y=y_under, lr=lr_under, steps=steps_under), pinv @ y_under, None),
        (dict(name=f"the same from w0 != 0: X^+ y + (I - X^+ X) w0 (w0's component in the null space stays)",
              X=X_under, y=y_under, lr=lr_under, steps=steps_under, w0=w0_under),
         pinv @ y_under + (np.eye(7) - pinv @ X_under) @ w0_under, None),
    ]

    def judge(case, out):
        expected, closed_form = case["expected"], case["closed_form"]
        variants = _ls_variants(case, closed_form) if closed_form else {}
        if case["steps"] == 1 and case.get("w0") is None:
            variants["this is lr X^T y: the mean loss (1/2n)|Xw - y|² has gradient X^T (Xw - y) / n"] = \
                case["lr"] * case["X"].T @ case["y"]
        if case["steps"] > 100 and case.get("w0") is not None:
            variants["this is X^+ y, the limit from zero: from w0 the component of w0 in the null space of X "
                     "never changes"] = pinv @ y_under
        if case["steps"] > 100:
            float32 = out.get("float32") or _is_float32(case["X"], case["y"], case.get("w0"))
            rtol = LIMIT_RTOL["float32" if float32 else "float64"]
            return judge_iterate(out, expected, rtol, variants, scale=_ls_scale(case))
        return judge_iterate(out, expected, GD_RTOL, variants, scale=_ls_scale(case))

    run_cases(report, [dict(case, expected=e, closed_form=c) for case, e, c in cases],
              lambda case: run_gd_least_squares(gd_least_squares, case), judge, "X, y and w0")


def _hidden_gd_least_squares(report: Report, gd_least_squares: Callable, grading) -> None:

    def reference(case):
        return grading.gd_least_squares(case["X"], case["y"], case["lr"], case["steps"], case.get("w0"))

    def judge_hidden(case, out):
        rtol = 1e-4 if _is_float32(case["X"], case["y"]) and case["steps"] > 10 else GD_RTOL
        return judge_iterate(out, reference(case), rtol, _ls_variants(case, reference), scale=_ls_scale(case))

    run_cases(report, grading.gd_least_squares_cases(), lambda case: run_gd_least_squares(gd_least_squares, case),
              judge_hidden, "X, y and w0 in the hidden cases")


# ==============================================================================================================
# Part 2: logistic_gd(X, y, lr, checkpoints) -> {t: w_t}
# ==============================================================================================================
def run_logistic_gd(fn: Callable, X, y, lr, checkpoints) -> dict:
    """Harness: one call with all checkpoints; return ``{"iterates": {t: float64 (d,)}}`` or an error."""
    X, y, cps = np.array(X), np.array(y), list(checkpoints)
    before, cps_copy = [snapshot(X), snapshot(y)], list(cps)
    d = X.shape[1]
    call = call_student(fn, X, y, lr, cps)
    modified = not (unchanged(before[0], X) and unchanged(before[1], y) and cps == cps_copy)
    if not call.ok:
        return {"error": f"logistic_gd raised {call.error}", "modified": modified}
    if not isinstance(call.value, Mapping):
        return {"error": f"logistic_gd must return a dict {{t: w_t}}; it returned {type(call.value).__name__}",
                "modified": modified}
    iterates = {}
    for t in cps:
        if t not in call.value:
            keys = sorted(call.value, key=repr)[:8]
            return {"error": f"the dict returned by logistic_gd has no key {t} (checkpoints {cps}; keys "
                             f"{keys}): return one iterate per checkpoint, keyed by the integer t",
                    "modified": modified}
        try:
            w = as_array(call.value[t], f"w_{t}")
        except TypeError as exc:
            return {"error": str(exc), "modified": modified}
        if w.size != d:
            return {"error": f"w_{t} has shape {w.shape}; expected ({d},) (no intercept: one weight per feature)",
                    "modified": modified}
        finite = _finite(w, f"logistic_gd (its w_{t})")
        if "error" in finite:
            return finite | {"modified": modified}
        iterates[t] = w.reshape(d)
    return {"iterates": iterates, "modified": modified}


def judge_logistic_iterates(out: dict, expected: dict, rtol, variants: dict | None = None,
                            scale: float = 0.0) -> tuple[bool, str]:
    """Verdict: each requested iterate w_t within rtol (a number, or {t: rtol}) of ``expected[t]``, relative to
    max|w_t| + ``scale`` (the natural scale of w, 1 / max|X|: w_0 = 0 is met by 1e-17, book/conventions.md rule 9)."""
    failed = error_verdict(out)
    if failed:
        return failed
    messages = []
    for t, want in expected.items():
        tol = rtol[t] if isinstance(rtol, dict) else rtol
        var = {hint: v[t] for hint, v in (variants or {}).items() if t in v}
        ok, msg = compare(out["iterates"][t], want, what=f"w_{t}", rtol=tol, atol=tol * scale,
                          variants=_finite_variants(var))
        if not ok:
            messages.append(msg)
    return (not messages), "\n".join(messages)


def _logistic_loss(X, y, w) -> float:
    return float(np.mean(np.logaddexp(0.0, -y * (X @ w))))


def judge_loss_decreases(out: dict, X, y) -> tuple[bool, str]:
    """Verdict: the training loss strictly decreases along the checkpoints (lr below 2 / smoothness)."""
    failed = error_verdict(out)
    if failed:
        return failed
    ts = sorted(out["iterates"])
    losses = [_logistic_loss(X, y, out["iterates"][t]) for t in ts]
    for (t1, l1), (t2, l2) in zip(zip(ts, losses), zip(ts[1:], losses[1:])):
        if not l2 < l1:
            return False, (f"the loss (1/n) Σ log(1 + exp(-y_i <w, x_i>)) does not decrease: {l1:.6g} at t = {t1}, "
                           f"{l2:.6g} at t = {t2}; with lr below 2 / smoothness every GD step decreases it "
                           "(are you ascending, or are the labels not ±1?)")
    return True, ""


def judge_max_margin_limit(out: dict, u_hat: np.ndarray, w_hat_norm: float, max_gap: float) -> tuple[bool, str]:
    """Verdict (Soudry et al. 2018): w_t / |w_t| approaches the max-margin direction û (the gap at the last
    checkpoint is below ``max_gap`` and smaller than at the first), and |w_t| grows like |ŵ| ln t."""
    failed = error_verdict(out)
    if failed:
        return failed
    ts = sorted(out["iterates"])
    norms = {t: float(np.linalg.norm(out["iterates"][t])) for t in ts}
    if min(norms.values()) == 0 or not all(np.isfinite(list(norms.values()))):
        return False, f"|w_t| at t = {ts}: {[fmt(norms[t]) for t in ts]}; expected positive, finite norms"
    gaps = {t: float(np.linalg.norm(out["iterates"][t] / norms[t] - u_hat)) for t in ts}
    first, last = ts[1], ts[-1]   # the early trajectory may cross û by chance: compare from the second checkpoint
    messages = []
    if not (gaps[last] < max_gap and gaps[last] < gaps[first]):
        messages.append(f"|w_t/|w_t| - û| = {fmt(gaps[first])} at t = {first}, {fmt(gaps[last])} at t = {last}; "
                        f"expected below {max_gap} at t = {last} and decreasing, towards the max-margin direction "
                        f"û = {fmt(u_hat)} (your direction at t = {last}: {fmt(out['iterates'][last] / norms[last])})")
        messages.append("hint: without an intercept the limit is the SVM through the origin; an intercept (a "
                        "column of ones) changes the limit direction")
    t_prev = ts[-2]
    growth = norms[last] - norms[t_prev]
    expected_growth = w_hat_norm * np.log(last / t_prev)
    if not abs(growth - expected_growth) <= 0.01 * expected_growth:
        messages.append(f"|w_{last}| - |w_{t_prev}| = {fmt(growth)}; the norm grows like |ŵ| ln t, so expected "
                        f"|ŵ| ln({last}/{t_prev}) = {fmt(expected_growth)} within 1%")
    return (not messages), "\n".join(messages)


def _two_point_svm(z1: np.ndarray, z2: np.ndarray) -> np.ndarray:
    """The point of the segment [z1, z2] closest to the origin (both points active at the SVM solution)."""
    lam = float(np.clip(z1 @ (z1 - z2) / ((z1 - z2) @ (z1 - z2)), 0.0, 1.0))
    return z1 + lam * (z2 - z1)


# A separable set in R^2 whose max-margin direction has a closed form: the SVM without intercept is the minimum-norm
# point p of the convex hull of the z_i = y_i x_i, here on the segment [z_1, z_2]; ŵ = p / |p|² has margin 1.
SVM_X = np.array([[1.0, 0.5], [-0.5, 1.5], [3.0, 2.0], [-2.0, 0.5]])
SVM_Y = np.array([1.0, -1.0, 1.0, -1.0])


def _visible_logistic_gd(report: Report, logistic_gd: Callable) -> None:
    """Check ``logistic_gd(X, y, lr, checkpoints) -> {t: w_t}``: GD from 0 on the mean logistic loss, labels ±1,
    no intercept, one run that records the iterate after t steps for every t in ``checkpoints``."""
    untouched = []
    rng = np.random.default_rng(21)
    X = rng.normal(size=(5, 3))
    y = np.array([1.0, -1.0, -1.0, 1.0, 1.0])
    n = len(y)

    out = run_logistic_gd(logistic_gd, X, y, 0.5, [0, 1])
    untouched.append(("checkpoints [0, 1]", out))
    w1 = 0.5 * X.T @ y / (2 * n)   # sigmoid(0) = 1/2 for every point
    report.check("checkpoints [0, 1] (X 5x3, lr 0.5): w_0 = 0 and w_1 = lr Σ y_i x_i / (2n) (σ(0) = 1/2)",
                 lambda: judge_logistic_iterates(out, {0: np.zeros(3), 1: w1}, GD_RTOL, scale=1 / _scale(X), variants={
                     f"w_1 is n = {n} times too large: the loss is the mean over the n points": {1: n * w1},
                     "w_1 is twice too large: the gradient of log(1 + exp(-m)) at m = 0 is -1/2": {1: 2 * w1},
                     "w_1 has the wrong sign: gradient descent moves against the gradient": {1: -w1},
                     "this is w_1 for labels in {0, 1} put into log(1 + exp(-y <w, x>)): the labels here are ±1": {
                         1: 0.5 * X.T @ ((y + 1) / 2) / (2 * n)}}))

    out_mixed = run_logistic_gd(logistic_gd, X, y, 0.5, [30, 1, 7])
    out_single = run_logistic_gd(logistic_gd, X, y, 0.5, [30])
    untouched += [("checkpoints [30, 1, 7]", out_mixed), ("checkpoints [30]", out_single)]

    def same_run():
        failed = error_verdict(out_mixed) or error_verdict(out_single) or error_verdict(out)
        if failed:
            return failed
        ok1, msg1 = close(out_mixed["iterates"][1], out["iterates"][1], rtol=GD_RTOL)
        ok2, msg2 = close(out_mixed["iterates"][30], out_single["iterates"][30], rtol=GD_RTOL)
        messages = ([] if ok1 else [f"w_1 with checkpoints [30, 1, 7] differs from w_1 with [0, 1]: {msg1}"]) + \
                   ([] if ok2 else [f"w_30 with checkpoints [30, 1, 7] differs from w_30 with [30]: {msg2}"])
        if messages:
            messages.append("hint: w_t must not depend on the other checkpoints (unsorted checkpoints?); every run "
                            "starts again from w = 0")
        return (not messages), "\n".join(messages)
    report.check("unsorted checkpoints [30, 1, 7]: the same w_1 and w_30 as in separate calls", same_run)

    cps = [10, 100, 1000, 10_000, 100_000]
    lr = 1.0   # the loss is (max eigenvalue of X^T X / n) / 4 ≈ 1.0-smooth here, so lr = 1 < 2 / smoothness
    out_long = run_logistic_gd(logistic_gd, SVM_X, SVM_Y, lr, cps)
    untouched.append(("checkpoints up to 10^5", out_long))
    Z = SVM_Y[:, None] * SVM_X
    p = _two_point_svm(Z[0], Z[1])
    u_hat, w_hat_norm = p / np.linalg.norm(p), 1.0 / np.linalg.norm(p)
    report.check("4 separable points in R^2, lr 1, checkpoints 10 ... 10^5 in one call: the loss decreases",
                 lambda: judge_loss_decreases(out_long, SVM_X, SVM_Y))
    report.check(f"the same run: w_t / |w_t| tends to the max-margin direction û = {fmt(u_hat, 4)} (gap below 0.05 "
                 "at t = 10^5 and smaller than at t = 100: a 1/ln t rate) and |w_t| grows like |ŵ| ln t",
                 lambda: judge_max_margin_limit(out_long, u_hat, w_hat_norm, 0.05))
    report.check("leaves X, y and checkpoints unchanged",
                 lambda: judge_purity(untouched, credited=any(v.passed for v in report.verdicts)))


def _hidden_logistic_gd(report: Report, logistic_gd: Callable, grading) -> None:

    def harness(case):
        return run_logistic_gd(logistic_gd, case["X"], case["y"], case["lr"], case["checkpoints"])

    def judge(case, out):
        expected = grading.logistic_gd(case["X"], case["y"], case["lr"], case["checkpoints"])
        nn = len(case["y"])
        later = grading.logistic_gd(case["X"], case["y"], case["lr"], [t + 1 for t in case["checkpoints"]])
        variants = {
            f"this is gradient descent on the summed loss (lr {nn} times too large): the loss is the mean over "
            "the n points": grading.logistic_gd(case["X"], case["y"], case["lr"] * nn, case["checkpoints"]),
            "these are the iterates one step later: w_t is the iterate after t steps (w_0 = 0)":
                {t: later[t + 1] for t in case["checkpoints"]},
        }
        return judge_logistic_iterates(out, expected, case["rtol"], variants, scale=1 / _scale(case["X"]))

    run_cases(report, grading.logistic_gd_cases(), harness, judge, "X, y and checkpoints in the hidden cases")


# ==============================================================================================================
# Part 3: max_margin_direction(X, y) -> unit vector
# ==============================================================================================================
def run_max_margin_direction(fn: Callable, case: dict) -> dict:
    d = np.shape(case["X"])[1]
    out = run_array(fn, "max_margin_direction", (d,), {"X": case["X"], "y": case["y"]}, ("X", "y"))
    if out.get("error") and f"expected ({d},)" in out["error"] and f"({d + 1},)" in out["error"]:
        out["error"] += " (the SVM here has no intercept: return the d weights only)"
    return out


def _unit(out: dict) -> tuple[bool, str] | None:
    failed = error_verdict(out)
    if failed:
        return failed
    norm = float(np.linalg.norm(out["value"]))
    if not np.isfinite(norm) or abs(norm - 1) > UNIT_ATOL:
        return False, (f"|u| = {norm:.10g} (off by {abs(norm - 1):.3g}, allowed {UNIT_ATOL:g}): return a unit "
                       "vector (divide by its norm)")
    return None


def judge_direction(out: dict, expected: np.ndarray, variants: dict | None = None) -> tuple[bool, str]:
    """Verdict: a unit vector within 1e-4 (entrywise) of the expected direction."""
    failed = _unit(out)
    if failed:
        return failed
    ok, msg = close(out["value"], expected, rtol=0, atol=UNIT_ATOL)
    if ok:
        return True, ""
    lines = [f"direction: {msg}; expected {fmt(expected)}, got {fmt(out['value'])}"]
    for hint, candidate in (variants or {}).items():
        if close(out["value"], candidate, rtol=0, atol=UNIT_ATOL)[0]:
            lines.append("hint: " + hint)
            break
    return False, "\n".join(lines)


def judge_kkt(out: dict, X: np.ndarray, y: np.ndarray) -> tuple[bool, str]:
    """Verdict by an optimality certificate (no reference solution): with γ = min_i y_i <u, x_i> > 0 and
    ŵ = u / γ, the KKT conditions of min ½|w|² s.t. y_i <w, x_i> ≥ 1 hold: ŵ = Σ_{i active} a_i y_i x_i with
    a_i ≥ 0 over the points whose margin is (within 1e-4) the smallest."""
    failed = _unit(out)
    if failed:
        return failed
    u = out["value"]
    Z = y[:, None] * X
    margins = Z @ u
    gamma = float(margins.min())
    if gamma <= 0:
        return False, (f"min_i y_i <u, x_i> = {fmt(gamma)}: u does not separate the data (every point must be on "
                       "its side: y_i <u, x_i> > 0)")
    w_hat = u / gamma
    active = margins <= gamma * (1 + 1e-4)
    coef, residual = nnls(Z[active].T, w_hat)
    if residual <= 1e-4 * np.linalg.norm(w_hat):
        return True, ""
    return False, (f"u separates the data with margin {fmt(gamma)} but is not the max-margin direction: u / γ is "
                   f"not a nonnegative combination of the y_i x_i of the {int(active.sum())} points on the margin "
                   f"(KKT residual {fmt(residual / np.linalg.norm(w_hat))}); a small change of u increases the "
                   "smallest margin")


def _separable(seed: int, n: int, d: int, margin: float = 0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    u = rng.normal(size=d)
    u /= np.linalg.norm(u)
    y = np.where(X @ u >= 0, 1.0, -1.0)
    return X + margin * y[:, None] * u, y


def _visible_max_margin_direction(report: Report, max_margin_direction: Callable) -> None:
    """Check ``max_margin_direction(X, y)``: the unit vector of the hard-margin SVM without intercept,
    argmax_{|u| = 1} min_i y_i <u, x_i>."""
    x1 = np.array([[3.0, -4.0, 1.0]])
    Z = SVM_Y[:, None] * SVM_X
    p = _two_point_svm(Z[0], Z[1])
    mean_dir = Z.mean(axis=0) / np.linalg.norm(Z.mean(axis=0))
    X_kkt, y_kkt = _separable(31, 12, 3)
    X_wide, y_wide = _separable(32, 5, 8)
    cases = [
        dict(name="a single point x = (3, -4, 1) with label -1: u = -x / |x|", X=x1, y=np.array([-1.0]),
             expected=-x1[0] / np.linalg.norm(x1[0]), variants={}),
        dict(name=f"4 points in R^2 (two on the margin): u = p / |p| = {fmt(p / np.linalg.norm(p), 4)}, p the point "
                  "of the hull of the y_i x_i closest to 0", X=SVM_X, y=SVM_Y, expected=p / np.linalg.norm(p),
             variants={"this is the direction of the mean of y_i x_i, not the max-margin direction": mean_dir}),
        dict(name="12 separable points in R^3: unit vector satisfying the KKT conditions", X=X_kkt, y=y_kkt,
             kkt=True),
        dict(name="5 points in R^8 (more dimensions than points): unit vector satisfying the KKT conditions",
             X=X_wide, y=y_wide, kkt=True),
    ]

    def judge(case, out):
        if case.get("kkt"):
            return judge_kkt(out, case["X"], case["y"])
        return judge_direction(out, case["expected"], case["variants"])

    run_cases(report, cases, lambda case: run_max_margin_direction(max_margin_direction, case), judge, "X and y")


def _hidden_max_margin_direction(report: Report, max_margin_direction: Callable, grading) -> None:

    def judge_hidden(case, out):
        expected = grading.max_margin_direction(case["X"], case["y"])
        Zc = np.asarray(case["y"], float)[:, None] * np.asarray(case["X"], float)
        mean = Zc.mean(axis=0)
        return judge_direction(out, expected, {
            "this is the direction of the mean of y_i x_i, not the max-margin direction":
                mean / np.linalg.norm(mean)})

    run_cases(report, grading.max_margin_cases(), lambda case: run_max_margin_direction(max_margin_direction, case),
              judge_hidden, "X and y in the hidden cases")


# ==============================================================================================================
# Part 4: gd_matrix_factorization(mask, target, depth, init_scale, lr, steps) -> W
# ==============================================================================================================
def run_gd_matrix_factorization(fn: Callable, case: dict) -> dict:
    d = np.shape(case["mask"])[0]
    args = {k: case[k] for k in ("mask", "target", "depth", "init_scale", "lr", "steps")}
    return run_array(fn, "gd_matrix_factorization", (d, d), args,
                     ("mask", "target", "depth", "init_scale", "lr", "steps"))


def _mf_scale(case: dict) -> float:
    """The natural scale of the product: init_scale^depth and the observed target entries."""
    return max(abs(case["init_scale"]) ** case["depth"], _scale(np.asarray(case["mask"]) * case["target"]))


def _one_step_factorization(case: dict) -> np.ndarray:
    """After one step from W_k = a I (all k): every factor is a I - lr a^{N-1} G with G = mask ⊙ (a^N I - target),
    so the product is (a I - lr a^{N-1} G)^N."""
    a, N, lr = case["init_scale"], case["depth"], case["lr"]
    d = np.shape(case["mask"])[0]
    G = case["mask"] * (a ** N * np.eye(d) - case["target"])
    F = a * np.eye(d) - lr * a ** (N - 1) * G
    return np.linalg.matrix_power(F, N)


def _depth_one(case: dict) -> np.ndarray:
    """Depth 1 is GD on W itself: observed entries W_ij(t) = T_ij + (1 - lr)^t (W_ij(0) - T_ij), the others stay."""
    d = np.shape(case["mask"])[0]
    W0 = case["init_scale"] * np.eye(d)
    M, T = case["mask"], case["target"]
    return np.where(M > 0, T + (1 - case["lr"]) ** case["steps"] * (W0 - T), W0)


def judge_low_rank_completion(out: dict, mask, target, max_ratio: float, fit: float,
                              recover: float) -> tuple[bool, str]:
    """Verdict: the observed entries are fitted, σ2/σ1 is small (low rank) and the rank-1 target is recovered."""
    failed = error_verdict(out)
    if failed:
        return failed
    W = out["value"]
    if not np.all(np.isfinite(W)):
        return False, "the product has non-finite entries (a learning rate or initialization problem?)"
    scale = np.abs(target).max()
    messages = []
    err_obs = float(np.abs(mask * (W - target)).max())
    if err_obs > fit * scale:
        messages.append(f"observed entries: max |W_ij - target_ij| = {fmt(err_obs)}, expected below {fit * scale:.3g}")
    s = np.linalg.svd(W, compute_uv=False)
    if s[0] == 0 or s[1] / s[0] > max_ratio:
        messages.append(f"singular values {fmt(s)}: σ2/σ1 = {fmt(s[1] / s[0] if s[0] else np.inf)}, expected below "
                        f"{max_ratio} (small initialization finds a low-rank completion)")
    err_all = float(np.abs(W - target).max())
    if err_all > recover * scale:
        messages.append(f"all entries: max |W_ij - target_ij| = {fmt(err_all)}, expected below {recover * scale:.3g} "
                        "(the rank-one completion)")
    return (not messages), "\n".join(messages)


def _visible_gd_matrix_factorization(report: Report, gd_matrix_factorization: Callable) -> None:
    """Check ``gd_matrix_factorization(mask, target, depth, init_scale, lr, steps)``: the product W_N ... W_1 after
    ``steps`` GD steps on ½ Σ_observed (W_ij - target_ij)², every factor starting at init_scale · I."""
    rng = np.random.default_rng(41)
    mask4 = np.array([[1, 1, 0, 1], [0, 1, 1, 0], [1, 0, 1, 1], [1, 1, 0, 0]], dtype=float)
    target4 = rng.normal(size=(4, 4))
    # A rank-1 target of spectral norm 2 with 15 of its 25 entries observed (its rank-1 completion is unique).
    rng5 = np.random.default_rng(3)
    a5, b5 = rng5.normal(size=5), rng5.normal(size=5)
    target5 = 2 * np.outer(a5, b5) / (np.linalg.norm(a5) * np.linalg.norm(b5))
    mask5 = (rng5.random((5, 5)) < 0.6).astype(float)
    base = dict(mask=mask4, target=target4)
    cases = [
        dict(base, name="steps = 0, depth 3, init_scale 0.5: W = 0.5^3 I", depth=3, init_scale=0.5, lr=0.1,
             steps=0, expected=0.125 * np.eye(4)),
        dict(base, name="depth 1, init_scale 0.8, lr 0.3, 7 steps: observed entries T + (1 - lr)^t (W(0) - T), "
                        "unobserved ones stay at W(0)", depth=1, init_scale=0.8, lr=0.3, steps=7,
             expected=_depth_one(dict(base, init_scale=0.8, lr=0.3, steps=7))),
        dict(base, name="one step at depth 3, init_scale 0.7, lr 0.1: W = (a I - lr a^2 G)^3, "
                        "G = mask ⊙ (a^3 I - target)", depth=3, init_scale=0.7, lr=0.1, steps=1,
             expected=_one_step_factorization(dict(base, depth=3, init_scale=0.7, lr=0.1))),
        dict(base, name="one step at depth 2, init_scale 1.3, lr 0.05", depth=2, init_scale=1.3, lr=0.05, steps=1,
             expected=_one_step_factorization(dict(base, depth=2, init_scale=1.3, lr=0.05))),
        dict(mask=mask5, target=target5, name="rank-1 target 5x5, 15 of 25 entries observed, depth 2, init_scale "
                                              "1e-3, lr 0.1, 1000 steps: fits the observed entries (1e-3), "
                                              "σ2/σ1 < 0.01, recovers the target (1e-2)",
             depth=2, init_scale=1e-3, lr=0.1, steps=1000, low_rank=True),
    ]

    def judge(case, out):
        if case.get("low_rank"):
            return judge_low_rank_completion(out, case["mask"], case["target"], 0.01, 1e-3, 1e-2)
        variants = {}
        if case["steps"] == 1:
            k = int(case["mask"].sum())
            variants[f"this is the step for the mean over the {k} observed entries: the loss is ½ Σ, summed"] = \
                _one_step_factorization(dict(case, lr=case["lr"] / k))
            variants["this is the step for the loss over all entries: only the observed ones (mask) count"] = \
                _one_step_factorization(dict(case, mask=np.ones_like(case["mask"])))
            variants["this is the step for the mean over all d² entries: the loss is ½ Σ over the observed ones"] = \
                _one_step_factorization(dict(case, lr=case["lr"] / case["mask"].size))
        if case["depth"] == 1 and case["steps"] > 0:
            for shift in (-1, 1):
                variants[f"this is the product after {case['steps'] + shift} steps instead of {case['steps']}"] = \
                    _depth_one(dict(case, steps=case["steps"] + shift))
        return judge_iterate(out, case["expected"], GD_RTOL, variants, what="W", scale=_mf_scale(case))

    run_cases(report, cases, lambda case: run_gd_matrix_factorization(gd_matrix_factorization, case), judge,
              "mask and target")


def _hidden_gd_matrix_factorization(report: Report, gd_matrix_factorization: Callable, grading) -> None:

    def reference(case, **change):
        c = dict(case, **change)
        return grading.gd_matrix_factorization(c["mask"], c["target"], c["depth"], c["init_scale"], c["lr"],
                                               c["steps"])

    def judge_hidden(case, out):
        k = int(np.sum(case["mask"]))
        variants = {
            f"this is the product after {case['steps'] - 1} steps instead of {case['steps']}":
                reference(case, steps=case["steps"] - 1),
            f"this is gradient descent on the mean over the {k} observed entries: the loss is ½ Σ, summed":
                reference(case, lr=case["lr"] / k),
            "this is gradient descent on all entries: only the observed ones (mask) count":
                reference(case, mask=np.ones_like(case["mask"])),
        }
        return judge_iterate(out, reference(case), case["rtol"], variants, what="W", scale=_mf_scale(case))

    run_cases(report, grading.matrix_factorization_cases(),
              lambda case: run_gd_matrix_factorization(gd_matrix_factorization, case), judge_hidden,
              "mask and target in the hidden cases")


# ==============================================================================================================
# Part 5: diag_net_gd(X, y, alpha, lr, steps) -> beta
# ==============================================================================================================
def run_diag_net_gd(fn: Callable, case: dict) -> dict:
    d = np.shape(case["X"])[1]
    args = {k: case[k] for k in ("X", "y", "alpha", "lr", "steps")}
    return run_array(fn, "diag_net_gd", (d,), args, ("X", "y", "alpha", "lr", "steps"))


def _diag_scale(case: dict) -> float:
    """The natural scale of β: alpha² and max|y| / max|X|."""
    return max(case["alpha"] ** 2, _scale(case["y"]) / max(_scale(case["X"]), 1e-300))


def _diag_one_step(case: dict) -> np.ndarray:
    """One step from u = v = α: with c = X^T y / n, u_1 = α (1 + 2 lr c), v_1 = α (1 - 2 lr c), β_1 = 8 α² lr c."""
    X, y = np.asarray(case["X"], float), np.asarray(case["y"], float)
    return 8 * case["alpha"] ** 2 * case["lr"] * X.T @ y / len(y)


def _min_l1_interpolant(X, y) -> np.ndarray:
    """argmin |β|_1 s.t. Xβ = y, by linear programming on β = p - q, p, q ≥ 0."""
    d = X.shape[1]
    res = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=[(0, None)] * (2 * d), method="highs")
    return res.x[:d] - res.x[d:]


def judge_limit(out: dict, expected: np.ndarray, rtol: float, what: str, other: np.ndarray | None,
                other_name: str) -> tuple[bool, str]:
    """Verdict: β within rtol · max|expected| of the expected interpolant; say so if it is the other one."""
    failed = error_verdict(out)
    if failed:
        return failed
    ok, msg = close(out["value"], expected, rtol=rtol)
    if ok:
        return True, ""
    lines = [f"β should be close to the {what} {fmt(expected)}: {msg}"]
    if other is not None and close(out["value"], other, rtol=rtol)[0]:
        lines.append(f"hint: your β is the {other_name} instead")
    return False, "\n".join(lines)


def _visible_diag_net_gd(report: Report, diag_net_gd: Callable) -> None:
    """Check ``diag_net_gd(X, y, alpha, lr, steps)``: β = u⊙u - v⊙v after ``steps`` simultaneous GD steps in
    (u, v) on (1/2n)|Xβ - y|², from u = v = α."""
    rng = np.random.default_rng(51)
    X = rng.normal(size=(3, 5))
    y = rng.normal(size=3)
    x_row = np.array([[2.0, 1.0, -0.5, 0.25, -1.2]])
    y_row = np.array([3.0])
    l1 = _min_l1_interpolant(x_row, y_row)          # all weight on the largest |x_j|: (1.5, 0, 0, 0, 0)
    l2 = np.linalg.pinv(x_row) @ y_row
    cases = [
        dict(name="steps = 0 (alpha 0.7): β = α² - α² = 0", X=X, y=y, alpha=0.7, lr=0.1, steps=0,
             expected=np.zeros(5)),
        dict(name="one step (X 3x5, alpha 0.5, lr 0.1): β_1 = 8 α² lr X^T y / n", X=X, y=y, alpha=0.5, lr=0.1,
             steps=1, expected=_diag_one_step(dict(X=X, y=y, alpha=0.5, lr=0.1))),
        dict(name="one step with alpha 1.5, lr 0.02", X=X, y=y, alpha=1.5, lr=0.02, steps=1,
             expected=_diag_one_step(dict(X=X, y=y, alpha=1.5, lr=0.02))),
        dict(name="one equation x = (2, 1, -0.5, 0.25, -1.2), y = 3, alpha 1e-4 (rich regime), lr 0.01, 3000 steps: "
                  "β ≈ the minimum-ℓ1 interpolant (1.5, 0, 0, 0, 0) within 1% of max|β|", X=x_row, y=y_row,
             alpha=1e-4, lr=0.01, steps=3000, limit=(l1, 1e-2, "minimum-ℓ1 interpolant", l2,
                                                      "minimum-ℓ2 interpolant")),
        dict(name="the same with alpha 10 (kernel regime), lr 1e-4, 3000 steps: β ≈ the minimum-ℓ2 interpolant "
                  "x y / |x|² within 1e-4 of max|β|", X=x_row, y=y_row, alpha=10.0, lr=1e-4, steps=3000,
             limit=(l2, 1e-4, "minimum-ℓ2 interpolant", l1, "minimum-ℓ1 interpolant")),
    ]

    def judge(case, out):
        if "limit" in case:
            return judge_limit(out, *case["limit"])
        variants = {}
        if case["steps"] == 1:
            a, lr, n = case["alpha"], case["lr"], len(case["y"])
            c = X.T @ y / n
            variants.update({
                f"β_1 is n = {n} times too large: the loss is the mean (1/2n)|Xβ - y|²": n * case["expected"],
                "β_1 is half the expected one: d(u²)/du = 2u, the factor 2 of the gradient is missing":
                    case["expected"] / 2,
                "β_1 has the wrong sign: β = u⊙u - v⊙v and GD moves against the gradient": -case["expected"],
                "this is β_1 when v is updated with the new u (sequential updates): update u and v simultaneously":
                    a ** 2 * (1 + 2 * lr * c) ** 2 - a ** 2 * (1 + 2 * lr * (
                        X.T @ (X @ (a ** 2 * (1 + 2 * lr * c) ** 2 - a ** 2) - y) / n)) ** 2,
            })
        return judge_iterate(out, case["expected"], GD_RTOL, variants, what="β", scale=_diag_scale(case))

    run_cases(report, cases, lambda case: run_diag_net_gd(diag_net_gd, case), judge, "X and y")


def _hidden_diag_net_gd(report: Report, diag_net_gd: Callable, grading) -> None:

    def reference(case, **change):
        c = dict(case, **change)
        return grading.diag_net_gd(c["X"], c["y"], c["alpha"], c["lr"], c["steps"])

    def judge_hidden(case, out):
        n = len(case["y"])
        variants = {}
        if n > 1:
            variants[f"this is gradient descent on the summed loss (lr {n} times too large): the loss is "
                     "(1/2n)|Xβ - y|²"] = reference(case, lr=case["lr"] * n)
        variants[f"this is β after {case['steps'] - 1} steps instead of {case['steps']}"] = \
            reference(case, steps=case["steps"] - 1)
        variants["this is β for u(0) = v(0) = sqrt(alpha): the initialization is u = v = alpha"] = \
            reference(case, alpha=np.sqrt(case["alpha"]))
        return judge_iterate(out, reference(case), case["rtol"], variants, what="β", scale=_diag_scale(case))

    # the student's own case (their alpha, lr and data seed: the part's variant) with the others
    run_cases(report, grading.diag_net_cases() + report.own_cases(grading),
              lambda case: run_diag_net_gd(diag_net_gd, case), judge_hidden, "X and y in the hidden cases")


# ==============================================================================================================
# The parts of the assignment, declared once: names, points, visible and hidden checks
# ==============================================================================================================
# ==============================================================================================================
# Part 6 (a derivation, autograder.derivation): the first coordinate of the rich-regime limit (alpha -> 0) of the
# diagonal network for one example x = (x1, x2) and target y, as a SymPy expression; the reference is
# ``diag_limit`` of solutions/implicit_bias/grading.py. The visible values: the min-l1 interpolant by hand (and by
# scipy's linprog in tests/test_implicit_bias.py).
# ==============================================================================================================
from .derivation import Derivation  # noqa: E402

_NONZERO = [(-3.0, -0.2), (0.2, 3.0)]
DIAG_LIMIT = Derivation(
    "diag_limit", 2, symbols="x1 x2 y", domain={"x1": _NONZERO, "x2": _NONZERO, "y": _NONZERO},
    reference="diag_limit", slips="diag_limit_slips",
    regimes=(("|x1| > |x2|", "Abs(x1) > Abs(x2)"),),
    # Per-student values of x2 and y (autograder.variants); x1 stays free, so the answer is still piecewise in x1
    # with the student's own threshold |x2|. Distinct |x2| (the reference depends on x2 only through |x2|) and a
    # nonzero y: two different draws have different references. Both regimes take at least 14 % of the sampled
    # x1 (|x2| in [3/5, 13/5] inside |x1| in (0.2, 3)); x2 > 0 only where small and < 0 where large, so the slip
    # "no absolute values" (it differs where x1 < -|x2| when x2 > 0) differs at many points. Proved over every
    # value in tests/test_variants.py.
    variant={"x2": ("3/5", "1", "7/5", "-9/5", "-11/5", "-13/5"),
             "y": ("-2", "-1", "-1/2", "1/2", "1", "3/2", "2", "5/2")},
    examples=(({"x1": "2", "x2": "1", "y": "3"}, "3/2"), ({"x1": "1", "x2": "-3", "y": "2"}, "0")))

TOPIC = Topic("implicit_bias", [
    Part("gd_least_squares", 3, _visible_gd_least_squares, _hidden_gd_least_squares, purity=None),
    Part("logistic_gd", 3, _visible_logistic_gd, _hidden_logistic_gd, purity=None),
    Part("max_margin_direction", 2, _visible_max_margin_direction, _hidden_max_margin_direction, purity=None),
    Part("gd_matrix_factorization", 3, _visible_gd_matrix_factorization, _hidden_gd_matrix_factorization, purity=None),
    # Per-student hidden case (autograder.variants; the case: diag_net_variant_cases of solutions/implicit_bias/
    # grading.py). tests/test_implicit_bias.py proves every combination: the solution and the float32 alternatives
    # pass (float32 error < 1/10 of the tolerance), every known mistake fails (by > 20 times the tolerance).
    Part("diag_net_gd", 3, _visible_diag_net_gd, _hidden_diag_net_gd, purity=None,
         variant={"alpha": (0.2, 0.3, 0.4, 0.5), "lr": (0.02, 0.03, 0.05), "seed": (1, 2, 3, 4)},
         variant_cases="diag_net_variant_cases"),
    DIAG_LIMIT,
    Written("written_intercept", 2),
])
POINTS = {p.name: p.points for p in TOPIC.parts if isinstance(p, Part)}

check_gd_least_squares = TOPIC.checker("gd_least_squares")
check_logistic_gd = TOPIC.checker("logistic_gd")
check_max_margin_direction = TOPIC.checker("max_margin_direction")
check_gd_matrix_factorization = TOPIC.checker("gd_matrix_factorization")
check_diag_net_gd = TOPIC.checker("diag_net_gd")
check_diag_limit = TOPIC.checker("diag_limit")
