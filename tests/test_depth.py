"""Tests of autograder/depth.py: the checks discriminate.

* the solution notebook and correct alternatives (other constructions, other algorithms, float32) keep full marks;
* plausible wrong implementations, the mistakes students make, lose points;
* the instructor references (exact rational arithmetic) agree with the solution notebook's float64 algorithms on
  Hypothesis-generated networks and functions, and with values known by construction;
* stubs, crashes and objects that lie score 0.
Wrong and alternative implementations are graded in-process through the same entry points the notebook uses.
"""
from __future__ import annotations

import copy
import functools
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from autograder import depth
from autograder.core import instructor_module
from tests.grading import AlwaysEqual, Grader, tfdl
from tests.notebooks import solution_namespace

SOLUTION = solution_namespace("depth")
GRADING = instructor_module("depth")


GRADER = Grader(depth)
grade, assert_full, assert_loses = GRADER.grade, GRADER.assert_full, GRADER.assert_loses


def _linear(W, b, dtype=torch.float64):
    return depth.build_sequential(("L", W, b), dtype=dtype)[0]


# ==============================================================================================================
# sawtooth_net
# ==============================================================================================================
def sawtooth_variant(k, *, mistake=None, dtype=torch.float64):
    """2 relu(y) - 4 relu(y - 1/2) composed k times, with one optional, named mistake."""
    hidden = {"k - 1 hidden layers": k - 1, "k + 1 hidden layers": k + 1}.get(mistake, k)
    tent = [2.0, -4.0]
    inner_bias = [0.0, 0.0] if mistake == "bias -1/2 missing in the inner layers" else [0.0, -0.5]
    first_bias = [0.0, -0.5 + (1e-3 if mistake == "approximate kink at 0.501" else 0.0)]
    if mistake == "tent without the factor 2":
        tent = [1.0, -2.0]
    if mistake == "one hidden layer of width 2^k (right function, shallow)":
        n = 2 ** k
        c = np.arange(n) / n
        slopes = np.where(np.arange(n) % 2 == 0, n, -n).astype(float)
        v = np.diff(np.concatenate([[0.0], slopes]))
        return torch.nn.Sequential(_linear(np.ones((n, 1)), -c), torch.nn.ReLU(), _linear(v[None], [0.0])).to(dtype)
    if mistake == "Hardtanh instead of ReLU":
        act = torch.nn.Hardtanh
    else:
        act = torch.nn.ReLU
    layers = [_linear([[1.0], [1.0]], first_bias), act()]
    for _ in range(hidden - 1):
        layers += [_linear([tent, tent], inner_bias), act()]
    width_extra = mistake == "width 3 (an extra dead unit)"
    if width_extra:
        layers = [_linear([[1.0], [1.0], [0.0]], first_bias + [-1.0]), act()]
        for _ in range(hidden - 1):
            layers += [_linear([tent + [0.0], tent + [0.0], [0.0, 0.0, 0.0]], inner_bias + [-1.0]), act()]
        layers.append(_linear([tent + [0.0]], [0.0]))
    elif mistake == "ends with a ReLU instead of the Linear(2, 1) readout":
        layers += [_linear([tent], [0.0]), torch.nn.ReLU()]
    else:
        layers.append(_linear([tent], [0.0]))
    net = torch.nn.Sequential(*layers).to(dtype)
    if mistake == "a custom nn.Module instead of nn.Sequential":
        class Wrapper(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, x):
                return self.inner(x)
        return Wrapper(net)
    return net


def sawtooth_symmetric(k, dtype=torch.float64):
    """Correct on [0, 1], different outside: Δ(y) = 1 - relu(2y - 1) - relu(1 - 2y) composed k times."""
    layers = [_linear([[2.0], [-2.0]], [-1.0, 1.0]), torch.nn.ReLU()]
    for _ in range(k - 1):   # units of Δ(y) = 1 - u1 - u2: relu(2Δ - 1) = relu(1 - 2u1 - 2u2), relu(1 - 2Δ)
        layers += [_linear([[-2.0, -2.0], [2.0, 2.0]], [1.0, -1.0]), torch.nn.ReLU()]
    layers.append(_linear([[-1.0, -1.0]], [1.0]))
    return torch.nn.Sequential(*layers).to(dtype)


def sawtooth_shared_modules(k):
    """Correct: the same Linear(2, 2) and ReLU objects repeated (weights shared across layers), float32."""
    inner = _linear([[2.0, -4.0], [2.0, -4.0]], [0.0, -0.5], torch.float32)
    relu = torch.nn.ReLU(inplace=True)
    layers = [_linear([[1.0], [1.0]], [0.0, -0.5], torch.float32), relu]
    for _ in range(k - 1):
        layers += [inner, relu]
    layers.append(_linear([[2.0, -4.0]], [0.0], torch.float32))
    return torch.nn.Sequential(*layers)


SAWTOOTH_MISTAKES = ["k - 1 hidden layers", "k + 1 hidden layers", "tent without the factor 2",
                     "bias -1/2 missing in the inner layers", "approximate kink at 0.501",
                     "one hidden layer of width 2^k (right function, shallow)", "Hardtanh instead of ReLU",
                     "width 3 (an extra dead unit)", "ends with a ReLU instead of the Linear(2, 1) readout",
                     "a custom nn.Module instead of nn.Sequential"]


@pytest.mark.parametrize("fn", [SOLUTION["sawtooth_net"], GRADING.sawtooth_net, sawtooth_symmetric,
                                functools.partial(sawtooth_variant, dtype=torch.float32), sawtooth_shared_modules],
                         ids=["solution", "relu(2y) - relu(4y - 2)", "1 - |2y - 1| (differs outside [0, 1])",
                              "float32", "shared modules"])
def test_sawtooth_correct_alternatives_keep_full_marks(fn):
    assert_full("sawtooth_net", fn)


def test_sawtooth_feedback_shows_the_difference_and_the_tolerance():
    """A network 3e-6 off everywhere: the feedback shows 10 digits, the difference and the tolerance, not
    "f_3(x) = 0.5, your network gives 0.5"."""
    def off(k):
        net = SOLUTION["sawtooth_net"](k)
        with torch.no_grad():
            net[-1].bias += 3e-6
        return net
    text = assert_loses("sawtooth_net", off, tests="visible")
    assert "your network gives 0.2399094401 (off by 3e-06, allowed 1e-06)" in text, text


def test_sawtooth_alternatives_really_differ_outside_the_unit_interval():
    x = torch.tensor([[-0.5], [1.5]], dtype=torch.float64)
    assert not torch.allclose(sawtooth_symmetric(3)(x), SOLUTION["sawtooth_net"](3)(x))


@pytest.mark.parametrize("mistake", SAWTOOTH_MISTAKES)
def test_sawtooth_wrong_implementations_lose_points(mistake):
    assert_loses("sawtooth_net", functools.partial(sawtooth_variant, mistake=mistake))


@pytest.mark.parametrize("mistake, hint", [("k - 1 hidden layers", "one tent too few"),
                                           ("Hardtanh instead of ReLU", "only Linear and ReLU"),
                                           ("tent without the factor 2", "Δ(1/2) = 1")])
def test_sawtooth_feedback_names_the_mistake(mistake, hint):
    assert hint in assert_loses("sawtooth_net", functools.partial(sawtooth_variant, mistake=mistake))


def test_sawtooth_trailing_relu_is_diagnosed_as_such_not_as_a_wrong_depth():
    """Before issue 12: "your network has k + 1 ReLU layers; the k-fold composition needs k"."""
    text = assert_loses("sawtooth_net", functools.partial(
        sawtooth_variant, mistake="ends with a ReLU instead of the Linear(2, 1) readout"), "visible")
    assert "a ReLU after the Linear(2, 1) readout" in text and "ReLU layers" not in text, text
    assert "ReLU layers" in assert_loses("sawtooth_net", functools.partial(sawtooth_variant,
                                                                          mistake="k + 1 hidden layers"), "visible")


def test_visible_sawtooth_values_match_the_exact_composition():
    """The closed form 1 - |2 frac(2^(k-1) x) - 1| of the visible checks equals the exact k-fold tent."""
    rng = np.random.default_rng(0)
    for k in range(1, 12):
        xs = np.concatenate([rng.uniform(0, 1, 50), np.arange(2 ** min(k + 1, 8) + 1) / 2 ** min(k + 1, 8)])
        exact = np.array([float(GRADING.sawtooth_exact(k, Fraction(float(x)))) for x in xs])
        np.testing.assert_allclose(depth.sawtooth_values(k, xs), exact, atol=1e-12)


# ==============================================================================================================
# count_linear_pieces
# ==============================================================================================================
def _layers64(model):
    out = []
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            W = layer.weight.detach().to(torch.float64).numpy()
            b = None if layer.bias is None else layer.bias.detach().to(torch.float64).numpy()
            out.append(("L", W, b))
        else:
            out.append(("R", None, None))
    return out


def count_variant(model, a=0.0, b=1.0, *, mistake=None):
    """Breakpoint propagation (as in the solution), with one optional, named mistake."""
    if mistake == "ignores [a, b] (always [0, 1])":
        a, b = 0.0, 1.0
    if mistake == "modifies the model (converts it to float64 in place)":
        model.double()
    if mistake == "leaves .grad filled (autograd slopes, right count)":
        dtype_ = next(model.parameters()).dtype
        model(torch.linspace(a, b, 11, dtype=dtype_)[:, None]).sum().backward()   # p.grad stays filled
    if mistake == "fixed sampling grid of 2001 points":
        x = torch.linspace(a, b, 2001, dtype=torch.float64)[:, None]
        y = copy.deepcopy(model).double()(x).detach().numpy().ravel()
        s = np.diff(y) / np.diff(x.numpy().ravel())
        return int(1 + np.sum(np.abs(np.diff(s)) > 1e-6 * np.abs(s).max()))
    dtype = np.float32 if mistake == "float32 arithmetic" else np.float64
    xs = np.array([a, b], dtype=dtype)
    A, C = np.ones((1, 1), dtype), np.zeros((1, 1), dtype)
    merge = {"positions merged within 1e-6": 1e-6}.get(mistake, 1e-12) * max(abs(a), abs(b), b - a)
    patterns = []
    first = True
    for kind, W, bias in _layers64(model):
        if kind == "L":
            if bias is None and mistake == "assumes every Linear has a bias":
                raise AttributeError("'NoneType' object has no attribute 'detach'")
            A, C = A @ W.T.astype(dtype), C @ W.T.astype(dtype) + (0 if bias is None else bias.astype(dtype))
            continue
        if mistake == "only the first layer's kinks" and not first:
            continue
        first = False
        with np.errstate(divide="ignore", invalid="ignore"):
            roots = -C / A
        inside = (A != 0) & (roots > xs[:-1, None] + merge) & (roots < xs[1:, None] - merge)
        new = np.unique(np.concatenate([xs, roots[inside]]))
        new = new[np.concatenate([[True], np.diff(new) > merge])]
        mids = (new[:-1] + new[1:]) / 2
        parent = np.clip(np.searchsorted(xs, mids) - 1, 0, len(xs) - 2)
        A, C = A[parent], C[parent]
        active = A * mids[:, None] + C > 0
        patterns = [p[parent] for p in patterns] + [active]
        A, C, xs = A * active, C * active, new
    slopes = A[:, 0].astype(np.float64)
    if mistake in ("counts breakpoints (no merging)",):
        return len(xs) - 1
    if mistake == "counts activation pattern changes":
        if not patterns:
            return 1
        P = np.concatenate(patterns, axis=1)
        return int(1 + np.sum(np.any(P[1:] != P[:-1], axis=1)))
    if mistake == "counts distinct activation patterns":
        return len({tuple(np.concatenate([p[i] for p in patterns])) for i in range(len(xs) - 1)}) if patterns else 1
    if mistake == "exact float equality of slopes":
        return int(1 + np.count_nonzero(np.diff(slopes) != 0))
    tol = 1e-9 * np.abs(slopes).max()
    pieces = int(1 + np.count_nonzero(np.abs(np.diff(slopes)) > tol))
    if mistake == "returns the number of kinks":
        return pieces - 1
    return pieces


COUNT_MISTAKES = ["counts breakpoints (no merging)", "fixed sampling grid of 2001 points",
                  "counts activation pattern changes", "counts distinct activation patterns",
                  "exact float equality of slopes", "ignores [a, b] (always [0, 1])", "float32 arithmetic",
                  "only the first layer's kinks", "returns the number of kinks", "positions merged within 1e-6",
                  "modifies the model (converts it to float64 in place)", "assumes every Linear has a bias",
                  # purity only (the count is right): not detected before issue 10 (the harness compared the
                  # parameters but not their .grad)
                  "leaves .grad filled (autograd slopes, right count)"]


def count_line_walk(model, a=0.0, b=1.0):
    """Correct, another algorithm (pure Python floats): walk along the line from a; on the current region the
    activation pattern is fixed, so the network is affine there and the region ends at the nearest zero of a
    pre-activation ahead; collect the output slope of each region and merge equal slopes."""
    layers = [(kind, None if W is None else W.tolist(), None if bias is None else bias.tolist())
              for kind, W, bias in _layers64(model)]
    span = max(abs(a), abs(b), b - a)
    x, slopes = float(a), []
    while x < b:
        S, V = [1.0], [x]
        nxt = float(b)
        for kind, W, bias in layers:
            if kind == "L":
                S = [sum(w * s for w, s in zip(row, S)) for row in W]
                V = [sum(w * v for w, v in zip(row, V)) + (0.0 if bias is None else bias[j])
                     for j, row in enumerate(W)]
                continue
            for j, (s, v) in enumerate(zip(S, V)):
                # the sign just right of x: the value, or the slope when the value is (numerically) zero
                on = v > 0 if abs(v) > 1e-12 * (abs(s) * span + 1e-300) else s > 0
                if s != 0:
                    r = x - v / s
                    if x + 1e-12 * span < r < nxt:
                        nxt = r
                if not on:
                    S[j], V[j] = 0.0, 0.0
        slopes.append(S[0])
        x = nxt
    slopes = np.array(slopes)
    return int(1 + np.count_nonzero(np.abs(np.diff(slopes)) > 1e-9 * np.abs(slopes).max()))


def count_autograd_slopes(model, a=0.0, b=1.0):
    """Correct: candidate breakpoints by propagation, with every unit's derivative obtained by forward-mode
    differentiation (torch.func.jvp) of a float64 copy of the model at the middle of each interval; merge equal
    output slopes."""
    from torch.func import jvp
    xs = np.array([float(a), float(b)])
    net = copy.deepcopy(model).to(torch.float64)
    modules = list(net)

    def value_and_slope(upto, points):
        x = torch.tensor(points, dtype=torch.float64)[:, None]
        f = torch.nn.Sequential(*modules[:upto])
        if upto == 0:
            return x.numpy(), np.ones_like(x.numpy())
        with torch.no_grad():
            v, s = jvp(f, (x,), (torch.ones_like(x),))
        return v.numpy(), s.numpy()

    for i, layer in enumerate(modules):
        if not isinstance(layer, torch.nn.ReLU):
            continue
        mids = (xs[:-1] + xs[1:]) / 2
        v, s = value_and_slope(i, mids)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = mids[:, None] - v / s
        ok = (s != 0) & (r > xs[:-1, None] + 1e-12) & (r < xs[1:, None] - 1e-12)
        xs = np.unique(np.concatenate([xs, r[ok]]))
    _, slopes = value_and_slope(len(modules), (xs[:-1] + xs[1:]) / 2)
    slopes = slopes[:, 0]
    return int(1 + np.count_nonzero(np.abs(np.diff(slopes)) > 1e-9 * np.abs(slopes).max()))


@pytest.mark.parametrize("fn", [SOLUTION["count_linear_pieces"], count_line_walk, count_autograd_slopes],
                         ids=["solution (float64 breakpoint propagation)", "walk along the line",
                              "forward-mode autograd slopes"])
def test_count_correct_alternatives_keep_full_marks(fn):
    assert_full("count_linear_pieces", fn)


@pytest.mark.parametrize("mistake", COUNT_MISTAKES)
def test_count_wrong_implementations_lose_points(mistake):
    assert_loses("count_linear_pieces", functools.partial(count_variant, mistake=mistake))


@pytest.mark.parametrize("mistake, hint", [("counts breakpoints (no merging)", "cancel"),
                                           ("ignores [a, b] (always [0, 1])", "[a, b]"),
                                           ("returns the number of kinks", "counting kinks"),
                                           ("modifies the model (converts it to float64 in place)",
                                            "modified in place")])
def test_count_feedback_names_the_mistake(mistake, hint):
    assert hint in assert_loses("count_linear_pieces", functools.partial(count_variant, mistake=mistake))


def count_dense_sampling(model, a=0.0, b=1.0, n=100_001):
    """Wrong (the notebook says "not by sampling"): slopes of a fine grid of n points, a run of slope changes
    counted as one kink."""
    x = torch.linspace(a, b, n, dtype=torch.float64)[:, None]
    net = copy.deepcopy(model).double()
    with torch.no_grad():
        y = torch.cat([net(c) for c in torch.split(x, 10_000)]).numpy().ravel()
    s = np.diff(y) / np.diff(x.numpy().ravel())
    change = np.abs(np.diff(s)) > 1e-6 * max(np.abs(s).max(), 1e-12)
    return int(1 + np.sum(change[1:] & ~change[:-1]) + int(change[0]))


def test_count_by_sampling_loses_the_narrow_pieces_with_a_hint():
    """Before issue 12 a sampling count kept 3.46 of 4 visible points: the visible cases now hold pieces 1e-9
    wide, narrower than any sampling grid."""
    points, text = grade("count_linear_pieces", count_dense_sampling, "visible")
    assert points <= 2.75 and "narrower than any sampling grid" in text, text


def test_the_cancelling_case_defeats_exact_float_equality():
    m = GRADING.cancelling_non_dyadic()
    assert GRADING.count_linear_pieces(m) == 2
    assert count_variant(m, mistake="exact float equality of slopes") > 2


def _min_relative_jump(model, a, b) -> float:
    """Over the exact pieces: the smallest slope change at a kink, relative to the largest slope magnitude."""
    pieces = GRADING.linear_pieces_exact(model, a, b)
    if len(pieces) < 2:
        return np.inf
    scale = max(abs(p[2]) for p in pieces)
    return float(min(abs(p[2] - q[2]) for p, q in zip(pieces, pieces[1:])) / scale)


def test_hidden_cases_are_unambiguous_in_float64():
    """Every genuine kink of a hidden case changes the slope by far more than rounding (>= 1e-4 relative), so that
    a float64 count with a relative slope tolerance of 1e-9 is exact; and the solution agrees with the exact count."""
    for case in GRADING.count_cases():
        if case.get("expected"):
            continue
        model = case["model"]()
        assert _min_relative_jump(model, case["a"], case["b"]) > 1e-4, case["name"]
        assert SOLUTION["count_linear_pieces"](model, case["a"], case["b"]) == \
            GRADING.count_linear_pieces(model, case["a"], case["b"]), case["name"]


def test_reference_counts_the_sawtooth_by_construction():
    for k in range(1, 11):
        assert GRADING.count_linear_pieces(GRADING.sawtooth_net(k)) == 2 ** k
        assert GRADING.count_linear_pieces(SOLUTION["sawtooth_net"](k)) == 2 ** k
    # outside [0, 1]: flat left of 0; for k >= 2 one more kink at 1 and flat beyond
    assert GRADING.count_linear_pieces(GRADING.sawtooth_net(5), -1.0, 2.0) == 2 ** 5 + 2
    assert SOLUTION["count_linear_pieces"](SOLUTION["sawtooth_net"](16)) == 2 ** 16


@st.composite
def networks(draw):
    """Random Sequential ReLU networks, sometimes with an exactly cancelling pair of units, a zero output weight,
    no biases or float32 weights."""
    depth_ = draw(st.integers(1, 4))
    widths = [draw(st.integers(1, 6)) for _ in range(depth_)]
    seed = draw(st.integers(0, 2 ** 31 - 1))
    g = np.random.default_rng(seed)
    use_bias = draw(st.booleans())
    sizes = [1] + widths + [1]
    layers = []
    for i, (m, n) in enumerate(zip(sizes, sizes[1:])):
        W = g.normal(size=(n, m)) * np.sqrt(2 / m)
        bias = g.normal(size=n) if (use_bias or i == 0) else None
        layers.append(["L", W, bias])
        if i < len(sizes) - 2:
            layers.append("R")
    if draw(st.booleans()) and widths[0] >= 1:
        # duplicate unit 0 of the first layer scaled by 2 (same kink, exactly), output weight cancelling it
        W1, b1 = layers[0][1], layers[0][2]
        layers[0][1] = np.vstack([W1, 2 * W1[:1]])
        layers[0][2] = np.concatenate([b1, 2 * b1[:1]])
        W2 = layers[2][1]
        layers[2][1] = np.hstack([W2, -W2[:, :1] / 2])
    if draw(st.booleans()):
        layers[-1][1] = layers[-1][1].copy()
        layers[-1][1][0, 0] = 0.0
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    modules = [torch.nn.ReLU() if item == "R" else _linear(item[1], item[2]) for item in layers]
    a = draw(st.floats(-3, 1))
    b = a + draw(st.floats(0.1, 4))
    return torch.nn.Sequential(*modules).to(dtype), a, b


@settings(max_examples=150, deadline=None)
@given(net=networks())
def test_count_reference_exact_equals_solution_float64(net):
    """Exact rational reference = the solution's float64 propagation on random networks (including exactly
    cancelling duplicated units, zero weights, networks without biases, float32 weights), whenever the exact
    slope changes are far above rounding."""
    model, a, b = net
    if _min_relative_jump(model, a, b) < 1e-6:
        return   # a genuine kink too weak for any float64 count with tolerance 1e-9: not a graded situation
    assert SOLUTION["count_linear_pieces"](model, a, b) == GRADING.count_linear_pieces(model, a, b)


# ==============================================================================================================
# shallow_approximation
# ==============================================================================================================
def _tent(k, x):
    return depth.sawtooth_values(k, x)


def _l1_simpson(k, knots, values):
    """Correct, another integration: split at the kinks of f_k and g and at the zeros of f_k - g, then Simpson's
    rule (exact for |linear| without a sign change)."""
    grid = np.union1d(knots, np.arange(2 ** k + 1) / 2 ** k)
    d = _tent(k, grid) - np.interp(grid, knots, values)
    pts = [grid[0]]
    for x0, x1, d0, d1 in zip(grid, grid[1:], d, d[1:]):
        if d0 * d1 < 0:
            pts.append(x0 + (x1 - x0) * d0 / (d0 - d1))
        pts.append(x1)
    pts = np.array(pts)
    h = lambda x: np.abs(_tent(k, x) - np.interp(x, knots, values))  # noqa: E731
    m = (pts[:-1] + pts[1:]) / 2
    return float(np.sum(np.diff(pts) / 6 * (h(pts[:-1]) + 4 * h(m) + h(pts[1:]))))


def shallow_variant(k, t, *, mistake=None, integrate=None):
    """Follow-then-flatten construction, with one optional, named mistake."""
    n = 2 ** k
    if mistake == "t >= 2^k not special-cased (always flattens)":
        t = min(t, n - 1) if n > 1 else t
    if mistake == "t + 1 pieces (follows one piece too many)":
        t = t + 1
    if mistake == "always the constant 1/2":
        knots, values = np.array([0.0, 1.0]), np.array([0.5, 0.5])
    elif mistake == "interpolates f_k at t + 1 equally spaced knots":
        knots = np.linspace(0, 1, t + 1)
        values = _tent(k, knots)
    elif t >= n:
        knots = np.arange(n + 1) / n
        values = _tent(k, knots)
    elif t == 1:
        knots, values = np.array([0.0, 1.0]), np.array([0.5, 0.5])
    else:
        j = t - 2
        knots = np.concatenate([np.arange(j + 1) / n, [(2 * j + 1) / (2 * n), 1.0]])
        values = np.concatenate([_tent(k, np.arange(j + 1) / n), [0.5, 0.5]])
    if mistake == "last knot missing (g on [0, x_n] only)":
        knots, values = knots[:-1], values[:-1]
    target = k - 1 if mistake == "error measured against f_(k-1)" else k
    if mistake == "error on a sampling grid of 1000 points":
        x = np.linspace(0, 1, 1000)
        error = float(np.mean(np.abs(_tent(k, x) - np.interp(x, knots, values))))
    elif mistake == "squared (L2) error":
        x = (np.arange(2 ** 20) + 0.5) / 2 ** 20
        error = float(np.mean((_tent(k, x) - np.interp(x, knots, values)) ** 2))
    elif mistake == "trapezoid rule on the knots of g only":
        error = float(np.trapezoid(np.abs(_tent(k, knots) - values), knots))
    elif mistake == "reports the lower bound":
        error = depth.lower_bound(k, t)
    elif mistake == "construction formula off by one":
        error = 0.0 if t >= n else (0.25 if t == 1 else (1 - (2 * t - 1) * 2.0 ** (-k - 1)) / 4)
    else:
        error = (integrate or _l1_simpson)(target if target >= 1 else 1, knots, values)
    return knots, values, error


def shallow_mirrored(k, t):
    """Correct, another construction: equal to 1/2 first, then follow f_k on its last pieces (f_k is symmetric
    about 1/2, so the error is the same); error by Simpson's rule on exact sub-intervals."""
    knots, values, _ = SOLUTION["shallow_approximation"](k, t)
    knots, values = (1 - knots)[::-1].copy(), values[::-1].copy()
    return knots, values, _l1_simpson(k, knots, values)


def shallow_torch_float32(k, t):
    """Correct: the solution's function returned as float32 torch tensors (the error rounded to float32)."""
    knots, values, error = SOLUTION["shallow_approximation"](k, t)
    return (torch.tensor(knots, dtype=torch.float32), torch.tensor(values, dtype=torch.float32),
            torch.tensor(error, dtype=torch.float32))


def shallow_exact_fraction(k, t):
    """Correct: the construction, error by exact rational integration (as a float)."""
    knots, values, _ = shallow_variant(k, t)
    return list(knots), list(values), float(GRADING.l1_to_sawtooth(k, knots, values))


SHALLOW_MISTAKES = ["t >= 2^k not special-cased (always flattens)", "t + 1 pieces (follows one piece too many)",
                    "always the constant 1/2", "interpolates f_k at t + 1 equally spaced knots",
                    "last knot missing (g on [0, x_n] only)", "error measured against f_(k-1)",
                    "error on a sampling grid of 1000 points", "squared (L2) error",
                    "trapezoid rule on the knots of g only", "reports the lower bound",
                    "construction formula off by one"]


@pytest.mark.parametrize("fn", [SOLUTION["shallow_approximation"], shallow_variant, shallow_mirrored,
                                shallow_torch_float32, shallow_exact_fraction],
                         ids=["solution", "Simpson on exact sub-intervals", "mirrored construction",
                              "float32 torch tensors", "exact rational error"])
def test_shallow_correct_alternatives_keep_full_marks(fn):
    assert_full("shallow_approximation", fn)


@pytest.mark.parametrize("mistake", SHALLOW_MISTAKES)
def test_shallow_wrong_implementations_lose_points(mistake):
    assert_loses("shallow_approximation", functools.partial(shallow_variant, mistake=mistake))


def test_shallow_hint_on_the_lower_bound():
    assert "that is the lower bound" in assert_loses(
        "shallow_approximation", functools.partial(shallow_variant, mistake="reports the lower bound"))


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 7), t=st.integers(1, 140), seed=st.integers(0, 10 ** 6))
def test_lower_bound_holds_and_references_agree(k, t, seed):
    """For random continuous g with t pieces: exact L1 (rational) = the solution's float64 integration, and
    it is at least (1 - 2t 2^-k)/8, the bound proved in the chapter; the construction meets its stated error."""
    rng = np.random.default_rng(seed)
    knots = np.concatenate([[0.0], np.sort(rng.uniform(0, 1, t - 1)), [1.0]])
    if np.any(np.diff(knots) <= 0):
        return
    values = rng.uniform(-0.2, 1.2, t + 1)
    if rng.uniform() < 0.5:   # a harder g: interpolate f_k at its knots
        values = _tent(k, knots)
    exact = GRADING.l1_to_sawtooth(k, knots, values)
    ns = SOLUTION["shallow_approximation"]
    assert exact >= Fraction(depth.lower_bound(k, t))
    assert abs(_l1_simpson(k, knots, values) - float(exact)) <= 1e-12
    knots_c, values_c, err_c = ns(k, t)
    assert len(knots_c) <= t + 1
    assert float(GRADING.l1_to_sawtooth(k, knots_c, values_c)) == pytest.approx(depth.construction_error(k, t),
                                                                              abs=1e-15)
    assert err_c == pytest.approx(depth.construction_error(k, t), abs=1e-15)


def test_visible_midpoint_estimate_is_accurate_on_the_visible_cases():
    for k, t in [(3, 1), (4, 3), (4, 16), (5, 9), (3, 20)]:
        for fn in (SOLUTION["shallow_approximation"], shallow_mirrored):
            knots, values, _ = fn(k, t)
            assert abs(depth.midpoint_l1(k, knots, values) - float(GRADING.l1_to_sawtooth(k, knots, values))) < 1e-7


def test_the_visible_estimate_cannot_stand_in_for_the_exact_error():
    """A student who reports autograder.depth.midpoint_l1 instead of computing the exact error passes the visible
    checks but loses points in the hidden ones."""
    def borrowing(k, t):
        knots, values, _ = SOLUTION["shallow_approximation"](k, t)
        return knots, values, depth.midpoint_l1(k, knots, values)
    assert grade("shallow_approximation", borrowing, "visible")[0] == depth.POINTS["shallow_approximation"]
    assert_loses("shallow_approximation", borrowing)


# ==============================================================================================================
# Every part: stubs, crashes, hostile return values; the student side carries no reference
# ==============================================================================================================




class LyingInt(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__




def test_objects_that_lie_score_zero():
    assert grade("count_linear_pieces", lambda *a, **k: LyingInt(0))[0] == 0
    liar = np.zeros(3).view(AlwaysEqual)
    assert grade("shallow_approximation", lambda k, t: (liar, liar, liar))[0] == 0
    assert grade("shallow_approximation", lambda k, t: (liar, liar, 0.0))[0] == 0


def test_returning_none_or_garbage_scores_zero():
    for part in depth.POINTS:
        assert grade(part, lambda *a, **k: None)[0] == 0
        assert grade(part, lambda *a, **k: "8")[0] == 0






def test_same_submission_same_score():
    wrong = functools.partial(count_variant, mistake="fixed sampling grid of 2001 points")
    assert grade("count_linear_pieces", wrong) == grade("count_linear_pieces", wrong)


def test_student_side_module_has_no_reference_implementation():
    """autograder/depth.py builds no sawtooth network and counts no pieces itself: the solution's names and the
    reference's algorithms are absent, and it cannot score a stub through its own helpers."""
    import inspect
    source = inspect.getsource(depth)
    for forbidden in ("Fraction", "def sawtooth_net", "def count_linear_pieces", "def shallow_approximation",
                      "linear_pieces_exact", "l1_to_sawtooth("):
        assert forbidden not in source.replace("grading.l1_to_sawtooth(", ""), forbidden


# ==============================================================================================================
# The full pipeline through real nbgrader (slow): release, then grade the solution and the untouched release
# ==============================================================================================================


@pytest.mark.slow
def test_real_nbgrader_gives_the_solution_full_marks_and_the_release_zero(tmp_path):
    import nbformat

    from autograder import gradebook, release
    from autograder.course import Course
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["depth"])
    code, out, err = tfdl("release", "depth", "--course", str(course))
    assert code == 0, err
    assert release.verify_release(Course(course), "depth") == []
    release = nbformat.read(course / "exercises" / "depth" / "depth.ipynb", as_version=4)
    text = nbformat.writes(release)
    for leak in ("BEGIN SOLUTION", "HIDDEN TESTS", "grading.py", "def tent_power", "np.searchsorted"):
        assert leak not in text, leak
    answers = {}
    for cell in source_notebook("depth").cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            answers[meta["grade_id"]] = "\n".join(line for line in cell.source.splitlines()
                                                  if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line)
    answers["written_depth"] = "Depth buys exponentially many pieces; typical networks do not use them."
    folder = tmp_path / "submissions"
    add_submission(folder, "full", "depth", fill(release, answers))
    add_submission(folder, "untouched", "depth", release)
    code, out, err = tfdl("grade", "depth", str(folder), "--course", str(course))
    assert code == 0, err + out
    full = gradebook.read_scores(course, "depth", "full").scores
    untouched = gradebook.read_scores(course, "depth", "untouched").scores
    assert full == {"check_sawtooth_net": 3, "check_count_linear_pieces": 4, "check_shallow_approximation": 3,
                    "check_pieces_on_interval": 2, "written_depth": 0}, out
    assert set(untouched) == set(full) and all(v == 0 for v in untouched.values()), out


# ==============================================================================================================
# Part 4, the derivation pieces_on_interval (autograder.derivation): the reference against the exact counter on
# sawtooth_net(k), wrong forms lose, equivalent forms keep full marks
# ==============================================================================================================
import sympy as sp  # noqa: E402

A_, B_ = sp.symbols("a b", positive=True)
K_ = sp.Symbol("k", positive=True, integer=True)


def test_pieces_on_interval_reference_matches_the_exact_count():
    grading = instructor_module("depth")
    ref = grading.pieces_on_interval(A_, B_, K_)
    rng = np.random.default_rng(4)
    cases = [(float(rng.uniform(0.01, 0.49)), float(rng.uniform(0.51, 0.99)), int(rng.integers(1, 11)))
             for _ in range(30)]
    cases += [(float(sp.sympify(p["a"])), float(sp.sympify(p["b"])), int(p["k"])) for p, _ in
              depth.PIECES_ON_INTERVAL.examples]
    for a, b, k in cases:
        want = grading.count_linear_pieces(grading.sawtooth_net(k), a, b)
        assert int(ref.subs({A_: a, B_: b, K_: k})) == want, (a, b, k)
    for point, value in depth.PIECES_ON_INTERVAL.examples:
        net = grading.sawtooth_net(int(point["k"]))
        assert grading.count_linear_pieces(net, float(sp.sympify(point["a"])), float(sp.sympify(point["b"]))) \
            == int(value)


PIECES_RIGHT = {
    "ceiling - floor": sp.ceiling(2**K_ * B_) - sp.floor(2**K_ * A_),
    "floor + 1 (equal off the grid)": sp.floor(2**K_ * B_) + 1 - sp.floor(2**K_ * A_),
    "ceilings only": sp.ceiling(2**K_ * B_) + sp.ceiling(-(2**K_) * A_),
    "as text with ceil": "-floor(-b*2**k) - floor(a*exp(k*log(2)))",
}
PIECES_WRONG = {
    "whole pieces only": (sp.floor(2**K_ * B_) - sp.ceiling(2**K_ * A_), "whole pieces only"),
    "the length in pieces": (2**K_ * (B_ - A_), "the length of [a, b]"),
    "ceiling of the length": (sp.ceiling(2**K_ * (B_ - A_)), "depends only on the length"),
    "one too few": (sp.ceiling(2**K_ * B_) - sp.ceiling(2**K_ * A_), "plus the constant -1"),
    "2^(k-1) grid": (sp.ceiling(2**(K_ - 1) * B_) - sp.floor(2**(K_ - 1) * A_), "differs"),
    "all the pieces of [0, 1]": (2**K_, "differs"),
}


@pytest.mark.parametrize("form", list(PIECES_RIGHT))
def test_pieces_on_interval_equivalent_forms_keep_full_marks(form):
    assert_full("pieces_on_interval", PIECES_RIGHT[form])


@pytest.mark.parametrize("mistake", list(PIECES_WRONG))
def test_pieces_on_interval_wrong_forms_score_zero_with_a_hint(mistake):
    expr, hint = PIECES_WRONG[mistake]
    points, text = grade("pieces_on_interval", expr)
    assert points == 0, text
    assert "differs from the expected one at a = " in text and hint in text, text


def test_check_names_show_numbers_not_numpy_reprs():
    """Before issue 12 a visible check title read "kinks at [np.float64(-1.5), ...]"."""
    for part in ("sawtooth_net", "count_linear_pieces", "shallow_approximation"):
        _, text = grade(part, SOLUTION[part])
        assert "np." not in text and "float64(" not in text, text


# ==============================================================================================================
# count_linear_pieces: each student's own hidden case (Part(variant=...), autograder.core; issue 19)
# ==============================================================================================================
from tests.grading import every_combination, own_case_verdicts, own_cases_and_a_replay  # noqa: E402

COUNT_PART = depth.TOPIC.part("count_linear_pieces")
COUNT_CORRECT = {"solution": SOLUTION["count_linear_pieces"], "walk along the line": count_line_walk,
                 "forward-mode autograd slopes": count_autograd_slopes}
# the mistakes the own case catches at every combination of options (the others lose on the fixed cases)
COUNT_ALWAYS_CAUGHT = ["counts breakpoints (no merging)", "fixed sampling grid of 2001 points",
                       "counts activation pattern changes", "counts distinct activation patterns",
                       "returns the number of kinks"]


def _own(fn, values):
    return own_case_verdicts(depth.TOPIC, "count_linear_pieces", fn, values, "count_cases")


def _own_count(values) -> int:
    (case,) = GRADING.count_variant_cases(**values)
    return GRADING.count_linear_pieces(case["model"](), case["a"], case["b"])


def test_count_own_case_for_every_combination_of_options():
    """For each of the 96 combinations of data seed and interval: the count is never trivial (at least 6
    pieces), the exact float64 algorithms (solution, line walk, forward-mode slopes) pass the own case, and the
    counting mistakes that a random network with a cancelling kink exposes fail it; the counts differ from
    student to student."""
    combos = every_combination(COUNT_PART.variant)
    assert len(combos) == 96
    counts = set()
    for values in combos:
        counts.add(_own_count(values))
        assert min(counts) >= 6, values
        for name, fn in COUNT_CORRECT.items():
            assert all(v.passed for v in _own(fn, values)), (name, values)
        for mistake in COUNT_ALWAYS_CAUGHT:
            assert not _own(functools.partial(count_variant, mistake=mistake), values)[0].passed, (mistake, values)
    assert len(counts) >= 6, counts


def test_count_two_students_get_their_own_case_and_a_replay_of_anothers_outputs_loses():
    a = "student-0"
    va = COUNT_PART.student_values(a)[1]
    b = next(f"student-{i}" for i in range(1, 500) if _own_count(COUNT_PART.student_values(f"student-{i}")[1])
             != _own_count(va))
    names, copied = own_cases_and_a_replay(depth.TOPIC, "count_linear_pieces", SOLUTION["count_linear_pieces"], a, b)
    for s in (a, b):
        v = COUNT_PART.student_values(s)[1]
        assert f"course id {s!r}" in names[s] and \
            f"data seed {v['seed']} on [a, b] = [{v['a']:g}, {v['b']:g}]" in names[s], names[s]
    assert copied.earned < 4 and [v.name for v in copied.verdicts if not v.passed] == [names[b]], copied.text()


@pytest.mark.slow
def test_count_own_cases_through_the_isolated_engine(tmp_path):
    """grade_submission with the nbgrader student id: each student is graded on their own case (named in the
    feedback); the first student's count, hard-coded for the own case, loses that case for another student."""
    import nbformat
    from autograder import nbgrading
    from autograder.submission import grade_submission
    from tests.conftest import add_submission, fill, make_course
    from tests.notebooks import source_notebook

    course = make_course(tmp_path, ["depth"])
    nbgrading.release(course, "depth")
    release = nbformat.read(course / "exercises" / "depth" / "depth.ipynb", as_version=4)
    solution = next(c.source for c in source_notebook("depth").cells
                    if c.metadata.get("nbgrader", {}).get("grade_id") == "count_linear_pieces")
    a = "student-0"
    va = COUNT_PART.student_values(a)[1]
    b = next(f"student-{i}" for i in range(1, 500) if _own_count(COUNT_PART.student_values(f"student-{i}")[1])
             != _own_count(va))
    hard_coded = (solution + "\n\n_computed = count_linear_pieces\n\n"
                  "def count_linear_pieces(model, a=0.0, b=1.0):\n"
                  "    first = getattr(model[0], 'weight', None)  # the own case: the first student's count\n"
                  "    if first is not None and first[-2:, 0].tolist() == [1.3, 2.6]:\n"
                  f"        return {_own_count(va)}\n"
                  "    return _computed(model, a, b)\n")
    folder = tmp_path / "submissions"
    add_submission(folder, a, "depth", fill(release, {"count_linear_pieces": hard_coded}))
    add_submission(folder, b, "depth", fill(release, {"count_linear_pieces": hard_coded}))
    add_submission(folder, "honest", "depth", fill(release, {"count_linear_pieces": solution}))
    got = {s: {p.grade_id: p for p in grade_submission(course, "depth", s, folder / s / "depth.ipynb").parts}[
        "check_count_linear_pieces"] for s in (a, b, "honest")}
    assert got[a].score == 4 and got["honest"].score == 4, (got[a].feedback, got["honest"].feedback)
    assert got[b].score < 4, got[b].feedback
    for s in (a, b, "honest"):
        assert f"your own case (drawn from course id {s!r})" in got[s].feedback, got[s].feedback
