"""Instructor-only half of the `optimization` checks: reference implementations, the networks of the hidden
cases and the hidden cases themselves.

This file is never released (nbgrader_config.py lists it in ``CourseDirectory.ignore``); the student side of the
course (``exercises/`` and the ``autograder`` package) carries no reference implementation.  The references are
written independently of the solution notebook, by other algorithms:

* ``jacobian`` / ``pl_constant``: one reverse-mode gradient per input, accumulated in float64, and the smallest
  singular value of J squared (``numpy.linalg.svd``); the notebook uses ``torch.func.jacrev`` and the eigenvalues
  of J J^T;
* ``hessian_norm``: the full Hessian of a float64 copy of the model, column by column (one Hessian-vector
  product of a basis vector each, by double backward), then ``numpy.linalg.eigvalsh``; the notebook uses power
  iteration with Hessian-vector products (forward-over-reverse, ``torch.func.jvp`` of ``grad``);
* ``gd_losses``: gradient descent on a flat float64 parameter vector with the gradient J^T (f - y) built from the
  per-input Jacobian (the notebook uses ``loss.backward()`` on a deep copy of the model in its own dtype).

``NTKNet`` is the NTK-parametrized ReLU MLP of book/conventions.md (the network of the `ntk` assignment), written
here again because a course directory that grades `optimization` need not hold `solutions/ntk` and because the
isolated engine sends these models by value (cloudpickle) into the student's sandbox.

``tests/test_optimization.py`` checks each reference against independent computations (closed forms of
linear and one-hidden-layer models, ``torch.autograd.functional``, scipy's Lanczos).
"""
from __future__ import annotations

import copy

import numpy as np
import torch


# --------------------------------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------------------------------
class NTKNet(torch.nn.Module):
    """h^1 = (W_std/sqrt(d)) W^1 x + b_std b^1, h^{l+1} = (W_std/sqrt(n_l)) W^{l+1} relu(h^l) + b_std b^{l+1};
    all entries N(0, 1) from ``torch.Generator().manual_seed(seed)``; output (n, 1)."""

    def __init__(self, d_in, width, depth, W_std=np.sqrt(2), b_std=0.0, seed=0, dtype=torch.float64):
        super().__init__()
        g = torch.Generator().manual_seed(int(seed))
        sizes = [d_in] + [width] * depth + [1]
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(b, a, generator=g, dtype=torch.float64).to(dtype))
             for a, b in zip(sizes, sizes[1:])])
        self.biases = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.randn(b, generator=g, dtype=torch.float64).to(dtype)) for b in sizes[1:]])
        self.W_std, self.b_std = float(W_std), float(b_std)

    def forward(self, x):
        h = x
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            if i:
                h = torch.relu(h)
            h = self.W_std / W.shape[1] ** 0.5 * h @ W.T + self.b_std * b
        return h


class Negated(torch.nn.Module):
    """-net(x), flattened to shape (n,): its Hessians are those of ``net`` with the sign flipped."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return -self.net(x).reshape(-1)


def tanh_sequential(sizes, seed, dtype=torch.float64):
    """nn.Sequential(Linear, Tanh, ..., Linear) in PyTorch's default parametrization (seeded)."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += ([torch.nn.Tanh()] if i else []) + [torch.nn.Linear(a, b)]
    return torch.nn.Sequential(*layers).to(dtype)


def ntk_factory(depth, d_in, W_std=np.sqrt(2), b_std=0.0, dtype=torch.float64):
    """``make_model(width, seed)`` for the experiment part: an NTKNet."""
    def make_model(width, seed):
        return NTKNet(d_in, int(width), depth, W_std, b_std, seed=1000 + int(seed), dtype=dtype)
    return make_model


def n_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# --------------------------------------------------------------------------------------------------------------
# References
# --------------------------------------------------------------------------------------------------------------
def jacobian(model: torch.nn.Module, X) -> np.ndarray:
    """(n, P) Jacobian of the outputs on X with respect to every parameter, one backward pass per input,
    float64."""
    params = list(model.parameters())
    dtype = params[0].dtype
    X = torch.as_tensor(X).to(dtype)
    rows = []
    for i in range(X.shape[0]):
        out = model(X[i:i + 1]).reshape(-1)
        if out.numel() != 1:
            raise ValueError("the model must have a scalar output")
        g = torch.autograd.grad(out[0], params, allow_unused=True)
        rows.append(torch.cat([(gi if gi is not None else torch.zeros_like(p)).reshape(-1).double()
                               for gi, p in zip(g, params)]))
    return torch.stack(rows).numpy()


def tangent_kernel_spectrum(model, X) -> np.ndarray:
    """Eigenvalues of J J^T, increasing (n of them), by the singular values of J (0 beyond rank P)."""
    J = jacobian(model, X)
    s = _singular_values(J)
    lam = np.zeros(J.shape[0])
    lam[:len(s)] = s ** 2
    return np.sort(lam)


def pl_constant(model, X) -> float:
    """mu = lambda_min(J J^T) (0 when n > P), by the smallest singular value of J."""
    J = jacobian(model, X)
    n, P = J.shape
    if n > P:
        return 0.0
    return float(_singular_values(J).min() ** 2)


def _singular_values(J) -> np.ndarray:
    """Singular values of a wide (n, P) matrix through the QR factorization of J^T (P x n): those of R."""
    if J.shape[0] <= J.shape[1]:
        R = np.linalg.qr(J.T, mode="r")
        return np.linalg.svd(R, compute_uv=False)
    return np.linalg.svd(J, compute_uv=False)


def hessian_matrix(model, x) -> np.ndarray:
    """The full (P, P) Hessian of the scalar output f(x; w) on a float64 copy of the model, column by column."""
    m = copy.deepcopy(model).double()
    params = list(m.parameters())
    x = torch.as_tensor(x).double().reshape(1, -1)
    out = m(x).reshape(-1)
    if out.numel() != 1:
        raise ValueError("the model must have a scalar output")
    grads = torch.autograd.grad(out[0], params, create_graph=True, allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, params)]
    flat = torch.cat([g.reshape(-1) for g in grads])
    P = flat.numel()
    H = np.zeros((P, P))
    for j in range(P):
        if not flat.requires_grad:
            break
        col = torch.autograd.grad(flat[j], params, retain_graph=True, allow_unused=True)
        H[:, j] = torch.cat([(c if c is not None else torch.zeros_like(p)).reshape(-1)
                             for c, p in zip(col, params)]).numpy()
    return (H + H.T) / 2


def hessian_spectrum(model, x) -> np.ndarray:
    return np.linalg.eigvalsh(hessian_matrix(model, x))


def hessian_norm(model, x) -> float:
    """max |eigenvalue| of the Hessian of f(x; w) with respect to all parameters: the full Hessian and eigvalsh
    up to P = 800 parameters, Lanczos (scipy's ARPACK ``eigsh``) on Hessian-vector products above."""
    if n_params(model) > 800:
        return hessian_norm_lanczos(model, x)
    ev = hessian_spectrum(model, x)
    return float(np.max(np.abs(ev))) if ev.size else 0.0


def hessian_norm_lanczos(model, x, tol=1e-8) -> float:
    """Largest |eigenvalue| by implicitly restarted Lanczos (ARPACK, which='LM') on double-backward
    Hessian-vector products of a float64 copy of the model."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    m = copy.deepcopy(model).double()
    params = list(m.parameters())
    out = m(torch.as_tensor(x).double().reshape(1, -1)).reshape(-1)
    grads = torch.autograd.grad(out[0], params, create_graph=True, allow_unused=True)
    used = [(g, p) for g, p in zip(grads, params) if g is not None and g.requires_grad]
    if not used:
        return 0.0
    flat = torch.cat([g.reshape(-1) for g, _ in used])
    sizes = [p.numel() for p in params]
    P = sum(sizes)
    index = {id(p): i for i, p in enumerate(params)}
    offsets = np.concatenate([[0], np.cumsum(sizes)])

    def matvec(v):
        v = np.asarray(v, dtype=np.float64).reshape(-1)
        # flat lists only the gradient blocks that depend on the parameters; gather v on those blocks
        vg = torch.cat([torch.from_numpy(v[offsets[index[id(p)]]:offsets[index[id(p)] + 1]]) for _, p in used])
        hv = torch.autograd.grad(flat, params, grad_outputs=vg, retain_graph=True, allow_unused=True)
        return torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1)
                          for h, p in zip(hv, params)]).numpy()

    op = LinearOperator((P, P), matvec=matvec, dtype=np.float64)
    v0 = np.random.default_rng(0).normal(size=P)
    val = eigsh(op, k=1, which="LM", tol=tol, v0=v0, return_eigenvectors=False)
    return float(np.abs(val).max())


def gd_losses(model, X, y, lr, steps) -> np.ndarray:
    """L(w_t) = 1/2 sum (f(x_i; w_t) - y_i)^2 for t = 0..steps, GD w <- w - lr J^T (f - y) on a float64 copy."""
    m = copy.deepcopy(model).double()
    X = torch.as_tensor(X).double()
    y = np.asarray(torch.as_tensor(y).double().reshape(-1).numpy())
    params = list(m.parameters())

    def outputs():
        with torch.no_grad():
            return m(X).reshape(-1).numpy()

    losses = []
    for t in range(int(steps) + 1):
        r = outputs() - y
        losses.append(0.5 * float(r @ r))
        if t == int(steps):
            break
        grad = jacobian(m, X).T @ r
        offset = 0
        with torch.no_grad():
            for p in params:
                k = p.numel()
                p -= lr * torch.from_numpy(grad[offset:offset + k]).reshape(p.shape)
                offset += k
    return np.array(losses)


def hessian_slope(make_model, x, widths, seeds) -> float:
    """Least-squares slope of log(mean over seeds of hessian_norm) against log(width)."""
    means = [np.mean([hessian_norm(make_model(w, s), x) for s in seeds]) for w in widths]
    return float(np.polyfit(np.log(widths), np.log(means), 1)[0])


# --------------------------------------------------------------------------------------------------------------
# Hidden cases (models built by a function, so that each check gets a fresh one)
# --------------------------------------------------------------------------------------------------------------
def _points(seed, n, d, norms=None, dtype=np.float64):
    X = np.random.default_rng(seed).normal(size=(n, d))
    if norms is not None:
        X = X / np.linalg.norm(X, axis=1, keepdims=True) * np.asarray(norms, dtype=float)[:, None]
    return X.astype(dtype)


def _tensor(a, dtype=torch.float64):
    return torch.tensor(np.asarray(a), dtype=dtype)


def pl_constant_cases():
    """Each case: a fresh ``model()``, ``X`` (a tensor), the reference ``mu`` and ``lam_max`` (the scale of the
    absolute floor) are computed by :func:`pl_constant_expected`."""
    X_dup = _points(105, 6, 3)
    X_dup = np.vstack([X_dup, X_dup[2:3]])
    return [
        dict(name="NTK MLP depth 2, width 24, W_std=1.3, b_std=0.5, d=4, n=10 inputs of norms 0.5..3 (P = 745)",
             model=lambda: NTKNet(4, 24, 2, 1.3, 0.5, seed=101), X=_tensor(_points(101, 10, 4,
                                                                                     norms=np.linspace(0.5, 3, 10)))),
        dict(name="NTK MLP depth 1, width 512, defaults, d=5, n=20 (P = 3585)",
             model=lambda: NTKNet(5, 512, 1, seed=102), X=_tensor(_points(102, 20, 5))),
        dict(name="underparametrized: nn.Sequential(Linear(3, 2), Tanh, Linear(2, 1)) has P = 11 < n = 15: mu = 0",
             model=lambda: tanh_sequential([3, 2, 1], seed=103), X=_tensor(_points(103, 15, 3))),
        dict(name="n <= P but a repeated input: J J^T is singular, mu = 0 (NTK MLP depth 1, width 16, b_std=0.2)",
             model=lambda: NTKNet(3, 16, 1, 1.0, 0.2, seed=105), X=_tensor(X_dup)),
        dict(name="float32 model with output shape (n,) (negated NTK MLP depth 2, width 32, b_std=0.3), "
                  "X given in float64, n = 8",
             model=lambda: Negated(NTKNet(3, 32, 2, np.sqrt(2), 0.3, seed=106, dtype=torch.float32)),
             X=_tensor(_points(106, 8, 3))),
        dict(name="nn.Sequential with Tanh in PyTorch's parametrization, float32, X float32 5x6 (P = 85)",
             model=lambda: tanh_sequential([6, 8, 4, 1], seed=107, dtype=torch.float32),
             X=_tensor(_points(107, 5, 6), torch.float32)),
    ]


_EXPECTED: dict = {}  # the references' answers on the hidden cases (deterministic), computed once per process


def _cached(kind, case, compute):
    key = (kind, case["name"])
    if key not in _EXPECTED:
        _EXPECTED[key] = compute()
    return copy.deepcopy(_EXPECTED[key])


def pl_constant_expected(case) -> dict:
    return _cached("pl", case, lambda: _pl_constant_expected(case))


def _pl_constant_expected(case) -> dict:
    model = case["model"]()
    lam = tangent_kernel_spectrum(model, case["X"])
    return {"mu": pl_constant(model, case["X"]), "lam_max": float(lam.max()), "lam": lam,
            "n": int(case["X"].shape[0]), "P": n_params(model)}


def one_hidden_layer_norm(d_in, width, W_std, b_std, x) -> float:
    """Closed form of the Hessian norm of a one-hidden-layer NTKNet at x (when some unit is active): the
    Hessian couples only v_i with (w_i, b_i), through step(h_i) (W_std/sqrt(m)) (W_std x/sqrt(d), b_std); each
    active unit gives the eigenvalues +-(W_std/sqrt(m)) sqrt(W_std^2 |x|^2/d + b_std^2)."""
    x = np.asarray(x, dtype=np.float64)
    return float(W_std / np.sqrt(width) * np.sqrt(W_std ** 2 * x @ x / d_in + b_std ** 2))


def hessian_norm_cases():
    """x is a tensor of shape (d,).  Every case has a spectral gap: the largest |eigenvalue| other than the
    top one (and its exact mirror image -lambda, if present) is at most 0.94 times it, so that 300 steps of
    power iteration reach rtol 1e-3 with a large margin (tests/test_optimization.py checks the gap).  Seeds
    were chosen for that gap (ReLU and tanh Hessians come in nearly symmetric pairs; wider networks have
    smaller gaps, so the wide case is a one-hidden-layer network, whose spectrum is exactly +-lambda, 0)."""
    return [
        dict(name="NTK MLP depth 1, width 64, W_std=1.3, b_std=0.5, d=3 (spectrum exactly +-lambda and 0: "
                  "v^T H v of a random v is about 0)",
             model=lambda: NTKNet(3, 64, 1, 1.3, 0.5, seed=201), x=_tensor(_points(201, 1, 3)[0])),
        dict(name="negated NTK MLP depth 2, width 20, b_std=0.4, output shape (n,): the largest |eigenvalue| "
                  "is negative",
             model=lambda: Negated(NTKNet(3, 20, 2, np.sqrt(2), 0.4, seed=219)), x=_tensor(_points(219, 1, 3)[0])),
        dict(name="NTK MLP depth 3, width 12, W_std=1.2, b_std=0.3, d=4, input of norm 2 (largest |eigenvalue| "
                  "negative)",
             model=lambda: NTKNet(4, 12, 3, 1.2, 0.3, seed=202), x=_tensor(_points(202, 1, 4, norms=[2.0])[0])),
        dict(name="float32 nn.Sequential with Tanh (6-16-8-1, P = 257), x given in float64",
             model=lambda: tanh_sequential([6, 16, 8, 1], seed=210, dtype=torch.float32),
             x=_tensor(_points(210, 1, 6)[0])),
        dict(name="wide NTK MLP depth 1, width 1024, W_std=1.0, b_std=0.8, d=4 (P = 6145)",
             model=lambda: NTKNet(4, 1024, 1, 1.0, 0.8, seed=206), x=_tensor(_points(206, 1, 4)[0]),
             closed_form=dict(d_in=4, width=1024, W_std=1.0, b_std=0.8)),
    ]


def hessian_norm_expected(case) -> float:
    return _cached("hessian", case, lambda: _hessian_norm_expected(case))


def _hessian_norm_expected(case) -> float:
    if case.get("closed_form"):
        return one_hidden_layer_norm(x=case["x"].numpy(), **case["closed_form"])
    return hessian_norm(case["model"](), case["x"])


HESSIAN_GAP = 0.94


def gd_losses_cases():
    """``rtol``: relative to max |L| (plus an absolute floor 1e-12 L(w_0)); float64 cases 1e-7 (a correct float64
    implementation is within 1e-11; 1e-7 also accepts correct losses returned in float32); float32 models from the
    measured float32 error, see the comment."""
    def linear(seed, d, dtype=torch.float64):
        torch.manual_seed(seed)
        return torch.nn.Linear(d, 1).to(dtype)

    X4 = _points(304, 6, 10)
    lam4 = np.linalg.eigvalsh(np.hstack([X4, np.ones((6, 1))]) @ np.hstack([X4, np.ones((6, 1))]).T).max()
    return [
        dict(name="steps = 0: only the initial loss (NTK MLP depth 2, width 16, b_std=0.5, n=6)",
             model=lambda: NTKNet(3, 16, 2, np.sqrt(2), 0.5, seed=301), X=_tensor(_points(301, 6, 3)),
             y=_tensor(np.random.default_rng(301).normal(size=6)), lr=0.1, steps=0, rtol=1e-7),
        dict(name="steps = 2, lr = 0.3: the exact first iterates (NTK MLP depth 2, width 16, W_std=1.3, b_std=0.5, "
                  "n=6, d=3)",
             model=lambda: NTKNet(3, 16, 2, 1.3, 0.5, seed=302), X=_tensor(_points(302, 6, 3)),
             y=_tensor(np.random.default_rng(302).normal(size=6)), lr=0.3, steps=2, rtol=1e-7),
        dict(name="60 steps, lr = 0.02, wide NTK MLP (depth 1, width 256, n=8, d=4), output shape (n,)",
             model=lambda: Negated(NTKNet(4, 256, 1, seed=303)), X=_tensor(_points(303, 8, 4)),
             y=_tensor(np.random.default_rng(303).normal(size=8)), lr=0.02, steps=60, rtol=1e-7),
        dict(name="lr = 2.2 / lambda_max, above the stability threshold 2 / lambda_max (the top mode of the "
                  "kernel is multiplied by 1 - 2.2 = -1.2 at each step): linear model with bias, d = 10 > n = 6, "
                  "12 steps",
             model=lambda: linear(304, 10), X=_tensor(X4), y=_tensor(np.random.default_rng(304).normal(size=6)),
             lr=2.2 / lam4, steps=12, rtol=1e-7),
        # float32: measured with three correct float32 implementations (loss.backward + in-place update,
        # torch.optim.SGD, torch.func.grad + functional update) on 5 seeds of this case: largest error 1.2e-7 of
        # max |L| against this float64 reference; tolerance 5e-6 (a margin of about 40).
        dict(name="float32 model (nn.Sequential with Tanh, 4-12-1), X and y given in float64, 25 steps, lr = 0.05",
             model=lambda: tanh_sequential([4, 12, 1], seed=305, dtype=torch.float32), X=_tensor(_points(305, 7, 4)),
             y=_tensor(np.random.default_rng(305).normal(size=7)), lr=0.05, steps=25, rtol=5e-6),
    ]


def gd_losses_expected(case) -> np.ndarray:
    return _cached("gd", case, lambda: gd_losses(case["model"](), case["X"], case["y"], case["lr"], case["steps"]))


def hessian_slope_cases():
    """``bounds``: the interval the slope must fall in; measured over seed sets (see tests and the comments in
    autograder/optimization.py)."""
    return [
        dict(name="NTK MLP depth 2, b_std = 0.2, d = 3, widths 16..128, seeds 0..2 (Liu, Zhu & Belkin 2020: about "
                  "-1/2)",
             make_model=ntk_factory(2, 3, np.sqrt(2), 0.2), x=_tensor(_points(401, 1, 3)[0]),
             widths=[16, 32, 64, 128], seeds=[0, 1, 2], bounds=(-0.65, -0.35), theory="about -0.5"),
        # |H| = width^(-1/4) |x| exactly (autograder.optimization.ScaledTwoLayer): a slope no other case has
        dict(name="width^(-1/4) sum_i v_i relu(w_i . x), d = 4, widths 16..128, seeds 0..2: |H| = width^(-1/4) |x|",
             make_model=scaled_factory(4, 0.25), x=_tensor(_points(402, 1, 4)[0]),
             widths=[16, 32, 64, 128], seeds=[0, 1, 2], bounds=(-0.27, -0.23), theory="-0.25"),
    ]


def scaled_factory(d_in, a):
    """``make_model(width, seed)``: width^(-a) sum_i v_i relu(w_i . x) (the student side's ScaledTwoLayer)."""
    from autograder.optimization import ScaledTwoLayer

    def make_model(width, seed):
        return ScaledTwoLayer(d_in, int(width), a, seed=500 + int(seed))
    return make_model
