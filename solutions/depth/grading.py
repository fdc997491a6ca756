"""Instructor-only half of the `depth` checks: reference implementations and the hidden cases.

This file is never released (nbgrader_config.py lists it in ``CourseDirectory.ignore``) and the student side of
the course (``exercises/`` and the ``autograder`` package) carries no reference implementation.  The references
here are written independently of the solution notebook, by other algorithms:

* ``count_linear_pieces``: exact rational arithmetic with ``fractions.Fraction`` (every float32 or float64 weight
  converts exactly), piece by piece, merging adjacent pieces whose affine maps are *equal*; no tolerance anywhere,
  so kinks 1e-9 apart and kinks that cancel are decided exactly (the notebook propagates breakpoints in float64
  with a relative slope tolerance);
* ``sawtooth_net``: the tent written as relu(2x) - relu(4x - 2) (the notebook uses 2 relu(x) - 4 relu(x - 1/2));
* ``l1_to_sawtooth``: the exact L1 distance between f_k and a piecewise-linear function, in rational arithmetic
  (the notebook integrates in float64).

``tests/test_depth.py`` checks each against the solution notebook (Hypothesis, random networks) and against
values known by construction (2^k pieces of the sawtooth).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from autograder.depth import build_sequential


# --------------------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------------------
def _layers_exact(model):
    """The layers of an nn.Sequential of Linear and ReLU modules, weights as exact Fractions."""
    out = []
    for layer in model:
        if type(layer) is torch.nn.Linear:
            W = [[Fraction(v) for v in row] for row in layer.weight.detach().to(torch.float64).tolist()]
            b = ([Fraction(v) for v in layer.bias.detach().to(torch.float64).tolist()] if layer.bias is not None
                 else [Fraction(0)] * len(W))
            out.append(("linear", W, b))
        elif type(layer) is torch.nn.ReLU:
            out.append(("relu", None, None))
        else:
            raise TypeError(f"unsupported layer {type(layer).__name__}")
    return out


def linear_pieces_exact(model, a=0.0, b=1.0) -> list[tuple[Fraction, Fraction, Fraction, Fraction]]:
    """The maximal affine pieces ``(left, right, slope, intercept)`` of x -> model(x) on [a, b], exactly."""
    layers = _layers_exact(model)
    a, b = Fraction(a), Fraction(b)
    if not a < b:
        raise ValueError("need a < b")
    # each piece: (left, right, slopes, intercepts) of the current layer's units on [left, right]
    pieces = [(a, b, [Fraction(1)], [Fraction(0)])]
    for kind, W, bias in layers:
        if kind == "linear":
            pieces = [(l, r, [sum((w * s for w, s in zip(row, S)), Fraction(0)) for row in W],
                       [sum((w * c for w, c in zip(row, Cs)), Fraction(0)) + bj for row, bj in zip(W, bias)])
                      for l, r, S, Cs in pieces]
            continue
        new = []
        for l, r, S, Cs in pieces:
            cuts = sorted({-c / s for s, c in zip(S, Cs) if s != 0 and l < -c / s < r})
            bounds = [l] + cuts + [r]
            for lo, hi in zip(bounds, bounds[1:]):
                mid = (lo + hi) / 2
                on = [s * mid + c > 0 for s, c in zip(S, Cs)]
                new.append((lo, hi, [s if o else Fraction(0) for s, o in zip(S, on)],
                            [c if o else Fraction(0) for c, o in zip(Cs, on)]))
        pieces = new
    if len(pieces[0][2]) != 1:
        raise ValueError(f"the model has {len(pieces[0][2])} outputs; a scalar output is needed")
    merged: list[list] = []
    for l, r, S, Cs in pieces:
        if merged and merged[-1][2] == S[0] and merged[-1][3] == Cs[0]:
            merged[-1][1] = r
        else:
            merged.append([l, r, S[0], Cs[0]])
    return [tuple(p) for p in merged]


def count_linear_pieces(model, a=0.0, b=1.0) -> int:
    """Exact number of maximal intervals of [a, b] on which the network is affine (rational arithmetic)."""
    return len(linear_pieces_exact(model, a, b))


def sawtooth_net(k: int) -> torch.nn.Sequential:
    """Reference construction of the k-fold tent map: units relu(2y), relu(4y - 2), tent = u1 - u2."""
    layers = [torch.nn.Linear(1, 2), torch.nn.ReLU()]
    for _ in range(k - 1):
        layers += [torch.nn.Linear(2, 2), torch.nn.ReLU()]
    layers.append(torch.nn.Linear(2, 1))
    net = torch.nn.Sequential(*layers).to(torch.float64)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[2.0], [4.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -2.0]))
        for i in range(2, len(net) - 1, 2):
            net[i].weight.copy_(torch.tensor([[2.0, -2.0], [4.0, -4.0]]))
            net[i].bias.copy_(torch.tensor([0.0, -2.0]))
        net[-1].weight.copy_(torch.tensor([[1.0, -1.0]]))
        net[-1].bias.zero_()
    return net


def sawtooth_exact(k: int, x: Fraction) -> Fraction:
    """f_k(x) for x in [0, 1], exactly, by composing the tent min(2y, 2 - 2y) k times."""
    y = Fraction(x)
    for _ in range(k):
        y = 2 * y if y <= Fraction(1, 2) else 2 - 2 * y
    return y


def l1_to_sawtooth(k: int, knots, values) -> Fraction:
    """Exact int_0^1 |f_k(x) - g(x)| dx for g the piecewise-linear interpolant of (knots, values) on [0, 1]."""
    xs = [Fraction(float(v)) for v in np.asarray(knots, dtype=np.float64)]
    ys = [Fraction(float(v)) for v in np.asarray(values, dtype=np.float64)]
    if xs[0] != 0 or xs[-1] != 1 or any(p >= q for p, q in zip(xs, xs[1:])):
        raise ValueError("knots must increase strictly from 0 to 1")
    grid = sorted(set(xs) | {Fraction(i, 2 ** k) for i in range(2 ** k + 1)})

    def g(x):
        # the knot interval of x (binary search)
        lo, hi = 0, len(xs) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if xs[mid] <= x:
                lo = mid
            else:
                hi = mid
        x0, x1 = xs[lo], xs[hi]
        return ys[lo] + (ys[hi] - ys[lo]) * (x - x0) / (x1 - x0)

    diff = [sawtooth_exact(k, x) - g(x) for x in grid]
    total = Fraction(0)
    for x0, x1, d0, d1 in zip(grid, grid[1:], diff, diff[1:]):
        h = x1 - x0
        if d0 * d1 >= 0:
            total += abs(d0 + d1) / 2 * h
        else:  # the line crosses zero inside: two triangles
            total += (d0 * d0 + d1 * d1) / (2 * abs(d0 - d1)) * h
    return total


def construction_error(k: int, t: int) -> float:
    """L1 error of the construction the notebook states as the target: follow f_k exactly up to a crossing of 1/2,
    then stay at 1/2 (t >= 2: (1 - (2t - 3) 2^(-k-1)) / 4; t = 1: the constant 1/2, error 1/4; t >= 2^k: 0)."""
    if t >= 2 ** k:
        return 0.0
    if t == 1:
        return 0.25
    return (1 - (2 * t - 3) * 2.0 ** (-k - 1)) / 4


def lower_bound(k: int, t: int) -> float:
    """The proven bound int |f_k - g| >= (1 - 2 t 2^-k) / 8 for continuous g with t affine pieces."""
    return (1 - 2 * t * 2.0 ** -k) / 8


# --------------------------------------------------------------------------------------------------------------
# Networks of the hidden cases (built by functions: each check gets a fresh one)
# --------------------------------------------------------------------------------------------------------------
def _net(spec, dtype=torch.float64):
    """nn.Sequential from a list of ("L", W, b) (b None: no bias) and "R" entries."""
    return build_sequential(*spec, dtype=dtype)


def random_net(widths, seed, dtype=torch.float64, bias_std=1.0, bias=True, final_relu=False):
    g = torch.Generator().manual_seed(seed)
    sizes = [1] + list(widths) + [1]
    layers = []
    for i, (m, n) in enumerate(zip(sizes, sizes[1:])):
        layer = torch.nn.Linear(m, n, bias=bias, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(n, m, generator=g, dtype=torch.float64) * np.sqrt(2.0 / m))
            if bias:
                layer.bias.copy_(torch.randn(n, generator=g, dtype=torch.float64) * bias_std)
        layers.append(layer)
        if i < len(sizes) - 2 or final_relu:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers).to(dtype)


def cancelling_non_dyadic():
    """Kinks that cancel exactly although the slopes are rounded in float64: units relu(w x + c) and
    relu(2w x + 2c) share the kink -c/w exactly, and output weights v and -v/2 cancel its slope change exactly;
    an always-active unit (0.157 x + 5) and non-dyadic weights make the float64 slope sums round differently on
    the two sides (checked in tests/test_depth.py).  One genuine kink at 0.62 remains: 2 pieces on [0, 1]."""
    w, v, kink = 0.992, 0.478, 0.403
    c = -(w * kink)                       # rounded once; the second unit uses exactly 2w and 2c
    return _net([("L", [[w], [2 * w], [0.157], [1.3]], [c, 2 * c, 5.0, -0.806]), "R",
                 ("L", [[v, -v / 2, 0.123, 0.9]], [0.0])])


def hidden_layer_zero_weight():
    """Depth 2: a first-layer unit with a kink at 0.4 feeds only zero weights; the second layer has two kinks of
    its own, at 0.25 and 0.75 (from the other unit): 3 pieces."""
    return _net([("L", [[1.0], [1.0]], [-0.4, 0.0]), "R",
                 ("L", [[0.0, 2.0], [0.0, -1.0]], [-1.5, 0.25]), "R",
                 ("L", [[1.0, 1.0]], [0.0])])


def close_kinks_deep():
    """Two kinks 1e-9 apart created in the second layer, at 0.6 and 0.6 + 1e-9; the first layer's kink at 0.2 is
    hidden (both second-layer units are off there): 3 pieces on [0, 1]."""
    return _net([("L", [[1.0]], [-0.2]), "R",
                 ("L", [[1.0], [1.0]], [-0.4, -0.4 - 1e-9]), "R",
                 ("L", [[1.0, 2.5]], [0.1])])


def zero_input_weight():
    """A unit with zero input weight (relu(0 x + 0.3), constant) and a dead unit relu(0 x - 1): only the kink of
    the third unit at -0.5 on [-1, 1]: 2 pieces."""
    return _net([("L", [[0.0], [0.0], [2.0]], [0.3, -1.0, 1.0]), "R",
                 ("L", [[1.0, 3.0, -1.5]], [0.2])])


def no_bias_consecutive_linear():
    """Linear without biases, two Linear layers in a row, a leading ReLU and a trailing ReLU."""
    return _net(["R", ("L", [[1.0], [-2.0], [0.5]], None), ("L", [[1.0, 0.5, -1.0], [-1.0, 1.0, 2.0]], [-0.25, 0.5]),
                 "R", ("L", [[1.0, -1.0]], [0.3]), "R"])


def constant_net():
    """Every unit dead on [a, b]: the function is constant, one piece."""
    return _net([("L", [[1.0], [-1.0]], [-5.0, -5.0]), "R", ("L", [[3.0, 2.0]], [1.0])])


def count_cases():
    """Hidden cases of ``count_linear_pieces``: (name, model builder, a, b).  The expected counts are computed by
    the exact reference at grading time (the sawtooth at k = 16 by construction: 2^16)."""
    return [
        dict(name="sawtooth network k = 12 on [0, 1]", model=lambda: sawtooth_net(12), a=0.0, b=1.0),
        dict(name="sawtooth network k = 16 on [0, 1] (2^16 pieces, known by construction)",
             model=lambda: sawtooth_net(16), a=0.0, b=1.0, expected=2 ** 16),
        dict(name="sawtooth network k = 5 on [-1, 2] (flat left of 0, one more kink at 1)",
             model=lambda: sawtooth_net(5), a=-1.0, b=2.0),
        dict(name="sawtooth network k = 6 on [0.3, 0.55]", model=lambda: sawtooth_net(6), a=0.3, b=0.55),
        dict(name="kinks that cancel exactly, non-dyadic weights (float64 slopes differ by rounding)",
             model=cancelling_non_dyadic, a=0.0, b=1.0),
        dict(name="depth 2: a first-layer kink that feeds only zero weights", model=hidden_layer_zero_weight,
             a=0.0, b=1.0),
        dict(name="depth 2: two kinks 1e-9 apart made in the second layer", model=close_kinks_deep, a=0.0, b=1.0),
        dict(name="units with zero input weight (constant and dead units), on [-1, 1]", model=zero_input_weight,
             a=-1.0, b=1.0),
        dict(name="leading ReLU, Linear without bias, two Linear layers in a row, trailing ReLU, on [-2, 3]",
             model=no_bias_consecutive_linear, a=-2.0, b=3.0),
        dict(name="all units dead on [0, 1]: a constant function", model=constant_net, a=0.0, b=1.0),
        dict(name="random float64 network, widths 8-8-8, on [-3, 3]", model=lambda: random_net([8, 8, 8], 11),
             a=-3.0, b=3.0),
        dict(name="random float64 network, widths 4-6-5-4-3 (depth 5), on [-2, 2]",
             model=lambda: random_net([4, 6, 5, 4, 3], 12), a=-2.0, b=2.0),
        dict(name="random float32 network, widths 16-16, on [-4, 4] (count in float64)",
             model=lambda: random_net([16, 16], 13, dtype=torch.float32), a=-4.0, b=4.0),
        dict(name="random network without biases (kinks only at 0), widths 5-5, on [-1, 2]",
             model=lambda: random_net([5, 5], 14, bias=False), a=-1.0, b=2.0),
        dict(name="random network with a trailing ReLU, widths 10-10, on [1.5, 7.5]",
             model=lambda: random_net([10, 10], 15, final_relu=True), a=1.5, b=7.5),
    ]


def count_variant_cases(seed, a, b):
    """The per-student hidden case of ``count_linear_pieces`` (``Part(variant=...)`` in autograder/depth.py): a
    random network of the student's own seed (two hidden layers, widths 4..7 and 3..6, the first layer's kinks
    in [a, b]) on the student's own interval [a, b]. Two more first-layer units, relu(w x + c) and relu(2w x + 2c), share a kink inside [a, b]
    that cancels exactly in every second-layer unit (weights r and -r/2; the doublings are exact in floating
    point), so counting breakpoints or activation changes is wrong here. The count: the exact reference."""
    rng = np.random.default_rng(6000 + int(seed))
    n1, n2 = int(rng.integers(4, 8)), int(rng.integers(3, 7))
    a, b = float(a), float(b)
    w = 1.3
    c = -(w * (a + rng.uniform(0.25, 0.75) * (b - a)))
    slopes = rng.normal(size=n1) * np.sqrt(2.0)
    W1 = np.concatenate([slopes, [w, 2 * w]])[:, None]
    b1 = np.concatenate([-slopes * rng.uniform(a, b, size=n1), [c, 2 * c]])  # the first layer's kinks in [a, b]
    r = rng.normal(size=(n2, 1))
    W2 = np.hstack([rng.normal(size=(n2, n1)) * np.sqrt(2.0 / n1), r, -r / 2])
    b2 = rng.normal(size=n2)
    W3 = rng.normal(size=(1, n2))
    spec = [("L", W1, b1), "R", ("L", W2, b2), "R", ("L", W3, [0.1])]
    return [dict(name=f"data seed {seed} on [a, b] = [{a:g}, {b:g}]: a random network with widths "
                      f"{n1 + 2}-{n2} whose two extra units' kink cancels", model=lambda: _net(spec), a=a, b=b)]


def sawtooth_cases():
    """Hidden values of k for ``sawtooth_net``; pieces are counted exactly for k <= 10."""
    return [dict(k=4, count=True), dict(k=7, count=True), dict(k=10, count=True), dict(k=16, count=False)]


def shallow_cases():
    """Hidden (k, t) of ``shallow_approximation``."""
    return [dict(k=1, t=1), dict(k=2, t=2), dict(k=6, t=5), dict(k=6, t=37), dict(k=6, t=63), dict(k=6, t=64),
            dict(k=5, t=100), dict(k=10, t=2), dict(k=10, t=333)]


# ---- Used by the chapter book/depth.md (instructor-only: answers graded parts) ----
# The chapter imports these at build time (``instructor_module("depth")``) for its figures; they stay here because
# they answer graded parts.  The chapter also uses ``sawtooth_net``, ``count_linear_pieces``, ``l1_to_sawtooth``,
# ``construction_error`` and ``lower_bound`` above.  ``linear_pieces`` is the float64 counter of the solution's
# method (the figure of random networks counts 160 networks: the exact rational counter takes too long there);
# ``construction`` gives the knots of the (t-piece) construction whose error ``construction_error`` states.
def linear_pieces(model, a=0.0, b=1.0):
    """Number of maximal affine intervals of a 1-D ReLU MLP on [a, b] (float64 breakpoint propagation)."""
    xs, A, C, S = np.array([a, b], float), np.ones((1, 1)), np.zeros((1, 1)), np.ones((1, 1))
    merge = 1e-12 * max(abs(a), abs(b), b - a)
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            W = layer.weight.detach().double().numpy()
            A, C, S = A @ W.T, C @ W.T, S @ np.abs(W).T
            if layer.bias is not None:
                C = C + layer.bias.detach().double().numpy()
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                r = -C / A
            inside = (A != 0) & (r > xs[:-1, None] + merge) & (r < xs[1:, None] - merge)
            new = np.unique(np.concatenate([xs, r[inside]]))
            new = new[np.concatenate([[True], np.diff(new) > merge])]
            mids = (new[:-1] + new[1:]) / 2
            parent = np.clip(np.searchsorted(xs, mids) - 1, 0, len(xs) - 2)
            A, C, S = A[parent], C[parent], S[parent]
            on = A * mids[:, None] + C > 0
            A, C, S, xs = A * on, C * on, S * on, new
    s = A[:, 0]
    tol = 1e-9 * np.abs(s).max() + 1e-14 * S[:, 0].max()
    return int(1 + np.count_nonzero(np.abs(np.diff(s)) > tol))


def construction(k, t):
    """Knots and values of the construction: follow f_k up to the crossing of 1/2 in piece t - 2, then stay at 1/2
    (t pieces; f_k itself when t >= 2^k, the constant 1/2 when t = 1)."""
    n = 2**k

    def f(x):
        y = np.asarray(x, dtype=float) * 2.0 ** (k - 1)
        return 1 - np.abs(2 * (y - np.floor(y)) - 1)

    if t >= n:
        knots = np.arange(n + 1) / n
        return knots, f(knots)
    if t == 1:
        return np.array([0.0, 1.0]), np.array([0.5, 0.5])
    j = t - 2
    knots = np.concatenate([np.arange(j + 1) / n, [(2 * j + 1) / (2 * n), 1.0]])
    return knots, np.concatenate([f(np.arange(j + 1) / n), [0.5, 0.5]])


# ----------------------------------------------------------------------------------------------------------------
# Derivation part ``pieces_on_interval`` (autograder.derivation): the number of linear pieces of the k-fold tent
# map f_k on [a, b], 0 < a < 1/2 < b < 1. f_k is affine with slope +-2^k on each I_j = [j 2^-k, (j+1) 2^-k] and no
# two neighbours merge, so the pieces are the I_j that meet (a, b): j = floor(2^k a), ..., ceiling(2^k b) - 1.
# Checked against count_linear_pieces(sawtooth_net(k), a, b) above in tests/test_depth.py.
# ----------------------------------------------------------------------------------------------------------------
def pieces_on_interval(a, b, k):
    import sympy as sp
    return sp.ceiling(2**k * b) - sp.floor(2**k * a)


def pieces_on_interval_slips(a, b, k):
    import sympy as sp
    return {
        "this counts the whole pieces only: the partial pieces at both ends of [a, b] count too":
            sp.floor(2**k * b) - sp.ceiling(2**k * a),
        "this is the length of [a, b] in units of a piece, not a number of pieces: a piece that [a, b] only cuts "
        "counts as one": 2**k * (b - a),
        "ceiling(2^k (b - a)) depends only on the length of [a, b]; the count depends on where a and b fall in the "
        "grid j 2^-k": sp.ceiling(2**k * (b - a)),
    }
