"""Checks of the assignment ``landscapes``: the spherical p-spin model (random loss landscapes).

Conventions (book/conventions.md, assignment ``landscapes``): s lies on the sphere |s|^2 = N; J is a dense (N, ..., N)
array with p axes, i.i.d. N(0, 1), **not symmetrized**;

    H(s) = N^{-(p-1)/2} sum_{i_1..i_p} J_{i_1..i_p} s_{i_1} ... s_{i_p},   E[H(s) H(s')] = N (s.s'/N)^p

(Auffinger, Ben Arous & Cerny 2013). grad H and hess H are the Euclidean gradient and Hessian on R^N (s . grad H
= p H). The graded functions:

* ``pspin_energy(J, s) -> float``: H(s);
* ``sphere_gradient(J, s) -> (N,)``: P grad H(s), P = I - s s^T / N;
* ``sphere_hessian(J, s) -> (N, N)``: P (hess H(s)) P - (s . grad H(s) / N) P, at any s;
* ``critical_index(J, s) -> int``: the number of negative eigenvalues of the Riemannian Hessian restricted to s-perp
  (an orthonormal basis of s-perp; the eigenvalue 0 along s is not counted);
* ``find_local_minimum(J, s0) -> s``: a local minimum of H on the sphere reached from s0 (any descent method),
  graded on properties: on the sphere, Riemannian gradient |grad| / sqrt(N) <= 1e-6 (1e-4 for float32 inputs), index
  0, energy not above H(s0), and an energy per spin H/N the landscape allows for a minimum (exactly the ground state
  for p = 2; below a threshold set from 300 seeds for p >= 3, see MINIMUM_ENERGY_CEILING).

Visible checks use properties (tangency, symmetry, invariance under a permutation of the axes of J, H(-s) =
(-1)^p H(s), the p = 2 closed form where critical points are eigenvectors of (J + J^T)/2) and small values
precomputed with the instructor's reference (written below as literals; tests/test_landscapes.py recomputes them).
The hidden checks (``tests="all"``) compare with the references of ``solutions/landscapes/grading.py`` on p = 2..5,
non-default N, float32 and torch inputs.

Tolerances. Every comparison has an absolute floor scaled to the quantity: with F = |J|_F (Frobenius norm),
|H| <= sqrt(N) F, |grad H|_inf <= p F and |hess|_inf <= p^2 F / sqrt(N) (Cauchy-Schwarz), and the tolerance is
ATOL_FACTOR[dtype] times that bound. Measured (30 seeds, (N, p) in {(8,3), (5,4), (12,3), (7,4), (9,2), (6,5)}):
float32 implementations (numpy tensordot slot by slot, torch autograd) are off by at most 0.3 eps32 of the bound;
the factor 20 eps32 leaves a margin of 60, and it is used for float64 inputs too (float32 arithmetic accepted).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .core import Part, Report, Topic, Written, close, compare, fmt, rtol_for

__all__ = ["TOPIC", "check_pspin_energy", "check_sphere_gradient", "check_sphere_hessian", "check_critical_index",
           "check_find_local_minimum", "visible_inputs", "E_INF", "MINIMUM_ENERGY_CEILING"]

EPS32, EPS64 = float(np.finfo(np.float32).eps), float(np.finfo(np.float64).eps)
# One factor for both input dtypes: float32 arithmetic on float64 inputs (e.g. torch's default dtype) is accepted
# too; every known mistake is off by a relative O(1/N) or more, thousands of times this tolerance.
ATOL_FACTOR = {"float64": 20 * EPS32, "float32": 20 * EPS32}
E_INF = {p: 2.0 * math.sqrt((p - 1) / p) for p in range(2, 8)}

# find_local_minimum: the energy per spin H/N of a local minimum reached by descent must be at most this (p >= 3).
# Measured: Armijo gradient descent + Newton from 300 random starts per size (seeds 20000-20299), the highest minimum
# reached had H/N = -0.828 (p = 3, N = 12), -1.060 (p = 3, N = 16), -1.138 (p = 3, N = 22), -0.749 (p = 4, N = 9);
# the graded cases use N >= 12 for p = 3 (margin >= 0.23, 1.3 standard deviations of the N = 12 spread) and N = 9
# for p = 4 (margin 0.25). Wrong answers: a random point has H/N ~ N(0, 1/N); a maximum has H/N >= +0.8.
# (Asymptotically every local minimum lies below -E_inf = -2 sqrt((p-1)/p); at these N they do not yet.)
# On the very landscapes of the hidden cases, the highest of the minima reached from 300 random starts each is
# H/N = -1.222 (p = 3, N = 16), -1.231 (p = 3, N = 22), -0.899 (p = 4, N = 9), -0.976 (p = 3, N = 12, float32):
# margins of 0.62, 0.63, 0.40 and 0.38 below the thresholds.
MINIMUM_ENERGY_CEILING = {3: -0.6, 4: -0.5}
GRAD_RMS_TOL = {"float64": 1e-6, "float32": 1e-4}
SPHERE_TOL = {"float64": 1e-8, "float32": 1e-5}


# ==============================================================================================================
# Inputs and conversions
# ==============================================================================================================
def visible_inputs(seed: int, N: int, p: int) -> tuple[np.ndarray, np.ndarray]:
    """J with i.i.d. N(0, 1) entries (not symmetrized) and s = sqrt(N) x / |x|, x ~ N(0, I), from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    J = rng.standard_normal((N,) * p)
    x = rng.standard_normal(N)
    return J, math.sqrt(N) * x / np.linalg.norm(x)


def _np(x) -> np.ndarray:
    try:
        import torch
        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(x, dtype=np.float64)


def _kind(*arrays) -> str:
    return "float32" if rtol_for(*arrays, float64=0.0, float32=1.0) == 1.0 else "float64"


def _frob(J) -> float:
    return float(np.linalg.norm(_np(J).ravel()))


def _scalar(value: Any, what: str) -> np.ndarray:
    """A float from a Python/numpy number, a 0-d or one-element array or tensor."""
    from .core import as_array
    arr = as_array(value, what)
    if arr.size != 1:
        raise TypeError(f"{what} has shape {arr.shape}; expected one number (a float)")
    return arr.reshape(())


def _integer(value: Any, what: str) -> int:
    """An int from a Python/numpy integer, an integral float, a one-element array or tensor."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        raise TypeError(f"{what} is a boolean; expected an int (the number of negative eigenvalues)")
    arr = _scalar(value, what)
    v = float(arr)
    if not math.isfinite(v) or v != round(v):
        raise ValueError(f"{what} is {v!r}; expected an integer (the number of negative eigenvalues)")
    return int(round(v))


def _vector(N: int):
    def convert(value, what):
        from .core import as_array
        arr = as_array(value, what)
        if arr.shape != (N,):
            raise ValueError(f"{what} has shape {arr.shape}; expected ({N},)")
        return arr
    return convert


def _matrix(N: int):
    def convert(value, what):
        from .core import as_array
        arr = as_array(value, what)
        if arr.shape != (N, N):
            raise ValueError(f"{what} has shape {arr.shape}; expected ({N}, {N})")
        return arr
    return convert


def _describe(J, s) -> str:
    J_ = _np(J)
    kind = "torch " if type(J).__module__.startswith("torch") else ""
    return f"p = {J_.ndim}, N = {J_.shape[0]}, {kind}{_kind(J, s)}"


def _atol(J, s, bound: str) -> float:
    J_ = _np(J)
    N, p = J_.shape[0], J_.ndim
    F = _frob(J_)
    scale = {"energy": math.sqrt(N) * F, "gradient": p * F, "hessian": p * p * F / math.sqrt(N)}[bound]
    return ATOL_FACTOR[_kind(J, s)] * scale


# ==============================================================================================================
# Literals (computed with the instructor's reference, solutions/landscapes/grading.py, which takes every derivative
# from the symmetrized tensor; tests/test_landscapes.py recomputes them). Inputs: visible_inputs(seed, N, p).
# ==============================================================================================================
ENERGY_LITERALS = {(11, 4, 2): -0.06021072565047285, (12, 5, 3): -0.45540903138524574,
                   (13, 3, 4): 0.06371699470035358}
GRADIENT_LITERALS = {
    (11, 4, 2): [-0.26645500644100584, 1.034490044897034, 0.9713433486599071, 0.8423799050066834],
    (12, 5, 3): [-0.7322384760607746, -0.6945409812656992, -0.44738234692806594, -2.204501325781705,
                 -2.245644863617979],
    (13, 3, 4): [0.021053643520362257, -0.04498440831787927, -0.02968485364246041],
}
HESSIAN_LITERALS = {  # rounded to 12 decimals (the checks allow 1e-9)
    (12, 5, 3): [[-0.990451478551, 0.252632423594, 0.342828960567, 1.30768649834, -0.650949743997],
                 [0.252632423594, 0.189576299889, 0.370782940903, 0.273380489826, 0.719138543938],
                 [0.342828960567, 0.370782940903, 0.393648331309, 0.805909251631, 2.184983588738],
                 [1.30768649834, 0.273380489826, 0.805909251631, -0.192638554972, 0.873772516294],
                 [-0.650949743997, 0.719138543938, 2.184983588738, 0.873772516294, 1.680281532847]],
    (13, 3, 4): [[0.318989414153, 0.996362572114, 2.0414294097],
                 [0.996362572114, -0.613387385249, 0.845193048718],
                 [2.0414294097, 0.845193048718, 4.85242416946]],
}
# Critical points of H for J = visible_inputs(14, 6, 3)[0], found by damped Newton on the sphere (gradient
# |grad| / sqrt(N) < 1e-10), with their index and the smallest |eigenvalue| of the tangent Hessian (>= 0.3).
CRITICAL_POINTS_14 = [
    (0, [1.2125437194405437, 0.77563861310205, -0.9014276951226458, 1.5451928264105406, 0.0986088369453765,
         -0.8474703577482684]),
    (1, [1.3395008840985392, -0.05816861360764903, 1.5033128797499384, 1.1299282482305109, -0.05797901348224906,
         -0.8138210904827282]),
    (2, [-0.012268913300133516, 0.20035374524218919, 1.3631900468064158, 1.6553825105076436, -0.05426237776983932,
         -1.1654119808402341]),
    (3, [-0.7233744610232627, 1.5695155732213901, -0.5092390794513393, 1.138966078054263, -1.0732185540431802,
         -0.5522535856049657]),
    (5, [-1.2125437194374744, -0.7756386130967016, 0.9014276951175357, -1.5451928264099233, -0.09860883696144644,
         0.8474703577622462]),
]
# Every local minimum of H for J = visible_inputs(15, 6, 3)[0]: the distinct end points of descent (Armijo gradient
# descent + Newton) from 3000 random starts; H/N = -0.891, -1.105, -1.127, -0.888, -1.116, -0.829.
MINIMA_15 = [
    [-0.43297109803257433, -1.6353538371203657, 1.4475493902984413, -0.2546176796127214, -0.9543801865829283,
     -0.2590036969182898],
    [-0.07798661782182974, 1.0852300249957292, 0.36840121156651956, -1.1179372117210342, 0.41187022559502207,
     -1.8058387900149073],
    [2.033442518040997, -0.18408927664824692, -0.22183698503520974, 1.0285404661387076, -0.2806633699536918,
     -0.803332806748304],
    [0.7772857827359491, 0.5421113542190451, 0.3765274393166505, -1.2635094250607115, 1.2259774345652492,
     1.3640720075364652],
    [-0.7278949174040991, -0.48422202643838597, -2.1433617650477856, -0.5650750031257071, -0.23233835086127283,
     -0.5180805864167937],
    [-0.7047920954081679, 0.20184866287749934, 0.5413075140748195, 1.767005404738125, 1.4298295177358806,
     0.05282844487870024],
]


def _permuted(J: np.ndarray) -> np.ndarray:
    """J with its axes cyclically permuted (the same landscape H, a different array unless J is symmetric)."""
    return np.ascontiguousarray(np.moveaxis(J, 0, -1))


# ==============================================================================================================
# Part 1: pspin_energy(J, s)
# ==============================================================================================================
def _visible_pspin_energy(report: Report, pspin_energy: Callable) -> None:
    for (seed, N, p), want in ENERGY_LITERALS.items():
        J, s = visible_inputs(seed, N, p)
        out = report.call(pspin_energy, J, s, what=f"pspin_energy(J, s) (p = {p}, N = {N}, seed {seed})",
                          convert=_scalar)
        hint = {f"is the normalization N^(-(p-1)/2) missing? (your value is N^{(p - 1) / 2:g} times the energy)":
                want * N ** ((p - 1) / 2)}
        report.judge(f"p = {p}, N = {N}, non-symmetric J (seeded): H(s) = {want:.10g}", out,
                     lambda v, w=want, J=J, s=s, h=hint: compare(v, w, what="H(s)", rtol=1e-10,
                                                                 atol=_atol(J, s, "energy"), variants=h))
    # One entry, J[0,0,0] = c, and s = sqrt(N) e_0: H = N^(-(p-1)/2) c N^(p/2) = c sqrt(N). With c = -1/2 and N = 9
    # the answer, -3/2, is neither 0, 1, 2 nor an entry or the largest |entry| of the inputs (-1/2, 3), so no
    # unrelated helper matches it by accident, and its sign is tested too.
    N, p = 9, 3
    J = np.zeros((N,) * p)
    J[(0,) * p] = -0.5
    s = math.sqrt(N) * np.eye(N)[0]
    out = report.call(pspin_energy, J, s, what="pspin_energy(J, s) with J = -e_000 / 2, s = sqrt(N) e_0 (N = 9)",
                      convert=_scalar)
    report.judge("normalization: one entry J[0,0,0] = -1/2, s = sqrt(9) e_0: H = N^(-(p-1)/2) (-1/2) N^(p/2) "
                 "= -sqrt(N) / 2 = -1.5", out, lambda v: compare(v, -1.5, what="H(s)", rtol=1e-12, atol=1e-12))
    J, s = visible_inputs(21, 5, 3)
    outs = [report.call(pspin_energy, J, s, what="pspin_energy(J, s) (p = 3, N = 5, seed 21)", convert=_scalar),
            report.call(pspin_energy, J, -s, what="pspin_energy(J, -s)", convert=_scalar),
            report.call(pspin_energy, _permuted(J), s, what="pspin_energy(J with its axes permuted, s)",
                        convert=_scalar)]
    tol = _atol(J, s, "energy")

    def properties(v0):
        if outs[1].get("error") or outs[2].get("error"):
            return False, outs[1].get("error") or outs[2].get("error")
        ok1, m1 = close(outs[1]["value"], -v0, rtol=1e-10, atol=tol)
        ok2, m2 = close(outs[2]["value"], v0, rtol=1e-10, atol=tol)
        msgs = ([f"H(-s) should be (-1)^3 H(s) = {fmt(-v0, 10)}: {m1}"] if not ok1 else []) + \
               ([f"permuting the axes of J does not change H(s) = {fmt(v0, 10)}: {m2}"] if not ok2 else [])
        return ok1 and ok2, "\n".join(msgs)
    report.judge("p = 3: H(-s) = -H(s), and H is unchanged when the axes of J are permuted", outs[0], properties,
                 gated=True)  # a constant 0 satisfies both
    J32, s32 = (a.astype(np.float32) for a in visible_inputs(12, 5, 3))
    out = report.call(pspin_energy, J32, s32, what="pspin_energy(J, s) with float32 J and s", convert=_scalar)
    report.judge("float32 inputs accepted (p = 3, N = 5, seed 12)", out,
                 lambda v: compare(v, _np(_lit_float32_energy()), what="H(s)", rtol=0.0,
                                   atol=_atol(J32, s32, "energy")))


def _lit_float32_energy() -> float:
    # The float32 rounding of the seed-12 inputs changes H by ~1e-7; the allowed error (20 eps32 |J|_F sqrt(N) =
    # 6e-5) covers it, so the float64 literal serves as the reference here.
    return ENERGY_LITERALS[(12, 5, 3)]


def _hidden_pspin_energy(report: Report, pspin_energy: Callable, grading) -> None:
    for case in grading.energy_cases():
        J, s = case["J"], case["s"]
        out = report.call(pspin_energy, J, s, what=f"pspin_energy(J, s) ({case['name']})", convert=_scalar)
        want = grading.pspin_energy(J, s)
        report.judge(case["name"], out,
                     lambda v, w=want, J=J, s=s: compare(v, w, what="H(s)", rtol=rtol_for(J, s, float64=1e-10,
                                                                                            float32=0.0),
                                                         atol=_atol(J, s, "energy"),
                                                         variants=grading.energy_variants(J, s)))


# ==============================================================================================================
# Part 2: sphere_gradient(J, s)
# ==============================================================================================================
def _gradient_fallback(got, expected, what) -> str:
    from .core import ratio_hint
    return ratio_hint(got, expected, what)[1]


def _visible_sphere_gradient(report: Report, sphere_gradient: Callable) -> None:
    for (seed, N, p), want in GRADIENT_LITERALS.items():
        J, s = visible_inputs(seed, N, p)
        out = report.call(sphere_gradient, J, s, what=f"sphere_gradient(J, s) (p = {p}, N = {N}, seed {seed})",
                          convert=_vector(N))
        report.judge(f"p = {p}, N = {N}, non-symmetric J (seeded): P grad H(s) = {fmt(np.array(want), 4)}", out,
                     lambda v, w=np.array(want), J=J, s=s: compare(v, w, what="the Riemannian gradient", rtol=1e-10,
                                                                   atol=_atol(J, s, "gradient")))
    J, s = visible_inputs(22, 6, 3)
    out = report.call(sphere_gradient, J, s, what="sphere_gradient(J, s) (p = 3, N = 6, seed 22)", convert=_vector(6))
    outp = report.call(sphere_gradient, _permuted(J), s, what="sphere_gradient(J with its axes permuted, s)",
                       convert=_vector(6))
    tol = _atol(J, s, "gradient")

    def tangent(v):
        dot = float(v @ s)
        return abs(dot) <= tol * math.sqrt(6), (f"s . gradient = {dot:.3g}, expected 0 (allowed {tol * 6 ** 0.5:.2g}): "
                                                "the Riemannian gradient lies in the tangent space s-perp; project "
                                                "with P = I - s s^T / N")
    # Gated (they count once a value is right): the zero vector is tangent and invariant, s itself invariant.
    report.judge("p = 3, N = 6: the gradient is tangent to the sphere (s . gradient = 0)", out, tangent, gated=True)

    def invariant(v):
        if outp.get("error"):
            return False, outp["error"]
        ok, msg = close(outp["value"], v, rtol=1e-10, atol=tol)
        return ok, ("" if ok else "the landscape H does not change when the axes of J are permuted, so neither does "
                    f"its gradient: {msg}\nhint: J is not symmetrized: the Euclidean gradient sums the contractions "
                    "over all p slots (p times one slot is right only for a symmetric J)")
    report.judge("p = 3, N = 6: permuting the axes of J leaves the gradient unchanged", out, invariant, gated=True)


def _hidden_sphere_gradient(report: Report, sphere_gradient: Callable, grading) -> None:
    for case in grading.gradient_cases():
        J, s = case["J"], case["s"]
        N = _np(s).shape[0]
        out = report.call(sphere_gradient, J, s, what=f"sphere_gradient(J, s) ({case['name']})", convert=_vector(N))
        want = grading.sphere_gradient(J, s)
        report.judge(case["name"], out,
                     lambda v, w=want, J=J, s=s: compare(v, w, what="the Riemannian gradient",
                                                         rtol=rtol_for(J, s, float64=1e-10, float32=0.0),
                                                         atol=_atol(J, s, "gradient"),
                                                         variants=grading.gradient_variants(J, s)))


# ==============================================================================================================
# Part 3: sphere_hessian(J, s)
# ==============================================================================================================
def _visible_sphere_hessian(report: Report, sphere_hessian: Callable) -> None:
    for (seed, N, p), want in HESSIAN_LITERALS.items():
        J, s = visible_inputs(seed, N, p)
        out = report.call(sphere_hessian, J, s, what=f"sphere_hessian(J, s) (p = {p}, N = {N}, seed {seed})",
                          convert=_matrix(N))
        report.judge(f"p = {p}, N = {N}, non-symmetric J, s not a critical point (seeded): the {N} x {N} matrix", out,
                     lambda v, w=np.array(want), J=J, s=s: compare(v, w, what="the Riemannian Hessian", rtol=0.0,
                                                                   atol=1e-9 + _atol(J, s, "hessian")))
    J, s = visible_inputs(23, 6, 3)
    out = report.call(sphere_hessian, J, s, what="sphere_hessian(J, s) (p = 3, N = 6, seed 23)", convert=_matrix(6))
    outp = report.call(sphere_hessian, _permuted(J), s, what="sphere_hessian(J with its axes permuted, s)",
                       convert=_matrix(6))
    tol = _atol(J, s, "hessian")

    def structure(M):
        problems = []
        ok, msg = close(M, M.T, rtol=0.0, atol=tol)
        if not ok:
            problems.append(f"the matrix is not symmetric: {msg}")
        Ms = M @ s
        if np.max(np.abs(Ms)) > tol * math.sqrt(6) * 10:
            problems.append(f"M s = {fmt(Ms)} should be 0: the Riemannian Hessian is P (...) P, which vanishes along "
                            "s (a shift -(pH/N) I instead of -(pH/N) P does not)")
        return not problems, "\n".join(problems)
    # Gated (they count once a value is right): the zero matrix is symmetric, zero along s and invariant.
    report.judge("p = 3, N = 6: symmetric, and zero along s (M s = 0)", out, structure, gated=True)

    def invariant(M):
        if outp.get("error"):
            return False, outp["error"]
        ok, msg = close(outp["value"], M, rtol=0.0, atol=tol)
        return ok, ("" if ok else "permuting the axes of J does not change H, so neither does its Hessian: "
                    f"{msg}\nhint: J is not symmetrized: the Euclidean Hessian sums over all ordered pairs of slots")
    report.judge("p = 3, N = 6: permuting the axes of J leaves the Hessian unchanged", out, invariant, gated=True)

    # p = 2 at a critical point: s = sqrt(N) v_k, (J + J^T)/2 v_j = l_j v_j; the Riemannian Hessian has the
    # eigenvalue 0 along s and 2 (l_j - l_k) / sqrt(N) along v_j, j != k (derived in the notebook).
    N = 7
    J2 = np.random.default_rng(24).standard_normal((N, N))
    lam, V = np.linalg.eigh((J2 + J2.T) / 2)
    k = 2
    s2 = math.sqrt(N) * V[:, k]
    want = np.sort(np.concatenate([[0.0], 2 * (np.delete(lam, k) - lam[k]) / math.sqrt(N)]))
    out = report.call(sphere_hessian, J2, s2, what="sphere_hessian(J, s) (p = 2, N = 7, s = sqrt(N) v_2)",
                      convert=_matrix(N))

    def spectrum(M):
        return compare(np.sort(np.linalg.eigvalsh((M + M.T) / 2)), want, what="the eigenvalues of your matrix",
                       rtol=1e-9, atol=_atol(J2, s2, "hessian"),
                       variants={"the shift -(p H / N) P is missing (or uses H / N instead of p H / N)":
                                 np.sort(np.concatenate([[0.0], 2 * np.delete(lam, k) / math.sqrt(N)]))})
    report.judge("p = 2, N = 7, s = sqrt(N) x (eigenvector 2 of (J + J^T)/2): eigenvalues 0 and "
                 "2 (l_j - l_2) / sqrt(N)", out, spectrum)


def _hidden_sphere_hessian(report: Report, sphere_hessian: Callable, grading) -> None:
    for case in grading.hessian_cases():
        J, s = case["J"], case["s"]
        N = _np(s).shape[0]
        out = report.call(sphere_hessian, J, s, what=f"sphere_hessian(J, s) ({case['name']})", convert=_matrix(N))
        want = grading.sphere_hessian(J, s)
        report.judge(case["name"], out,
                     lambda v, w=want, J=J, s=s: compare(v, w, what="the Riemannian Hessian",
                                                         rtol=rtol_for(J, s, float64=1e-10, float32=0.0),
                                                         atol=_atol(J, s, "hessian"),
                                                         variants=grading.hessian_variants(J, s)))


# ==============================================================================================================
# Part 4: critical_index(J, s)
# ==============================================================================================================
def _index_verdict(got: int, want: int, N: int):
    if got == want:
        return True, ""
    lines = [f"index {got}, expected {want}"]
    if got == want + 1:
        lines.append("hint: one too many: is the eigenvalue 0 of the N x N matrix along s counted? Count on an "
                     "orthonormal basis of s-perp (N - 1 eigenvalues)")
    elif got == N - 1 - want or got == N - want:
        lines.append("hint: this is the number of positive eigenvalues (or the index of -H)")
    return False, "\n".join(lines)


def _visible_critical_index(report: Report, critical_index: Callable) -> None:
    # Each index is what some constant returns: the value checks (here and hidden) are gated behind the one check
    # no constant passes, that the N eigenvector critical points of a p = 2 landscape have N different indices.
    N = 6
    J = np.random.default_rng(25).standard_normal((N, N))
    lam, V = np.linalg.eigh((J + J.T) / 2)
    outs = []
    for k in range(N):
        sign = 1.0 if k % 2 == 0 else -1.0
        s = sign * math.sqrt(N) * V[:, k]
        out = report.call(critical_index, J, s, what=f"critical_index(J, s) (p = 2, N = 6, eigenvector {k})",
                          convert=_integer)
        outs.append(out)
        report.judge(f"p = 2, N = 6: s = {'+' if sign > 0 else '-'}sqrt(N) x (eigenvector {k} of (J + J^T)/2, "
                     f"eigenvalues increasing) is a critical point of index {k}", out,
                     lambda v, k=k: _index_verdict(v, k, N), gated=True)
    report.check(f"p = 2, N = 6: the {N} critical points +-sqrt(N) x (eigenvector k) have {N} different indices "
                 "(the index counts the eigenvalues below the k-th)", lambda: _distinct_indices(outs))
    J3 = visible_inputs(14, 6, 3)[0]
    for k, s in CRITICAL_POINTS_14:
        s = np.array(s)
        out = report.call(critical_index, J3, s, what=f"critical_index(J, s) (p = 3, N = 6, seed 14, index {k})",
                          convert=_integer)
        report.judge(f"p = 3, N = 6, non-symmetric J (seed 14): a critical point of index {k}", out,
                     lambda v, k=k: _index_verdict(v, k, N), gated=True)


def _distinct_indices(outs: list[dict]) -> tuple[bool, str]:
    for out in outs:
        if out.get("error"):
            return False, out["error"]
    values = [int(out["value"]) for out in outs]
    if len(set(values)) == len(values):
        return True, ""
    return False, f"the indices are {values}: critical points at different eigenvalues have different indices"


def _hidden_critical_index(report: Report, critical_index: Callable, grading) -> None:
    for case in grading.index_cases():
        J, s = case["J"], case["s"]
        N = _np(s).shape[0]
        want = grading.critical_index(J, s)
        out = report.call(critical_index, J, s, what=f"critical_index(J, s) ({case['name']})", convert=_integer)
        report.judge(f"{case['name']}: index {want}", out, lambda v, w=want, N=N: _index_verdict(v, w, N),
                     gated=True)
        if _np(J).ndim % 2 == 1 and _kind(J, s) == "float64":
            # odd p: H(-s) = -H(s), so -s is a critical point of index N - 1 - k
            out = report.call(critical_index, J, -s, what=f"critical_index(J, -s) ({case['name']})",
                              convert=_integer)
            report.judge(f"{case['name']}, at -s (odd p: index N - 1 - {want})", out,
                         lambda v, w=N - 1 - want, N=N: _index_verdict(v, w, N), gated=True)


# ==============================================================================================================
# Part 5: find_local_minimum(J, s0)
# ==============================================================================================================
def _visible_find_local_minimum(report: Report, find_local_minimum: Callable) -> None:
    N = 8
    J = np.random.default_rng(26).standard_normal((N, N))
    lam, V = np.linalg.eigh((J + J.T) / 2)
    s0 = visible_inputs(27, N, 2)[1]
    out = report.call(find_local_minimum, J, s0, what="find_local_minimum(J, s0) (p = 2, N = 8)",
                      convert=_vector(N))

    def ground(s):
        r2 = float(s @ s) / N
        if abs(r2 - 1) > SPHERE_TOL["float64"]:
            return False, f"|s|^2 / N = {r2:.10g}, expected 1 (s on the sphere |s|^2 = N)"
        overlap = abs(float(s @ V[:, 0])) / math.sqrt(N)
        return overlap >= 1 - 1e-8, (f"|s . v_0| / sqrt(N) = {overlap:.10g}, expected 1: for p = 2 the only local "
                                     "minima are +-sqrt(N) v_0, v_0 the eigenvector of the smallest eigenvalue of "
                                     "(J + J^T)/2 (every other eigenvector is a saddle)")
    report.judge("p = 2, N = 8: the local minimum is the ground state +-sqrt(N) v_0 (on the sphere)", out, ground)
    J3 = visible_inputs(15, 6, 3)[0]
    minima = np.array(MINIMA_15)
    for seed in (28, 29):
        s0 = visible_inputs(seed, 6, 3)[1]
        out = report.call(find_local_minimum, J3, s0, what=f"find_local_minimum(J, s0) (p = 3, N = 6, s0 seed {seed})",
                          convert=_vector(6))

        def one_of(s):
            r2 = float(s @ s) / 6
            if abs(r2 - 1) > SPHERE_TOL["float64"]:
                return False, f"|s|^2 / N = {r2:.10g}, expected 1 (s on the sphere |s|^2 = N)"
            d = np.min(np.linalg.norm(minima - s, axis=1)) / math.sqrt(6)
            return d <= 1e-5, (f"s is not one of the 6 local minima of this landscape (closest at distance "
                               f"{d:.3g} sqrt(N)); a point where the gradient vanishes may be a saddle: descend "
                               "until |grad| / sqrt(N) < 1e-8")
        report.judge(f"p = 3, N = 6 (seed 15), s0 seed {seed}: s is one of the 6 local minima", out, one_of)


def _minimum_verdict(s, case, grading):
    J, s0, p = case["J"], case["s0"], case["p"]
    kind = _kind(J, s0)
    N = s.shape[0]
    r2 = float(s @ s) / N
    if not np.all(np.isfinite(s)):
        return False, "non-finite entries"
    if abs(r2 - 1) > SPHERE_TOL[kind]:
        return False, f"|s|^2 / N = {r2:.10g}, expected 1 (allowed {SPHERE_TOL[kind]:g}): s must be on the sphere"
    s = grading.on_sphere(s)
    rms = float(np.linalg.norm(grading.sphere_gradient(J, s))) / math.sqrt(N)
    problems = []
    if rms > GRAD_RMS_TOL[kind]:
        problems.append(f"not a critical point: |grad| / sqrt(N) = {rms:.3g} (allowed {GRAD_RMS_TOL[kind]:g})")
    index = grading.critical_index(J, s)
    if index != 0:
        problems.append(f"not a minimum: the tangent Hessian has {index} negative eigenvalue(s) (a saddle or a "
                        "maximum: Newton's method converges to critical points of any index)")
    u, u0 = grading.pspin_energy(J, s) / N, grading.pspin_energy(J, s0) / N
    if u > u0 + 1e-9:
        problems.append(f"the energy went up: H(s)/N = {u:.6g} > H(s0)/N = {u0:.6g}")
    if p == 2:
        want = float(np.linalg.eigvalsh((_np(J) + _np(J).T) / 2)[0]) / math.sqrt(N)
        if abs(u - want) > 1e-7 * (1 + abs(want)):
            problems.append(f"H(s)/N = {u:.10g}, but for p = 2 every local minimum is the ground state, "
                            f"H/N = lambda_min((J + J^T)/2) / sqrt(N) = {want:.10g}")
    elif u > MINIMUM_ENERGY_CEILING[p]:
        problems.append(f"H(s)/N = {u:.4g} is above {MINIMUM_ENERGY_CEILING[p]}: every local minimum reached by "
                        "descent from 300 random starts at these sizes was below -0.74. A minimum lies deep in the "
                        "landscape: the shift -p H/N of the Hessian must make every tangent eigenvalue positive")
    return not problems, "\n".join(problems)


def _hidden_find_local_minimum(report: Report, find_local_minimum: Callable, grading) -> None:
    for case in grading.minimum_cases():
        N = _np(case["s0"]).shape[0]
        out = report.call(find_local_minimum, case["J"], case["s0"],
                          what=f"find_local_minimum(J, s0) ({case['name']})", convert=_vector(N))
        report.judge(f"{case['name']}: on the sphere, |grad| / sqrt(N) small, index 0, energy below H(s0) and in "
                     "the band of minima", out, lambda v, c=case: _minimum_verdict(v, c, grading))


# ==============================================================================================================
# The topic
# ==============================================================================================================
TOPIC = Topic("landscapes", [
    Part("pspin_energy", 2, _visible_pspin_energy, _hidden_pspin_energy),
    Part("sphere_gradient", 3, _visible_sphere_gradient, _hidden_sphere_gradient),
    Part("sphere_hessian", 3, _visible_sphere_hessian, _hidden_sphere_hessian),
    Part("critical_index", 2, _visible_critical_index, _hidden_critical_index),
    Part("find_local_minimum", 3, _visible_find_local_minimum, _hidden_find_local_minimum),
    Written("written_threshold", 3),
])
check_pspin_energy = TOPIC.checker("pspin_energy")
check_sphere_gradient = TOPIC.checker("sphere_gradient")
check_sphere_hessian = TOPIC.checker("sphere_hessian")
check_critical_index = TOPIC.checker("critical_index")
check_find_local_minimum = TOPIC.checker("find_local_minimum")
